"""Humans and AI together on the real local Argilla server: uncertain AI verdicts go to annotators
with the AI's scores as suggestions; the pull publishes human and accepted AI pairs side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate.annotate.client import Connection
from curate.annotate.server import ArgillaHome
from curate.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]

RECIPE = """
name: routed
output: {{kind: preference, dir: {tmp}/runs}}
sources:
  - {{name: prompts, path: prompts.jsonl, convert: text}}
feedback:
  input_kind: text
  generators:
    - {{name: tiny, model: {model}, n: 2, max_new_tokens: 8, temperature: 1.0}}
  judge: {{kind: rating, model: {model}, max_new_tokens: 2, aspects: {{helpfulness: "fully helpful"}}}}
  pairs: {{min_margin: {margin}}}
  route: {{to_annotators: {route}}}
"""

ROUTING = """
annotation:
  dataset: routed-prefs
  questions: [ranking]
  output: {{store: {tmp}/store, dataset: routed-merged}}
publish: {{store: {tmp}/store, splits: {{eval: 0.0}}}}
"""


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_uncertain_verdicts_go_to_annotators_and_the_pull_merges_both(
    argilla_server: Any, tiny_lm: Path, tmp_path: Path
) -> None:
    env = argilla_server.env()
    (tmp_path / "prompts.jsonl").write_text(
        "\n".join(json.dumps({"text": f"Prompt {i}: name something blue."}) for i in range(10)) + "\n"
    )
    recipe = tmp_path / "recipe.yaml"
    # first without routing (and without publishing), to read the judge's margins; a margin between
    # them splits the prompts into confident pairs and uncertain ones
    recipe.write_text(RECIPE.format(tmp=tmp_path, model=tiny_lm, margin=0.0, route="none"))
    probe = cli("run", "recipe.yaml", "--local", "--json", env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-3000:]
    audit = pl.read_parquet(Path(json.loads(probe.stdout)["outputs"]["dir"]) / "judgements.parquet")
    margins = sorted(audit.select(pl.col("pairs").list.first().struct.field("margin")).to_series().drop_nulls())
    assert len(margins) >= 6
    cut = (margins[len(margins) // 2 - 1] + margins[len(margins) // 2]) / 2

    recipe.write_text(
        RECIPE.format(tmp=tmp_path, model=tiny_lm, margin=cut, route="uncertain") + ROUTING.format(tmp=tmp_path)
    )
    run = cli("run", "recipe.yaml", "--local", "--json", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    s = json.loads(run.stdout)
    fb = s["feedback"]
    routed, accepted = fb["outcomes"]["routed"], fb["outcomes"]["pairs"]
    assert routed >= 1 and accepted >= 1 and routed + accepted == 10 and fb["model_calls"] == 0
    assert s["annotation_push"]["records"] == routed and s["published"]["rows_per_split"]["train"] == accepted

    # the routed records carry the AI judge's scores as suggestions, under the judge's name
    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    owner = Connection(argilla_server.url, creds.api_key, "local").client()
    ds = owner.datasets("routed-prefs", workspace="argilla")
    records = list(ds.records(with_suggestions=True))
    assert len(records) == routed
    agents = {sug.agent for r in records for sug in r.suggestions}
    assert len(agents) == 1 and agents.pop().startswith(f"{tiny_lm} prompt:")

    # an annotator ranks every routed record: response_2 first
    import argilla as rg

    me = owner.me.id
    for r in records:
        ranking = [{"value": "response_2", "rank": 1}, {"value": "response_1", "rank": 2}]
        r.responses.add(rg.Response("ranking", ranking, user_id=me, status="submitted"))
    ds.records.log(records)

    pulled = cli("annotate", "pull", "--recipe", "recipe.yaml", "--json", env=env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    out = json.loads(pulled.stdout)
    ref = out["published"]["preference"]["ref"]
    merged = Store(tmp_path / "store").read(ref)
    who = merged["judge"].struct.field("kind").value_counts().sort("kind")
    assert dict(who.iter_rows()) == {"ai": accepted, "human": routed}
    assert Store(tmp_path / "store").manifest(ref)["annotation"]["merged_ai"]["rows"] == accepted
