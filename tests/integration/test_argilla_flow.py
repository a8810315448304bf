"""The refresh flow pushes each new version to the real local Argilla; the pull flow waits, pulls, publishes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from curate.annotate.client import Connection
from curate.annotate.server import ArgillaHome
from curate.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]

ROOT = Path(__file__).resolve().parents[2]


def test_refresh_pushes_then_pull_flow_waits_and_publishes(
    argilla_server: Any, prefect_api: str, tmp_path: Path
) -> None:
    import argilla as rg

    from flows.annotation import annotation_pull_flow
    from flows.curation import run_flow

    shutil.copytree(ROOT / "data" / "raw", tmp_path / "data" / "raw")
    (tmp_path / "recipes").mkdir()
    text = (ROOT / "recipes" / "annotate.yaml").read_text()
    text = text.replace("dataset: annotate-prefs ", "dataset: flow-prefs ").replace(
        "min_submitted: 2", "min_submitted: 1"
    )
    text = text.replace("store: ../data/store", f"store: {tmp_path / 'store'}").replace(
        "dir: ../runs", f"dir: {tmp_path}/runs"
    )
    text = text.replace(
        "wait: {min_completed: 10, timeout_s: 86400, poll_s: 300}",
        "wait: {min_completed: 2, timeout_s: 120, poll_s: 0.5}",
    )
    recipe = tmp_path / "recipes" / "annotate.yaml"
    recipe.write_text(text)

    first = run_flow(recipe, incremental=True)
    pushed = first["annotation_push"]
    assert pushed["dataset"] == "flow-prefs" and pushed["records"] == sum(first["published"]["rows_per_split"].values())
    again = run_flow(recipe, incremental=True)
    assert again["noop"] is True  # nothing new: nothing published, nothing pushed again

    # an annotator ranks two records in Argilla (the owner, through the SDK, ranks given explicitly)
    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    owner = Connection(argilla_server.url, creds.api_key, "local").client()
    me = owner.me.id
    ds = owner.datasets("flow-prefs", workspace="argilla")
    records = list(ds.records())[:2]
    for r in records:
        ranking = [{"value": "response_1", "rank": 1}, {"value": "response_2", "rank": 2}]
        r.responses.add(rg.Response("ranking", ranking, user_id=me, status="submitted"))
    ds.records.log(records)

    out = annotation_pull_flow(str(recipe))
    assert out["progress"]["completed"] >= 2
    pref = out["published"]["preference"]
    assert pref["created"] and pref["dataset"] == "annotate-prefs-human"
    human = Store(tmp_path / "store").read(pref["ref"])
    assert human.height == 2
    assert Store(tmp_path / "store").manifest(pref["ref"])["annotation"] is not None
