"""A folder that is either local or on object storage (``s3://``, ``gs://``, ``memory://``, any fsspec URL).

The store, the run folder and their copies go through :class:`Location`, so one code path serves a
local disk and a bucket. Local folders keep plain ``pathlib`` calls (the hot path stays what it was);
URLs go through fsspec (``s3fs`` for S3) and, for Delta tables, deltalake's own object-store client.

Credentials come only from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for S3-compatible servers such as MinIO)
or from ``storage_options`` whose secret values are ``${ENV}`` references, resolved here at the
moment of use and never stored. The URL string is kept exactly as given (no ``pathlib`` round trip,
which would turn ``s3://b/x`` into ``s3:/b/x``).

Example:
    >>> loc = Location("memory://demo-loc/store")
    >>> loc.remote, loc.join("chat", "table")
    (True, 'memory://demo-loc/store/chat/table')
    >>> loc.write_text("chat/manifests/v1.json", "{}"); loc.read_text("chat/manifests/v1.json")
    '{}'
    >>> Location("data/store").remote
    False
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Any

from schemas.recipe import is_url as recipe_is_url
from schemas.recipe import resolve_secrets

_S3_TO_DELTA = {
    "key": "aws_access_key_id",
    "secret": "aws_secret_access_key",
    "token": "aws_session_token",
    "endpoint_url": "aws_endpoint_url",
    "region_name": "aws_region",
    "region": "aws_region",
}
"""fsspec/s3fs option names -> the object-store (deltalake) names for the same setting."""


def is_url(path: str | Path) -> bool:
    """True for ``scheme://...`` (``file://`` included); ``Path`` objects are always local.

    Example:
        >>> is_url("s3://bucket/x"), is_url("data/store"), is_url(Path("s3:/b"))
        (True, False, False)
    """
    return isinstance(path, str) and recipe_is_url(path)


def delta_options(url: str, options: dict[str, str]) -> dict[str, str]:
    """Storage options for deltalake from fsspec-style ``options`` (already resolved) and the environment.

    deltalake reads ``AWS_*`` variables itself; what it does not take from the environment is
    plain HTTP to a custom endpoint (``AWS_ALLOW_HTTP``), which an ``http://`` endpoint needs.

    Example:
        >>> delta_options("s3://b/x", {"endpoint_url": "http://127.0.0.1:9000", "key": "k"})["aws_allow_http"]
        'true'
    """
    out: dict[str, str] = {}
    if not url.startswith(("s3://", "s3a://")):
        return dict(options)
    client = options.get("client_kwargs")
    flat = {**options, **(client if isinstance(client, dict) else {})}
    for k, v in flat.items():
        if k in _S3_TO_DELTA and isinstance(v, str):
            out[_S3_TO_DELTA[k]] = v
        elif k.lower().startswith("aws_") and isinstance(v, str):
            out[k.lower()] = v
    endpoint = (
        out.get("aws_endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    if endpoint and endpoint.startswith("http://"):
        out.setdefault("aws_allow_http", "true")
    return out


class Location:
    """A folder given as a local path or a URL; paths below it are ``/``-separated relative strings."""

    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None):
        self.remote = is_url(root) and not str(root).startswith("file://")
        if self.remote:
            self.url = str(root).rstrip("/")
            self.options = resolve_secrets(dict(storage_options or {}))
            self._fs: Any = None
            self.local: Path | None = None
        else:
            self.local = Path(str(root).removeprefix("file://"))
            self.url = str(self.local)
            self.options = {}

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def __str__(self) -> str:
        return self.url

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of a remote location (created on first use)."""
        assert self.remote, "local locations use pathlib"
        if self._fs is None:
            import fsspec

            options: dict[str, Any] = dict(self.options)
            # no listing cache: Delta commits land through deltalake's own client, not this filesystem
            options.setdefault("use_listings_cache", False)
            self._fs, _ = fsspec.core.url_to_fs(self.url, **options)
        return self._fs

    def join(self, *parts: str) -> str:
        """The path (local) or URL (remote) of ``parts`` below the root."""
        if self.local is not None:
            return str(self.local.joinpath(*parts))
        return "/".join([self.url, *[p.strip("/") for p in parts if p]])

    def child(self, *parts: str) -> Location:
        """A location below this one (same options)."""
        loc = Location.__new__(Location)
        loc.__dict__.update(self.__dict__)
        loc.local = None if self.local is None else self.local.joinpath(*parts)
        loc.url = self.join(*parts)
        return loc

    def delta_options(self) -> dict[str, str] | None:
        """Storage options for a Delta table under this location (None when local)."""
        return delta_options(self.url, self.options) if self.remote else None

    # ---------------------------------------------------------------- file operations

    def exists(self, rel: str = "") -> bool:
        if self.local is not None:
            return self.local.joinpath(rel).exists() if rel else self.local.exists()
        return bool(self.fs.exists(self.join(rel)))

    def is_file(self, rel: str = "") -> bool:
        if self.local is not None:
            return (self.local.joinpath(rel) if rel else self.local).is_file()
        return bool(self.fs.isfile(self.join(rel)))

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly below ``rel`` (empty when it does not exist)."""
        if self.local is not None:
            folder = self.local.joinpath(rel) if rel else self.local
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        try:
            entries = self.fs.ls(self.join(rel), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries})

    def read_text(self, rel: str) -> str:
        if self.local is not None:
            return self.local.joinpath(rel).read_text(encoding="utf-8")
        with self.fs.open(self.join(rel), "rb") as f:
            return f.read().decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        """Write a small file all at once: a temporary name renamed into place locally; one PUT
        (atomic on object stores: readers see the old object or the new one) remotely."""
        if self.local is not None:
            path = self.local.joinpath(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            return
        self.fs.pipe_file(self.join(rel), text.encode("utf-8"))

    def remove(self, rel: str) -> None:
        """Delete the file or folder ``rel`` (with everything below it); nothing when it does not exist."""
        if self.local is not None:
            path = self.local.joinpath(rel)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            return
        with suppress(FileNotFoundError):
            self.fs.rm(self.join(rel), recursive=True)

    def put_dir(self, folder: Path, rel: str, last: tuple[str, ...] = ()) -> None:
        """Copy local ``folder`` to ``rel`` (files named in ``last`` go last: what readers wait for)."""
        files = sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
        files.sort(key=lambda p: p.name in last)
        for p in files:
            dest = self.join(rel, p.relative_to(folder).as_posix())
            if self.local is not None:
                Path(dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
            else:
                self.fs.put_file(str(p), dest)
