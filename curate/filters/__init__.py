"""Quality filters: a small base (``base.Filter``) and published rule sets, as polars expressions."""

from curate.filters import c4, fineweb, gopher, instruction, length  # noqa: F401  (registers filters)
from curate.filters.base import Filter, FilterParams, all_filters, get_filter

__all__ = ["Filter", "FilterParams", "all_filters", "get_filter"]
