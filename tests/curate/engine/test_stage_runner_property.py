"""Property: whatever the mix of rows, stages keep the accounting identity and their promises."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.engine.local import run_recipe
from schemas.recipe_loader import load_recipe_doc

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
PROMPT = st.lists(st.sampled_from(WORDS), min_size=2, max_size=6).map(" ".join)
ROW = st.one_of(
    st.tuples(PROMPT, st.just("N/A")),  # dropped by instruction_defects
    # "Answer ..." never equals or starts with a prompt, so instruction_defects keeps it
    st.tuples(PROMPT, st.lists(st.sampled_from(WORDS), min_size=3, max_size=12).map(lambda w: "Answer " + " ".join(w))),
    st.just(("broken", None)),  # quarantined (missing output)
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=30))
def test_stages_keep_the_identity_and_dedup_promise(rows: list[tuple[str, str | None]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = [json.dumps({"instruction": p} if o is None else {"instruction": p, "output": o}) for p, o in rows]
        (folder / "in.jsonl").write_text("\n".join(lines) + "\n")
        recipe = f"""
name: prop
output: {{kind: sft, dir: {folder / "runs"}}}
sources: [{{name: s, path: in.jsonl, convert: alpaca_to_messages}}]
stages:
  - {{type: filter, rule: instruction_defects}}
  - {{type: exact_dedup, key: [prompt]}}
"""
        res = run_recipe(load_recipe_doc(recipe, str(folder / "r.yaml")), show_progress=False, report=False)
        s = res.summary
        assert s["balanced"]
        assert s["input_rows"] == len(rows)
        assert s["quarantined"] == sum(1 for _, o in rows if o is None)
        assert s["dropped"] == sum(1 for _, o in rows if o == "N/A")
        survivors = [p for p, o in rows if o not in (None, "N/A")]
        assert s["kept"] == len(set(survivors)) and s["duplicates"] == len(survivors) - len(set(survivors))
        data = pl.read_parquet(res.run_dir / "data")
        prompts = [m[0]["content"] for m in data["messages"].to_list()]
        assert sorted(prompts) == sorted(set(survivors))  # exactly one row per distinct prompt
        if s["duplicates"]:
            dups = pl.read_parquet(res.run_dir / "duplicates.parquet")
            assert set(dups["duplicate_of"].to_list()) <= set(data["id"].to_list())
