"""The request cache: a rerun asks the model nothing; a killed run keeps what it had; failures retry."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from curate.feedback.cache import RequestCache, cached_complete
from curate.models.backend import Completion, Request
from curate.models.hf_backend import TransformersBackend


class Counting:
    """Wraps a real backend to count calls, and to fail (like a killed process) after ``die_after`` calls."""

    def __init__(self, inner: Any, die_after: int | None = None) -> None:
        self.inner, self.die_after, self.calls = inner, die_after, 0

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def complete(self, requests: list[Request]) -> list[Completion]:
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        return self.inner.complete(requests)


def _reqs(n: int) -> list[Request]:
    return [Request(messages=(("user", f"tell me about number {i}"),), max_new_tokens=4) for i in range(n)]


def test_warm_cache_makes_no_model_calls(tiny_lm: Path, tmp_path: Path) -> None:
    be = Counting(TransformersBackend.load(str(tiny_lm)))
    cache = RequestCache(tmp_path / "c.sqlite")
    cold, calls = cached_complete(be, _reqs(6), cache, chunk=4)
    assert calls == 6 and be.calls == 2 and len(cache) == 6
    warm, calls = cached_complete(be, _reqs(6), RequestCache(tmp_path / "c.sqlite"))
    assert calls == 0 and be.calls == 2
    assert [c.text for c in warm] == [c.text for c in cold] and all(c.cached for c in warm)


def test_a_killed_run_resumes_with_the_rest_only(tiny_lm: Path, tmp_path: Path) -> None:
    inner = TransformersBackend.load(str(tiny_lm))
    cache = RequestCache(tmp_path / "c.sqlite")
    with contextlib.suppress(KeyboardInterrupt):
        cached_complete(Counting(inner, die_after=1), _reqs(8), cache, chunk=3)
    assert len(cache) == 3  # the first chunk was committed before the "kill"
    again = Counting(inner)
    _, calls = cached_complete(again, _reqs(8), RequestCache(tmp_path / "c.sqlite"), chunk=3)
    assert calls == 5


def test_failures_are_not_cached(tmp_path: Path) -> None:
    class Failing:
        def identity(self) -> dict[str, Any]:
            return {"backend": "down"}

        def complete(self, requests: list[Request]) -> list[Completion]:
            return [Completion(error="HTTP 503: overloaded", attempts=5) for _ in requests]

    cache = RequestCache(tmp_path / "c.sqlite")
    out, calls = cached_complete(Failing(), _reqs(2), cache)  # type: ignore[arg-type]
    assert calls == 2 and not out[0].ok and out[0].attempts == 5 and len(cache) == 0


def test_the_key_covers_model_params_and_seed() -> None:
    r = _reqs(1)[0]
    ident = {"model": "x"}
    assert r.cache_key(ident) != r.cache_key({"model": "y"})
    sampled = Request(r.messages, 4, temperature=0.7, seed=1)
    assert sampled.cache_key(ident) != Request(r.messages, 4, temperature=0.7, seed=2).cache_key(ident)
    # greedy decoding ignores the seed
    assert Request(r.messages, 4, seed=1).cache_key(ident) == Request(r.messages, 4, seed=2).cache_key(ident)
