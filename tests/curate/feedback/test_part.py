"""Feedback over one part on a real tiny model: pairs, accounting, failures with raw output, routing."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from curate.background import free_port
from curate.feedback.cache import RequestCache
from curate.feedback.part import finished_feedback, label_part
from schemas.feedback import FeedbackSpec
from schemas.kinds import Kind, polars_schema

SRC = {"name": "tasks", "uri": "file:///tasks.jsonl", "sha256": "abc", "row": 0}
QUESTIONS = ["Name a colour.", "What is 2 + 2?", "Say hello.", "Name a fruit.", "", "Count to three."]


def _prompts(tmp: Path) -> Path:
    rows = [
        {"id": f"p{i}", "text": q, "source": {**SRC, "row": i + 1}}
        for i, q in enumerate(QUESTIONS)  # the empty one cannot be a prompt
    ]
    path = tmp / "prompts.parquet"
    pl.DataFrame(rows, schema=polars_schema(Kind.TEXT)).write_parquet(path)
    return path


def _spec(model: Path, **judge: object) -> FeedbackSpec:
    return FeedbackSpec.model_validate(
        {
            "input_kind": "text",
            "generators": [{"name": "tiny", "model": str(model), "n": 3, "max_new_tokens": 8, "temperature": 1.0}],
            "judge": {"model": str(model), "max_new_tokens": 2, **judge},
        }
    )


def _check_balanced(res: dict) -> dict:
    t = res["tally"]
    assert t["balanced"] and t["prompts_in"] == len(QUESTIONS) == sum(t["outcomes"].values())
    return t


def test_rating_judge_publishes_scored_pairs_with_lineage(tiny_lm: Path, tmp_path: Path) -> None:
    spec = _spec(tiny_lm, kind="rating", aspects={"helpfulness": "fully helpful"})
    cache = RequestCache(tmp_path / "c.sqlite")
    res = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.PREFERENCE, tmp_path / "out", cache)
    t = _check_balanced(res)
    assert t["failed_by_reason"] == {"empty_prompt": 1}
    assert t["outcomes"]["pairs"] >= 3, t
    data = pl.read_parquet(res["data"])
    assert data.height == t["records_out"] == t["outcomes"]["pairs"]
    row = data.row(0, named=True)
    assert row["score_chosen"] > row["score_rejected"]
    assert row["margin"] == pytest.approx(row["score_chosen"] - row["score_rejected"], abs=1e-6)
    assert row["judge"]["kind"] == "ai" and row["judge"]["model"].startswith(f"{tiny_lm} prompt:")
    assert row["source"]["uri"] == SRC["uri"] and row["source"]["row"] >= 1
    assert data["id"].n_unique() == data.height
    audit = pl.read_parquet(res["judgements"])
    assert audit.height == len(QUESTIONS)
    published = audit.filter(pl.col("outcome") == "pairs").row(0, named=True)
    raw = orjson.loads(published["judge_raw"])
    assert len(raw) == 3 and all("raw" in r and r["score"] is not None for r in raw)
    scores = [c["score"] for c in published["candidates"]]
    assert published["pairs"][0]["margin"] == pytest.approx(max(scores) - min(s for s in scores if s is not None))
    quarantined = [orjson.loads(x) for x in Path(res["quarantine"]).read_bytes().splitlines()]
    assert [(q["reason"], q["row"]) for q in quarantined] == [("empty_prompt", 5)]
    # the same part again: every request answered from the cache
    again = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.PREFERENCE, tmp_path / "out2", cache)
    assert again["tally"]["model_calls"] == 0 and again["tally"]["cache_misses"] == 0
    assert pl.read_parquet(again["data"]).equals(data)
    assert finished_feedback(tmp_path / "out2") == again


def test_pairwise_judge_asks_every_pair_in_both_orders(tiny_lm: Path, tmp_path: Path) -> None:
    spec = _spec(tiny_lm, kind="pairwise")
    res = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.PREFERENCE, tmp_path / "out", None)
    t = _check_balanced(res)
    # three candidates: three comparisons per prompt, each asked in both orders
    assert t["model_calls"] == 5 * 3 + 5 * 3 * 2
    audit = pl.read_parquet(res["judgements"]).filter(pl.col("reason").is_null())
    first = orjson.loads(audit["judge_raw"][0])
    assert len(first) == 3 and all(len(c["raw"]) == 2 for c in first)
    # every published pair (if the tiny judge decided any) is backed by win shares that differ
    assert t["outcomes"]["pairs"] + t["outcomes"]["tie"] == 5
    data = pl.read_parquet(res["data"])
    assert data.height == t["records_out"] and (data["margin"] > 0).all()


def test_kto_rows_label_each_prompts_best_true_and_worst_false(tiny_lm: Path, tmp_path: Path) -> None:
    spec = _spec(tiny_lm, kind="rating", aspects={"helpfulness": "fully helpful"})
    res = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.KTO, tmp_path / "out", None)
    t = _check_balanced(res)
    kto = pl.read_parquet(res["data"])
    assert set(kto.columns) == set(polars_schema(Kind.KTO)) and t["outcomes"]["pairs"] >= 3
    per_prompt = kto.group_by(pl.col("prompt").list.first().struct.field("content")).agg(
        pl.col("label").sum(), pl.len()
    )
    assert per_prompt.height == t["outcomes"]["pairs"]
    assert (per_prompt["label"] == 1).all() and (per_prompt["len"] == 2).all()


def test_judge_failures_are_quarantined_with_reason_and_raw(tiny_lm: Path, tmp_path: Path) -> None:
    down = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "judge", "max_retries": 0, "timeout_s": 2}
    spec = FeedbackSpec.model_validate(
        {
            "input_kind": "text",
            "generators": [{"name": "tiny", "model": str(tiny_lm), "n": 2, "max_new_tokens": 6, "temperature": 1.0}],
            "judge": {"kind": "pairwise", "endpoint": down},
        }
    )
    res = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.PREFERENCE, tmp_path / "out", None)
    t = _check_balanced(res)
    judged = 5 - t["outcomes"]["too_few"]
    assert t["outcomes"]["failed"] == judged + 1 and t["failed_by_reason"]["judge_error"] == judged
    assert pl.read_parquet(res["data"]).height == 0
    rows = [orjson.loads(x) for x in Path(res["quarantine"]).read_bytes().splitlines()]
    errs = [r for r in rows if r["reason"] == "judge_error"]
    assert len(errs) == judged and all("APIConnectionError" in r["detail"] for r in errs)
    assert all(orjson.loads(r["raw"])[0]["error"].startswith("judge_error") for r in errs)


def test_generation_failures_leave_too_few_candidates(tiny_lm: Path, tmp_path: Path) -> None:
    down = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "gen", "max_retries": 0, "timeout_s": 2}
    spec = FeedbackSpec.model_validate(
        {
            "input_kind": "text",
            "generators": [{"name": "remote", "endpoint": down, "n": 2}],
            "judge": {"kind": "pairwise", "model": str(tiny_lm)},
        }
    )
    res = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.PREFERENCE, tmp_path / "out", None)
    t = _check_balanced(res)
    assert t["outcomes"]["too_few"] == 5 and t["too_few_by_reason"] == {"generation_failed": 5}
    assert t["candidate_failures"] == 10
    rows = [orjson.loads(x) for x in Path(res["quarantine"]).read_bytes().splitlines()]
    assert sum(r["reason"] == "generation_error" for r in rows) == 10


def test_routing_all_sends_prompts_to_annotators_with_scores(tiny_lm: Path, tmp_path: Path) -> None:
    spec = _spec(tiny_lm, kind="rating", aspects={"helpfulness": "fully helpful"})
    spec.route.to_annotators = "all"
    res = label_part(_prompts(tmp_path), spec, Kind.TEXT, Kind.PREFERENCE, tmp_path / "out", None)
    t = _check_balanced(res)
    assert t["outcomes"]["routed"] == 5 and t["records_out"] == 0
    routed = pl.read_parquet(res["uncertain"])
    assert routed.height == 5 and routed["responses"].list.len().min() >= 2
    assert (routed["scores"].list.len() == routed["responses"].list.len()).all()


def test_preference_input_is_rejudged_without_generators(tiny_lm: Path, tmp_path: Path) -> None:
    msg = lambda role, text: [{"role": role, "content": text}]  # noqa: E731
    rows = [
        {
            "id": f"x{i}",
            "prompt": msg("user", f"Question {i}?"),
            "chosen": msg("assistant", f"Answer {i}."),
            "rejected": msg("assistant", "No."),
            "source": SRC,
        }
        for i in range(3)
    ]
    path = tmp_path / "prefs.parquet"
    pl.DataFrame(rows, schema={k: v for k, v in polars_schema(Kind.PREFERENCE).items() if k in rows[0]}).write_parquet(
        path
    )
    spec = FeedbackSpec.model_validate(
        {"input_kind": "preference", "judge": {"kind": "rating", "model": str(tiny_lm), "aspects": {"a": "good"}}}
    )
    res = label_part(path, spec, Kind.PREFERENCE, Kind.PREFERENCE, tmp_path / "out", None)
    t = res["tally"]
    assert t["balanced"] and t["prompts_in"] == 3 and t["candidates"] == 6
