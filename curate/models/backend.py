"""The one interface every text generator implements, and the request/response types it speaks.

A :class:`Request` is a chat conversation plus decoding parameters; a backend answers a list of
them with one :class:`Completion` each, in order. A failure is a completion with ``error`` set (and
whatever raw text there was), never an exception that costs the other requests of the batch and
never a silent ``None``. ``choices`` asks the backend for the log-probability of each choice's first
token at the first generated position (a verdict such as ``A``/``B`` or a rating ``1``..``5``): the
in-process backend computes them exactly over the whole vocabulary; an OpenAI-compatible server
answers from its ``top_logprobs`` when it returns them, else ``choice_logprobs`` stays ``None``.

Example:
    >>> r = Request(messages=(("user", "Say hi"),), max_new_tokens=8, temperature=0.0)
    >>> r.cache_key({"model": "m"}) == r.cache_key({"model": "m"})
    True
    >>> Completion(text="", error="timeout").ok
    False
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Messages = tuple[tuple[str, str], ...]
"""A conversation as ``((role, content), ...)``: hashable, so requests can be cache keys."""


@dataclass(frozen=True)
class Request:
    """One generation request: the conversation and how to decode it."""

    messages: Messages
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    choices: tuple[str, ...] = ()

    def cache_key(self, identity: dict[str, Any]) -> str:
        """Content key of this request to the model ``identity`` (its weights or server, and revision)."""
        payload = {
            "model": identity,
            "messages": [list(m) for m in self.messages],
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p if self.temperature > 0 else 1.0,
            # greedy decoding ignores the seed: requests that differ only in it are one request
            "seed": self.seed if self.temperature > 0 else 0,
            "choices": list(self.choices),
        }
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Completion:
    """A backend's answer to one :class:`Request` (``error`` set when it failed after retries)."""

    text: str = ""
    finish_reason: str | None = None
    choice_logprobs: dict[str, float] | None = None
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "choice_logprobs": self.choice_logprobs,
            "error": self.error,
            "attempts": self.attempts,
            "usage": self.usage,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Completion:
        return cls(
            text=d["text"],
            finish_reason=d.get("finish_reason"),
            choice_logprobs=d.get("choice_logprobs"),
            error=d.get("error"),
            attempts=d.get("attempts", 1),
            cached=True,
            usage=d.get("usage") or {},
        )


class Backend(Protocol):
    """A text generator: in-process transformers or an OpenAI-compatible server."""

    def identity(self) -> dict[str, Any]:
        """What identifies the model (weights hash or server + model + revision), for caches and manifests."""
        ...

    def complete(self, requests: list[Request]) -> list[Completion]:
        """One completion per request, in order; failures are completions with ``error`` set."""
        ...

    def close(self) -> None:
        """Release the model or the connection pool."""
        ...
