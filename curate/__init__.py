"""Curation units: ingest, convert, accounting and run outputs. Never imports Prefect."""

__version__ = "0.1.0"
