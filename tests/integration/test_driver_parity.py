"""The two drivers of the one run sequence publish, push and log the same things.

The same annotated preference recipe runs as a refresh three times under each driver (first
version; no-op; a new input file), each against its own store and its own Argilla dataset on the
real local Argilla server: ``curate.engine.local.run_recipe`` in-process and the Prefect flow on a
real Prefect server. Published content, manifests (less run ids and times), summaries' keys, the
refresh logs and the records pushed to Argilla must agree at every step. A step added to one
driver and not the other fails here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from curate.annotate.client import Connection
from curate.annotate.server import ArgillaHome
from curate.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]

ROOT = Path(__file__).resolve().parents[2]
RUN_SPECIFIC = {"run_id", "published_at", "orchestrator_run_id", "code_version"}


def _project(root: Path, dataset: str) -> Path:
    shutil.copytree(ROOT / "data" / "raw", root / "data" / "raw")
    (root / "recipes").mkdir()
    text = (ROOT / "recipes" / "annotate.yaml").read_text()
    text = text.replace("dataset: annotate-prefs ", f"dataset: {dataset} ")
    text = text.replace("store: ../data/store", f"store: {root / 'store'}").replace("dir: ../runs", f"dir: {root}/runs")
    recipe = root / "recipes" / "annotate.yaml"
    recipe.write_text(text)
    return recipe


def _manifest(store: Store, ref: str) -> dict[str, Any]:
    m = store.manifest(ref)
    m["inputs"] = sorted((i["source"], Path(i["uri"]).name, i["sha256"], i.get("carried", False)) for i in m["inputs"])
    m["recipe"] = m["recipe"]["name"]  # the texts differ in their paths and Argilla dataset names only
    m["refresh"] = {k: v for k, v in (m["refresh"] or {}).items() if k.endswith("version")} or None
    return {k: v for k, v in m.items() if k not in RUN_SPECIFIC}


def _log(root: Path) -> list[dict[str, Any]]:
    lines = (root / "runs" / "annotate-prefs" / "refreshes.jsonl").read_bytes().splitlines()
    out = []
    for line in lines:
        e = orjson.loads(line)
        pub = e.get("published") or {}
        out.append(
            {
                "keys": sorted(k for k in e if k not in ("at", "run_id")),
                "noop": e["noop"],
                "content": pub.get("content_hash"),
                "pushed": (e.get("annotation_push") or {}).get("records"),
            }
        )
    return out


def _argilla_ids(conn: Any, dataset: str) -> list[str]:
    return sorted(str(r.id) for r in conn.datasets(dataset, workspace="argilla").records())


def test_local_and_flow_drivers_publish_push_and_log_the_same(
    argilla_server: Any, prefect_api: str, tmp_path: Path
) -> None:
    from curate.engine.local import run_recipe
    from flows.curation import run_flow
    from schemas.recipe_loader import load_recipe_file

    a, b = tmp_path / "local", tmp_path / "flow"
    recipes = {"local": _project(a, "parity-local"), "flow": _project(b, "parity-flow")}

    def both() -> dict[str, dict[str, Any]]:
        return {
            "local": run_recipe(load_recipe_file(recipes["local"]), show_progress=False, refresh=True).summary,
            "flow": run_flow(recipes["flow"], incremental=True),
        }

    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    owner = Connection(argilla_server.url, creds.api_key, "local").client()
    stores = {"local": Store(a / "store"), "flow": Store(b / "store")}

    for step in ("first", "noop", "new file"):
        if step == "new file":
            new = b'{"chosen": "\\n\\nHuman: Name a prime.\\n\\nAssistant: 7 is prime.", '
            new += b'"rejected": "\\n\\nHuman: Name a prime.\\n\\nAssistant: 8."}\n'
            for root in (a, b):
                (root / "data" / "raw" / "hh_pairs_new.jsonl").write_bytes(new)
                text = recipes["local" if root == a else "flow"].read_text()
                text = text.replace("path: ../data/raw/hh_pairs.jsonl", "path: ../data/raw/hh_pairs*.jsonl")
                recipes["local" if root == a else "flow"].write_text(text)
        s = both()
        assert s["local"].get("noop") == s["flow"].get("noop") == (step == "noop" or None), step
        local_keys = set(s["local"]) - {"run_dir", "steps"}  # steps: each executor's own timers
        flow_keys = set(s["flow"]) - {"run_dir", "steps"}
        assert set(s["local"]["steps"]) <= set(s["flow"]["steps"]), step  # the flow also times its hooks
        assert local_keys == flow_keys, (step, local_keys ^ flow_keys)
        if step == "noop":
            continue
        pub_l, pub_f = s["local"]["published"], s["flow"]["published"]
        assert pub_l["content_hash"] == pub_f["content_hash"] and pub_l["version"] == pub_f["version"], step
        assert _manifest(stores["local"], pub_l["ref"]) == _manifest(stores["flow"], pub_f["ref"]), step
        for k in ("input_rows", "kept", "quarantined", "duplicates", "dropped", "stages"):
            assert s["local"].get(k) == s["flow"].get(k), (step, k)
        # the same records went to Argilla (record ids derive from content ids)
        push_l, push_f = s["local"]["annotation_push"], s["flow"]["annotation_push"]
        assert push_l["records"] == push_f["records"] > 0, step
        assert _argilla_ids(owner, "parity-local") == _argilla_ids(owner, "parity-flow"), step
    assert s["local"]["published"]["version"] == 2
    assert _log(a) == _log(b) and len(_log(a)) == 3
