"""Ingest: find input files, stream them in batches, and type-check records for converters."""

from curate.ingest.extract import extract
from curate.ingest.files import InputError, InputFile, discover, sha256_of
from curate.ingest.readers import RawBatch, ReadError, read_batches

__all__ = ["InputError", "InputFile", "RawBatch", "ReadError", "discover", "extract", "read_batches", "sha256_of"]
