"""Finding input files, fingerprinting them, and opening them with transparent decompression.

Local paths are read directly; URLs (``s3://``, ``gs://``, ``memory://``, ...) go through fsspec
with the source's ``storage_options`` (secrets resolved from the environment at that moment only).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a.jsonl").write_text("{}\\n")
    3
    >>> [f.format for f in discover([str(d / "*.jsonl")], "auto", d)]
    ['jsonl']
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import zstandard

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "text",
    ".text": "text",
    ".md": "text",
}
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
HF_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GLOB_CHARS = "*?["


class InputError(ValueError):
    """An input that cannot be read at all (missing, unknown format): the run stops with exit 2."""


@dataclass(frozen=True)
class InputFile:
    """One input to read: a file, or a ``datasets.save_to_disk`` folder (``format == "hf_disk"``).

    ``fs`` is an fsspec filesystem for remote inputs (``path`` is then the filesystem's path);
    ``None`` means a local file.
    """

    path: Path | str
    format: str
    compression: str
    fs: Any = None
    limit: int | None = None
    """Read only the first ``limit`` raw bytes (the size recorded when the file was hashed), so a
    file that grows while it is read is ingested exactly as hashed; None reads to the end."""

    @property
    def name(self) -> str:
        return PurePosixPath(str(self.path)).name

    @property
    def uri(self) -> str:
        if self.fs is not None:
            return str(self.fs.unstrip_protocol(str(self.path)))
        return Path(self.path).resolve().as_uri()

    @property
    def size(self) -> int:
        if self.fs is not None:
            where = str(self.path)
            return int(self.fs.du(where)) if self.fs.isdir(where) else int(self.fs.size(where))
        p = Path(self.path)
        if p.is_dir():
            return sum(c.stat().st_size for c in p.rglob("*") if c.is_file())
        return p.stat().st_size

    def open_raw(self) -> IO[bytes]:
        """The raw (possibly compressed) bytes."""
        if self.fs is not None:
            return self.fs.open(str(self.path), "rb")
        return Path(self.path).open("rb", buffering=0)


def is_hf_disk(path: Path) -> bool:
    """True for a local folder written by ``datasets.Dataset(Dict).save_to_disk``."""
    return path.is_dir() and any((path / m).exists() for m in HF_DISK_MARKERS)


def _by_magic(head: bytes) -> str:
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def _compression(f: InputFile, declared: str) -> str:
    """The declared compression, else what the first bytes say (content over name: a ``.gz``
    file holding plain text is read as plain text)."""
    if declared != "auto":
        return declared
    with f.open_raw() as raw:
        head = raw.read(4)
    by_name = COMPRESSIONS.get(PurePosixPath(str(f.path)).suffix.lower(), "none")
    magic = {"gzip": _GZIP_MAGIC, "zstd": _ZSTD_MAGIC}.get(by_name, b"")
    if len(head) < len(magic) and magic.startswith(head) and head:  # cut inside its magic: damaged, not plain
        return by_name
    return _by_magic(head)


def _format(name: str, declared: str, hf_disk: bool) -> str:
    if declared != "auto":
        return declared
    if hf_disk:
        return "hf_disk"
    suffixes = [s.lower() for s in PurePosixPath(name).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]]
    raise InputError(
        f"{name}: cannot tell the format from the extension; set `format:` on the source "
        f"(one of jsonl, json, parquet, csv, text, hf_disk)"
    )


def _expand_local(pattern: str, base: Path) -> list[Path]:
    p = Path(pattern).expanduser()
    if not p.is_absolute():
        p = base / p
    if any(ch in pattern for ch in _GLOB_CHARS):
        import glob

        return sorted(Path(m) for m in glob.glob(str(p), recursive=True))
    if p.is_dir() and not is_hf_disk(p):
        return sorted(c for c in p.rglob("*") if c.is_file() and not c.name.startswith("."))
    return [p] if p.exists() else []


def _discover_remote(pattern: str, fmt: str, compression: str, storage_options: Mapping[str, str]) -> list[InputFile]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(pattern, **storage_options)
    if any(ch in path for ch in _GLOB_CHARS):
        paths = sorted(fs.glob(path))
    elif fs.isdir(path):
        if any(fs.exists(f"{path.rstrip('/')}/{m}") for m in HF_DISK_MARKERS):
            return [InputFile(path, "hf_disk", "none", fs)]
        paths = sorted(p for p in fs.find(path) if not PurePosixPath(p).name.startswith("."))
    else:
        paths = [path] if fs.exists(path) else []
    out = []
    for p in paths:
        f = InputFile(p, _format(p, fmt, False), "none", fs)
        out.append(InputFile(p, f.format, _compression(f, compression), fs))
    return out


def discover(
    patterns: list[str],
    fmt: str,
    base: Path,
    compression: str = "auto",
    storage_options: Mapping[str, str] | None = None,
) -> list[InputFile]:
    """Expand paths/globs/folders (relative to ``base``) and URLs into input files, sorted and unique.

    Raises:
        InputError: a pattern matches nothing, or a file's format cannot be determined.
    """
    found: dict[str, InputFile] = {}
    for pattern in patterns:
        if "://" in pattern:
            matches = _discover_remote(pattern, fmt, compression, storage_options or {})
        else:
            matches = []
            for m in _expand_local(pattern, base):
                if m.is_dir() and not is_hf_disk(m):
                    continue
                f = InputFile(m, _format(m.name, fmt, is_hf_disk(m)), "none")
                matches.append(f if f.format == "hf_disk" else InputFile(m, f.format, _compression(f, compression)))
        if not matches:
            where = "" if "://" in pattern else f" (looked in {base})"
            raise InputError(f"{pattern}: no input matches this path{where}")
        for f in matches:
            found[f.uri] = f
    return [found[k] for k in sorted(found)]


def sha256_of(f: InputFile | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes, in sorted order).

    A file with ``limit`` set is hashed over its first ``limit`` bytes only: the bytes a reader
    of the same :class:`InputFile` gets (see :func:`open_binary`).
    """
    f = f if isinstance(f, InputFile) else InputFile(f, "", "none")
    if f.limit is not None and not (f.fs is None and Path(f.path).is_dir()):
        h = hashlib.sha256()
        with f.open_raw() as fh:
            left = f.limit
            while left > 0 and (block := fh.read(min(chunk, left))):
                h.update(block)
                left -= len(block)
        return h.hexdigest()
    h = hashlib.sha256()
    if f.fs is not None:
        root = str(f.path)
        members = sorted(f.fs.find(root)) if f.fs.isdir(root) else [root]
        opener = f.fs.open
    else:
        local = Path(f.path)
        root = str(local)
        members = sorted(str(p) for p in local.rglob("*") if p.is_file()) if local.is_dir() else [root]
        opener = open
    for m in members:
        if m != root:
            h.update(str(PurePosixPath(m).relative_to(root)).encode() + b"\0")
        with opener(m, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


class CountingReader(io.RawIOBase):
    """Wraps a binary file, counts the (compressed) bytes read and stops after ``limit`` bytes.

    With ``hash_bytes`` it also keeps a SHA-256 of exactly the bytes handed out (``digest()``), so
    a caller can prove the bytes it ingested are the bytes it hashed earlier.
    """

    def __init__(self, raw: IO[bytes], limit: int | None = None, hash_bytes: bool = False):
        self.raw, self.bytes_read, self.limit = raw, 0, limit
        self._hash = hashlib.sha256() if hash_bytes else None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.limit is not None:
            room = self.limit - self.bytes_read
            if room <= 0:
                return 0
            if room < len(b):
                b = memoryview(b)[:room]
        if hasattr(self.raw, "readinto"):
            n = self.raw.readinto(b) or 0
        else:  # some fsspec file objects only offer read()
            data = self.raw.read(len(b))
            n = len(data)
            b[:n] = data
        if self._hash is not None and n:
            self._hash.update(memoryview(b)[:n])
        self.bytes_read += n
        return n

    def digest(self) -> str | None:
        return None if self._hash is None else self._hash.hexdigest()


class Damage:
    """Why a compressed stream stopped early: ``reason`` (``truncated_file`` or ``corrupt_file``),
    ``detail`` and ``offset`` (compressed bytes read when it was found)."""

    def __init__(self, reason: str, detail: str, offset: int):
        self.reason, self.detail, self.offset = reason, detail, offset


class Decompressed(io.RawIOBase):
    """gzip (multi-member) or zstd (multi-frame) decompression that never loses what it decoded.

    ``gzip.GzipFile`` raises on a truncated file and drops the data of the read that hit the
    break, and zstandard's stream reader ends a truncated frame silently. This stream instead hands
    out every byte it could decode, then reports end of data and sets :attr:`damage` (a
    :class:`Damage`) so the reader can quarantine the tail with its location.
    """

    def __init__(self, raw: IO[bytes], counter: CountingReader, compression: str, chunk: int = 1 << 18):
        self.raw, self.counter, self.compression, self.chunk = raw, counter, compression, chunk
        self.damage: Damage | None = None
        self._out = b""
        self._pos = 0
        self._eof = False
        self._dec: Any = None
        self._members = 0
        self._saved: Any = None
        self.decoded = 0

    def readable(self) -> bool:
        return True

    def _new(self) -> Any:
        self._members += 1
        if self.compression == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zstandard.ZstdDecompressor().decompressobj()

    def _stop(self, reason: str, detail: str) -> None:
        self._eof = True
        self.damage = Damage(reason, detail, self.counter.bytes_read)

    def _fill(self) -> None:
        """Decode more input into ``_out`` (or reach the end)."""
        while not self._eof and self._pos >= len(self._out):
            data = self.raw.read(self.chunk)
            if self._dec is None:
                if not data:
                    self._eof = True
                    if self._members == 0 and self.counter.bytes_read == 0:
                        return  # an empty file: no rows, no damage
                    return
                self._dec = self._new()
            if not data:  # input ended inside a member/frame
                self._stop(
                    "truncated_file",
                    f"the {self.compression} stream ends without its end marker after "
                    f"{self.counter.bytes_read} compressed bytes (the file is cut short)",
                )
                self._dec = None
                return
            pending = data
            out: list[bytes] = []
            while pending:
                self._saved = self._dec.copy() if self.compression == "gzip" else None
                try:
                    out.append(self._dec.decompress(pending))
                except (zlib.error, zstandard.ZstdError) as e:
                    out.append(self._salvage(pending))
                    self._out, self._pos = b"".join(out), 0
                    self.decoded += len(self._out)
                    self._stop("corrupt_file", f"{self.compression} data is damaged ({e})")
                    return
                if not self._dec.eof:
                    break
                pending = self._dec.unused_data
                self._dec = None
                if pending and not pending.strip(b"\0"):  # zero padding after the last member (gzip allows it)
                    pending = b""
                if pending:
                    self._dec = self._new()
            self._out, self._pos = b"".join(out), 0
            self.decoded += len(self._out)

    def _salvage(self, piece: bytes) -> bytes:
        """What ``piece`` decodes to up to the damage (a failed call returns nothing, so the
        decoder, copied before each try, is fed ever shorter prefixes: a binary search)."""
        if self.compression != "gzip" or self._saved is None:
            return b""
        lo, hi, best = 0, len(piece), b""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                best, lo = self._saved.copy().decompress(piece[:mid]), mid
            except zlib.error:
                hi = mid
        return best

    def readinto(self, b: Any) -> int:
        self._fill()
        n = min(len(b), len(self._out) - self._pos)
        if n <= 0:
            return 0
        b[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n


@contextmanager
def open_binary(f: InputFile, hash_bytes: bool = False) -> Iterator[tuple[IO[bytes], CountingReader]]:
    """Open ``f`` for binary reading with decompression; also yields the byte counter.

    A compressed stream is a :class:`Decompressed` wrapped in a buffer: after the last byte,
    ``damage_of(stream)`` says whether the file was cut short or damaged. Only the first
    ``f.limit`` raw bytes are read when it is set; ``hash_bytes`` hashes what is read (the
    counter's ``digest()``).
    """
    with f.open_raw() as raw:
        counter = CountingReader(raw, f.limit, hash_bytes)
        buffered = io.BufferedReader(counter, buffer_size=1 << 20)
        if f.compression in ("gzip", "zstd"):
            dec = Decompressed(buffered, counter, f.compression)
            stream: IO[bytes] = io.BufferedReader(dec, buffer_size=1 << 20)
            stream.damage_source = dec  # type: ignore[attr-defined]
        else:
            stream = buffered
        try:
            yield stream, counter
        finally:
            stream.close()


def damage_of(stream: IO[bytes]) -> Damage | None:
    """The :class:`Damage` a compressed stream from :func:`open_binary` found, or None."""
    dec = getattr(stream, "damage_source", None)
    return dec.damage if dec is not None else None
