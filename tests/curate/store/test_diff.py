from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.store import RefError, Store
from curate.store.diff import diff
from schemas.kinds import MESSAGES


def _sft(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(prompt, answer, split) -> sft records; the id stands in for a content hash of prompt + answer."""
    return pl.DataFrame(
        {
            "id": [f"{p}|{a}" for p, a, _ in rows],
            "messages": [[{"role": "user", "content": p}, {"role": "assistant", "content": a}] for p, a, _ in rows],
            "split": [s for *_, s in rows],
        },
        schema={"id": pl.String, "messages": MESSAGES, "split": pl.String},
    )


V1 = [(f"Question {i}?", f"answer {i}", "eval" if i % 3 == 0 else "train") for i in range(10)] + [
    ("shared prompt", "x", "train"),
    ("shared prompt", "y", "train"),
]


def _v2() -> list[tuple[str, str, str]]:
    rows = [r for r in V1 if r[0] not in ("Question 0?", "Question 1?")]  # removed: q0, q1
    edits = {"Question 2?": ("Question 2?", "better answer 2"), "Question 3?": ("Question 3?", "better answer 3")}
    edits["Question 4?"] = ("question 4", "answer 4")  # only case/punctuation of the prompt: same normalized key
    out = []
    for p, a, s in rows:
        if p in edits:
            p, a = edits[p]
        if p == "Question 9?":
            s = "train"  # unchanged row that moved split (was eval)
        out.append((p, a, s))
    out = [r for r in out if r[0] != "shared prompt"] + [("shared prompt", "z", "train")]  # two old rows -> one
    return [*out, *[(f"New question {i}", f"new answer {i}", "train") for i in range(3)]]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path)
    st.publish("chat", _sft(V1), {"kind": "sft"})
    st.publish("chat", _sft(_v2()), {"kind": "sft"})
    return st


def test_counts_and_ids(store: Store) -> None:
    d = diff(store, "chat@1", "chat@2", examples=10)
    assert (d["a"], d["b"], d["kind"], d["key"]) == ("chat@1", "chat@2", "sft", ["prompt"])
    c = d["counts"]
    assert c == {"unchanged": 5, "added": 3, "removed": 2, "changed": 4, "changed_old": 5, "moved_split": 1}
    assert d["rows"] == {"a": 12, "b": 12}
    assert d["rows"]["a"] == c["unchanged"] + c["removed"] + c["changed_old"]
    assert d["rows"]["b"] == c["unchanged"] + c["added"] + c["changed"]
    ex = d["examples"]
    assert {e["id"] for e in ex["removed"]} == {"Question 0?|answer 0", "Question 1?|answer 1"}
    assert {e["id"] for e in ex["added"]} == {f"New question {i}|new answer {i}" for i in range(3)}
    assert {(e["old_id"], e["new_id"]) for e in ex["changed"]} == {
        ("Question 2?|answer 2", "Question 2?|better answer 2"),
        ("Question 3?|answer 3", "Question 3?|better answer 3"),
        ("Question 4?|answer 4", "question 4|answer 4"),
        ("shared prompt|x", "shared prompt|z"),
    }
    q2 = next(e for e in ex["changed"] if e["new_id"].startswith("Question 2?"))
    assert (q2["old_response"], q2["new_response"], q2["key"]) == ("answer 2", "better answer 2", "Question 2?")
    shared = next(e for e in ex["changed"] if e["key"] == "shared prompt")
    assert (shared["old_rows"], shared["new_rows"]) == (2, 1)
    assert ex["moved_split"] == [
        {"id": "Question 9?|answer 9", "from_split": "eval", "split": "train", "key": "Question 9?"}
    ]


def test_per_split(store: Store) -> None:
    d = diff(store, "chat@1", "chat@2")
    per = d["per_split"]
    assert set(per) == {"train", "eval"}
    # eval in v1: q0, q3, q6, q9; q0 removed (old split), q3 changed, q6 unchanged, q9 moved to train
    assert per["eval"] == {
        "unchanged": 1,
        "added": 0,
        "removed": 1,
        "changed": 1,
        "changed_old": 1,
        "moved_split": 0,
    }
    assert per["train"]["added"] == 3 and per["train"]["moved_split"] == 1 and per["train"]["unchanged"] == 4
    for cat, n in d["counts"].items():
        assert sum(s[cat] for s in per.values()) == n


def test_examples_limit_and_identical_versions(store: Store) -> None:
    d = diff(store, "chat@1", "chat@2", examples=1)
    assert all(len(v) <= 1 for v in d["examples"].values()) and len(d["examples"]["added"]) == 1
    same = diff(store, "chat@2", "chat@latest")
    assert same["counts"] == {
        "unchanged": 12,
        "added": 0,
        "removed": 0,
        "changed": 0,
        "changed_old": 0,
        "moved_split": 0,
    }


def test_key_override(store: Store) -> None:
    d = diff(store, "chat@1", "chat@2", key=["conversation"])  # answer edits change the conversation
    assert (d["counts"]["changed"], d["counts"]["added"], d["counts"]["removed"]) == (1, 6, 6)  # q4: case only
    by_response = diff(store, "chat@1", "chat@2", key=["response"])  # only q4 kept its answer
    assert [e["new_id"] for e in by_response["examples"]["changed"]] == ["question 4|answer 4"]


def test_text_records_and_errors(tmp_path: Path) -> None:
    st = Store(tmp_path)
    one = pl.DataFrame({"id": ["1", "2", "3"], "text": ["Hello world", "keep me", "drop me"], "split": ["train"] * 3})
    two = pl.DataFrame(
        {"id": ["1b", "2", "4"], "text": ["hello, WORLD!", "keep me", "brand new"], "split": ["train"] * 3}
    )
    st.publish("docs", one, {"kind": "text"})
    st.publish("docs", two, {"kind": "text"})
    d = diff(st, "docs@1", "docs@2")
    assert d["key"] == ["text"]
    assert (d["counts"]["changed"], d["counts"]["added"], d["counts"]["removed"]) == (1, 1, 1)
    assert d["examples"]["changed"][0]["new_response"] is None  # text records have no response field
    st.publish("chat", _sft(V1), {"kind": "sft"})
    with pytest.raises(RefError, match="cannot diff"):
        diff(st, "docs@1", "chat@1")
    with pytest.raises(RefError, match="no field nope"):
        diff(st, "chat@1", "chat@1", key=["nope"])
    with pytest.raises(RefError, match="no version 7"):
        diff(st, "chat@1", "chat@7")


def test_recorded_split_key_is_the_default(tmp_path: Path) -> None:
    st = Store(tmp_path)
    st.publish("chat", _sft(V1), {"kind": "sft"})
    st.publish("chat", _sft(_v2()), {"kind": "sft", "splits": {"key": ["response"]}})
    assert diff(st, "chat@1", "chat@2")["key"] == ["response"]
