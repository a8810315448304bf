"""OpenAssistant (OASST) message trees -> preference pairs or SFT conversations.

A tree is the root message ``{message_id, text, role: prompter|assistant, replies: [...], rank,
deleted, ...}`` with its replies nested. Sibling replies carry a ``rank`` (0 = best, null or absent
when unranked). Trees are flattened once in Python (the only per-row Python here: walking nested
objects); paths, pairs and best replies are then computed with polars on one row per message.

Examples (recipe snippets):
    convert: oasst_to_preference          # ranked sibling assistant replies -> pairs
    convert: oasst_to_messages            # best-ranked path (or every leaf) -> conversations
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.convert.messages import single_turn
from curate.convert.preference import judge_expr, preference_frame
from curate.convert.registry import REJECT_SCHEMA, ROW, ConvertResult, InputField, converter
from schemas.kinds import MESSAGES, Kind

OASST_ROLES = {"prompter": "user", "assistant": "assistant"}

_FIELDS = (InputField("prompt", "dict", doc="the root message of one tree, replies nested under `replies`"),)

NODE_SCHEMA = pl.Schema(
    {
        ROW: pl.Int64(),
        "nid": pl.Int64(),
        "parent": pl.Int64(),
        "depth": pl.Int64(),
        "pos": pl.Int64(),
        "role": pl.String(),
        "text": pl.String(),
        "rank": pl.Float64(),
        "path": pl.List(pl.Int64()),
    }
)
"""One row per kept message: its tree (``__row``), a batch-wide id in depth-first order, its parent's id,
depth (root 0), position among its siblings, contract role, text, rank and the ids from the root to it."""


@dataclass
class _Columns:
    row: list[int] = field(default_factory=list)
    nid: list[int] = field(default_factory=list)
    parent: list[int | None] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    rank: list[float | None] = field(default_factory=list)
    path: list[list[int]] = field(default_factory=list)

    def truncate(self, n: int) -> None:
        for values in vars(self).values():
            del values[n:]


def _rank(value: Any) -> tuple[float | None, bool]:
    """``(rank, ok)``: a sibling rank as a float (None when unranked or NaN), and whether it was valid."""
    if value is None:
        return None, True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, False
    return (None if value != value else float(value)), True


def _role(value: Any) -> str | None:
    return OASST_ROLES.get(value) if isinstance(value, str) else None


def flatten_trees(
    rows: Sequence[int], trees: Sequence[Any], *, skip_deleted: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Flatten OASST trees into message rows (:data:`NODE_SCHEMA`) and rejected trees (``__row``, ``reason``).

    A tree with a malformed message (not an object, unknown role, non-text ``text``, non-numeric
    ``rank``, non-list ``replies``) is rejected whole. With ``skip_deleted``, deleted messages and
    their replies are left out.

    Example:
        >>> tree = {"text": "hi", "role": "prompter", "replies": [{"text": "yo", "role": "assistant", "rank": 0}]}
        >>> nodes, bad = flatten_trees([7], [tree], skip_deleted=True)
        >>> nodes.select("__row", "nid", "parent", "role", "path").rows()
        [(7, 0, None, 'user', [0]), (7, 1, 0, 'assistant', [0, 1])]
    """
    cols = _Columns()
    bad_rows: list[int] = []
    reasons: list[str] = []
    next_id = 0
    for row, tree in zip(rows, trees, strict=True):
        start, reason = len(cols.nid), None
        if not isinstance(tree, dict):
            reason = "wrong_type: prompt must be a message tree object"
        elif _role(tree.get("role")) != "user":
            reason = f"bad_tree: the root message has role {tree.get('role')!r}, not 'prompter'"
        elif skip_deleted and tree.get("deleted"):
            reason = "deleted: the root message is deleted"
        stack: list[tuple[Any, int | None, list[int], int, str]] = [] if reason else [(tree, None, [], 0, "prompt")]
        while stack:
            msg, parent, parent_path, pos, where = stack.pop()
            if not isinstance(msg, dict):
                reason = f"wrong_type: {where} is not an object"
                break
            role = _role(msg.get("role"))
            rank, rank_ok = _rank(msg.get("rank"))
            replies = msg.get("replies") or []
            if role is None:
                reason = f"bad_role: {where}.role={msg.get('role')!r} is not 'prompter' or 'assistant'"
            elif not isinstance(msg.get("text"), str):
                reason = f"wrong_type: {where}.text is missing or not text"
            elif not rank_ok:
                reason = f"wrong_type: {where}.rank={msg.get('rank')!r} is not a number"
            elif not isinstance(replies, list):
                reason = f"wrong_type: {where}.replies is not a list"
            if reason:
                break
            if skip_deleted and msg.get("deleted"):
                continue
            nid, next_id = next_id, next_id + 1
            path = [*parent_path, nid]
            cols.row.append(row)
            cols.nid.append(nid)
            cols.parent.append(parent)
            cols.depth.append(len(parent_path))
            cols.pos.append(pos)
            cols.role.append(role)
            cols.text.append(msg["text"])
            cols.rank.append(rank)
            cols.path.append(path)
            for i in reversed(range(len(replies))):
                stack.append((replies[i], nid, path, i, f"{where}.replies[{i}]"))
        if reason:
            cols.truncate(start)
            bad_rows.append(row)
            reasons.append(reason)
    nodes = pl.DataFrame(
        {
            ROW: cols.row,
            "nid": cols.nid,
            "parent": cols.parent,
            "depth": cols.depth,
            "pos": cols.pos,
            "role": cols.role,
            "text": cols.text,
            "rank": cols.rank,
            "path": cols.path,
        },
        schema=NODE_SCHEMA,
    )
    return nodes, pl.DataFrame({ROW: bad_rows, "reason": reasons}, schema=REJECT_SCHEMA)


def path_messages(nodes: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """For each ``nid`` in ``targets``, the conversation from the root to it: ``nid``, ``messages``."""
    steps = (
        targets.select("nid")
        .join(nodes.select("nid", "path"), on="nid")
        .explode("path")
        .with_columns(pl.int_range(pl.len()).over("nid").alias("step"))
        .join(nodes.select(pl.col("nid").alias("path"), "role", "text"), on="path")
    )
    msg = pl.struct(pl.col("role").alias("role"), pl.col("text").alias("content"))
    return (
        steps.sort("nid", "step")
        .group_by("nid", maintain_order=True)
        .agg(msg.alias("messages"))
        .with_columns(pl.col("messages").cast(MESSAGES))
    )


def _unused(df: pl.DataFrame, used: pl.Series, rejected: pl.DataFrame, reason: str) -> pl.DataFrame:
    """Input rows neither used nor already rejected, rejected with ``reason``."""
    left = df.select(ROW).filter(~pl.col(ROW).is_in(used.implode()) & ~pl.col(ROW).is_in(rejected[ROW].implode()))
    return pl.concat([rejected, left.with_columns(pl.lit(reason).alias("reason"))]).sort(ROW)


class OasstPairOptions(BaseModel):
    """``max_pairs_per_parent``: keep at most this many pairs per set of ranked siblings (None = all);
    pairs with the largest rank gap come first, so 1 gives best-vs-worst. ``skip_deleted``: leave out
    deleted messages and their replies."""

    model_config = ConfigDict(extra="forbid")
    max_pairs_per_parent: int | None = Field(default=None, ge=1)
    skip_deleted: bool = True


@converter(
    "oasst_to_preference",
    input=None,
    output=Kind.PREFERENCE,
    summary="OpenAssistant trees -> a pair per two ranked sibling assistant replies (lower rank = chosen)",
    fields=_FIELDS,
    options=OasstPairOptions,
    example="convert: oasst_to_preference\noptions: {max_pairs_per_parent: 1}",
)
def oasst_to_preference(df: pl.DataFrame, opts: OasstPairOptions) -> ConvertResult:
    """``{text: "Hi?", role: prompter, replies: [{text: "Hello!", role: assistant, rank: 0},
    {text: "Go away", role: assistant, rank: 1}]}`` ->
    ``{prompt: [{user: "Hi?"}], chosen: [{assistant: "Hello!"}], rejected: [{assistant: "Go away"}]}``."""
    nodes, rejected = flatten_trees(df[ROW].to_list(), df["prompt"].to_list(), skip_deleted=opts.skip_deleted)
    parents = nodes.select(pl.col("nid").alias("parent"), pl.col("role").alias("parent_role"))
    ranked = (
        nodes.filter((pl.col("role") == "assistant") & pl.col("rank").is_not_null())
        .join(parents, on="parent")
        .filter(pl.col("parent_role") == "user")
        .select(ROW, "parent", "nid", "pos", "rank", "text")
    )
    pairs = (
        ranked.join(ranked.drop(ROW), on="parent", suffix="_b")
        .filter(pl.col("rank") < pl.col("rank_b"))
        .sort(
            [ROW, "parent", (pl.col("rank_b") - pl.col("rank")), "rank", "pos", "pos_b"],
            descending=[False, False, True, False, False, False],
        )
    )
    if opts.max_pairs_per_parent is not None:
        pairs = pairs.filter(pl.int_range(pl.len()).over("parent") < opts.max_pairs_per_parent)
    prompts = path_messages(nodes, pairs.select(pl.col("parent").alias("nid")).unique())
    ok = pairs.join(prompts.rename({"nid": "parent", "messages": "prompt"}), on="parent", maintain_order="left").select(
        ROW,
        "prompt",
        single_turn("assistant", pl.col("text")).alias("chosen"),
        single_turn("assistant", pl.col("text_b")).alias("rejected"),
        judge_expr("human").alias("judge"),
    )
    rejected = _unused(df, ok[ROW], rejected, "no_pairs: tree has no ranked sibling replies")
    return ConvertResult(preference_frame(ok), rejected)


class OasstMessagesOptions(BaseModel):
    """``mode``: ``best_path`` follows the best-ranked reply at each step (unranked replies count as
    worst; ties go to the earlier reply) and gives one conversation per tree; ``all_leaves`` gives
    one conversation per root-to-leaf path, cut after its last assistant turn (a path that is a
    prefix of another is given once, in the longer one). ``skip_deleted``: leave out deleted
    messages and their replies."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["best_path", "all_leaves"] = "best_path"
    skip_deleted: bool = True


@converter(
    "oasst_to_messages",
    input=None,
    output=Kind.SFT,
    summary="OpenAssistant trees -> conversations along the best-ranked path (or every root-to-leaf path)",
    fields=_FIELDS,
    options=OasstMessagesOptions,
    example="convert: oasst_to_messages\noptions: {mode: all_leaves}",
)
def oasst_to_messages(df: pl.DataFrame, opts: OasstMessagesOptions) -> ConvertResult:
    """``{text: "Hi?", role: prompter, replies: [{text: "Go away", role: assistant, rank: 1},
    {text: "Hello!", role: assistant, rank: 0}]}`` -> ``[{user: "Hi?"}, {assistant: "Hello!"}]``
    (``all_leaves`` gives both conversations)."""
    nodes, rejected = flatten_trees(df[ROW].to_list(), df["prompt"].to_list(), skip_deleted=opts.skip_deleted)
    steps = nodes.select("nid", "role", "depth", pl.col("path").alias("anc")).explode("anc")
    if opts.mode == "best_path":
        # a message is on the best path when it and all its ancestors are their parent's best reply
        best_reply = ((pl.int_range(pl.len()).over("parent") == 0) | pl.col("parent").is_null()).alias("best_reply")
        ranked = nodes.sort("parent", "rank", "pos", nulls_last=True).select(pl.col("nid").alias("anc"), best_reply)
        on_best = steps.join(ranked, on="anc").group_by("nid").agg(pl.col("best_reply").all().alias("on_best"))
        targets = (
            nodes.join(on_best, on="nid")
            .filter(pl.col("on_best") & (pl.col("role") == "assistant"))
            .sort("depth", descending=True)
            .group_by(ROW, maintain_order=True)
            .agg(pl.col("nid").first())
        )
    else:
        has_later_assistant = (
            steps.filter((pl.col("role") == "assistant") & (pl.col("anc") != pl.col("nid")))
            .select(pl.col("anc").alias("nid"))
            .unique()
        )
        targets = nodes.filter(pl.col("role") == "assistant").join(has_later_assistant, on="nid", how="anti")
    targets = targets.select(ROW, "nid").sort("nid")
    ok = targets.join(path_messages(nodes, targets), on="nid", maintain_order="left").select(ROW, "messages")
    rejected = _unused(df, ok[ROW], rejected, "no_conversation: tree has no assistant reply")
    return ConvertResult(ok, rejected)
