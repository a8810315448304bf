"""Scale benchmark: N synthetic Alpaca rows (10M by default, about 5.7 GB of JSONL) through one real run.

Ingest (``alpaca_to_messages`` -> SFT), exact dedup, near dedup (MinHash LSH, exact verification)
and publish (splits, split-leak check, Delta commit, card) in ONE ``curate run --local`` of the real
CLI, in a child process started by a small launcher-style parent. The input is split into
``--files`` JSONL files (one shard each, so per-shard work stays bounded) and carries planted
duplicates: about ``--exact`` of the rows repeat an earlier row (half verbatim, half with case and
spacing changes that normalization removes) and about ``--near`` repeat an earlier row with one word
of its output replaced (5-word shingles: Jaccard about 0.9 with the original).

The parent samples the child's ``/proc/PID/status`` (VmRSS) every 0.2 s and watches the run's work
folder for the end of each step (all shards written, all sketches, the decision, every finished part,
the run folder's summary), so it reports per phase: seconds, rows/s and the peak RSS seen. The child's
overall peak RSS is its ``ru_maxrss`` from ``os.wait4``. The per-stage seconds of the run's own summary
(exact and near dedup inside the decision) are reported too. Prints one JSON object.

Corpora are cached under ``.bench/`` (keyed by every parameter); the run's outputs go to a temporary
folder that is deleted afterwards (``--keep`` keeps it).

Usage:
    .venv/bin/python benchmarks/bench_scale.py                       # 10,000,000 rows, 20 files
    .venv/bin/python benchmarks/bench_scale.py --rows 1000000 --files 4
    .venv/bin/python benchmarks/bench_scale.py --rows 3000 --files 2   # smoke size
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".bench"
GEN_VERSION = 2  # bump when the generator changes, so cached corpora are not reused
GOAL_PEAK_RSS_MB = 4096
sys.path.insert(0, str(HERE))

RECIPE = """\
name: scale
output: {{kind: sft, dir: runs}}
sources:
  - name: alpaca
    path: {path}
    format: jsonl
    convert: alpaca_to_messages
stages:
  - type: exact_dedup
  - type: near_dedup
publish:
  store: {store}
"""


# ---------------------------------------------------------------- data


def generate(folder: Path, rows: int, files: int, seed: int, exact: float, near: float) -> dict:
    """Write ``rows`` Alpaca rows over ``files`` JSONL files in ``folder``; returns what was planted.

    Rows are drawn like ``bench_ingest.generate`` (instruction 10-20 words, input empty for half,
    output 60-120 words made of four slices of the corpus text, so unplanted rows are not near
    duplicates of each other); a planted duplicate copies a row from a reservoir of 20,000 earlier ones.
    """
    from bench_ingest import _VERBS, _VOCAB, _corpus  # the same pseudo-English text as the ingest benchmark

    rng = random.Random(seed)
    corpus, starts = _corpus(rng, 2_000_000)
    nwords = len(starts) - 1
    ri, rand = rng.randint, rng.random

    def words(n: int) -> str:
        a = ri(0, nwords - n)
        return corpus[starts[a] : starts[a + n] - 1].rstrip(".,")

    reservoir: list[tuple[str, str, str]] = []
    planted = {"exact_verbatim": 0, "exact_cosmetic": 0, "near": 0}
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    done = 0
    for k in range(files):
        n = min(per_file, rows - done)
        done += n
        tmp = folder / f".part-{k:03d}.jsonl.partial"
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            buf: list[str] = []
            for _ in range(n):
                r = rand()
                if reservoir and r < exact:
                    instruction, inp, output = reservoir[ri(0, len(reservoir) - 1)]
                    if r < exact / 2:
                        planted["exact_verbatim"] += 1
                    else:  # what normalization removes: case and extra spaces
                        instruction, output = instruction.upper(), output.replace(" ", "  ", 3)
                        planted["exact_cosmetic"] += 1
                elif reservoir and r < exact + near:
                    instruction, inp, output = reservoir[ri(0, len(reservoir) - 1)]
                    toks = output.split(" ")
                    toks[ri(1, len(toks) - 2)] = _VOCAB[ri(0, len(_VOCAB) - 1)]
                    output = " ".join(toks)
                    planted["near"] += 1
                else:
                    instruction = f"{_VERBS[ri(0, len(_VERBS) - 1)]} {words(ri(9, 19))}."
                    inp = words(ri(15, 25)) if rand() < 0.5 else ""
                    # four short slices: one long slice of a 2M-word text would overlap heavily with
                    # others at millions of rows (natural near-duplicates and an explosion of LSH candidates)
                    output = ". ".join(words(ri(15, 30)) for _ in range(4))
                    output = output[:1].upper() + output[1:] + "."
                    if len(reservoir) < 20_000:
                        reservoir.append((instruction, inp, output))
                    elif rand() < 0.01:
                        reservoir[ri(0, len(reservoir) - 1)] = (instruction, inp, output)
                buf.append(f'{{"instruction": "{instruction}", "input": "{inp}", "output": "{output}"}}\n')
                if len(buf) >= 50_000:
                    f.write("".join(buf))
                    buf.clear()
            f.write("".join(buf))
        tmp.replace(folder / f"part-{k:03d}.jsonl")
    return planted


def dataset(rows: int, files: int, seed: int, exact: float, near: float, cache: Path = CACHE) -> tuple[Path, dict]:
    """The cached input folder for these parameters (generated on first use) and what it plants."""
    folder = cache / f"scale_{rows}_f{files}_seed{seed}_e{exact}_n{near}_v{GEN_VERSION}"
    meta = folder / "planted.json"
    if not meta.exists():
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        planted = generate(folder, rows, files, seed, exact, near)
        meta.write_text(json.dumps(planted))
        gb = sum(p.stat().st_size for p in folder.glob("*.jsonl")) / 1e9
        print(f"generated {folder.name}: {gb:.2f} GB in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return folder, json.loads(meta.read_text())


# ---------------------------------------------------------------- measuring the child


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Watcher:
    """Samples a child's RSS and notes when each step of the run has finished (from its work folder)."""

    PHASES = ("ingest", "sketch", "decide", "finish", "assemble", "publish")

    def __init__(self, pid: int, out: Path, files: int):
        self.pid, self.out, self.files = pid, out, files
        self.work = out / ".work" / "scale"
        self.t0 = time.perf_counter()
        self.ends: dict[str, float] = {}
        self.peaks: dict[str, float] = {p: 0.0 for p in self.PHASES}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _done(self, phase: str) -> bool:
        w = self.work
        if phase == "ingest":
            return len(list(w.glob("shards/*/shard.json"))) >= self.files
        if phase == "sketch":
            return len(list(w.glob("sketches/*.npz"))) >= self.files
        if phase == "decide":
            return bool(list(w.glob("decisions/*/decision.json")))
        if phase == "finish":
            dec = list(w.glob("decisions/*/decision.json"))
            if not dec:
                return False
            parts = len(json.loads(dec[0].read_text())["parts"])
            return len(list(w.glob("finished/*/part-*.json"))) >= parts
        if phase == "assemble":
            return (self.out / "scale" / "latest" / "summary.json").exists()
        return False

    def _loop(self) -> None:
        phase = 0
        while not self.stop.is_set():
            rss = _rss_mb(self.pid)
            name = self.PHASES[min(phase, len(self.PHASES) - 1)]
            if rss is not None:
                self.peaks[name] = max(self.peaks[name], rss)
            while phase < len(self.PHASES) - 1 and self._done(self.PHASES[phase]):
                done = self.PHASES[phase]
                self.ends[done] = time.perf_counter() - self.t0
                # progress on stderr, so a long run that is stopped still tells how far it got
                print(f"{done} done at {self.ends[done]:.0f} s, peak RSS {self.peaks[done]:.0f} MB", file=sys.stderr)
                phase += 1
            time.sleep(0.2)

    def finish(self) -> float:
        self.stop.set()
        self.thread.join()
        wall = time.perf_counter() - self.t0
        self.ends["publish"] = wall  # publish and cleanup run until the child exits
        return wall


def run_child(recipe: Path, out: Path, files: int) -> tuple[dict, dict]:
    """``curate run RECIPE --local --json`` in a child; returns its summary and the measurements."""
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    cmd = [str(Path(sys.executable).with_name("curate")), "run", str(recipe), "--local", "--json", "--out", str(out)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=recipe.parent)
        watch = Watcher(proc.pid, out, files)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = watch.finish()
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        text, err = stdout.read().decode(), stderr.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"curate run failed (exit {proc.returncode}):\n{err[-4000:]}\n{text[-2000:]}")
    summary = json.loads(text[text.index("{") :])
    cpu = usage.ru_utime + usage.ru_stime
    return summary, {"wall_s": wall, "cpu_s": cpu, "maxrss_mb": usage.ru_maxrss / 1024, "watch": watch}


def report(summary: dict, m: dict, rows: int, planted: dict, input_bytes: int) -> dict:
    watch: Watcher = m["watch"]
    timers = summary.get("steps") or {}  # the run's own per-step timers (curate run --local --json)
    step_of = {"finish": "finish-part"}
    phases, prev = {}, 0.0
    for p in Watcher.PHASES:
        timer = timers.get(step_of.get(p, p))
        end = watch.ends.get(p)
        if timer is None and end is None:
            continue
        secs = timer["seconds"] if timer else end - prev  # type: ignore[operator]
        phases[p] = {
            "seconds": round(secs, 2),
            "rows_per_second": round(rows / secs, 1) if secs > 0 else None,
            "peak_rss_mb": round(watch.peaks[p], 1),  # sampled every 0.2 s (0 for a shorter phase)
            "process_peak_after_mb": timer["peak_rss_mb"] if timer else None,  # ru_maxrss when it ended
        }
        prev = end if end is not None else prev
    stages = {
        s["name"]: {"seconds": s["seconds"], "removed": s["removed"], "stats": s.get("stats", {})}
        for s in summary.get("stages", [])
    }
    for s in stages.values():
        s["stats"] = {k: v for k, v in s["stats"].items() if k not in ("key",)}
    pub = summary.get("published") or {}
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "benchmark": "scale",
        "rows": rows,
        "input_bytes": input_bytes,
        "planted": planted,
        "summary": {k: summary.get(k) for k in ("input_rows", "kept", "quarantined", "duplicates", "dropped")}
        | {"balanced": summary.get("balanced"), "duplicates_by_reason": summary.get("duplicates_by_reason")},
        "published": {k: pub.get(k) for k in ("ref", "rows_per_split", "split_leaks", "content_hash")},
        "peak_rss_mb": round(m["maxrss_mb"], 1),
        "goal_peak_rss_mb": GOAL_PEAK_RSS_MB,
        "meets_goal": m["maxrss_mb"] < GOAL_PEAK_RSS_MB and bool(summary.get("balanced")),
        "wall_s": round(m["wall_s"], 1),
        "cpu_per_wall": round(m["cpu_s"] / m["wall_s"], 3),
        "rows_per_second": round(rows / m["wall_s"], 1),
        "phases": phases,
        "stages": stages,
        "load_average": load,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="synthetic rows (default 10,000,000)")
    ap.add_argument("--files", type=int, default=20, help="input JSONL files, one shard each (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact", type=float, default=0.02, help="fraction of planted exact duplicates")
    ap.add_argument("--near", type=float, default=0.02, help="fraction of planted near duplicates")
    ap.add_argument("--cache-dir", type=Path, default=CACHE, help="where generated inputs are kept (default .bench/)")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the run writes (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the run's outputs")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.files < 1:
        ap.error("--rows and --files must be positive")
    folder, planted = dataset(args.rows, args.files, args.seed, args.exact, args.near, args.cache_dir)
    input_bytes = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=args.work_dir))
    try:
        recipe = tmp / "scale.yaml"
        recipe.write_text(
            RECIPE.format(path=json.dumps(str(folder / "*.jsonl")), store=json.dumps(str(tmp / "store"))),
            encoding="utf-8",
        )
        summary, m = run_child(recipe, tmp / "runs", args.files)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report(summary, m, args.rows, planted, input_bytes), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
