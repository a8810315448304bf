"""Calibration runner: labelled pairs from every format, a real position-biased LM judge, an
order-consistent judge, the length baseline, failures, the min-agreement gate and the written report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest

from curate.feedback.calibration import (
    CalibrationDataError,
    CalibrationGateError,
    calibrate,
    check_min_agreement,
    load_labelled,
    write_calibration,
)
from curate.feedback.pairwise import PairwiseJudge
from curate.feedback.rating import RatingJudge
from curate.models.backend import Completion, Request
from curate.models.hf_backend import TransformersBackend
from curate.store import RefError, Store
from schemas.kinds import JUDGE, MESSAGES
from tests.curate.feedback.test_pairwise import RuleJudge

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"
ALPACA_EVAL = SHARED / "alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json"

_WORDS = ("the", "cat", "is", "big", "and", "the", "dog", "is", "small", "sky", "blue", "at", "night", "water", "cold")


def build_position_biased_model(folder: Path) -> Path:
    """A real tiny causal LM edited so the token ``A`` wins at every position, whatever the prompt.

    Every input embedding gets a large constant in dimension 0, so the residual stream (and the
    final RMSNorm's output) carries a large positive dimension 0 at every position; the LM head
    reads only that dimension, and only for ``A``. The judge therefore always names the response
    shown first: the purest position bias.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.tiny import build_tiny_model

    path = build_tiny_model(folder)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    a = tok.encode("A", add_special_tokens=False)[0]
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 100.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[a, 0] = 10.0
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def biased_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_position_biased_model(tmp_path_factory.mktemp("biased-lm"))


def preference_rows(n: int) -> list[dict[str, Any]]:
    """Plain-string preference rows; chosen and rejected differ in length (never equal)."""
    rows = []
    for i in range(n):
        words = [_WORDS[(i * 5 + j) % len(_WORDS)] for j in range(3 + i % 7)]
        rows.append(
            {
                "prompt": f"question {i}: what is {_WORDS[i % len(_WORDS)]}?",
                "chosen": " ".join(words),
                "rejected": " ".join(words[: 1 + i % 3]) + " no" * (i % 2) * 9,
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


@pytest.fixture
def pairs(tmp_path: Path) -> pl.DataFrame:
    return load_labelled(str(write_jsonl(tmp_path / "p.jsonl", preference_rows(12))), limit=12)


# ---------------------------------------------------------------- loaders


def test_plain_preference_jsonl_places_chosen_by_hash(tmp_path: Path) -> None:
    rows = preference_rows(40)
    df = load_labelled("p.jsonl", write_jsonl(tmp_path / "p.jsonl", rows).parent, limit=100)
    assert df.columns == ["prompt", "a", "b", "label", "swapped", "labeller", "origin"]
    assert df.height == 40 and df.schema["prompt"] == MESSAGES
    # the chosen response sits where the label says, and both positions occur
    chosen = {r["prompt"]: r["chosen"] for r in rows}
    for p, a, b, label in df.select("prompt", "a", "b", "label").iter_rows():
        assert (a, b)[label] == chosen[p[0]["content"]]
    assert df["label"].to_list() == df["swapped"].cast(pl.Int8).to_list()
    assert 0 < df["label"].sum() < 40
    assert set(df["labeller"]) == {"unknown"}


def test_order_is_seeded_and_limit_takes_the_first(tmp_path: Path) -> None:
    path = str(write_jsonl(tmp_path / "p.jsonl", preference_rows(30)))
    full = load_labelled(path, limit=30)
    assert load_labelled(path, limit=30).equals(full)
    assert load_labelled(path, limit=5).equals(full.head(5))
    other = load_labelled(path, limit=30, seed=1)
    assert other["a"].to_list() != full["a"].to_list()
    # a pair's placement belongs to the pair, not to the seed
    assert dict(zip(other["a"], other["label"], strict=True)) == dict(zip(full["a"], full["label"], strict=True))


def test_conversational_parquet_and_judge_kind(tmp_path: Path) -> None:
    rows = preference_rows(6)
    turn = lambda role, text: {"role": role, "content": text}  # noqa: E731
    df = pl.DataFrame(
        {
            "prompt": [[turn("system", "be brief"), turn("user", r["prompt"])] for r in rows],
            # TRL's implicit-prompt form: the response is the conversation's last message
            "chosen": [[turn("user", r["prompt"]), turn("assistant", r["chosen"])] for r in rows],
            "rejected": [[turn("assistant", r["rejected"])] for r in rows],
            "judge": [{"kind": "human", "model": None, "annotators": ["ann"]}] * 6,
        },
        schema={"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "judge": JUDGE},
    )  # fmt: skip
    df.write_parquet(tmp_path / "p.parquet")
    got = load_labelled("p.parquet", tmp_path)
    assert got.height == 6 and set(got["labeller"]) == {"human"}
    assert got["prompt"].list.len().to_list() == [2] * 6
    texts = {r["chosen"] for r in rows} | {r["rejected"] for r in rows}
    assert set(got["a"]) | set(got["b"]) == texts


def test_alpaca_eval_preference_codes(tmp_path: Path) -> None:
    prefs = [1, 2, 0, "2.0", 1.0, None, 1.5, "n/a"]
    rows = [
        {"instruction": f"task {i}", "output_1": f"first {i}", "output_2": f"second answer {i}", "preference": p}
        for i, p in enumerate(prefs)
    ]
    (tmp_path / "ann.json").write_bytes(orjson.dumps(rows))
    df = load_labelled(str(tmp_path / "ann.json"))
    # label in terms of output_1 (0) / output_2 (1), undoing the placement swap
    expected = {0: 0, 1: 1, 2: -1, 3: 1, 4: 0, 5: -1, 6: -1, 7: -1}
    for p, a, label, swapped in df.select("prompt", "a", "label", "swapped").iter_rows():
        i = int(p[0]["content"].split()[1])
        assert a == (f"second answer {i}" if swapped else f"first {i}")
        unswapped = label if label < 0 or not swapped else 1 - label
        assert unswapped == expected[i], i


def test_openassistant_best_vs_worst_sibling(tmp_path: Path) -> None:
    tree = {
        "message_tree_id": "t",
        "prompt": {
            "text": "hi?",
            "role": "prompter",
            "replies": [
                {"text": "middle", "role": "assistant", "rank": 1, "replies": []},
                {"text": "best", "role": "assistant", "rank": 0, "replies": [
                    {"text": "more?", "role": "prompter", "replies": [
                        {"text": "only one", "role": "assistant", "rank": 0, "replies": []},
                    ]},
                ]},
                {"text": "worst", "role": "assistant", "rank": 2, "replies": []},
                {"text": "gone", "role": "assistant", "rank": 3, "deleted": True, "replies": []},
            ],
        },
    }  # fmt: skip
    df = load_labelled(str(write_jsonl(tmp_path / "t.jsonl", [tree])))
    assert df.height == 1 and df["labeller"].to_list() == ["human"]
    a, b, label = df.select("a", "b", "label").row(0)
    assert {a, b} == {"best", "worst"} and (a, b)[label] == "best"
    assert df["prompt"].to_list() == [[{"role": "user", "content": "hi?"}]]


def test_store_reference(tmp_path: Path) -> None:
    rows = preference_rows(5)
    msgs = lambda role, key: [[{"role": role, "content": r[key]}] for r in rows]  # noqa: E731
    df = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(5)],
            "prompt": msgs("user", "prompt"),
            "chosen": msgs("assistant", "chosen"),
            "rejected": msgs("assistant", "rejected"),
            "judge": [{"kind": "human", "model": None, "annotators": ["x", "y"]}] * 5,
            "split": ["train"] * 5,
        },
        schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "judge": JUDGE,
                "split": pl.String},
    )  # fmt: skip
    st = Store(tmp_path / "store")
    st.publish("prefs-human", df, {"kind": "preference"})
    got = load_labelled("prefs-human", tmp_path, store=tmp_path / "store")
    assert got.height == 5 and set(got["origin"]) == {"prefs-human@1"} and set(got["labeller"]) == {"human"}
    st.publish("chat", df.select("id", pl.col("prompt").alias("messages"), "split"), {"kind": "sft"})
    with pytest.raises(CalibrationDataError, match="needs preference records"):
        load_labelled("chat@1", tmp_path, store=tmp_path / "store")
    with pytest.raises(RefError):
        load_labelled("nope@2", tmp_path, store=tmp_path / "store")


def test_unreadable_data_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match="does not exist"):
        load_labelled("missing.jsonl", tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"prompt": "x"\n', encoding="utf-8")
    with pytest.raises(CalibrationDataError, match="not valid JSON"):
        load_labelled("bad.jsonl", tmp_path)
    write_jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    with pytest.raises(CalibrationDataError, match="not labelled pairs"):
        load_labelled("sft.jsonl", tmp_path)
    write_jsonl(tmp_path / "gap.jsonl", [{"prompt": "x", "chosen": "y", "rejected": None}])
    with pytest.raises(CalibrationDataError, match="lack a prompt or a response"):
        load_labelled("gap.jsonl", tmp_path)


@pytest.mark.skipif(not ALPACA_EVAL.exists(), reason="../shared/datasets is absent")
def test_the_real_alpaca_eval_annotations() -> None:
    rows = json.loads(ALPACA_EVAL.read_text(encoding="utf-8"))
    df = load_labelled(str(ALPACA_EVAL), limit=10_000)
    assert df.height == len(rows) and set(df["labeller"]) == {r["annotator"] for r in rows}
    undecided = sum(1 for r in rows if float(r["preference"] or 0) not in (1.0, 2.0))
    assert (df["label"] == -1).sum() == undecided
    # davinci003 (output_1) wins most of these, yet after placement "a" wins about half the pairs
    share_a = float((df["label"] == 0).sum()) / float((df["label"] >= 0).sum())
    assert 0.4 < share_a < 0.6


# ---------------------------------------------------------------- judging


def test_position_biased_lm_judge_becomes_ties_with_swap(biased_lm: Path, pairs: pl.DataFrame) -> None:
    backend = TransformersBackend.load(str(biased_lm))
    ref = pairs["label"].to_numpy()
    rep = calibrate(PairwiseJudge(backend), pairs, n_boot=100)
    assert rep["position_flip_rate"]["value"] == 1.0 and rep["agreement"]["value"] == 0.0
    assert rep["verdicts"] == {"a": 0, "b": 0, "none": pairs.height} and rep["failures"]["count"] == 0
    assert rep["first_shown_wins"] == {"value": 1.0, "ci95": [1.0, 1.0], "n_verdicts": 2 * pairs.height}
    assert rep["judge"]["kind"] == "pairwise" and rep["judge"]["model"]["backend"] == "transformers"
    # without the swap the bias passes for verdicts: it "agrees" exactly where the reference says a
    plain = calibrate(PairwiseJudge(backend, swap=False), pairs, n_boot=100)
    assert plain["verdicts"]["a"] == pairs.height and plain["position_flip_rate"]["value"] is None
    assert plain["agreement"]["value"] == round(float(np.mean(ref[ref >= 0] == 0)), 4)
    assert 0 < plain["agreement"]["value"] < 1  # the placement hash mixed both positions in


def test_order_consistent_judge_swap_changes_nothing(pairs: pl.DataFrame) -> None:
    """Rule-based backend (``RuleJudge("longer")``, shared with test_pairwise): it answers the letter
    of the longer response, like AlpacaEval's "longer answer" baseline. A real LM small enough for
    a test is not order-consistent; the real-model order-free case is the rating judge below."""
    with_swap = calibrate(PairwiseJudge(RuleJudge("longer")), pairs, n_boot=100)
    without = calibrate(PairwiseJudge(RuleJudge("longer"), swap=False), pairs, n_boot=100)
    assert with_swap["position_flip_rate"]["value"] == 0.0
    for k in ("agreement", "kappa_with_ties", "kappa_without_ties", "prefers_longer"):
        assert with_swap[k] == without[k], k
    assert with_swap["prefers_longer"]["value"] == 1.0
    # the longer response is shown first about half the time, so neither letter dominates
    longer_first = float((pairs["a"].str.len_chars() > pairs["b"].str.len_chars()).mean())
    assert with_swap["first_shown_wins"]["value"] == 0.5 and without["first_shown_wins"]["value"] == round(
        longer_first, 4
    )
    # this judge is the length baseline, so both columns of the report must agree exactly
    assert with_swap["agreement"] == with_swap["length_baseline"]["agreement"]


def test_rating_judge_on_a_real_lm_is_order_free(tiny_lm: Path, pairs: pl.DataFrame) -> None:
    judge = RatingJudge(TransformersBackend.load(str(tiny_lm)), aspects={"helpfulness": "answers the question"})
    rep = calibrate(judge, pairs, n_boot=100)
    mirrored = pairs.with_columns(
        pl.col("b").alias("a"),
        pl.col("a").alias("b"),
        pl.when(pl.col("label") >= 0).then(1 - pl.col("label")).otherwise(-1).cast(pl.Int8).alias("label"),
    )
    rep2 = calibrate(judge, mirrored, n_boot=100)
    assert rep["position_flip_rate"]["value"] is None and rep["failures"]["count"] == 0
    assert rep["first_shown_wins"]["value"] is None  # one response at a time: there is no first
    assert rep["agreement"] == rep2["agreement"] and rep["verdicts"]["a"] == rep2["verdicts"]["b"]
    assert rep["judge"]["kind"] == "rating"


class _Broken:
    """A backend whose every request fails (a dead server), to see failures reported, not dropped."""

    def identity(self) -> dict[str, Any]:
        return {"backend": "broken"}

    def complete(self, requests: list[Request]) -> list[Completion]:
        return [Completion(text="partial <html>", error="HTTP 502 after 4 attempts") for _ in requests]

    def close(self) -> None:
        pass


def test_failures_are_counted_listed_and_lower_agreement(pairs: pl.DataFrame) -> None:
    rep = calibrate(PairwiseJudge(_Broken()), pairs.head(3), n_boot=50)
    assert rep["failures"]["count"] == 3 and rep["agreement"]["value"] == 0.0
    f = rep["failures"]["pairs"][0]
    assert f["error"].startswith("judge_error: HTTP 502") and f["raw"] == ["partial <html>"] * 2
    rated = calibrate(RatingJudge(_Broken(), aspects={"x": "y"}), pairs.head(2), n_boot=50)
    assert rated["failures"]["count"] == 2 and rated["failures"]["pairs"][1]["raw"]["b"] == {"x": "partial <html>"}


def test_gate_and_written_report(tmp_path: Path, pairs: pl.DataFrame) -> None:
    rep = calibrate(PairwiseJudge(RuleJudge("longer")), pairs, n_boot=100)
    value = rep["agreement"]["value"]
    check_min_agreement(rep, value)
    check_min_agreement(rep, None)
    with pytest.raises(CalibrationGateError, match=rf"is {value} \(95% CI .* below calibration.min_agreement"):
        check_min_agreement(rep, min(1.0, value + 0.01))
    path = write_calibration(rep, tmp_path / "cal")
    assert json.loads(path.read_text(encoding="utf-8"))["agreement"] == rep["agreement"]
    md = (tmp_path / "cal" / "calibration.md").read_text(encoding="utf-8")
    assert f"| agreement | {value:.3f} |" in md and "longer-answer baseline" in md
    assert (tmp_path / "cal" / "calibration.png").stat().st_size > 1000
