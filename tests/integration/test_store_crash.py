"""Crash safety: SIGKILL a publish (and a ``curate run``) at several points; nothing half-written becomes visible.

Publishing version 2 of 300k SFT rows takes about a second, most of it in memory (content hash, Arrow
conversion, Parquet encoding); the data file is written into a staging folder of the table
(``table/write-<uuid>/``) under a temporary name (``...parquet#1``), renamed, the staging folder's own
scratch log lands (the files are complete, not committed), and the Delta commit
(``_delta_log/00000000000000000001.json``) follows within milliseconds, then ``manifests/v2.json``.
Kills land by time (fractions of a measured publish) and by event (the parent polls the table folder
every half millisecond and kills when the temporary data file, the renamed data file, the scratch log
or the commit appears). After each kill a fresh :class:`Store` must show version 1 intact and either no
version 2 or the complete one. Run with ``-s`` to see where each kill landed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate.store import Store, content_hash
from schemas.kinds import MESSAGES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROWS_V2 = 300_000
POLL_S = 0.0005
COMMIT_V2 = "00000000000000000001.json"

CHILD = r"""
import sys
import polars as pl
from curate.store import Store
df = pl.read_parquet(sys.argv[2])
print("READY", flush=True)
Store(sys.argv[1]).publish("ds", df, {"kind": "sft"})
print("DONE", flush=True)
"""

WORDS = "the quick brown fox jumps over the lazy dog while a curious cat watches from the old stone wall "


def sft_frame(n: int, tag: str) -> pl.DataFrame:
    i = pl.int_range(n)
    user = pl.struct(role=pl.lit("user"), content=pl.format("question {} about {}", i, pl.lit(WORDS * 2)))
    noise = (i * 7919 % 1_000_003).cast(pl.String)
    reply = pl.struct(role=pl.lit("assistant"), content=pl.format("answer {}: {} {}", i, pl.lit(WORDS * 6), noise))
    return pl.select(
        id=pl.format("{}-{}", pl.lit(tag), i),
        messages=pl.concat_list([user, reply]).cast(MESSAGES),
        split=pl.when(i % 20 == 0).then(pl.lit("eval")).otherwise(pl.lit("train")),
    )


def _listing(store: Path) -> set[str]:
    table = store / "ds" / "table"
    names = {f"log/{n}" for n in os.listdir(table / "_delta_log")}
    for folder, _, files in os.walk(table):  # data files sit in staging folders; tolerates vanishing entries
        rel = Path(folder).relative_to(table).parts
        if rel[:1] == ("_delta_log",):
            continue
        prefix = "scratch-log" if "_delta_log" in rel else "table"
        names |= {f"{prefix}/{Path(*rel, n).as_posix()}" for n in files}
    manifests = store / "ds" / "manifests"
    return names | ({f"manifests/{n}" for n in os.listdir(manifests)} if manifests.exists() else set())


def _events(new: set[str]) -> set[str]:
    """Which publish milestones the new files show."""
    ev = set()
    if any(n.startswith("table/") and "#" in n for n in new):
        ev.add("staged")
    if any(n.startswith("table/") and n.endswith(".parquet") for n in new):
        ev.add("data")
    if any(n.startswith("scratch-log/") and n.endswith(".json") for n in new):
        ev.add("scratch")
    if f"log/{COMMIT_V2}" in new:
        ev.add("commit")
    if "manifests/v2.json" in new:
        ev.add("manifest")
    return ev


def _phase(new: set[str]) -> str:
    ev = _events(new)
    if "manifest" in ev:
        return "complete"
    if "commit" in ev:
        return "after commit, before manifest copy"
    if ev & {"staged", "data", "scratch"}:
        return "mid-write: data file(s) on disk, no commit"
    return "before any file was written"


def publish_child(
    store: Path, data: Path, delay: float | None = None, on: str | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Run the publishing child; SIGKILL it ``delay`` s after it starts publishing, or when event ``on`` shows."""
    base = _listing(store)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "POLARS_MAX_THREADS": "2"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    t0 = time.perf_counter()
    seen: dict[str, float] = {}
    killed_at = None
    while proc.poll() is None:
        elapsed = time.perf_counter() - t0
        for ev in _events(_listing(store) - base):
            seen.setdefault(ev, elapsed)
        if (delay is not None and elapsed >= delay) or (on is not None and on in seen):
            proc.send_signal(signal.SIGKILL)
            killed_at = elapsed
            break
        if elapsed > timeout:
            proc.kill()
            raise AssertionError("the publishing child did not finish")
        time.sleep(POLL_S)
    rc = proc.wait()
    return {
        "delay": delay,
        "on": on,
        "killed_at": None if killed_at is None else round(killed_at, 4),
        "finished_at": round(time.perf_counter() - t0, 4),
        "rc": rc,
        "events": {k: round(v, 4) for k, v in sorted(seen.items(), key=lambda kv: kv[1])},
        "phase": _phase(_listing(store) - base),
    }


def check_store(store: Path, h1: str, h2: str) -> list[int]:
    """The invariants after a crash; returns the versions."""
    st = Store(store)  # a fresh store opens
    assert st.names() == ["ds"]
    versions = st.versions("ds")
    assert versions in ([1], [1, 2]), versions
    assert content_hash(st.read("ds@latest")) == (h2 if versions == [1, 2] else h1)
    assert content_hash(st.read("ds@1")) == h1
    assert st.manifest("ds@1")["content_hash"] == h1
    if versions == [1, 2]:
        assert st.manifest("ds@2")["content_hash"] == h2 and st.manifest("ds@2")["rows"] == ROWS_V2
        assert st.read("ds@2", split="eval").height == ROWS_V2 // 20
    return versions


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("crash")
    v1, v2 = sft_frame(500, "v1"), sft_frame(ROWS_V2, "v2")
    data = folder / "v2.parquet"
    v2.write_parquet(data)
    seed = folder / "seed"
    Store(seed).publish("ds", v1, {"kind": "sft"})
    return {"folder": folder, "seed": seed, "data": data, "v2": v2, "h1": content_hash(v1), "h2": content_hash(v2)}


def test_sigkill_during_publish_never_shows_a_half_version(frames: dict[str, Any]) -> None:
    folder, h1, h2 = frames["folder"], frames["h1"], frames["h2"]
    n = 0

    def fresh() -> Path:
        nonlocal n
        n += 1
        store = folder / f"trial{n}"
        shutil.copytree(frames["seed"], store)
        return store

    # 1. measure an undisturbed publish: when do the staged file, the data file and the commit appear?
    store = fresh()
    base = publish_child(store, frames["data"])
    assert base["rc"] == 0 and base["phase"] == "complete", base
    assert check_store(store, h1, h2) == [1, 2]
    ev = base["events"]
    write_starts = ev.get("staged", ev["data"])
    outcomes = [base | {"trial": "undisturbed"}]

    # 2. kills by time: early, during the in-memory work, and (aimed) during the file write
    delays = [0.05, 0.2, round(0.5 * write_starts, 3), round((write_starts + ev["data"]) / 2, 4)]
    trials: list[tuple[str, Callable[[Path], dict[str, Any]]]] = [
        (f"after {d} s", lambda s, d=d: publish_child(s, frames["data"], delay=d)) for d in delays
    ]
    # 3. kills by event: the staged data file appears (mid-write), the data file is complete, the commit landed
    # (scratch: the staged files are complete, the commit not yet made)
    trials += [
        (f"when {e} appears", lambda s, e=e: publish_child(s, frames["data"], on=e))
        for e in ("staged", "data", "scratch")
    ]
    trials += [("when the commit appears", lambda s: publish_child(s, frames["data"], on="commit"))]
    mid_write_store = None
    for label, trial in trials:
        store = fresh()
        out = trial(store) | {"trial": label}
        for retry in (1, 2):  # the staged file lives ~10-50 ms: if the kill missed it, try again
            if label != "when staged appears" or "mid-write" in out["phase"]:
                break
            store = fresh()
            out = trial(store) | {"trial": f"{label} (retry {retry})"}
        out["versions"] = check_store(store, h1, h2)
        assert (out["versions"] == [1, 2]) == (out["phase"] in ("complete", "after commit, before manifest copy"))
        outcomes.append(out)
        if "mid-write" in out["phase"]:
            mid_write_store = store
    print()
    for o in outcomes:
        print(json.dumps({k: o.get(k) for k in ("trial", "killed_at", "rc", "phase", "versions", "events")}))

    assert any("mid-write" in o["phase"] for o in outcomes), "no kill landed while the data file was being written"
    assert any(o["rc"] == -signal.SIGKILL for o in outcomes)

    # 4. after a crash mid-write the next publish commits version 2 normally (orphan files are ignored)
    assert mid_write_store is not None
    st = Store(mid_write_store)
    again = st.publish("ds", frames["v2"], {"kind": "sft"})
    assert (again.version, again.created) == (2, True)
    assert check_store(mid_write_store, h1, h2) == [1, 2]


# ------------------------------------------------------------------ the run folder


def _cli(recipe: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "run", recipe.name, "--json", "--local"],
        cwd=recipe.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"curate run ended before the kill point: {proc.communicate()[1][-2000:]}")
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            raise AssertionError("kill point never reached")
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return time.perf_counter() - t0


def _write_rows(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            words = "some plain words for the answer " * (3 + i % 5)
            row = {
                "instruction": f"Question {i} on topic {i % 97} ({i * 7919 % 100_003})?",
                "output": f"Answer {i}: {words}",
            }
            f.write(json.dumps(row) + "\n")


@pytest.fixture
def first_run(tmp_path: Path) -> dict[str, Any]:
    """A project folder with one complete ``curate run`` (published as version 1), and a big input for run 2."""
    _write_rows(tmp_path / "a.jsonl", 200)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: rc\noutput: {kind: sft, dir: runs}\n"
        "sources:\n  - {name: a, path: a.jsonl, convert: alpaca_to_messages}\n"
        "publish: {store: store}\n"
    )
    proc = _cli(recipe)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run_id = json.loads(out)["run_id"]
    _write_rows(tmp_path / "a.jsonl", 60_000)  # run 2 reads this: a few seconds of work
    return {"recipe": recipe, "runs": tmp_path / "runs" / "rc", "run_id": run_id, "store": tmp_path / "store"}


def _complete_runs(runs: Path) -> list[str]:
    """The run folders under their final names; each must be complete (its summary names it)."""
    entries = sorted(os.listdir(runs))
    assert all(e == "latest" or not e.startswith(".") or e.endswith(".partial") for e in entries), entries
    assert len([e for e in entries if e.endswith(".partial")]) <= 1, entries
    complete = [e for e in entries if not e.startswith(".") and e != "latest"]
    for run_id in complete:
        assert json.loads((runs / run_id / "summary.json").read_text())["run_id"] == run_id
        assert list((runs / run_id / "data").glob("*.parquet"))
    assert os.readlink(runs / "latest") in complete
    return complete


def _latest_is_new(runs: Path, old: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return os.readlink(runs / "latest") != old
        except OSError:
            return False

    return ready


@pytest.mark.parametrize("point", ["ingesting", "run folder committed", "store version committed"])
def test_sigkill_during_curate_run(first_run: dict[str, Any], point: str) -> None:
    """Kill a ``curate run`` that publishes: while it ingests, right after its run folder is renamed into
    place, right after the store commits its version. The run folder is all-or-nothing, ``latest`` always
    names a complete run, and every store version's ``run_id`` names a complete run folder."""
    runs, first, store = first_run["runs"], first_run["run_id"], first_run["store"]
    ready = {
        # ingest writes shards under OUT/.work/NAME/shards, into a temporary folder renamed when complete
        "ingesting": lambda: any(runs.parent.glob(".work/rc/shards/.*.tmp/records-00000.parquet")),
        "run folder committed": _latest_is_new(runs, first),
        "store version committed": (store / "rc" / "table" / "_delta_log" / COMMIT_V2).exists,
    }[point]
    seconds = _kill_when(_cli(first_run["recipe"]), ready)

    complete = _complete_runs(runs)
    st = Store(store)
    versions = st.versions("rc")
    assert versions in ([1], [1, 2])
    for v in versions:  # lineage: a version's run exists, complete
        assert st.manifest(f"rc@{v}")["run_id"] in complete, (v, complete, sorted(os.listdir(runs)))
    if point == "ingesting":
        assert complete == [first] and os.readlink(runs / "latest") == first and versions == [1]
        assert not list(runs.glob(".*.partial"))  # the run folder is only staged once every shard is done
        shards = runs.parent / ".work" / "rc" / "shards"
        for d in shards.iterdir():  # the half-written shard never took a real key
            assert d.name.startswith(".") or (d / "shard.json").exists(), d
    if point == "store version committed":
        assert versions == [1, 2]
    print(f"\n{point}: killed {seconds:.2f} s in; runs {sorted(os.listdir(runs))}; store versions {versions}")
