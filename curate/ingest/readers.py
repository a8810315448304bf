"""Streaming readers: every format yields :class:`RawBatch` es of parsed records plus read errors.

A reader never raises for bad content. A line or record that cannot be read becomes an entry in
``errors`` with its row number and a reason, so the caller can quarantine it; rows are numbered
from 0 in file order (for line formats, row ``n`` is line ``n + 1``). Memory stays bounded by
``batch_rows`` records and ``max_line_bytes`` per line, whatever the file size.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_bytes(b'{"a": 1}\\nnot json\\n')
    >>> from curate.ingest.files import InputFile
    >>> [(b.rows, b.errors[0].reason) for b in read_batches(InputFile(p, "jsonl", "none"))]
    [([0], 'invalid_json')]
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from curate.ingest.files import Damage, InputFile, damage_of, open_binary

SNIPPET_CHARS = 1000


@dataclass(frozen=True)
class ReadError:
    """A row that could not be read: ``row`` (0-based), a reason code, detail text and raw snippet."""

    row: int
    reason: str
    detail: str
    raw: str = ""
    line_end: int | None = None
    """For a row read from several physical lines: the line after its last (lines ``row + 1`` to
    ``line_end`` hold it, 1-based); None for a row of one line."""


@dataclass
class RawBatch:
    """Parsed records with their row numbers, plus rows that failed to parse.

    A batch of clean JSON Lines read with ``columns`` (see :func:`read_batches`) may come in
    columnar form instead: ``table`` holds the requested keys of every line (``records`` is then
    empty) and ``raw`` the lines themselves (joined by newlines), for :meth:`parsed` and for
    quarantine snippets (:meth:`record`).
    """

    rows: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    bytes_read: int = 0
    table: pa.Table | None = None
    raw: bytes | None = None
    spans: dict[int, int] = field(default_factory=dict)
    """Rows read from several physical lines (a CSV field with quoted newlines): row -> the line after
    its last, as :attr:`ReadError.line_end` (lines ``row + 1`` to ``spans[row]`` hold it, 1-based)."""
    _lines: list[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.errors)

    def _raw_lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = self.raw.split(b"\n") if self.raw is not None else []
        return self._lines

    def parsed(self) -> RawBatch:
        """This batch with its records parsed one by one (itself when it already is)."""
        if self.table is None or self.raw is None:
            return self
        out = RawBatch(bytes_read=self.bytes_read, spans=self.spans)
        _parse_lines(self._raw_lines(), self.rows[0] if self.rows else 0, set(), True, 0, out)
        out.errors.extend(self.errors)
        return out

    def record(self, row: int) -> dict[str, Any] | None:
        """The parsed record of ``row``, or None (in columnar form its line is parsed now)."""
        if self.raw is not None:
            lines = self._raw_lines()
            i = row - self.rows[0] if self.rows else -1
            return orjson.loads(lines[i]) if 0 <= i < len(lines) else None
        return next((r for n, r in zip(self.rows, self.records, strict=True) if n == row), None)


def snippet(raw: bytes | str) -> str:
    """A printable excerpt of a raw value for the quarantine file."""
    text = raw.decode("utf-8", errors="backslashreplace") if isinstance(raw, bytes) else raw
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"


def iter_line_blocks(
    stream: IO[bytes], max_line_bytes: int, chunk: int = 1 << 23
) -> Iterator[tuple[list[bytes], set[int]]]:
    """Yield blocks of lines ``(lines, too_long)``, ``too_long`` holding indices of over-long lines.

    Every newline-terminated line (and a final unterminated one) appears once, in order. An
    over-long line appears as its first ``max_line_bytes`` bytes; the rest of it is skipped
    without being held in memory.
    """
    for run in _line_runs(stream, max_line_bytes, chunk, split=True):
        yield run.split(), run.too_long


def iter_lines(stream: IO[bytes], max_line_bytes: int, chunk: int = 1 << 23) -> Iterator[tuple[bytes, bool]]:
    """Line by line view of :func:`iter_line_blocks`: ``(line, too_long)``."""
    for lines, too_long in iter_line_blocks(stream, max_line_bytes, chunk):
        for i, line in enumerate(lines):
            yield line, i in too_long


@dataclass
class _Run:
    """``n`` consecutive lines of a file: raw (``data``, the lines joined by newlines, with ``nl``
    where those newlines are) or split (``lines``, with the indices of ``too_long`` ones).

    ``tail`` marks the file's last line when no newline ends it (on a cut-short file, the part of
    a line before the break).
    """

    n: int
    data: memoryview | None = None
    nl: np.ndarray | None = None
    lines: list[bytes] | None = None
    too_long: set[int] = field(default_factory=set)
    tail: bool = False
    longest: int | None = None
    """Bytes of the longest raw line, an upper bound (None: not measured)."""

    def split(self) -> list[bytes]:
        if self.lines is not None:
            return self.lines
        assert self.data is not None
        return bytes(self.data).split(b"\n")

    def cut(self, k: int) -> tuple[_Run, _Run]:
        """The first ``k`` lines and the rest."""
        if k >= self.n:
            return self, _Run(0, lines=[])
        if self.lines is not None:
            head = _Run(k, lines=self.lines[:k], too_long={i for i in self.too_long if i < k})
            rest = _Run(self.n - k, lines=self.lines[k:], too_long={i - k for i in self.too_long if i >= k})
            rest.tail = self.tail
            return head, rest
        assert self.data is not None and self.nl is not None
        at = int(self.nl[k - 1])
        head = _Run(k, data=self.data[:at], nl=self.nl[: k - 1], longest=self.longest)
        return head, _Run(self.n - k, data=self.data[at + 1 :], nl=self.nl[k:] - (at + 1), longest=self.longest)


def _line_runs(stream: IO[bytes], max_line_bytes: int, chunk: int = 1 << 23, split: bool = False) -> Iterator[_Run]:
    """The lines of ``stream`` as runs: raw where no line is too long (``split=False``), else split.

    Newlines are found with numpy, so a clean block is never cut into a Python object per line
    (the columnar read parses the bytes as they are). Every block's longest line is checked (a
    vectorized ``diff`` of newline positions), so the limit holds whatever the block size: an
    over-long line comes as its first ``max_line_bytes`` bytes, flagged in ``too_long``, and the
    rest of it is skipped without being held in memory.
    """
    pending = b""
    skipping = False
    while True:
        block = stream.read(chunk)
        if not block:
            break
        if skipping:
            at = block.find(b"\n")
            if at < 0:
                continue
            block, skipping = block[at + 1 :], False
        buf = pending + block if pending else block
        nl = np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)
        n = len(nl)
        data = memoryview(buf)[: int(nl[-1])] if n else memoryview(b"")
        pending = buf[int(nl[-1]) + 1 :] if n else buf
        longest = int((np.diff(nl, prepend=-1) - 1).max()) if n else 0
        long_line = longest > max_line_bytes
        if long_line or len(pending) > max_line_bytes or (split and n):
            lines = bytes(data).split(b"\n") if n else []
            too_long: set[int] = set()
            if long_line:
                too_long = {i for i, line in enumerate(lines) if len(line) > max_line_bytes}
            if len(pending) > max_line_bytes:
                too_long.add(len(lines))
                lines.append(pending)
                pending, skipping = b"", True
            for i in too_long:
                lines[i] = lines[i][:max_line_bytes]
            if lines:
                yield _Run(len(lines), lines=lines, too_long=too_long)
        elif n:
            yield _Run(n, data=data, nl=nl[:-1], longest=longest)
    if pending and not skipping:
        yield _Run(
            1, lines=[pending[:max_line_bytes]], too_long={0} if len(pending) > max_line_bytes else set(), tail=True
        )


def _decode_json_line(line: bytes) -> tuple[Any, ReadError | None]:
    try:
        return orjson.loads(line), None
    except orjson.JSONDecodeError as e:
        msg = str(e)
        if "depth limit" in msg.lower() or "recursion" in msg.lower():
            detail = f"JSON nests deeper than {MAX_JSON_DEPTH} levels ({msg})"
            return None, ReadError(-1, "too_deep", detail, snippet(line[:200]))
        if "utf-8" in msg.lower() or "surrogate" in msg.lower():
            return None, ReadError(-1, "invalid_utf8", f"line is not valid UTF-8 ({msg})", snippet(line))
        return None, ReadError(-1, "invalid_json", f"line is not valid JSON ({msg})", snippet(line))


def _parse_line(line: bytes, row: int, too_long: bool, parse_json: bool, max_line_bytes: int, out: RawBatch) -> None:
    """Careful path: classify one line into a record or a read error."""
    if too_long:
        detail = f"line is longer than limits.max_line_bytes={max_line_bytes}"
        out.errors.append(ReadError(row, "too_long", detail, snippet(line[:200])))
    elif not line.strip():
        out.errors.append(ReadError(row, "empty_row", "blank line", ""))
    elif parse_json:
        rec, err = _decode_json_line(line)
        if err is not None:
            out.errors.append(ReadError(row, err.reason, err.detail, err.raw))
        elif type(rec) is not dict:
            detail = f"expected a JSON object, got {type(rec).__name__}"
            out.errors.append(ReadError(row, "not_an_object", detail, snippet(line)))
        else:
            out.rows.append(row)
            out.records.append(rec)
    else:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            out.errors.append(ReadError(row, "invalid_utf8", f"line is not valid UTF-8 ({e})", snippet(line)))
            return
        out.rows.append(row)
        out.records.append({"text": text.removesuffix("\r")})


def _parse_lines(
    lines: list[bytes], first_row: int, too_long: set[int], parse_json: bool, max_line_bytes: int, out: RawBatch
) -> None:
    """Parse a run of lines into ``out``. Clean runs take a fast path (C-level map, no per-line
    Python); a run with any defect is re-read line by line to classify each row."""
    if not too_long and all(map(bytes.strip, lines)):
        try:
            if parse_json:
                recs = list(map(orjson.loads, lines))
                clean = set(map(type, recs)) == {dict}
            else:
                recs = [{"text": t.removesuffix("\r")} for t in map(bytes.decode, lines)]
                clean = True
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            clean = False
        if clean:
            out.rows.extend(range(first_row, first_row + len(lines)))
            out.records.extend(recs)
            return
    for i, line in enumerate(lines):
        _parse_line(line, first_row + i, i in too_long, parse_json, max_line_bytes, out)


_BOM = b"\xef\xbb\xbf"
_MAX_BLOCK = 1 << 30
"""Bytes of a batch a columnar read takes at most (Arrow's block size is a 32-bit int)."""
MAX_JSON_DEPTH = 1024
"""Deepest nesting a JSON row may have (orjson's own limit); a deeper row is quarantined as
``too_deep``, whatever the reading path, so memory per row stays bounded by its bytes."""


def _may_be_too_deep(block: bytes, arr: np.ndarray) -> bool:
    """True if some line of ``block`` could nest deeper than :data:`MAX_JSON_DEPTH`.

    Such a line needs more opening brackets than the limit and as many closing ones, so only lines
    longer than twice the limit are counted (``bytes.count``, in C): never a false "no".
    """
    ends = np.append(np.flatnonzero(arr == 10), len(block))
    starts = np.concatenate(([0], ends[:-1] + 1))
    for i in np.flatnonzero(ends - starts > 2 * MAX_JSON_DEPTH):
        s, e = int(starts[i]), int(ends[i])
        if block.count(b"[", s, e) + block.count(b"{", s, e) > MAX_JSON_DEPTH:
            return True
    return False


def _has_non_finite(arr: np.ndarray) -> bool:
    """True if the bytes hold ``NaN`` or ``Infinity`` (literals Arrow accepts and JSON has not).

    Vectorized: the rare capitals ``N``/``I`` are found first, then the letters after them.
    """
    for word in (b"NaN", b"Infinity"):
        at = np.flatnonzero(arr[: len(arr) - len(word) + 1] == word[0])
        for k in range(1, len(word)):
            at = at[arr[at + k] == word[k]]
        if len(at):
            return True
    return False


def _check_utf8(block: bytes) -> None:
    """Raise ``pa.ArrowInvalid`` unless ``block`` is valid UTF-8.

    The block is wrapped as one Arrow string without a copy (``pa.array([block])`` copied it, which
    cost more than the check itself: 0.8 s per million rows against 0.03 s).
    """
    offsets = pa.py_buffer(np.array([0, len(block)], np.int64))
    pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(block)]).cast(pa.large_string())


def columnar_json(
    block: bytes, n_lines: int, columns: dict[str, pa.DataType], longest: int | None = None
) -> pa.Table | None:
    """The ``columns`` of ``n_lines`` JSON Lines (``block``, no over-long line) as one table, or None.

    Vectorized (Arrow's JSON reader, on one thread), and only where it provably reads what
    :func:`orjson.loads` line by line would: every line one JSON object, valid UTF-8, no ``NaN`` or
    infinity, no nesting orjson refuses, each requested key of the exact JSON type (a string is not
    coerced from a number; a key given twice is refused). Anything else returns None and the lines
    take the per-line path, which classifies every defect. ``longest``: the longest line's bytes
    when the caller knows it (lines too short to nest too deep skip that scan).
    """
    if not n_lines or block.startswith(_BOM) or len(block) >= _MAX_BLOCK:  # Arrow skips a leading BOM, orjson not
        return None
    # Arrow accepts NaN/Infinity literals (JSON has none) and would nest without bound: such lines go
    # the per-line way. Keys not asked for are only parsed (`ignore`): inferring their types is
    # quadratic in their depth (3,000 levels took 2 s, 30,000 levels gigabytes).
    arr = np.frombuffer(block, np.uint8)
    deep_possible = longest is None or longest > 2 * MAX_JSON_DEPTH
    if _has_non_finite(arr) or (deep_possible and _may_be_too_deep(block, arr)):
        return None
    try:
        _check_utf8(block)  # the whole block, unused keys too
        table = pa_json.read_json(
            pa.BufferReader(block),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=max(len(block) + 1, 1 << 20)),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema(list(columns.items())), unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError):  # any refusal: the per-line path says what is wrong
        return None
    if table.num_rows != n_lines:  # a blank line (Arrow skips it) or two objects on one line
        return None
    for name in table.column_names:
        if table.schema.field(name).type != columns[name]:
            return None
    return table.select(list(columns))


def _line_batches(
    f: InputFile,
    batch_rows: int,
    max_line_bytes: int,
    parse_json: bool,
    columns: dict[str, pa.DataType] | None = None,
) -> Iterator[RawBatch]:
    with open_binary(f) as (stream, counter):
        batch, last, row = RawBatch(), 0, 0  # row: number of lines consumed so far
        pending: list[tuple[_Run, int]] = []  # the batch's runs of lines and their first rows, parsed when it is full
        held = 0  # lines in pending

        def fill(batch: RawBatch) -> RawBatch:
            nonlocal held
            if columns is not None and pending and all(r.data is not None for r, _ in pending):
                block = b"\n".join(r.data for r, _ in pending if r.data is not None)
                longest = max((r.longest for r, _ in pending if r.longest is not None), default=None)
                known = all(r.longest is not None for r, _ in pending)
                table = columnar_json(block, held, columns, longest if known else None)
                if table is not None:
                    first = pending[0][1]
                    batch.rows.extend(range(first, first + held))
                    batch.table, batch.raw = table, block
                    pending.clear()
                    held = 0
                    return batch
            for r, first in pending:
                _parse_lines(r.split(), first, r.too_long, parse_json, max_line_bytes, batch)
            pending.clear()
            held = 0
            return batch

        runs = _line_runs(stream, max_line_bytes, split=columns is None)
        damage = None
        run = _Run(0, lines=[])
        try:
            for run in runs:
                if run.tail and (damage := damage_of(stream)) is not None:
                    break  # the part of a line before the break: quarantined below, with the damage
                while run.n:
                    head, run = run.cut(batch_rows - held)
                    pending.append((head, row))
                    row += head.n
                    held += head.n
                    if held >= batch_rows:
                        batch = fill(batch)
                        batch.bytes_read, last = counter.bytes_read - last, counter.bytes_read
                        yield batch
                        batch = RawBatch()
        except (OSError, EOFError, ValueError) as e:  # an unreadable stream: the rest is lost, said where
            batch = fill(batch)
            batch.errors.append(
                ReadError(row, "corrupt_file", f"the rest of the file could not be read from line {row + 1} ({e})")
            )
        batch = fill(batch)
        damage = damage or damage_of(stream)
        if damage is not None:
            batch.errors.append(_damage_error(damage, row, run.split()[0] if run.tail and run.n else b""))
        if batch.size:
            batch.bytes_read = counter.bytes_read - last
            yield batch


def _damage_error(damage: Damage, row: int, tail: bytes) -> ReadError:
    """The read error for a cut-short or damaged compressed file: at ``row`` (the first line not
    read whole), naming the line and the compressed offset; ``tail`` is what was left of that line."""
    detail = (
        f"{damage.detail}; every complete line before line {row + 1} was read, the rest of the file "
        f"is lost from about compressed byte {damage.offset}"
    )
    return ReadError(row, damage.reason, detail, snippet(tail[:200]))


def _json_array_batches(f: InputFile, batch_rows: int, max_line_bytes: int) -> Iterator[RawBatch]:
    with open_binary(f) as (stream, counter):
        head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
        if head.lstrip()[:1] == b"{":  # one object, or JSON Lines saved with a .json name
            first = stream.readline(max_line_bytes + 1)
            try:
                obj = orjson.loads(first)
            except orjson.JSONDecodeError:  # a pretty-printed (or broken) single object
                yield from _single_object(f, max_line_bytes)
                return
            if stream.read(1 << 16).strip():  # more content after a complete first line
                yield from _line_batches(f, batch_rows, max_line_bytes, parse_json=True)
            else:
                yield RawBatch(rows=[0], records=[obj], bytes_read=counter.bytes_read)
            return
        batch, last, done = RawBatch(), 0, 0
        items = _array_items(f, stream)
        try:
            for row, item in enumerate(items):
                done = row + 1
                if item is _TOO_DEEP:
                    detail = f"array item nests deeper than {MAX_JSON_DEPTH} levels"
                    batch.errors.append(ReadError(row, "too_deep", detail))
                elif type(item) is dict:
                    batch.rows.append(row)
                    batch.records.append(item)
                else:
                    try:
                        raw, reason = snippet(orjson.dumps(item, default=str)), "not_an_object"
                        detail = f"expected a JSON object, got {type(item).__name__}"
                    except orjson.JSONEncodeError:  # nested past orjson's limit: only this item is lost
                        raw, reason = "", "too_deep"
                        detail = f"array item nests deeper than {MAX_JSON_DEPTH} levels"
                    batch.errors.append(ReadError(row, reason, detail, raw))
                if batch.size >= batch_rows:
                    batch.bytes_read, last = counter.bytes_read - last, counter.bytes_read
                    yield batch
                    batch = RawBatch()
        except Exception as e:  # ijson raises its own error types; all mean "the rest is unreadable"
            reason = "invalid_utf8" if "utf-8" in str(e).lower() else "invalid_json"
            batch.errors.append(
                ReadError(
                    done, reason, f"JSON array broken after {done} items; the rest of the file is unreadable ({e})"
                )
            )
        if batch.size:
            batch.bytes_read = counter.bytes_read - last
            yield batch


_TOO_DEEP = object()
"""Stands for an array item nested deeper than the limit (see :func:`_bounded_items`)."""


_GUARD_READ = 16_384


class _Deep(Exception):
    """The bracket balance read so far passed the nesting limit."""


class _DepthGuard:
    """A read-only view of a stream that raises :class:`_Deep` once brackets opened minus brackets
    closed (counted with ``bytes.count``, in C) exceed ``limit``: nesting is at most that deep."""

    def __init__(self, stream: IO[bytes], limit: int):
        self.stream, self.limit, self.balance = stream, limit, 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        opens = data.count(b"[") + data.count(b"{")
        self.balance = max(0, self.balance + opens - data.count(b"]") - data.count(b"}"))
        # depth within a chunk is at most its opening brackets, and across chunks at most the
        # balance; only when one passes the limit can the nesting be too deep (then the careful path)
        if opens > self.limit or (self.balance > self.limit and opens > 0):
            raise _Deep
        return data


def _array_items(f: InputFile, stream: IO[bytes]) -> Iterator[Any]:
    """The items of the JSON array in ``stream``: ijson's fast builder while nesting stays under the
    limit, else (ijson's builder is quadratic in depth: 20,000 levels took 1 GB) the file is read
    again with :func:`_bounded_items`, which cuts the deep items out, skipping those already given."""
    import ijson

    given = 0
    try:
        # small reads keep the within-chunk bound (opening brackets per read) meaningful
        guarded = _DepthGuard(stream, MAX_JSON_DEPTH)
        for item in ijson.items(guarded, "item", use_float=True, buf_size=_GUARD_READ):
            given += 1
            yield item
        return
    except _Deep:
        pass
    with open_binary(f) as (again, _):
        for i, item in enumerate(_bounded_items(again, MAX_JSON_DEPTH)):
            if i >= given:
                yield item


def _bounded_items(stream: IO[bytes], limit: int) -> Iterator[Any]:
    """The items of a top-level JSON array, built from parse events (linear in depth); an item
    nesting deeper than ``limit`` is skipped and given as ``_TOO_DEEP``."""
    import ijson

    events = ijson.basic_parse(stream, use_float=True)
    first = next(events, (None, None))[0]
    if first != "start_array":
        raise ValueError(f"the file is not a JSON array (it starts with {first})")
    stack: list[list[Any]] = []  # [container, pending key] per open level
    skip = 0
    for ev, val in events:
        if skip:
            skip += 1 if ev in ("start_map", "start_array") else -1 if ev in ("end_map", "end_array") else 0
            if not skip:
                yield _TOO_DEEP
            continue
        if ev == "map_key":
            stack[-1][1] = val
            continue
        if ev in ("start_map", "start_array"):
            if len(stack) >= limit:
                skip, stack = len(stack) + 1, []
                continue
            stack.append([{} if ev == "start_map" else [], None])
            continue
        if ev in ("end_map", "end_array"):
            if not stack:  # the end of the top-level array
                return
            val = stack.pop()[0]
        if not stack:
            yield val
        elif type(stack[-1][0]) is dict:
            stack[-1][0][stack[-1][1]] = val
        else:
            stack[-1][0].append(val)


def _single_object(f: InputFile, max_bytes: int) -> Iterator[RawBatch]:
    """A file holding one JSON object (possibly pretty-printed over many lines): one row."""
    with open_binary(f) as (stream, counter):
        data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            detail = f"a single JSON object longer than limits.max_line_bytes={max_bytes}"
            yield RawBatch(errors=[ReadError(0, "too_long", detail)], bytes_read=f.size)
            return
        rec, err = _decode_json_line(data)
        if err is not None:
            yield RawBatch(errors=[ReadError(0, err.reason, err.detail, err.raw)], bytes_read=counter.bytes_read)
        else:
            yield RawBatch(rows=[0], records=[rec], bytes_read=counter.bytes_read)


def _has_surrogates(values: list[str]) -> bool:
    try:
        for v in values:
            v.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _Runaway(Exception):
    """A CSV record that cannot be right: it runs into an over-long line or past the byte limit."""


class _LineFeed:
    """Physical lines of a CSV file, decoded, for :mod:`csv` to pull one by one.

    Keeps the lines of the record being read so that a record found to be wrong (a bare quote
    that swallowed later lines) can be given up and its lines re-read from the next one.
    ``pos`` is the index of the next line to hand out, ``start`` the first line of the current
    record.
    """

    def __init__(self, runs: Iterator[_Run], max_bytes: int, stream: IO[bytes]):
        self.runs, self.max_bytes, self.stream = runs, max_bytes, stream
        self.cut = b""  # the part of a line before the end of a cut-short file (not a line: not read)
        self.lines: list[bytes] = []
        self.too_long: set[int] = set()
        self.base = 0  # file line number of lines[0]
        self.pos = self.start = 0
        self.size = 0  # bytes of the current record so far
        self.exhausted = False

    def _more(self) -> bool:
        for run in self.runs:
            if not run.n:
                continue
            if run.tail and damage_of(self.stream) is not None:
                self.cut = run.split()[0]
                continue
            at = self.base + len(self.lines)
            self.too_long.update(at + i for i in run.too_long)
            self.lines.extend(run.split())
            return True
        return False

    def line(self, i: int) -> bytes | None:
        while i - self.base >= len(self.lines):
            if not self._more():
                return None
        return self.lines[i - self.base]

    def restart(self, at: int) -> None:
        """Continue with a new record at line ``at`` (drops lines before it)."""
        self.pos = self.start = at
        self.size = 0
        self.exhausted = False
        if at - self.base > 4096:
            del self.lines[: at - self.base]
            self.too_long = {i for i in self.too_long if i >= at}
            self.base = at

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self.line(self.pos)
        if line is None:
            self.exhausted = True
            raise StopIteration
        if self.pos in self.too_long:
            raise _Runaway(self.pos)
        self.size += len(line) + 1
        if self.size > self.max_bytes and self.pos > self.start:
            raise _Runaway(self.pos)
        self.pos += 1
        return line.decode("utf-8", "surrogateescape") + "\n"


def _csv_quote(f: InputFile, delimiter: str, quote: str | None) -> tuple[str, str | None]:
    """The delimiter and quote character to use: a ``.tsv`` name means tab; ``quote="auto"`` means
    ``"`` for CSV and no quoting for TSV (TSV files carry bare quotes in text, e.g. MRPC)."""
    if f.name.lower().removesuffix(".gz").removesuffix(".zst").endswith(".tsv") and delimiter == ",":
        delimiter = "\t"
    if quote == "auto":
        quote = None if delimiter == "\t" else '"'
    return delimiter, quote


def _csv_batches(
    f: InputFile, batch_rows: int, max_line_bytes: int, delimiter: str, quote: str | None, header: bool
) -> Iterator[RawBatch]:
    """CSV/TSV rows, numbered by the physical line they start on (row ``n`` is line ``n + 1``).

    Lines are found first (:func:`_line_runs`, so ``max_line_bytes`` holds per line and an
    over-long line costs only itself); records are then parsed from them. A quoted field may run
    over several lines, but a record that spans lines and is wrong (not the header's field count,
    still open at the end of the file, or longer than ``max_line_bytes``) is taken for a bare
    quote: its first line is quarantined as ``unterminated_quote`` and the lines after it are read
    again as rows, so one stray ``"`` never swallows the rows behind it. With ``quote`` None
    (the default for TSV) every line is one row.
    """
    delimiter, quote = _csv_quote(f, delimiter, quote)
    csv.field_size_limit(max(max_line_bytes, 1 << 20) * 2)  # the byte limit is enforced per line and record here
    # strict: a closing quote must end its field (`"a"b` is an error, so the row is re-read, not guessed)
    opts: dict[str, Any] = {"delimiter": delimiter, "strict": True}
    if quote is None:
        opts["quoting"] = csv.QUOTE_NONE
    else:
        opts["quotechar"] = quote
    with open_binary(f) as (stream, counter):
        feed = _LineFeed(_line_runs(stream, max_line_bytes, split=True), max_line_bytes, stream)
        batch, last = RawBatch(), 0
        width: list[int] = []  # the header's field count, once known
        names: list[str] | None = None
        bad_header: str | None = None
        try:
            for first, end, values, err in _csv_records(feed, opts, max_line_bytes, width):
                span = end if end - first > 1 else None
                if header and names is None and bad_header is None:
                    if err is not None or not values or _has_surrogates(values):
                        why = err.reason if err is not None else ("blank" if not values else "invalid_utf8")
                        bad_header = f"the header row (line {first + 1}) is unreadable ({why}); no row can be named"
                        batch.errors.append(ReadError(first, "invalid_header", bad_header, err.raw if err else ""))
                    else:
                        names = values
                        width.append(len(names))
                elif err is not None:
                    batch.errors.append(err)
                elif bad_header is not None:
                    batch.errors.append(ReadError(first, "invalid_header", bad_header, "", line_end=span))
                elif not values or all(not v.strip() for v in values):
                    batch.errors.append(ReadError(first, "empty_row", "blank CSV row", line_end=span))
                else:
                    if names is None:
                        names = [f"column_{i}" for i in range(len(values))]
                        width.append(len(names))
                    if len(values) != len(names):
                        detail = f"row has {len(values)} fields, the header has {len(names)}"
                        raw = snippet(delimiter.join(values).encode("utf-8", "surrogateescape"))
                        batch.errors.append(ReadError(first, "wrong_field_count", detail, raw, line_end=span))
                    elif _has_surrogates(values):
                        raw = snippet(delimiter.join(values).encode("utf-8", "surrogateescape"))
                        batch.errors.append(
                            ReadError(first, "invalid_utf8", "row is not valid UTF-8", raw, line_end=span)
                        )
                    else:
                        batch.rows.append(first)
                        batch.records.append(dict(zip(names, values, strict=True)))
                        if span is not None:
                            batch.spans[first] = span
                if batch.size >= batch_rows:
                    batch.bytes_read, last = counter.bytes_read - last, counter.bytes_read
                    yield batch
                    batch = RawBatch()
        except (OSError, EOFError, ValueError) as e:  # an unreadable stream: the rest is lost, said where
            detail = f"the rest of the file could not be read from line {feed.pos + 1} ({e})"
            batch.errors.append(ReadError(feed.pos, "corrupt_file", detail))
        damage = damage_of(stream)
        if damage is not None:
            batch.errors.append(_damage_error(damage, feed.pos, feed.cut))
        if batch.size:
            batch.bytes_read = counter.bytes_read - last
            yield batch


def _csv_records(
    feed: _LineFeed, opts: dict[str, Any], max_bytes: int, width: list[int]
) -> Iterator[tuple[int, int, list[str], ReadError | None]]:
    """``(first line, line after the last, values, error)`` of every record (lines 0-based).

    A record is given up (its first line quarantined, the next line read as a new record) when a
    quote is still open at the end of the file, when it runs into an over-long line or past
    ``max_bytes``, or when it spans lines and has not the header's field count (``width``).
    """
    while True:
        reader = csv.reader(feed, **opts)
        start = feed.start
        try:
            for values in reader:
                end = feed.pos  # lines start..end-1 made this record
                if feed.exhausted or (end - start > 1 and width and len(values) != width[0]):
                    raise _Runaway(end)
                yield start, end, values, None
                feed.start = start = end
                feed.size = 0
        except _Runaway as r:
            at = r.args[0]
            raw = snippet((feed.line(start) or b"")[:200])
            if at == start and start in feed.too_long:  # an over-long line on its own: only it is lost
                detail = f"line is longer than limits.max_line_bytes={max_bytes}"
                yield start, start + 1, [], ReadError(start, "too_long", detail, raw)
            else:
                detail = (
                    f"a quote opened on line {start + 1} is not closed where a row can end (the row would take "
                    f"lines {start + 1}-{max(at, start + 1)}); this line is quarantined and the lines after it "
                    f"are read as rows (set `csv: {{quote: none}}` if the file does not quote fields)"
                )
                yield start, start + 1, [], ReadError(start, "unterminated_quote", detail, raw)
            feed.restart(start + 1)
            continue
        except csv.Error as e:
            raw = snippet((feed.line(start) or b"")[:200])
            if feed.exhausted:  # a quote still open at the end of the file
                detail = (
                    f"a quote opened on line {start + 1} is never closed; this line is quarantined and the "
                    f"lines after it are read as rows (set `csv: {{quote: none}}` if the file does not quote fields)"
                )
                yield start, start + 1, [], ReadError(start, "unterminated_quote", detail, raw)
            else:
                yield start, start + 1, [], ReadError(start, "invalid_csv", f"row unreadable ({e})", raw)
            feed.restart(start + 1)
            continue
        return


def _parquet_batches(f: InputFile, batch_rows: int) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f.path if f.fs is None else f.open_raw())
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for non-parquet bytes
        yield RawBatch(errors=[ReadError(0, "corrupt_file", f"not a readable Parquet file ({e})")], bytes_read=f.size)
        return
    start = 0
    per_byte = f.size / max(pf.metadata.num_rows, 1)
    for rg in range(pf.num_row_groups):
        n = pf.metadata.row_group(rg).num_rows
        try:
            table = pf.read_row_group(rg)
            for off in range(0, n, batch_rows):
                part = table.slice(off, batch_rows)
                rows = list(range(start + off, start + off + part.num_rows))
                yield RawBatch(rows=rows, records=part.to_pylist(), bytes_read=int(part.num_rows * per_byte))
        except Exception as e:  # a damaged row group: its rows are quarantined, the others still read
            errors = [ReadError(start + i, "corrupt_file", f"row group {rg} unreadable ({e})") for i in range(n)]
            yield RawBatch(errors=errors, bytes_read=int(n * per_byte))
        start += n


def _text_file_batch(f: InputFile, max_bytes: int) -> Iterator[RawBatch]:
    with open_binary(f) as (stream, _counter):
        try:
            data = stream.read(max_bytes + 1)
        except (OSError, EOFError, ValueError) as e:
            yield RawBatch(errors=[ReadError(0, "corrupt_file", f"file unreadable ({e})")], bytes_read=f.size)
            return
    if len(data) > max_bytes:
        yield RawBatch(
            errors=[ReadError(0, "too_long", f"file is longer than limits.max_line_bytes={max_bytes}")],
            bytes_read=f.size,
        )
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        yield RawBatch(
            errors=[ReadError(0, "invalid_utf8", f"file is not valid UTF-8 ({e})", snippet(data))], bytes_read=f.size
        )
        return
    if not text.strip():
        yield RawBatch(errors=[ReadError(0, "empty_row", "file is empty")], bytes_read=f.size)
        return
    yield RawBatch(rows=[0], records=[{"text": text}], bytes_read=f.size)


def _hf_disk_batches(f: InputFile, batch_rows: int) -> Iterator[RawBatch]:
    from datasets import DatasetDict, load_from_disk

    try:
        if f.fs is None:
            ds = load_from_disk(str(f.path))
        else:
            ds = load_from_disk(f.uri, storage_options=f.fs.storage_options)
    except Exception as e:  # datasets raises several error types for damaged folders
        yield RawBatch(errors=[ReadError(0, "corrupt_file", f"not a readable save_to_disk folder ({e})")])
        return
    splits = [ds[s] for s in ds] if isinstance(ds, DatasetDict) else [ds]
    start = 0
    for split in splits:
        for chunk in split.iter(batch_size=batch_rows):
            cols = list(chunk)
            n = len(chunk[cols[0]]) if cols else 0
            records = [dict(zip(cols, vals, strict=True)) for vals in zip(*(chunk[c] for c in cols), strict=True)]
            yield RawBatch(rows=list(range(start, start + n)), records=records)
            start += n


def read_batches(
    f: InputFile,
    *,
    batch_rows: int = 50_000,
    max_line_bytes: int = 8_000_000,
    text_unit: str = "line",
    csv_delimiter: str = ",",
    csv_quote: str | None = "auto",
    csv_header: bool = True,
    columns: dict[str, pa.DataType] | None = None,
) -> Iterator[RawBatch]:
    """Stream ``f`` as batches of at most ``batch_rows`` rows (records + read errors).

    ``columns`` (JSON Lines only): the keys a caller needs and their Arrow types; a batch whose
    lines are all clean then comes in columnar form (:func:`columnar_json`, :class:`RawBatch`).
    """
    if f.format == "jsonl":
        yield from _line_batches(f, batch_rows, max_line_bytes, parse_json=True, columns=columns)
    elif f.format == "json":
        yield from _json_array_batches(f, batch_rows, max_line_bytes)
    elif f.format == "text":
        if text_unit == "file":
            yield from _text_file_batch(f, max_line_bytes)
        else:
            yield from _line_batches(f, batch_rows, max_line_bytes, parse_json=False)
    elif f.format == "csv":
        yield from _csv_batches(f, batch_rows, max_line_bytes, csv_delimiter, csv_quote, csv_header)
    elif f.format == "parquet":
        yield from _parquet_batches(f, batch_rows)
    elif f.format == "hf_disk":
        yield from _hf_disk_batches(f, batch_rows)
    else:
        raise ValueError(f"unknown format {f.format!r}")
