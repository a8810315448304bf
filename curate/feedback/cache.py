"""A crash-safe, content-addressed cache of model requests (SQLite, one row per request).

Keys are :meth:`curate.models.backend.Request.cache_key` values: model identity and revision,
decoding parameters, seed and the rendered conversation. Every batch of answers is committed as
soon as it returns (WAL journal), so a run killed midway keeps what it had paid for and the rerun
asks the model only for the rest. Failed completions are not cached: a rerun retries them. The
cache is shared by every recipe under one output folder (identical requests are one request) and
is safe for several threads and processes (SQLite's locking; each thread has its own connection).

Example:
    >>> import tempfile, pathlib
    >>> c = RequestCache(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite")
    >>> c.put({"k": Completion(text="hi")})
    >>> c.get(["k", "x"])["k"].text, c.hits, c.misses
    ('hi', 1, 1)
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from curate.models.backend import Backend, Completion, Request


class RequestCache:
    """``key -> Completion`` on disk; counts hits and misses of this process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._count = threading.Lock()
        self.hits = 0
        self.misses = 0
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def get(self, keys: list[str]) -> dict[str, Completion]:
        """The cached completions among ``keys``."""
        found: dict[str, Completion] = {}
        db = self._db()
        uniq = list(dict.fromkeys(keys))
        for lo in range(0, len(uniq), 500):
            chunk = uniq[lo : lo + 500]
            rows = db.execute(
                f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            found.update((k, Completion.from_json(orjson.loads(v))) for k, v in rows)
        with self._count:
            self.hits += len(found)
            self.misses += len(uniq) - len(found)
        return found

    def put(self, items: dict[str, Completion]) -> None:
        """Store successful completions (one transaction)."""
        rows = [(k, orjson.dumps(c.to_json())) for k, c in items.items() if c.ok]
        if rows:
            with self._db() as db:
                db.executemany("INSERT OR REPLACE INTO completions (key, value) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM completions").fetchone()[0])


def cached_complete(
    backend: Backend, requests: list[Request], cache: RequestCache | None, chunk: int = 64
) -> tuple[list[Completion], int]:
    """Answer ``requests`` from ``cache`` where it can and from ``backend`` for the rest.

    The misses go to the backend ``chunk`` at a time and each chunk is committed before the next
    is sent (what a killed run keeps). Returns the completions in order and the number of model calls.
    """
    if cache is None:
        return backend.complete(requests), len(requests)
    ident = backend.identity()
    keys = [r.cache_key(ident) for r in requests]
    found = cache.get(keys)
    todo = list(dict.fromkeys(k for k in keys if k not in found))
    first = {k: requests[i] for i, k in reversed(list(enumerate(keys)))}
    for lo in range(0, len(todo), chunk):
        part = todo[lo : lo + chunk]
        answers = backend.complete([first[k] for k in part])
        fresh = dict(zip(part, answers, strict=True))
        cache.put(fresh)
        found.update(fresh)
    return [found[k] for k in keys], len(todo)
