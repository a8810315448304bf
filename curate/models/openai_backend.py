"""Any OpenAI-compatible server (vLLM, llama.cpp, TGI, Ollama, OpenAI) through the official client.

Requests run ``concurrency`` at a time on threads. A 429, a 5xx, a timeout or a dropped connection
is retried with exponential backoff and jitter (honouring ``Retry-After``) up to ``max_retries``
times; other errors (400, 401, 404) fail at once. A request that still fails becomes a completion
with ``error`` and the last raw response text: the caller quarantines it. The API key is read from
the environment reference at connection time and is never stored, logged or put in an identity.

Log-probabilities: with ``choices`` the request asks for ``logprobs`` and ``top_logprobs=20`` and
reads each choice's log-probability at the first position (tokens compared without surrounding
spaces); a server that ignores ``logprobs`` leaves ``choice_logprobs`` as ``None``.

Example:
    >>> # be = OpenAIBackend(EndpointSpec(base_url="http://127.0.0.1:8000/v1", model="smol"))
    >>> # be.complete([Request((("user", "Hi"),), max_new_tokens=8)])[0].text
"""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from curate.models.backend import Completion, Request
from schemas.feedback import EndpointSpec
from schemas.recipe import resolve_secrets

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIBackend:
    """An OpenAI-compatible endpoint; ``complete`` sends requests concurrently with retries."""

    def __init__(self, spec: EndpointSpec, backoff_s: float = 0.5) -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - the package is a project dependency
            raise RuntimeError("the endpoint backend needs the openai package: pip install openai") from None
        self.spec = spec
        self.backoff_s = backoff_s
        key = resolve_secrets({"api_key": spec.api_key})["api_key"] if spec.api_key else "not-needed"
        # the client's own retries are off: ours count attempts and keep the raw text of failures
        self.client = openai.OpenAI(base_url=spec.base_url, api_key=key, timeout=spec.timeout_s, max_retries=0)
        self._openai = openai
        self._local = threading.local()

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "base_url": self.spec.base_url,
            "model": self.spec.model,
            "revision": self.spec.revision,
            "chat": self.spec.chat,
        }

    def complete(self, requests: list[Request]) -> list[Completion]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.spec.concurrency, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def _one(self, r: Request) -> Completion:
        last = ""
        for attempt in range(1, self.spec.max_retries + 2):
            try:
                c = self._send(r)
                c.attempts = attempt
                return c
            except self._openai.APIStatusError as e:
                last = f"HTTP {e.status_code}: {_body(e)}"
                if e.status_code not in RETRY_STATUS:
                    return Completion(error=last, attempts=attempt)
                wait = _retry_after(e) or self.backoff_s * 2 ** (attempt - 1)
            except (self._openai.APITimeoutError, self._openai.APIConnectionError) as e:
                last = f"{type(e).__name__}: {e}"
                wait = self.backoff_s * 2 ** (attempt - 1)
            except Exception as e:  # a malformed response body: not worth retrying
                return Completion(error=f"{type(e).__name__}: {e}", attempts=attempt)
            if attempt <= self.spec.max_retries:
                time.sleep(wait * (0.5 + random.random()))
        return Completion(error=f"failed after {self.spec.max_retries + 1} attempts: {last}", attempts=attempt)

    def _send(self, r: Request) -> Completion:
        params: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": r.max_new_tokens,
            "temperature": r.temperature,
            "top_p": r.top_p if r.temperature > 0 else 1.0,
        }
        if r.temperature > 0:
            params["seed"] = r.seed
        if r.choices:
            params["logprobs"] = True if self.spec.chat else 20
            if self.spec.chat:
                params["top_logprobs"] = 20
        if self.spec.chat:
            resp = self.client.chat.completions.create(
                messages=[{"role": role, "content": text} for role, text in r.messages], **params
            )
            choice = resp.choices[0]
            text = choice.message.content or ""
            lp = _chat_choice_logprobs(choice, r.choices) if r.choices else None
        else:
            prompt = "\n".join(f"{role}: {text}" for role, text in r.messages) + "\nassistant:"
            resp = self.client.completions.create(prompt=prompt, **params)
            choice = resp.choices[0]
            text = choice.text or ""
            lp = _completion_choice_logprobs(choice, r.choices) if r.choices else None
        usage = {}
        if resp.usage is not None:
            usage = {"prompt_tokens": resp.usage.prompt_tokens, "completion_tokens": resp.usage.completion_tokens}
        return Completion(text=text, finish_reason=choice.finish_reason, choice_logprobs=lp, usage=usage)

    def close(self) -> None:
        self.client.close()


def _pick(top: dict[str, float], choices: tuple[str, ...]) -> dict[str, float] | None:
    """Each choice's log-probability among the first position's alternatives (-inf when absent)."""
    if not top:
        return None
    out = {c: -math.inf for c in choices}
    for token, lp in top.items():
        t = token.strip()
        if t in out:
            out[t] = max(out[t], lp)
    return out if any(v > -math.inf for v in out.values()) else None


def _chat_choice_logprobs(choice: Any, choices: tuple[str, ...]) -> dict[str, float] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    first = content[0]
    top = {t.token: t.logprob for t in (first.top_logprobs or [])}
    top.setdefault(first.token, first.logprob)
    return _pick(top, choices)


def _completion_choice_logprobs(choice: Any, choices: tuple[str, ...]) -> dict[str, float] | None:
    lp = getattr(choice, "logprobs", None)
    tops = getattr(lp, "top_logprobs", None)
    if not tops or tops[0] is None:
        return None
    return _pick(dict(tops[0]), choices)


def _body(e: Any) -> str:
    try:
        return e.response.text[:2000]
    except Exception:
        return str(e)[:2000]


def _retry_after(e: Any) -> float | None:
    try:
        v = e.response.headers.get("retry-after")
        return min(float(v), 60.0) if v else None
    except (AttributeError, ValueError):
        return None
