"""Ingest benchmark: synthetic Alpaca JSONL -> ``alpaca_to_messages`` -> SFT Parquet, single-threaded.

Generates N synthetic Alpaca rows (deterministic for a seed; cached under ``.bench/`` in the repo
root), then runs the real pipeline (:func:`curate.engine.local.run_recipe` with ``report=False``, on a recipe written to a temp
folder) in a fresh subprocess with ``POLARS_MAX_THREADS=1``, K times. Each run's throughput is the
input rows divided by the pipeline's wall time (ingest, convert, validate, ids, Parquet write;
interpreter start-up and imports are reported separately as ``process_wall_s``); its peak RSS is the
child process's ``ru_maxrss`` (from ``os.wait4``, so each run is measured on its own). Prints one
JSON object with the medians and the goal (100k rows/s and < 2 GiB at 1 thread).

Usage:
    .venv/bin/python benchmarks/bench_ingest.py                        # 1,000,000 rows, 3 runs
    .venv/bin/python benchmarks/bench_ingest.py --rows 2000 --repeats 1
    .venv/bin/python benchmarks/bench_ingest.py --profile prof.out     # cProfile one run in the child
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".bench"
GOAL_ROWS_PER_S = 100_000
GOAL_PEAK_RSS_MB = 2048
GEN_VERSION = 3  # bump when the generator changes, so cached files are not reused

# Common English words, most frequent first, plus a few non-ASCII ones (UTF-8 paths get exercised). No
# quotes, backslashes or control characters, so the generated text goes into JSON without escaping.
_WORDS = (
    "the of and to a in is it you that he was for on are with as I his they be at one have this from or "
    "had by hot word but what some we can out other were all there when up use your how said an each she "
    "which do their time if will way about many then them write would like so these her long make thing see "
    "him two has look more day could go come did number sound no most people my over know water than call "
    "first who may down side been now find any new work part take get place made live where after back "
    "little only round man year came show every good me give our under name very through just form "
    "sentence great think say help low line differ turn cause much mean before move right boy old too same "
    "tell does set three want air well also play small end put home read hand port large spell add even "
    "land here must big high such follow act why ask men change went light kind off need house picture try "
    "us again animal point mother world near build self earth father head stand own page should country "
    "found answer school grow study still learn plant cover food sun four between state keep eye never last "
    "let thought city tree cross farm hard start might story saw far sea draw left late run while press "
    "close night real life few north open seem together next white children begin got walk example ease "
    "paper group always music those both mark often letter until mile river car feet care second book carry "
    "took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color "
    "face wood main enough plain girl usual young ready above ever red list though feel talk bird soon body "
    "dog family direct pose leave song measure door product black short numeral class wind question happen "
    "complete ship area half rock order fire south problem piece told knew pass since top whole king space "
    "heard best hour better during hundred five remember step early hold west ground interest reach fast "
    "verb sing listen six table travel less morning ten simple several vowel toward war lay against pattern "
    "slow center love person money serve appear road map rain rule govern pull cold notice voice unit power "
    "town fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest correct "
    "able pound done beauty drive stood contain front teach week final gave green quick develop ocean warm "
    "free minute strong special mind behind clear tail produce fact street inch multiply nothing course stay "
    "wheel full force blue object decide surface deep moon island foot system busy test record boat common "
    "gold possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat "
    "snow tire bring yes distant fill east paint language among database function server request error "
    "customer account report python query cache network model training dataset token memory thread file"
)
_VOCAB = _WORDS.split()
_NON_ASCII = ("café", "naïve", "résumé", "über", "jalapeño", "déjà", "São", "Zürich")
_NON_ASCII_P = 0.00045  # per word: about 5% of rows carry a non-ASCII character
_VERBS = (
    "Explain",
    "Describe",
    "Summarize",
    "Write",
    "List",
    "Give",
    "Suggest",
    "Rewrite",
    "Classify",
    "Compare",
    "Translate",
    "Outline",
    "Draft",
    "Identify",
    "Convert",
)


def _corpus(rng: random.Random, words: int) -> tuple[str, list[int]]:
    """A long pseudo-English text and the start offset of every word (plus the end)."""
    zipf = [1.0 / (rank + 1) ** 0.9 for rank in range(len(_VOCAB))]  # Zipf-like frequencies
    scale = (1 - _NON_ASCII_P) / sum(zipf)
    weights = [w * scale for w in zipf] + [_NON_ASCII_P / len(_NON_ASCII)] * len(_NON_ASCII)
    picked = rng.choices(_VOCAB + list(_NON_ASCII), weights, k=words)
    ends = set(rng.sample(range(words), words // 12))  # ~12-word sentences
    commas = set(rng.sample(range(words), words // 20))
    out, starts, pos, cap = [], [], 0, True
    for i, w in enumerate(picked):
        if cap:
            w = w[:1].upper() + w[1:]
        cap = i in ends
        w = w + ("." if cap else "," if i in commas else "")
        starts.append(pos)
        out.append(w)
        pos += len(w) + 1
    starts.append(pos)
    return " ".join(out) + " ", starts


def generate(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` synthetic Alpaca rows to ``path`` (deterministic for ``seed``).

    Lengths: instruction 10-20 words, input empty for half of the rows else 15-25 words, output
    60-120 words; texts are word-aligned slices of one random pseudo-English corpus.
    """
    rng = random.Random(seed)
    corpus, starts = _corpus(rng, 2_000_000)
    nwords = len(starts) - 1
    ri, rand = rng.randint, rng.random

    def words(n: int) -> str:
        a = ri(0, nwords - n)
        return corpus[starts[a] : starts[a + n] - 1].rstrip(".,")

    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")  # concurrent runs never share it
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        buf: list[str] = []
        for _ in range(rows):
            instruction = f"{_VERBS[ri(0, len(_VERBS) - 1)]} {words(ri(9, 19))}."
            inp = words(ri(15, 25)) if rand() < 0.5 else ""
            output = words(ri(60, 120))
            output = output[:1].upper() + output[1:] + "."
            buf.append(f'{{"instruction": "{instruction}", "input": "{inp}", "output": "{output}"}}\n')
            if len(buf) >= 50_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    tmp.replace(path)


def dataset(rows: int, seed: int, cache: Path = CACHE) -> Path:
    """The cached input file for ``rows``/``seed`` in ``cache``, generated on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"alpaca_{rows}_seed{seed}_v{GEN_VERSION}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, rows, seed)
        mb = path.stat().st_size / 1e6
        print(f"generated {path.name}: {mb:.0f} MB in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


RECIPE = """\
name: bench
output: {{kind: sft, dir: runs}}
sources:
  - name: alpaca
    path: {path}
    format: jsonl
    convert: alpaca_to_messages
"""


def child(recipe: str, out: str, profile: str | None, report: bool = False) -> None:
    """Run the pipeline once in this process and print its result as JSON (runs in the subprocess)."""
    from curate.engine.local import run_recipe
    from schemas.recipe_loader import load_recipe_file

    doc = load_recipe_file(recipe)
    t0 = time.perf_counter()
    if profile:
        import cProfile

        prof = cProfile.Profile()
        result = prof.runcall(run_recipe, doc, Path(out), show_progress=False, report=report)
        prof.dump_stats(profile)
    else:
        result = run_recipe(doc, Path(out), show_progress=False, report=report)
    seconds = time.perf_counter() - t0
    s = result.summary
    print(
        json.dumps(
            {
                "seconds": seconds,
                "input_rows": s["input_rows"],
                "kept": s["kept"],
                "output_records": s["output_records"],
                "quarantined": s["quarantined"],
                "balanced": s["balanced"],
            }
        )
    )


def run_once(recipe: Path, out: Path, profile: str | None = None) -> dict[str, float | int]:
    """One measured run in a fresh interpreter with ``POLARS_MAX_THREADS=1``."""
    env = dict(os.environ, POLARS_MAX_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(recipe), str(out)]
    if profile:
        cmd += ["--profile", profile]
    with tempfile.TemporaryFile() as stdout:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        text = stdout.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed (exit {proc.returncode}):\n{text}")
    res = json.loads(text.strip().splitlines()[-1])
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss_mb = usage.ru_maxrss / (1 << 20) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return {
        "seconds": round(res["seconds"], 3),
        "process_wall_s": round(wall, 3),
        "rows_per_second": round(res["input_rows"] / res["seconds"], 1),
        "peak_rss_mb": round(rss_mb, 1),
        "input_rows": res["input_rows"],
        "output_records": res["output_records"],
        "quarantined": res["quarantined"],
        "balanced": res["balanced"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="synthetic rows (default 1,000,000)")
    ap.add_argument("--repeats", type=int, default=3, help="measured runs; medians are reported (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=CACHE, help="where generated inputs are kept (default .bench/)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the (last) run and write pstats to FILE")
    ap.add_argument("--child", nargs=2, metavar=("RECIPE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child, profile=args.profile)
        return 0
    if args.rows < 1 or args.repeats < 1:
        ap.error("--rows and --repeats must be positive")

    data = dataset(args.rows, args.seed, args.cache_dir)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        recipe = Path(tmp) / "bench.yaml"
        recipe.write_text(RECIPE.format(path=json.dumps(str(data))), encoding="utf-8")
        for i in range(args.repeats):
            out = Path(tmp) / f"out{i}"
            prof = args.profile if args.profile and i == args.repeats - 1 else None
            runs.append(run_once(recipe, out, prof))
            shutil.rmtree(out, ignore_errors=True)  # keep disk use to one run's output
    rps = statistics.median(r["rows_per_second"] for r in runs)
    rss = statistics.median(r["peak_rss_mb"] for r in runs)
    print(
        json.dumps(
            {
                "benchmark": "ingest_alpaca_to_messages",
                "rows": args.rows,
                "input_bytes": data.stat().st_size,
                "rows_per_second_median": round(rps, 1),
                "peak_rss_mb_median": round(rss, 1),
                "seconds_median": statistics.median(r["seconds"] for r in runs),
                "runs": runs,
                "goal_rows_per_second": GOAL_ROWS_PER_S,
                "goal_peak_rss_mb": GOAL_PEAK_RSS_MB,
                "ratio_vs_goal": round(rps / GOAL_ROWS_PER_S, 3),
                "meets_goal": rps >= GOAL_ROWS_PER_S and rss <= GOAL_PEAK_RSS_MB,
                "threads": 1,
                "run_report": "off: the markdown report and its plots (a fixed ~1 s) are not ingest work",
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
