"""Flow benchmark: 200,000 mixed-format rows curated end to end, Prefect flow vs ``--local``.

Input: the ingest benchmark's synthetic Alpaca rows (cached in ``.bench/``), split into 10 files in
four formats (JSONL, gzipped JSONL, Parquet, CSV), 1% of rows repeated so dedup has work. Recipe:
``alpaca_to_messages``, the instruction-defect filter, exact and near dedup, publish to a store.

Each variant runs in a fresh interpreter (started by a small launcher, so peak RSS is its own) on a
fresh output folder (no cache):

- ``local``: ``run_recipe`` in-process, sequential;
- ``flow_1thread``: the flow on a one-thread task runner (same parallelism as local: the difference
  is orchestration: task runs, result persistence, artifacts, API calls);
- ``flow``: the flow on the default thread runner (files ingested in parallel);

all against one local Prefect server started once with ``curate server up`` (flows.server), which the
children find by themselves as ``curate run`` does (``flows.environment.choose_api``, no
``PREFECT_API_URL``), plus one ``flow_cold`` run with no server anywhere (Prefect starts its temporary
server). Prints JSON: medians per variant, ``overhead_ratio`` = flow / local - 1 (the flow as
``curate run`` runs it; goal: under 0.05), ``fixed_overhead_s`` = flow_1thread - local (orchestration
alone at equal parallelism; goal: under 3 s), the cold-start cost, peak RSS, CPU seconds of each run
and of the server while it ran (steadier than wall time on a shared machine), and each executor's
per-step timers (``steps`` in the run's result) with the time outside the steps (imports, planning,
flow-run start and finish).

Usage:
    .venv/bin/python benchmarks/bench_flow.py                    # 200,000 rows, 3 rounds
    .venv/bin/python benchmarks/bench_flow.py --rows 4000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _launcher import Launcher
from bench_ingest import dataset

REPO = Path(__file__).resolve().parent.parent
GOAL_OVERHEAD = 0.05
GOAL_FIXED_S = 3.0

RECIPE = """\
name: flowbench
output: {{kind: sft, dir: {out}}}
sources:
  - {{name: jsonl, path: "{inp}/*.jsonl", convert: alpaca_to_messages}}
  - {{name: gz, path: "{inp}/*.jsonl.gz", convert: alpaca_to_messages}}
  - {{name: parquet, path: "{inp}/*.parquet", convert: alpaca_to_messages}}
  - {{name: csv, path: "{inp}/*.csv", convert: alpaca_to_messages}}
stages:
  - {{type: filter, rule: instruction_defects}}
  - {{type: exact_dedup}}
  - {{type: near_dedup, threshold: 0.8}}
publish: {{store: {out}/store}}
"""


def mixed_inputs(rows: int, folder: Path) -> None:
    """Split the cached synthetic rows into 10 files of four formats (1% of rows repeated)."""
    import polars as pl

    src = pl.read_ndjson(dataset(rows, seed=7))
    src = pl.concat([src, src.head(rows // 100)])
    folder.mkdir(parents=True, exist_ok=True)
    parts = src.with_row_index("i").with_columns((pl.col("i") % 10).alias("f")).partition_by("f", as_dict=True)
    for (f,), part in sorted(parts.items()):
        part = part.drop("i", "f")
        if f < 4:
            part.write_ndjson(folder / f"part{f}.jsonl")
        elif f < 6:
            import gzip

            (folder / f"part{f}.jsonl.gz").write_bytes(gzip.compress(part.write_ndjson().encode(), 1))
        elif f < 8:
            part.write_parquet(folder / f"part{f}.parquet")
        else:
            part.write_csv(folder / f"part{f}.csv")


def child(recipe: str, variant: str) -> None:
    """One measured run in this process; prints JSON with the curation wall time."""
    from schemas.recipe_loader import load_recipe_file

    t0 = time.perf_counter()
    if variant != "local":
        from flows.environment import choose_api

        choose_api()  # what `curate run` does: PREFECT_API_URL, else the running local server, else temporary
    if variant == "local":
        from curate.engine.local import run_recipe

        s = run_recipe(load_recipe_file(recipe), show_progress=False).summary
    else:
        from flows.curation import run_flow

        s = run_flow(Path(recipe), runner="thread:1" if variant == "flow_1thread" else "thread")
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "steps": {k: v["seconds"] for k, v in s.get("steps", {}).items()},
                "input_rows": s["input_rows"],
                "output_records": s["output_records"],
                "balanced": s["balanced"],
                "content_hash": s["published"]["content_hash"],
            }
        )
    )


def step_medians(runs: list[dict]) -> dict[str, float]:
    """Median seconds per step over ``runs`` (each run's ``steps``: step -> seconds)."""
    names = {k for r in runs for k in r["steps"]}
    return {k: round(statistics.median(r["steps"].get(k, 0.0) for r in runs), 3) for k in sorted(names)}


def server_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) the server process has used so far (Linux; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("RECIPE", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    launcher = Launcher()
    server = None
    try:
        sys.path.insert(0, str(REPO))
        from curate.background import free_port

        inp = tmp / "input"
        mixed_inputs(args.rows, inp)
        from flows.server import server_up

        home = tmp / "prefect-home"
        env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", CURATE_PREFECT_HOME=str(home))
        env.pop("PREFECT_API_URL", None)
        os.environ.pop("PREFECT_API_URL", None)
        server = server_up(home, port=free_port(), wait=120)
        results: dict[str, list[dict]] = {"local": [], "flow_1thread": [], "flow": [], "flow_cold": []}
        plan = [v for _ in range(args.repeats) for v in ("local", "flow_1thread", "flow")] + ["flow_cold"]
        for n, variant in enumerate(plan):
            out = tmp / f"run{n}"
            recipe = tmp / f"r{n}.yaml"
            recipe.write_text(RECIPE.format(out=out, inp=inp))
            run_env = dict(env)
            if variant == "flow_cold":  # no server to find: Prefect starts its temporary one
                run_env["CURATE_PREFECT_HOME"] = str(tmp / "no-server")
                run_env["PREFECT_HOME"] = str(tmp / f"prefect-cold{n}")
            stdout = str(tmp / f"out{n}.txt")
            cpu0 = server_cpu_s(server.get("pid"))
            r = launcher.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", str(recipe), variant], run_env, stdout
            )
            text = Path(stdout).read_text()
            if r["code"] != 0:
                raise SystemExit(f"{variant} failed:\n{text[-3000:]}")
            res = json.loads(text.strip().splitlines()[-1])
            cpu1 = server_cpu_s(server.get("pid"))
            res.update(peak_rss_mb=round(r["maxrss"] / 1024, 1), process_wall_s=round(r["wall"], 2))
            res.update(cpu_s=round(r["cpu"], 2), server_cpu_s=round(cpu1 - cpu0, 2) if cpu0 and cpu1 else None)
            res["outside_steps_s"] = round(res["seconds"] - sum(res["steps"].values()), 3)
            results[variant].append(res)
            shutil.rmtree(out, ignore_errors=True)
            print(f"{variant}: {res['seconds']:.1f} s, {res['peak_rss_mb']} MB", file=sys.stderr)

        def med(v: str, k: str = "seconds") -> float:
            return round(statistics.median(r[k] for r in results[v]), 3)

        hashes = {r["content_hash"] for rs in results.values() for r in rs}
        overhead = med("flow") / med("local") - 1  # the measure: the flow as `curate run` runs it
        overhead_same = med("flow_1thread") / med("local") - 1  # orchestration alone, same parallelism
        report = {
            "benchmark": "flow_end_to_end",
            "input_rows": results["local"][0]["input_rows"],
            "files": 10,
            "formats": ["jsonl", "jsonl.gz", "parquet", "csv"],
            "repeats": args.repeats,
            "seconds_median": {v: med(v) for v in ("local", "flow_1thread", "flow")},
            "flow_cold_seconds": med("flow_cold"),
            "cold_start_extra_s": round(med("flow_cold") - med("flow"), 3),
            "overhead_ratio": round(overhead, 4),
            "overhead_share_of_flow_run": round(1 - med("local") / med("flow"), 4),
            "overhead_ratio_one_thread": round(overhead_same, 4),
            "fixed_overhead_s": round(med("flow_1thread") - med("local"), 3),
            "overhead_share_one_thread": round(1 - med("local") / med("flow_1thread"), 4),
            "speedup_flow_threads_vs_local": round(med("local") / med("flow"), 3),
            "peak_rss_mb_median": {v: med(v, "peak_rss_mb") for v in results},
            # CPU seconds of the run's process, and of the server while it ran: steadier than wall
            # time on a shared machine, and what orchestration costs when cores are busy
            "cpu_s_median": {v: med(v, "cpu_s") for v in ("local", "flow_1thread", "flow")},
            "server_cpu_s_median": {
                v: med(v, "server_cpu_s") if all(r["server_cpu_s"] is not None for r in results[v]) else None
                for v in ("local", "flow_1thread", "flow")
            },
            # per step (each executor's own timers; the flow's include orchestration), and the rest:
            # imports, planning, flow-run start and finish
            "step_seconds_median": {v: step_medians(results[v]) for v in ("local", "flow_1thread")},
            "outside_steps_s_median": {v: med(v, "outside_steps_s") for v in ("local", "flow_1thread", "flow")},
            "same_dataset_everywhere": len(hashes) == 1,
            "goal_overhead_ratio": GOAL_OVERHEAD,
            "goal_fixed_overhead_s": GOAL_FIXED_S,
            "goal_met": overhead < GOAL_OVERHEAD and med("flow_1thread") - med("local") < GOAL_FIXED_S,
            "baseline": "curate run --local on the same input (overhead_ratio = flow / local - 1, the flow on its "
            "default thread runner; overhead_ratio_one_thread = the flow on one thread / local - 1)",
        }
        print(json.dumps(report, indent=2))
    finally:
        launcher.close()
        if server is not None:
            from flows.server import server_down

            server_down(tmp / "prefect-home")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
