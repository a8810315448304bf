"""The data contract: record kinds, Arrow/polars schemas, content ids, recipe models.

This package is the bottom layer: it imports nothing from ``curate``, ``train`` or ``flows``.
"""

from schemas.kinds import KIND_SCHEMAS, Kind, arrow_schema, polars_schema

__all__ = ["KIND_SCHEMAS", "Kind", "arrow_schema", "polars_schema"]
