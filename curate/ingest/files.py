"""Finding input files, fingerprinting them, and opening them with transparent decompression.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a.jsonl").write_text("{}\\n")
    3
    >>> [f.format for f in discover([str(d / "*.jsonl")], "auto", d)]
    ['jsonl']
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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


class InputError(ValueError):
    """An input that cannot be read at all (missing, unknown format): the run stops with exit 2."""


@dataclass(frozen=True)
class InputFile:
    """One input to read: a file, or a ``datasets.save_to_disk`` directory (``format == "hf_disk"``)."""

    path: Path
    format: str
    compression: str

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri()

    @property
    def size(self) -> int:
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return self.path.stat().st_size


def is_hf_disk(path: Path) -> bool:
    """True for a directory written by ``datasets.Dataset(Dict).save_to_disk``."""
    return path.is_dir() and any((path / m).exists() for m in HF_DISK_MARKERS)


def _compression(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    if path.suffix.lower() in COMPRESSIONS:
        return COMPRESSIONS[path.suffix.lower()]
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def _format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    if is_hf_disk(path):
        return "hf_disk"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]]
    raise InputError(
        f"{path}: cannot tell the format from the extension; set `format:` on the source "
        f"(one of jsonl, json, parquet, csv, text, hf_disk)"
    )


def _expand(pattern: str, base: Path) -> list[Path]:
    p = Path(pattern).expanduser()
    if not p.is_absolute():
        p = base / p
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(m) for m in glob.glob(str(p), recursive=True))
    if p.is_dir() and not is_hf_disk(p):
        return sorted(c for c in p.rglob("*") if c.is_file() and not c.name.startswith("."))
    return [p] if p.exists() else []


def discover(patterns: list[str], fmt: str, base: Path, compression: str = "auto") -> list[InputFile]:
    """Expand paths/globs/directories (relative to ``base``) into input files, sorted and unique.

    Raises:
        InputError: a pattern matches nothing, or a file's format cannot be determined.
    """
    found: dict[Path, InputFile] = {}
    for pattern in patterns:
        matches = _expand(pattern, base)
        if not matches:
            raise InputError(f"{pattern}: no input matches this path (looked in {base})")
        for m in matches:
            if m.is_dir() and not is_hf_disk(m):
                continue
            f = _format(m, fmt)
            found[m] = InputFile(m, f, "none" if f == "hf_disk" else _compression(m, compression))
    return [found[k] for k in sorted(found)]


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and bytes, in sorted order)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with p.open("rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


class CountingReader(io.RawIOBase):
    """Wraps a binary file and counts the (compressed) bytes read, for progress reporting."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.bytes_read = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        self.bytes_read += n or 0
        return n or 0


@contextmanager
def open_binary(f: InputFile) -> Iterator[tuple[IO[bytes], CountingReader]]:
    """Open ``f`` for binary reading with decompression; also yields the byte counter."""
    with f.path.open("rb", buffering=0) as raw:
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
