"""Argilla benchmark: local server start-up, push throughput, and UI search latency on 10,000 records.

Measures, against the real argilla-server 2.8.0 run by ``curate argilla up`` (its venv must exist:
``make argilla-server``, or set ``CURATE_ARGILLA_VENV``):

- ``up_fresh_home_s``: ``curate argilla up`` on an empty home (database migration, owner creation,
  server start) until the API answers, as a CLI process (interpreter start-up included);
- ``up_existing_home_s``: the same after ``curate argilla down`` on that home (median of repeats);
- ``push``: :func:`curate.annotate.push.push` of N synthetic preference records (two responses of
  ~60 words each): records/s, including dataset creation; ``repush`` the same records again
  (all updates, nothing created);
- ``ui_search``: the request the web UI sends when an annotator searches (``POST
  /api/v1/me/datasets/{id}/records/search`` with a text query, the *pending* status filter and the
  UI's includes, 10 records per page), for different words: median and p95 in ms; ``ui_queue`` the
  same without a text query (the annotator's queue, ordered per user).

Usage:
    .venv/bin/python benchmarks/bench_argilla.py                    # 10,000 records
    .venv/bin/python benchmarks/bench_argilla.py --records 500 --queries 5 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

_WORD_TEXT = """the model answer data river mountain table window garden music number letter planet ocean forest
simple quick careful honest useful polite clear short long correct wrong example reason question python recipe
travel weather history science energy market health sleep coffee school city train"""
WORDS = _WORD_TEXT.split()


def corpus(n: int, seed: int = 0) -> object:
    import polars as pl

    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k)) + "."

    def msg(role: str, content: str) -> list[dict[str, str]]:
        return [{"role": role, "content": content}]

    return pl.DataFrame(
        {
            "prompt": [msg("user", f"Question {i}: {text(20)}") for i in range(n)],
            "chosen": [msg("assistant", text(60)) for _ in range(n)],
            "rejected": [msg("assistant", text(60)) for _ in range(n)],
        }
    )


def cli_up(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "argilla", "up", "--port", "0", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"curate argilla up failed: {proc.stderr}")
    return wall


def cli_down(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "curate.cli", "argilla", "down"], env=env, cwd=REPO, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=30, help="Search requests timed (different words).")
    ap.add_argument("--repeats", type=int, default=3, help="Restarts timed on the existing home.")
    args = ap.parse_args()

    from curate.annotate.server import ArgillaHome

    venv = os.environ.get("CURATE_ARGILLA_VENV") or str(REPO / ".argilla-server-venv")
    with tempfile.TemporaryDirectory(prefix="bench-argilla-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("ARGILLA_API_URL", "ARGILLA_API_KEY")}
        env.update(CURATE_ARGILLA_HOME=tmp, CURATE_ARGILLA_VENV=venv)
        home = ArgillaHome(tmp, venv=venv)
        if not home.venv_ready():
            raise SystemExit(f"no argilla-server venv at {venv}: run `make argilla-server`")
        try:
            results = measure(args, env, home)
        finally:
            cli_down(env)  # never leave a server behind, even when a step fails
        leaked = sorted(p.name for p in (Path(tmp) / "tmp").iterdir()) if (Path(tmp) / "tmp").exists() else []
    print(json.dumps({**results, "temp_dirs_left": leaked}, indent=2))


def measure(args: argparse.Namespace, env: dict[str, str], home: Any) -> dict[str, Any]:
    """Start-up times, push throughput and UI search latency (the server is left running)."""
    import httpx

    from curate.annotate.client import Connection
    from curate.annotate.push import push
    from schemas.annotation import AnnotationSpec

    fresh = cli_up(env)
    existing = []
    for _ in range(args.repeats):
        cli_down(env)
        existing.append(cli_up(env))
    status = home.status()
    creds = home.credentials()
    assert creds is not None
    conn = Connection(status["url"], creds.api_key, "local")

    df = corpus(args.records)
    spec = AnnotationSpec(questions=["ranking", "rationale"])
    first = push(conn, df, "bench", spec, dataset_ref="bench@1")
    again = push(conn, df, "bench", spec, dataset_ref="bench@1")

    ds_id = conn.client().datasets("bench", workspace=first.workspace).id
    url = f"{conn.url}/api/v1/me/datasets/{ds_id}/records/search"
    params = {"include": ["responses", "suggestions"], "offset": 0, "limit": 10}
    pending = {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]}
    rng = random.Random(1)
    with httpx.Client(headers=conn.headers(), timeout=60) as http:

        def timed(body: dict) -> tuple[float, int]:
            t0 = time.perf_counter()
            r = http.post(url, params=params, json=body)
            ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            return ms, int(r.json()["total"])

        timed({"filters": {"and": [pending]}})  # warm-up
        search, hits = [], []
        for _ in range(args.queries):
            words = " ".join(rng.sample(WORDS, 2))
            ms, total = timed({"query": {"text": {"q": words}}, "filters": {"and": [pending]}})
            search.append(ms)
            hits.append(total)
        queue = [timed({"filters": {"and": [pending]}})[0] for _ in range(max(3, args.queries // 3))]

    def p95(xs: list[float]) -> float:
        return round(sorted(xs)[max(0, round(0.95 * len(xs)) - 1)], 1)

    return {
        "benchmark": "argilla",
        "server": f"argilla-server {status.get('version')}, search engine {status.get('search_engine')}",
        "records": args.records,
        "up_fresh_home_s": round(fresh, 2),
        "up_existing_home_s": round(statistics.median(existing), 2),
        "up_existing_home_runs_s": [round(x, 2) for x in existing],
        "push": {
            "records": first.records,
            "created": first.created,
            "seconds": first.seconds,
            "records_per_s": round(first.records / first.seconds, 1),
        },
        "repush": {
            "created": again.created,
            "updated": again.updated,
            "seconds": again.seconds,
            "records_per_s": round(again.records / again.seconds, 1),
        },
        "ui_search": {
            "queries": len(search),
            "median_ms": round(statistics.median(search), 1),
            "p95_ms": p95(search),
            "median_hits": statistics.median(hits),
        },
        "ui_queue": {"median_ms": round(statistics.median(queue), 1), "p95_ms": p95(queue)},
    }


if __name__ == "__main__":
    main()
