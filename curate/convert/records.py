"""Records already in the contract, read back as they are: a published preference version's files.

``preference`` keeps ``prompt``/``chosen``/``rejected`` (conversations, or plain strings: a string
prompt becomes a user turn, a string answer an assistant turn) and the optional ``score_chosen``,
``score_rejected``, ``margin`` and ``judge``. With it, a recipe can read a published preference
version (``dataset: prefs@3``) to re-judge it with AI feedback, or re-curate it. Text, sft and
alpaca records read back with ``text``, ``openai_messages`` and ``alpaca``.

Example (recipe snippet):
    sources:
      - {name: prefs, dataset: prefs@3, convert: preference}
"""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import BaseModel

from curate.convert.messages import messages_series, normalize_turns
from curate.convert.registry import ROW, ConvertResult, InputField, converter
from schemas.kinds import JUDGE, Kind

_ROLES = {r: r for r in ("system", "user", "assistant", "tool")}


def _turns(values: list[Any], role: str, field: str) -> tuple[list[Any], list[str | None]]:
    """Conversations from lists of ``{role, content}`` or from plain strings (one ``role`` turn)."""
    wrapped = [[{"role": role, "content": v}] if isinstance(v, str) else v for v in values]
    return normalize_turns(wrapped, role_key="role", content_key="content", role_map=_ROLES, field=field)


@converter(
    "preference",
    input=None,
    output=Kind.PREFERENCE,
    summary="Preference records kept as preference ({prompt, chosen, rejected}: conversations or strings)",
    fields=(
        InputField("prompt", "list", doc="the conversation before the answers (or a string: one user turn)"),
        InputField("chosen", "list", doc="the preferred answer's turns (or a string: one assistant turn)"),
        InputField("rejected", "list", doc="the other answer's turns (or a string)"),
    ),
    example="dataset: prefs@3\nconvert: preference",
)
def preference(df: pl.DataFrame, _opts: BaseModel) -> ConvertResult:
    """``{"prompt": "2+2?", "chosen": "4", "rejected": "5"}`` -> a preference record."""
    cols: dict[str, pl.Series] = {}
    reasons: list[str | None] = [None] * df.height
    for name, role in (("prompt", "user"), ("chosen", "assistant"), ("rejected", "assistant")):
        msgs, why = _turns(df[name].to_list(), role, name)
        cols[name] = messages_series(name, msgs)
        reasons = [r or w for r, w in zip(reasons, why, strict=True)]
    extra = [pl.col(c).cast(pl.Float64) for c in ("score_chosen", "score_rejected", "margin") if c in df.columns]
    if "judge" in df.columns and df.schema["judge"] == JUDGE:
        extra.append(pl.col("judge"))
    out = df.select(ROW, *extra).with_columns(*cols.values(), pl.Series("__reason", reasons, pl.String))
    keep = ["prompt", "chosen", "rejected", *(e.meta.output_name() for e in extra)]
    return ConvertResult.split(out, pl.col("__reason"), keep)
