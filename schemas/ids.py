"""Stable content ids: a row's ``id`` is the SHA-256 of its normalized identity content.

Normalization: Unicode NFC and stripped surrounding whitespace on every text value; message lists
are encoded role by role. The encoding uses ASCII separator characters that cannot collide with
ordinary text, and the hash is computed vectorized (``polars-hash``), so ids are stable across
runs, machines and polars versions.

Example:
    >>> import polars as pl
    >>> from schemas.ids import with_ids
    >>> from schemas.kinds import Kind
    >>> df = pl.DataFrame({"text": ["hello ", "hello"]})
    >>> ids = with_ids(df, Kind.TEXT)["id"].to_list()
    >>> ids[0] == ids[1], len(ids[0])
    (True, 32)
"""

from __future__ import annotations

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the .chash namespace)
import pyarrow as pa

from schemas.kinds import IDENTITY_COLUMNS, MESSAGES, Kind, content_schema

ID_HEX_CHARS = 32
_FIELD_SEP = "\x1d"
_MSG_SEP = "\x1e"
_ROLE_SEP = "\x1f"


def _stripped(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null("").str.strip_chars()


def _encode(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == MESSAGES:
        # one concat_str, not `+`: each `+` writes a new string (a third of the id's cost at 1M rows)
        role = pl.element().struct.field("role").fill_null("")
        msg = pl.concat_str([role, pl.lit(_ROLE_SEP), _stripped(pl.element().struct.field("content"))])
        return col.list.eval(msg).list.join(_MSG_SEP).fill_null("")
    if dtype == pl.Boolean():
        return col.cast(pl.String).fill_null("")
    return _stripped(col)


def canonical_expr(kind: Kind) -> pl.Expr:
    """The identity content of each row as one string (stripped, before Unicode normalization)."""
    schema = content_schema(kind)
    parts = [pl.lit(kind.value)] + [_encode(c, schema[c]) for c in IDENTITY_COLUMNS[kind]]
    return pl.concat_str(parts, separator=_FIELD_SEP).alias("__canonical")


def _below_u0300(texts: pl.Series) -> np.ndarray:
    """Per value: True when every code point is below U+0300 (no UTF-8 byte is 0xCC or above)."""
    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    ok = np.ones(len(arr), bool)
    if data_buf is not None:
        high = np.flatnonzero(np.frombuffer(data_buf, np.uint8) >= 0xCC)
        ok[np.searchsorted(offsets, high, side="right") - 1] = False
    return ok


def nfc(texts: pl.Series) -> pl.Series:
    """NFC-normalize a string Series, touching only values NFC can change.

    Normalization is the costliest step of hashing, so only values with a code point at or above
    U+0300 are normalized: below it (ASCII, Latin-1, Latin Extended) every character is a starter
    that is its own normal form, so NFC leaves such text as it is. Separators are control
    characters, which never compose, so normalizing the joined string equals joining the
    normalized parts.
    """
    non_ascii = texts.str.len_bytes() != texts.str.len_chars()
    if not non_ascii.any():
        return texts
    idx = non_ascii.arg_true()
    sub = texts.gather(idx)
    may_change = ~_below_u0300(sub)
    if not may_change.any():
        return texts
    idx, sub = idx.filter(may_change), sub.filter(may_change)
    return texts.scatter(idx, sub.str.normalize("NFC"))


def id_series(df: pl.DataFrame, kind: Kind) -> pl.Series:
    """The ``id`` of every row of ``df`` (a frame holding ``kind``'s identity columns)."""
    canonical = nfc(df.select(canonical_expr(kind)).to_series())
    # polars' own hash() is not stable across versions; polars-hash's SHA-256 is.
    return canonical.to_frame().select(pl.first().chash.sha2_256().str.slice(0, ID_HEX_CHARS).alias("id")).to_series()


def with_ids(df: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """Return ``df`` with an ``id`` column (replacing any existing one) computed from its content."""
    return df.with_columns(id_series(df, kind))
