"""Turn parsed records into a typed frame for a converter, rejecting rows with missing or
wrong-typed fields.

Type checks look at the JSON type of each value (a number is not text, an object is not a list):
polars' own JSON reader would silently turn ``5`` or ``{"a": 1}`` into strings, so values are
checked before the frame is built. The frame has ``__row`` plus one column per converter field;
``list``/``dict``/``any`` fields become Object columns for converters that walk nested data.

Example:
    >>> from curate.convert.registry import InputField
    >>> fields = (InputField("instruction", "str"), InputField("input", "str", required=False))
    >>> df, rejects = extract([{"q": "Hi"}, {"q": 5}], [0, 1], fields, {"instruction": "q"})
    >>> df.to_dicts()
    [{'__row': 0, 'instruction': 'Hi', 'input': None}]
    >>> rejects
    [(1, "wrong_type: instruction (column 'q') must be text, got int")]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from curate.convert.registry import ROW, InputField

_JSON_NAMES = {str: "text", int: "int", float: "float", bool: "bool", list: "list", dict: "object"}
_ACCEPT: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "number": (int, float),
    "bool": (bool,),
    "scalar": (str, int, float, bool),
    "list": (list,),
    "dict": (dict,),
}
_ACCEPT_OR_NONE = {k: frozenset((*v, type(None))) for k, v in _ACCEPT.items()}
_DTYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "number": pl.Float64(),
    "bool": pl.Boolean(),
    "scalar": pl.String(),
}
_EXPECT = {
    "str": "text",
    "number": "a number",
    "bool": "true/false",
    "scalar": "text or a number",
    "list": "a list",
    "dict": "an object",
}


def _type_name(v: Any) -> str:
    return _JSON_NAMES.get(type(v), type(v).__name__)


def _where(f: InputField, column: str) -> str:
    return f.name if column == f.name else f"{f.name} (column {column!r})"


def extract(
    records: Sequence[Mapping[str, Any]],
    rows: Sequence[int],
    fields: Sequence[InputField],
    columns: Mapping[str, str],
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """Build the converter's input frame.

    Args:
        records: parsed input objects.
        rows: row number of each record in its file.
        fields: what the converter reads.
        columns: recipe column map, converter field -> input key (identity when absent).

    Returns:
        ``(frame, rejects)`` where rejects are ``(row, "code: detail")`` for rows that lack a required
        field or carry a value of the wrong JSON type (the first problem found per row).
    """
    bad: dict[int, str] = {}
    values: dict[str, list[Any]] = {}
    for f in fields:
        key = columns.get(f.name, f.name)
        vals = [r.get(key) for r in records]
        # Whole-column checks run at C speed; rows are only scanned when a column has a problem.
        if f.type != "any" and not set(map(type, vals)) <= _ACCEPT_OR_NONE[f.type]:
            accept = _ACCEPT[f.type]
            # bool is an int subclass in Python but not a number in JSON: compare exact types.
            wrong = [i for i, v in enumerate(vals) if v is not None and type(v) not in accept]
            for i in wrong:
                bad.setdefault(i, f"wrong_type: {_where(f, key)} must be {_EXPECT[f.type]}, got {_type_name(vals[i])}")
        if f.required and f.nullable:
            if None in vals:
                for i in (i for i, r in enumerate(records) if key not in r):
                    bad.setdefault(i, f"missing_field: {_where(f, key)} is missing")
        elif f.required and None in vals:
            for i in (i for i, v in enumerate(vals) if v is None):
                bad.setdefault(i, f"missing_field: {_where(f, key)} is missing or null")
        if f.type == "scalar":
            vals = [v if v is None or type(v) is str else (str(v).lower() if type(v) is bool else str(v)) for v in vals]
        values[f.name] = vals
    keep = [i for i in range(len(records)) if i not in bad] if bad else range(len(records))
    cols: dict[str, pl.Series] = {ROW: pl.Series(ROW, [rows[i] for i in keep], dtype=pl.Int64)}
    for f in fields:
        vals = values[f.name]
        picked = [vals[i] for i in keep] if bad else vals
        if f.type in _DTYPES:
            if f.type == "number":
                picked = [None if v is None else float(v) for v in picked]
            cols[f.name] = pl.Series(f.name, picked, dtype=_DTYPES[f.type])
        else:
            cols[f.name] = pl.Series(f.name, picked, dtype=pl.Object)
    rejects = [(rows[i], reason) for i, reason in sorted(bad.items())]
    return pl.DataFrame(cols), rejects


def columnar_fields(fields: Sequence[InputField], columns: Mapping[str, str]) -> dict[str, pa.DataType] | None:
    """Input keys and Arrow types for a columnar read, when :func:`extract_table` can take these fields.

    Only text fields qualify (a number is never read as text), and none where ``null`` and a
    missing key mean different things (a columnar read cannot tell them apart).
    """
    if any(f.type != "str" or (f.required and f.nullable) for f in fields):
        return None
    return {columns.get(f.name, f.name): pa.large_string() for f in fields}


def extract_table(
    table: pa.Table, rows: Sequence[int], fields: Sequence[InputField], columns: Mapping[str, str]
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """:func:`extract` for a batch read in columnar form (fields as :func:`columnar_fields` allows).

    The types are already right (the read refused anything else), so only required fields that
    are null or missing are rejected, with the same reasons, the first problem per row.
    """
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    keys = [columns.get(f.name, f.name) for f in fields]
    frame = frame.select(
        pl.Series(ROW, rows, dtype=pl.Int64),
        *[pl.col(k).cast(pl.String).alias(f.name) for f, k in zip(fields, keys, strict=True)],
    )
    checks = [
        pl.when(pl.col(f.name).is_null()).then(pl.lit(f"missing_field: {_where(f, k)} is missing or null"))
        for f, k in zip(fields, keys, strict=True)
        if f.required
    ]
    if (
        not checks
        or not frame.select(pl.any_horizontal(pl.col(f.name).is_null() for f in fields if f.required)).to_series().any()
    ):
        return frame, []
    reason = frame.select(pl.coalesce(checks).alias("reason")).to_series()
    bad = reason.is_not_null()
    rejects = list(zip(frame[ROW].filter(bad).to_list(), reason.filter(bad).to_list(), strict=True))
    return frame.filter(~bad), rejects
