"""Curation: the engine (``engine/``) and its units (``ingest/``, ``convert/``, ``filters/``,
``dedup/``, ``store/``, ``annotate/``), plus the ``curate`` command line (``cli/``).

Nothing here imports Prefect; only ``curate.cli`` imports ``flows`` and ``train``.
"""

__version__ = "0.1.0"
