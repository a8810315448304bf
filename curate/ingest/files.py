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

import gzip
import hashlib
import io
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
    if declared != "auto":
        return declared
    suffix = PurePosixPath(str(f.path)).suffix.lower()
    if suffix in COMPRESSIONS:
        return COMPRESSIONS[suffix]
    with f.open_raw() as raw:
        return _by_magic(raw.read(4))


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
    """SHA-256 of a file, or of a folder's files (relative names and bytes, in sorted order)."""
    f = f if isinstance(f, InputFile) else InputFile(f, "", "none")
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
    """Wraps a binary file and counts the (compressed) bytes read, for progress reporting."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.bytes_read = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if hasattr(self.raw, "readinto"):
            n = self.raw.readinto(b) or 0
        else:  # some fsspec file objects only offer read()
            data = self.raw.read(len(b))
            n = len(data)
            b[:n] = data
        self.bytes_read += n
        return n


@contextmanager
def open_binary(f: InputFile) -> Iterator[tuple[IO[bytes], CountingReader]]:
    """Open ``f`` for binary reading with decompression; also yields the byte counter."""
    with f.open_raw() as raw:
        counter = CountingReader(raw)
        buffered = io.BufferedReader(counter, buffer_size=1 << 20)
        if f.compression == "gzip":
            stream: IO[bytes] = gzip.GzipFile(fileobj=buffered)
        elif f.compression == "zstd":
            stream = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        else:
            stream = buffered
        try:
            yield stream, counter
        finally:
            stream.close()
