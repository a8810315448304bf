"""Prompts (and any candidates they already carry) from curated records of ``feedback.input_kind``.

- ``sft``: the conversation up to its last user turn is the prompt; an assistant reply after it is
  the record's own response (a candidate for ``critique_revise``, which revises it);
- ``alpaca``: ``instruction`` and ``input`` (joined by a blank line) are the user turn, ``output``
  the record's own response;
- ``text``: the text is the user turn;
- ``preference``: ``prompt`` is the prompt, ``chosen`` and ``rejected`` are candidates to re-judge.

A record without a user turn (an sft conversation of only system/assistant messages, an empty
text) cannot be a prompt: it is returned with ``reason`` set, to be quarantined with its source.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> df = pl.DataFrame({"id": ["r1"], "instruction": ["Add 2 and 2."], "input": [""], "output": ["4"],
    ...     "source": [{"name": "s", "uri": "f.jsonl", "sha256": "x", "row": 1}]})
    >>> p = prompts_of(df, Kind.ALPACA)[0]
    >>> p.messages, p.responses, p.reason
    ((('user', 'Add 2 and 2.'),), ('4',), None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from curate.models.backend import Messages
from schemas.kinds import Kind


@dataclass(frozen=True)
class Prompt:
    """One prompt for feedback: the input record's id and source, its messages and own responses."""

    record_id: str
    source: dict[str, Any]
    messages: Messages
    responses: tuple[str, ...] = ()
    reason: str | None = None


def _conv(msgs: list[dict[str, Any]] | None) -> Messages:
    return tuple((m["role"], m["content"] or "") for m in msgs or [])


def _assistant_text(msgs: list[dict[str, Any]] | None) -> str:
    return "\n\n".join(m["content"] or "" for m in msgs or [] if m["role"] == "assistant")


def _from_sft(r: dict[str, Any]) -> tuple[Messages, tuple[str, ...], str | None]:
    conv = _conv(r["messages"])
    users = [i for i, (role, _) in enumerate(conv) if role == "user"]
    if not users:
        return (), (), "no_user_turn"
    last = users[-1]
    reply = "\n\n".join(t for role, t in conv[last + 1 :] if role == "assistant")
    return conv[: last + 1], ((reply,) if reply.strip() else ()), None


def _from_alpaca(r: dict[str, Any]) -> tuple[Messages, tuple[str, ...], str | None]:
    text = "\n\n".join(t for t in (r["instruction"] or "", r["input"] or "") if t.strip())
    if not text.strip():
        return (), (), "empty_prompt"
    out = r["output"] or ""
    return (("user", text),), ((out,) if out.strip() else ()), None


def _from_text(r: dict[str, Any]) -> tuple[Messages, tuple[str, ...], str | None]:
    text = r["text"] or ""
    return ((("user", text),), (), None) if text.strip() else ((), (), "empty_prompt")


def _from_preference(r: dict[str, Any]) -> tuple[Messages, tuple[str, ...], str | None]:
    conv = _conv(r["prompt"])
    if not any(role == "user" for role, _ in conv):
        return (), (), "no_user_turn"
    return conv, (_assistant_text(r["chosen"]), _assistant_text(r["rejected"])), None


_READERS = {Kind.SFT: _from_sft, Kind.ALPACA: _from_alpaca, Kind.TEXT: _from_text, Kind.PREFERENCE: _from_preference}


def prompts_of(df: pl.DataFrame, kind: Kind) -> list[Prompt]:
    """One :class:`Prompt` per row of ``df`` (records of ``kind``), in row order."""
    read = _READERS.get(kind)
    if read is None:
        raise ValueError(f"feedback.input_kind {kind.value} carries no prompts; use sft, alpaca, text or preference")
    out = []
    for r in df.iter_rows(named=True):  # model calls, not this loop, bound the feedback step
        messages, responses, reason = read(r)
        out.append(Prompt(r["id"], r["source"], messages, responses, reason))
    return out
