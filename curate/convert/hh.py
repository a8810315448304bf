"""Anthropic HH-RLHF transcripts -> preference pairs.

An HH-RLHF row holds two whole transcripts, ``chosen`` and ``rejected``, written as
``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. They share their opening turns; the prompt is the longest
shared run of turns that ends on a Human turn, and each side's remaining turns are its completion.

Example (recipe snippet):
    convert: hh_rlhf_to_preference        # {chosen, rejected} transcripts -> {prompt, chosen, rejected}
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict

from curate.convert.preference import judge_expr, preference_frame
from curate.convert.registry import ROW, ConvertResult, InputField, converter
from schemas.kinds import MESSAGES, Kind

MARKER = r"\n\n(Human|Assistant):(?: |$)"
"""A turn marker: a blank line, the speaker, a colon and a space (or the end of the transcript)."""

_TURN = "\x1e"  # marks where a turn starts once the speaker markers are rewritten
_ROLE = "\x1f"  # separates the speaker from the content inside a turn
ROLE_MAP = {"Human": "user", "Assistant": "assistant"}
SPEAKER = {"user": "Human", "assistant": "Assistant"}


class HHOptions(BaseModel):
    """``strip``: strip whitespace around each turn's content (HH pads turns with spaces and newlines)."""

    model_config = ConfigDict(extra="forbid")
    strip: bool = True


def parse_transcript(text: pl.Expr, strip: bool = True) -> tuple[pl.Expr, pl.Expr]:
    """Parse HH transcripts into ``(messages, preamble)``.

    ``messages`` is a message list (``Human`` -> user, ``Assistant`` -> assistant); ``preamble`` is the
    text before the first marker (normally empty). A transcript without the leading blank line is read
    as if it had one. Text holding the control characters U+001E/U+001F must be rejected beforehand.
    """
    parts = ("\n\n" + text.str.strip_chars_start()).str.replace_all(MARKER, f"{_TURN}${{1}}{_ROLE}").str.split(_TURN)
    content = pl.field("content").str.strip_chars() if strip else pl.field("content")
    turn = (
        pl.element()
        .str.splitn(_ROLE, 2)
        .struct.rename_fields(["role", "content"])
        .struct.with_fields(pl.field("role").replace_strict(ROLE_MAP, default=None, return_dtype=pl.String), content)
    )
    return parts.list.slice(1).list.eval(turn).cast(MESSAGES), parts.list.first()


def render_transcript(messages: pl.Expr) -> pl.Expr:
    """The inverse of :func:`parse_transcript` for user/assistant lists: ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``."""
    turn = (
        "\n\n"
        + pl.element().struct.field("role").replace_strict(SPEAKER, return_dtype=pl.String)
        + ": "
        + pl.element().struct.field("content")
    )
    return messages.list.eval(turn).list.join("")


def _parse_reason(name: str, preamble: str) -> pl.Expr:
    col, parsed = pl.col(name), pl.col(f"__{name}")
    return (
        pl.when(col.is_null())
        .then(pl.lit(f"missing_field: {name} is null"))
        .when(col.str.contains(f"[{_TURN}{_ROLE}]"))
        .then(pl.lit(f"bad_transcript: {name} contains the reserved control characters U+001E/U+001F"))
        .when(parsed.list.len() == 0)
        .then(pl.lit(f"no_turns: {name} has no 'Human:' or 'Assistant:' turns"))
        .when(pl.col(preamble).str.strip_chars().str.len_chars() > 0)
        .then(pl.lit(f"bad_transcript: {name} has text before its first 'Human:' turn"))
    )


@converter(
    "hh_rlhf_to_preference",
    input=None,
    output=Kind.PREFERENCE,
    summary="Anthropic HH-RLHF {chosen, rejected} transcripts -> prompt (shared turns) + chosen/rejected turns",
    fields=(
        InputField("chosen", "str", doc='the preferred transcript, "\\n\\nHuman: ...\\n\\nAssistant: ..."'),
        InputField("rejected", "str", doc="the other transcript, sharing the opening turns"),
    ),
    options=HHOptions,
    example="convert: hh_rlhf_to_preference\noptions: {strip: true}",
)
def hh_rlhf_to_preference(df: pl.DataFrame, opts: HHOptions) -> ConvertResult:
    """``{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: hello", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: go"}`` ->
    ``{prompt: [{user: "hi"}], chosen: [{assistant: "hello"}], rejected: [{assistant: "go"}]}``."""
    c_msgs, c_pre = parse_transcript(pl.col("chosen"), opts.strip)
    r_msgs, r_pre = parse_transcript(pl.col("rejected"), opts.strip)
    wide = df.select(
        ROW,
        "chosen",
        "rejected",
        c_msgs.alias("__chosen"),
        c_pre.alias("__chosen_pre"),
        r_msgs.alias("__rejected"),
        r_pre.alias("__rejected_pre"),
    )
    wide = wide.with_columns(
        pl.coalesce(_parse_reason("chosen", "__chosen_pre"), _parse_reason("rejected", "__rejected_pre")).alias(
            "__reason"
        )
    )

    # Shared prefix, vectorized on one row per turn: the first index where the two sides differ.
    def turns(side: str) -> pl.DataFrame:
        return (
            wide.filter(pl.col("__reason").is_null())
            .select(ROW, pl.col(f"__{side}").alias("m"))
            .explode("m")
            .with_columns(pl.int_range(pl.len()).over(ROW).alias("i"))
        )

    long = turns("chosen").join(turns("rejected").rename({"m": "m_r"}), on=[ROW, "i"], how="left")
    differs = (pl.col("m") != pl.col("m_r")).fill_null(True)
    shared = long.with_columns(
        pl.when(differs).then(pl.col("i")).min().over(ROW).fill_null(pl.len().over(ROW)).alias("k")
    )
    prompt_end = shared.group_by(ROW).agg(
        pl.col("i").filter((pl.col("i") < pl.col("k")) & (pl.col("m").struct.field("role") == "user")).max().alias("p")
    )
    wide = wide.join(prompt_end, on=ROW, how="left", maintain_order="left")

    n = pl.col("p") + 1
    chosen, rejected = pl.col("__chosen").list.slice(n), pl.col("__rejected").list.slice(n)
    out = wide.with_columns(
        pl.col("__chosen").list.slice(0, n).alias("prompt"),
        chosen.alias("chosen"),
        rejected.alias("rejected"),
    )
    reason = pl.coalesce(
        pl.col("__reason"),
        pl.when(pl.col("p").is_null()).then(pl.lit("no_prompt: chosen and rejected share no opening Human turn")),
        *(
            pl.when(pl.col(side).list.len() == 0)
            .then(pl.lit(f"no_completion: {side} has no turns after the shared prompt"))
            .when(pl.col(side).list.first().struct.field("role") != "assistant")
            .then(pl.lit(f"bad_turns: {side} continues the shared prompt with a Human turn, not an Assistant turn"))
            for side in ("chosen", "rejected")
        ),
    )
    out = out.with_columns(judge_expr("dataset").alias("judge"))
    res = ConvertResult.split(out, reason, ["prompt", "chosen", "rejected", "judge"])
    return ConvertResult(preference_frame(res.ok), res.rejected)
