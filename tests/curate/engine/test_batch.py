from __future__ import annotations

from curate.convert import get_converter
from curate.engine.batch import SourceInfo, process_batch
from curate.ingest import RawBatch, ReadError
from schemas.kinds import Kind

SRC = SourceInfo("s", "file:///x.jsonl", "abc")


def _run(batch: RawBatch, names: list[str], kind: Kind, columns: dict[str, str] | None = None):
    chain = [get_converter(n) for n in names]
    return process_batch(batch, chain, [None] * len(chain), columns or {}, kind, SRC, max_chars=1000)


def test_every_row_has_exactly_one_outcome() -> None:
    batch = RawBatch(
        rows=[0, 2, 3],
        records=[{"instruction": "a", "output": "b"}, {"instruction": "c"}, {"instruction": "d", "output": "x" * 2000}],
        errors=[ReadError(1, "invalid_json", "bad", "{")],
    )
    out = _run(batch, ["alpaca_to_messages"], Kind.SFT)
    assert out.input_rows == 4 and out.kept_rows == 1
    assert {(q["row"], q["reason"]) for q in out.quarantine} == {
        (1, "invalid_json"),
        (2, "missing_field"),
        (3, "too_long"),
    }
    assert out.quarantine[0]["raw"] == "{"
    rec = out.records.to_dicts()[0]
    assert rec["source"] == {"name": "s", "uri": "file:///x.jsonl", "sha256": "abc", "row": 0}
    assert list(out.records.columns) == ["id", "messages", "source"]


def test_null_preference_is_no_decision_but_missing_column_is_a_mapping_error() -> None:
    base = {"instruction": "q", "output_1": "a", "output_2": "b"}
    batch = RawBatch(rows=[0, 1, 2], records=[{**base, "preference": None}, {**base, "preference": 2}, dict(base)])
    out = _run(batch, ["alpaca_eval_to_preference"], Kind.PREFERENCE)
    assert {(q["row"], q["reason"]) for q in out.quarantine} == {(0, "no_preference"), (2, "missing_field")}
    assert out.records.height == 1


def test_fan_out_chain_keeps_row_and_counts_records() -> None:
    t = "\n\nHuman: hi\n\nAssistant: "
    batch = RawBatch(
        rows=[0, 1],
        records=[{"chosen": t + "hello", "rejected": t + "go away"}, {"chosen": t + "same", "rejected": t + "same"}],
    )
    out = _run(batch, ["hh_rlhf_to_preference", "preference_to_kto"], Kind.KTO)
    assert out.kept_rows == 1 and out.records.height == 2
    assert sorted(out.records["label"].to_list()) == [False, True]
    assert out.records["source"].struct.field("row").to_list() == [0, 0]
    # identical chosen/rejected: the pair is quarantined before KTO fan-out could hide it
    assert [(q["row"], q["reason"]) for q in out.quarantine] == [(1, "identical_pair")]
