"""Converters from source formats to the record kinds of the contract (see ``registry``)."""

from curate.convert import (  # noqa: F401  (registers converters)
    alpaca_eval,
    chat,
    hh,
    kto,
    oasst,
    ratings,
    records,
    render,
)
from curate.convert.registry import Converter, ConvertResult, all_converters, get_converter

__all__ = ["ConvertResult", "Converter", "all_converters", "get_converter"]
