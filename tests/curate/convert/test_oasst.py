"""oasst_to_preference / oasst_to_messages: OpenAssistant message trees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from curate.convert import Converter, ConvertResult, get_converter
from curate.convert.oasst import flatten_trees
from schemas.kinds import Kind
from schemas.validate import check_rules

pairs_conv = get_converter("oasst_to_preference")
msgs_conv = get_converter("oasst_to_messages")


def node(role: str, text: str | None, rank: Any = None, replies: list[Any] | None = None, **kw: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"message_id": text, "role": role, "text": text, "replies": replies or [], **kw}
    if rank is not None:
        msg["rank"] = rank
    return msg


def p(text: str, rank: int | None = None, *replies: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return node("prompter", text, rank, list(replies), **kw)


def a(text: str, rank: int | None = None, *replies: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return node("assistant", text, rank, list(replies), **kw)


def u(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def b(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def run(h: Any, conv: Converter, trees: list[Any], **opts: Any) -> ConvertResult:
    df = h.frame(prompt=h.obj("prompt", trees))
    res = conv(df, opts)
    h.accounted(df, res, conv.output)
    return res


def pair_texts(res: ConvertResult) -> list[tuple[int, str, str]]:
    return [(r, c[0]["content"], j[0]["content"]) for r, c, j in res.ok.select("__row", "chosen", "rejected").rows()]


TREE = p(
    "Q1 🌍",
    None,
    a("A-best", 0, p("Q2 follow-up", 0, a("B-best", 0), a("B-worse", 1))),
    a("A-mid", 1),
    a("A-worst", 2, p("leaf question")),
)


def test_flatten_trees_depth_first() -> None:
    nodes, bad = flatten_trees([5], [TREE], skip_deleted=True)
    assert bad.height == 0
    assert nodes["text"].to_list() == [
        "Q1 🌍",
        "A-best",
        "Q2 follow-up",
        "B-best",
        "B-worse",
        "A-mid",
        "A-worst",
        "leaf question",
    ]
    assert nodes["role"].to_list()[:2] == ["user", "assistant"]
    assert nodes.filter(nodes["text"] == "B-worse")["path"].item().to_list() == [0, 1, 2, 4]
    assert nodes["__row"].unique().to_list() == [5]


def test_pairs_from_ranked_siblings(h) -> None:
    res = run(h, pairs_conv, [TREE])
    # largest rank gap first within a parent
    assert pair_texts(res) == [
        (0, "A-best", "A-worst"),
        (0, "A-best", "A-mid"),
        (0, "A-mid", "A-worst"),
        (0, "B-best", "B-worse"),
    ]
    prompts = res.ok["prompt"].to_list()
    assert prompts[0] == [u("Q1 🌍")]
    assert prompts[3] == [u("Q1 🌍"), b("A-best"), u("Q2 follow-up")]
    assert res.ok["judge"].to_list()[0] == {"kind": "human", "model": None, "annotators": None}
    assert check_rules(res.ok, Kind.PREFERENCE, max_chars=100_000).null_count() == 4


def test_max_pairs_per_parent_keeps_best_vs_worst(h) -> None:
    res = run(h, pairs_conv, [TREE], max_pairs_per_parent=1)
    assert pair_texts(res) == [(0, "A-best", "A-worst"), (0, "B-best", "B-worse")]
    with pytest.raises(ValidationError):
        pairs_conv(h.frame(prompt=h.obj("prompt", [TREE])), {"max_pairs_per_parent": 0})


def test_unranked_equal_and_partial_ranks(h) -> None:
    trees = [
        p("no ranks", None, a("x"), a("y")),
        p("equal ranks", None, a("x", 0), a("y", 0)),
        p("partial", None, a("x", 1), a("unranked"), a("z", 0)),
        p("single", None, a("only", 0)),
    ]
    res = run(h, pairs_conv, trees)
    assert pair_texts(res) == [(2, "z", "x")]
    assert dict(res.rejected.rows()) == {i: "no_pairs: tree has no ranked sibling replies" for i in (0, 1, 3)}


def test_deleted_replies(h) -> None:
    tree = p("q", None, a("good", 0), a("removed", 1, deleted=True), a("bad", 2))
    assert pair_texts(run(h, pairs_conv, [tree])) == [(0, "good", "bad")]
    kept = run(h, pairs_conv, [tree], skip_deleted=False)
    assert len(pair_texts(kept)) == 3
    deleted_root = run(h, pairs_conv, [p("q", None, a("x", 0), a("y", 1), deleted=True)])
    assert deleted_root.rejected["reason"].to_list() == ["deleted: the root message is deleted"]


def test_malformed_trees_are_rejected_whole(h) -> None:
    trees = [
        "not a tree",
        None,
        a("root is an assistant", None, a("x", 0), a("y", 1)),
        p("q", None, a("x", 0), {"role": "narrator", "text": "?"}),
        p("q", None, a("x", 0), a("y", "first")),  # type: ignore[arg-type]
        p("q", None, a("x", 0), node("assistant", None, 1)),  # type: ignore[arg-type]
        p("q", None, a("x", 0), ["not a message"]),  # type: ignore[arg-type]
        {**p("q"), "replies": "oops"},
        p("fine", None, a("x", 0), a("y", 1)),
    ]
    res = run(h, pairs_conv, trees)
    assert pair_texts(res) == [(8, "x", "y")]
    assert dict(res.rejected.rows()) == {
        0: "wrong_type: prompt must be a message tree object",
        1: "wrong_type: prompt must be a message tree object",
        2: "bad_tree: the root message has role 'assistant', not 'prompter'",
        3: "bad_role: prompt.replies[1].role='narrator' is not 'prompter' or 'assistant'",
        4: "wrong_type: prompt.replies[1].rank='first' is not a number",
        5: "wrong_type: prompt.replies[1].text is missing or not text",
        6: "wrong_type: prompt.replies[1] is not an object",
        7: "wrong_type: prompt.replies is not a list",
    }


def test_best_path_follows_best_ranks(h) -> None:
    res = run(h, msgs_conv, [TREE])
    assert res.ok["messages"].to_list() == [[u("Q1 🌍"), b("A-best"), u("Q2 follow-up"), b("B-best")]]
    assert check_rules(res.ok, Kind.SFT, max_chars=100_000).item() is None


def test_best_path_unranked_siblings_and_trailing_prompter(h) -> None:
    # unranked prompter replies: the first is followed; a path ending on a prompter is cut after the assistant
    tree = p(
        "q",
        None,
        a("a1", 1),
        a(
            "a0",
            0,
            p("first follow-up"),
            p("second", None, a("deep")),
        ),
    )
    res = run(h, msgs_conv, [tree])
    assert res.ok["messages"].to_list() == [[u("q"), b("a0")]]


def test_all_leaves(h) -> None:
    res = run(h, msgs_conv, [TREE], mode="all_leaves")
    assert res.ok["messages"].to_list() == [
        [u("Q1 🌍"), b("A-best"), u("Q2 follow-up"), b("B-best")],
        [u("Q1 🌍"), b("A-best"), u("Q2 follow-up"), b("B-worse")],
        [u("Q1 🌍"), b("A-mid")],
        [u("Q1 🌍"), b("A-worst")],  # its follow-up question has no answer: cut after the assistant turn
    ]
    assert check_rules(res.ok, Kind.SFT, max_chars=100_000).null_count() == 4


def test_tree_without_answers_is_rejected(h) -> None:
    for mode in ("best_path", "all_leaves"):
        res = run(h, msgs_conv, [p("lonely question"), TREE], mode=mode)
        assert res.rejected.rows() == [(0, "no_conversation: tree has no assistant reply")]
        assert set(res.ok["__row"].to_list()) == {1}


def _walk(msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield msg
    for r in msg.get("replies", []):
        yield from _walk(r)


@pytest.fixture
def oasst_trees(datasets) -> list[dict[str, Any]]:
    path = datasets / "oasst_en_100_tree.jsonl"
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.integration
def test_real_oasst_pairs(h, oasst_trees) -> None:
    res = run(h, pairs_conv, oasst_trees)
    expected = 0
    for tree in oasst_trees:
        for msg in _walk(tree):
            if msg["role"] != "prompter":
                continue
            ranks = [r["rank"] for r in msg["replies"] if r["role"] == "assistant" and r.get("rank") is not None]
            expected += sum(1 for x in ranks for y in ranks if x < y)
    assert res.ok.height == expected
    assert check_rules(res.ok, Kind.PREFERENCE, max_chars=100_000).null_count() == res.ok.height
    assert all(pr[-1]["role"] == "user" for pr in res.ok["prompt"].to_list())


@pytest.mark.integration
def test_real_oasst_messages(h, oasst_trees) -> None:
    best = run(h, msgs_conv, oasst_trees)
    assert best.ok["__row"].to_list() == list(range(len(oasst_trees)))  # one conversation per tree
    leaves = run(h, msgs_conv, oasst_trees, mode="all_leaves")
    # one conversation per assistant message with no assistant message below it
    expected = 0
    for tree in oasst_trees:
        for msg in _walk(tree):
            below = [m for r in msg["replies"] for m in _walk(r)]
            expected += msg["role"] == "assistant" and not any(m["role"] == "assistant" for m in below)
    assert leaves.ok.height == expected
    for res in (best, leaves):
        assert check_rules(res.ok, Kind.SFT, max_chars=100_000).null_count() == res.ok.height
