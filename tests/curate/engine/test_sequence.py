"""The one run sequence: its order, its hooks, its cache keys, and the quickstart's content hash."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from curate.engine.hooks import default_hooks
from curate.engine.local import LocalExecutor, run_recipe
from curate.engine.sequence import DECIDE, FINISH, INGEST, SKETCH, Hook, Outcome, Step, run_sequence
from curate.engine.steps import Prepared, hash_file, prepare
from schemas.recipe_loader import load_recipe_file

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART_CONTENT_HASH = "6fb561e5d5fde4f51eaab89d845252c6696b18f32c8f0aa7747e12ebd23fcd40"
"""The published content of recipes/quickstart.yaml before the engine refactor (commit 44fdc5c).

Change it only when the quickstart data or recipe changes on purpose: any other change here means
the same inputs no longer give the same dataset."""


class Recording(LocalExecutor):
    """The local executor, noting every step and hook it runs."""

    def __init__(self) -> None:
        super().__init__(show_progress=False)
        self.seen: list[str] = []

    def call(self, step: Step, prep: Prepared, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(step.name)
        return super().call(step, prep, *args, **kwargs)

    def map(self, step: Step, prep: Prepared, calls: Sequence[tuple[Any, ...]], label: str = "") -> list[Any]:
        return [self.call(step, prep, *args) for args in calls]

    def hook(self, hook: Hook, outcome: Outcome) -> Any:
        self.seen.append(f"hook:{hook.name}")
        return super().hook(hook, outcome)


def _recipe(tmp_path: Path, stages: str = "") -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    rows = [{"instruction": f"Question {i}: explain topic {i}.", "output": f"Answer {i} " * 12} for i in range(20)]
    for name, part in (("a.jsonl", rows[:12]), ("b.jsonl", rows[12:] + rows[:2])):
        (raw / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in part))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"""name: seq
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: raw, path: "raw/*.jsonl", convert: alpaca_to_messages}}
{stages}
publish: {{store: {tmp_path / "store"}}}
""",
        encoding="utf-8",
    )
    return recipe


STAGES = "stages:\n  - {type: exact_dedup}\n  - {type: near_dedup, threshold: 0.8}"


def test_the_sequence_runs_its_steps_in_order_then_the_hooks(tmp_path: Path) -> None:
    prep = prepare(load_recipe_file(_recipe(tmp_path, STAGES)))
    ex = Recording()
    outcome = run_sequence(prep, ex, hooks=default_hooks())
    assert ex.seen == [
        "hash-file",
        "hash-file",
        "ingest",
        "ingest",
        "sketch",
        "sketch",
        "decide",
        "finish-part",
        "finish-part",
        "assemble",
        "publish",
        "hook:artifacts",  # no annotation section, not a refresh: the other hooks do not apply
    ]
    assert outcome.published and outcome.published["version"] == 1
    assert outcome.summary()["duplicates_by_reason"] == {"exact_dedup": 2}


def test_a_noop_refresh_runs_the_hooks_and_logs_once(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    run_recipe(load_recipe_file(recipe), show_progress=False, refresh=True)
    ex = Recording()
    outcome = run_sequence(prepare(load_recipe_file(recipe)), ex, refresh=True, hooks=default_hooks())
    assert outcome.noop and ex.seen == ["hash-file", "hash-file", "hook:refresh_log", "hook:artifacts"]
    log = (tmp_path / "runs" / "seq" / "refreshes.jsonl").read_bytes().splitlines()
    first, second = (orjson.loads(x) for x in log)
    assert first["noop"] is False and first["published"]["version"] == 1
    assert second["noop"] is True and second["base_version"] == "seq@1"
    assert first["orchestrator"] == second["orchestrator"] == {"name": "local"}


def test_a_hook_joins_the_sequence_and_its_result_the_summary(tmp_path: Path) -> None:
    def count_rows(outcome: Outcome, sink: Any) -> dict[str, int]:
        assert outcome.published is not None
        return {"rows": sum(outcome.published["rows_per_split"].values())}

    res = run_recipe(
        load_recipe_file(_recipe(tmp_path)), show_progress=False, hooks=[*default_hooks(), Hook("evaluate", count_rows)]
    )
    assert res.summary["evaluate"] == {"rows": 22}  # no stages: the two copies stay


def test_a_failing_hook_fails_the_run_after_publishing(tmp_path: Path) -> None:
    def broken(outcome: Outcome, sink: Any) -> None:
        raise RuntimeError("push refused")

    with pytest.raises(RuntimeError, match="push refused"):
        run_recipe(load_recipe_file(_recipe(tmp_path)), show_progress=False, hooks=[Hook("push", broken)])
    from curate.store import Store

    assert Store(tmp_path / "store").versions("seq") == [1]  # what was published stays published


def test_cache_keys_are_the_steps_content_keys_and_done_follows_the_files(tmp_path: Path) -> None:
    prep = prepare(load_recipe_file(_recipe(tmp_path, STAGES)))
    ex = LocalExecutor(show_progress=False)
    jobs = [hash_file(prep, s, f) for s, f in prep.file_indexes()]
    key = INGEST.key(prep, jobs[0])  # type: ignore[misc]
    assert not INGEST.done(prep, key)  # type: ignore[misc]
    ref = ex.call(INGEST, prep, jobs[0])
    assert ref.key == key and INGEST.done(prep, key)  # type: ignore[misc]
    skey = SKETCH.key(prep, ref, 1)  # type: ignore[misc]
    assert not SKETCH.done(prep, skey)  # type: ignore[misc]
    ex.call(SKETCH, prep, ref, 1)
    assert SKETCH.done(prep, skey)  # type: ignore[misc]
    shutil.rmtree(ref.dir)  # files gone: the step is no longer done, whatever a cache remembers
    assert not INGEST.done(prep, key)  # type: ignore[misc]
    assert DECIDE.key is not None and FINISH.key is not None


def test_the_quickstart_publishes_the_same_content_as_before_the_refactor(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "data" / "raw", tmp_path / "data" / "raw")
    shutil.copytree(ROOT / "data" / "eval", tmp_path / "data" / "eval")
    (tmp_path / "recipes").mkdir()
    text = (ROOT / "recipes" / "quickstart.yaml").read_text(encoding="utf-8")
    text = text.replace("store: ../data/store", f"store: {tmp_path / 'store'}")
    recipe = tmp_path / "recipes" / "quickstart.yaml"
    recipe.write_text(text, encoding="utf-8")
    res = run_recipe(load_recipe_file(recipe), tmp_path / "runs", show_progress=False, report=False)
    assert res.summary["input_rows"] == 80 and res.summary["kept"] == 64
    assert res.summary["published"]["content_hash"] == QUICKSTART_CONTENT_HASH


def test_cleanup_removes_stale_prefect_cache_records_with_the_work_files(tmp_path: Path) -> None:
    import os

    prep = prepare(load_recipe_file(_recipe(tmp_path, STAGES)))
    outcome = run_sequence(prep, LocalExecutor(show_progress=False))
    assert outcome.result is not None
    records = prep.work / "prefect-results"
    records.mkdir(parents=True)
    shard_key = sorted(p.name for p in (prep.work / "shards").iterdir())[0]
    stale, used = records / "0123456789abcdef01234567", records / shard_key
    for f in (stale, used):
        f.write_text("{}")
        os.utime(f, (0, 0))  # older than the garbage collector's minimum age
    run_sequence(prepare(load_recipe_file(_recipe(tmp_path, STAGES))), LocalExecutor(show_progress=False))
    assert not stale.exists() and used.exists()


def test_a_run_without_stages_loads_no_stage_machinery(tmp_path: Path) -> None:
    import subprocess
    import sys

    recipe = _recipe(tmp_path)
    code = (
        "import sys; from curate.engine.local import run_recipe; from schemas.recipe_loader import load_recipe_file; "
        f"r = run_recipe(load_recipe_file({str(recipe)!r}), show_progress=False, report=False); "
        "print(r.summary['output_records'], 'curate.engine.stage_runner' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    # the stage runner (and its dedup and filter imports) is not loaded to decide nothing
    assert out.stdout.split() == ["22", "False"], out.stderr[-2000:]
