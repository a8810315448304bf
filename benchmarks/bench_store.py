"""Store benchmark: publish N SFT rows as a Delta version, then load them back, each in a fresh process.

Generates N realistic SFT records (deterministic for a seed; cached as Parquet under ``.bench/``):
content-hash ``id``s (:func:`schemas.ids.id_series`), ``messages`` with a user turn of ~50 words and an
assistant turn of ~150 words (word-aligned slices of the pseudo-English corpus of ``bench_ingest``),
the ``source`` provenance struct, and ``split`` from :func:`curate.store.splits.assign_splits`
(default spec: 5% eval). Then, each in a fresh interpreter with ``POLARS_MAX_THREADS=1``, K times:

- publish: :meth:`curate.store.Store.publish_batches` from the Parquet file into an empty store
  (batches of 16k rows read once: the data files are staged while the content hash is computed,
  then committed with the manifest; manifest copy); reading the file is timed;
- publish_records: :func:`curate.store.publish.publish_records`, the path ``curate run`` and
  annotation pulls publish through, from the same rows without their ``split`` column (a second
  cached file): splits, content hash, card statistics, spilled train keys and staged data files in
  one pass, the split-leak check (5% eval against 95% train), the commit, the dataset card (its
  plot included);
- publish_records_frame: the same as a run published before publishing streamed (commit 4df4394):
  the whole frame read (timed), splits, ``find_leaks`` over the frame, :meth:`Store.publish`, the
  card from the frame; ``cpu_ratio`` compares the two;
- publish_frame: the in-memory path for comparison: read the whole Parquet frame (not timed), then
  :meth:`curate.store.Store.publish` (content hash, Delta write, commit); both give the same content hash;
- load: :func:`curate.store.load.load` of the train split as a ``datasets.Dataset`` (TRL columns);
- read_polars: :meth:`curate.store.Store.read` of the whole version as a polars frame.

Seconds cover the operation only (imports and interpreter start-up are in ``process_wall_s``);
``cpu_seconds`` is the process CPU time (every thread) of the operation alone; peak
RSS is the child's ``ru_maxrss`` via ``os.wait4``, from children started by a small launcher process
so the parent's memory does not leak into the figure (see ``bench_dedup.py``). ``cpu_per_wall`` is
the child's CPU time over its wall time: deltalake's Rust writer and reader run on their own thread
pool (tokio + arrow-rs), which ``POLARS_MAX_THREADS`` does not limit, so it can exceed 1.
``baseline_rss_mb`` is a child that only imports the libraries. Medians of K runs are reported.

Usage:
    .venv/bin/python benchmarks/bench_store.py                        # 1,000,000 rows, 3 runs
    .venv/bin/python benchmarks/bench_store.py --rows 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".bench"
GEN_VERSION = 1  # bump when the generator changes, so cached files are not reused
DATASET = "bench"
sys.path.insert(0, str(HERE))
from _launcher import Launcher  # noqa: E402  (benchmarks/ is not a package)

if TYPE_CHECKING:
    from curate.store import Store

# ---------------------------------------------------------------- data


def generate(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` SFT records with splits to ``path`` (deterministic for ``seed``)."""
    import polars as pl
    from bench_ingest import _VERBS, _corpus  # the same pseudo-English text as the ingest benchmark

    from curate.store.splits import assign_splits
    from schemas.ids import id_series
    from schemas.kinds import MESSAGES, SOURCE, Kind
    from schemas.recipe import SplitSpec

    rng = random.Random(seed)
    corpus, starts = _corpus(rng, 2_000_000)
    nwords = len(starts) - 1
    ri = rng.randint

    def words(n: int) -> str:
        a = ri(0, nwords - n)
        return corpus[starts[a] : starts[a + n] - 1].rstrip(".,")

    users, replies = [], []
    for _ in range(rows):
        users.append(f"{_VERBS[ri(0, len(_VERBS) - 1)]} {words(ri(35, 65))}?")
        reply = words(ri(110, 190))
        replies.append(reply[:1].upper() + reply[1:] + ".")
    i = pl.int_range(rows, eager=True)
    df = pl.DataFrame({"u": users, "a": replies}).select(
        messages=pl.concat_list(
            [
                pl.struct(role=pl.lit("user"), content=pl.col("u")),
                pl.struct(role=pl.lit("assistant"), content=pl.col("a")),
            ]
        ).cast(MESSAGES),
        source=pl.struct(
            name=pl.lit("bench"),
            uri=pl.format("file:///data/bench/part-{}.jsonl", (i // 100_000).cast(pl.String).str.zfill(3)),
            sha256=pl.lit("5" * 64),
            row=i % 100_000,
        ).cast(SOURCE),
    )
    df = df.select(id=id_series(df, Kind.SFT), messages="messages", source="source")
    df = df.with_columns(assign_splits(df, Kind.SFT, SplitSpec()))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    df.write_parquet(tmp)
    tmp.replace(path)


def dataset(rows: int, seed: int, cache: Path = CACHE) -> Path:
    """The cached frame for ``rows``/``seed``, generated on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"store_sft_{rows}_seed{seed}_v{GEN_VERSION}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, rows, seed)
        mb, secs = path.stat().st_size / 1e6, time.perf_counter() - t0
        print(f"generated {path.name}: {mb:.0f} MB in {secs:.1f} s", file=sys.stderr)
    return path


def records_file(data: Path) -> Path:
    """``data`` without its ``split`` column (what a run hands to publish), cached beside it."""
    import pyarrow.parquet as pq

    path = data.with_name(data.stem + ".records.parquet")
    if not path.exists():
        src = pq.ParquetFile(data)
        schema = src.schema_arrow.remove(src.schema_arrow.get_field_index("split"))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with pq.ParquetWriter(tmp, schema) as w:
            for batch in src.iter_batches(batch_size=65_536):
                w.write_batch(batch.drop_columns(["split"]))
        tmp.replace(path)
    return path


# ---------------------------------------------------------------- children (one measured run each)


def _vm_mb(field: str) -> float | None:
    """VmRSS (now) or VmHWM (peak) of this process in MiB, from /proc/self/status (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _publish_run_in_memory(records: Path, store: Store, manifest: dict) -> dict:
    """What a run's publish did before it streamed (commit 4df4394's ``publish_run``), on today's
    store: the whole frame read, splits, the split-leak check of ``find_leaks`` over the frame,
    :meth:`Store.publish` (content hash, Delta write, commit), the card from the frame."""
    import polars as pl

    from curate.dedup.contamination import find_leaks
    from curate.store.card import repair_cards, write_card
    from curate.store.publish import _leak_stage
    from curate.store.splits import assign_splits, split_key_fields
    from schemas.fields import key_expr
    from schemas.kinds import Kind
    from schemas.recipe import SplitSpec

    kind, spec = Kind.SFT, SplitSpec()
    df = pl.read_parquet(records)
    df = df.with_columns(assign_splits(df, kind, spec))
    keys = df.select(key_expr(kind, split_key_fields(kind, spec)), "split", "id")
    train = keys.filter(pl.col("split") == "train")
    leaks: dict = {"threshold": spec.leak_threshold}
    for side in ("eval", "test"):
        held = keys.filter(pl.col("split") == side)
        hit = find_leaks(held["__key"], train["__key"], _leak_stage(spec)).leaked if held.height else []
        leaks[side] = {"rows": held.height, "near_duplicates_of_train": int(sum(hit)), "examples": []}
    repair_cards(store, DATASET)
    pub = store.publish(DATASET, df, manifest | {"split_leaks": leaks})
    write_card(store, DATASET, pub.version, df, pub.manifest)
    return {
        "created": pub.created,
        "version": pub.version,
        "rows": df.height,
        "content_hash": pub.manifest["content_hash"],
        "card": True,
        "split_leaks": {k: v["near_duplicates_of_train"] for k, v in leaks.items() if isinstance(v, dict)},
    }


def child(op: str, args: list[str]) -> dict:
    import polars as pl

    from curate.store import Store

    if op == "baseline":  # the libraries the other children import, and nothing else
        import importlib

        for module in ("datasets", "deltalake", "curate.store.load"):
            importlib.import_module(module)
        return {"seconds": 0.0, "rows": 0}
    if op in ("publish_records", "publish_records_frame"):
        from curate.store.publish import file_batches, publish_records
        from schemas.kinds import Kind
        from schemas.recipe import SplitSpec

        records, root = Path(args[0]), args[1]
        manifest = {"kind": "sft", "recipe": {"name": DATASET, "sha256": "0" * 64, "text": ""}, "inputs": []}
        rss_input = _vm_mb("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        if op == "publish_records":
            res = publish_records(
                file_batches([records]),
                Kind.SFT,
                Store(root),
                DATASET,
                SplitSpec(),
                lambda leaks: manifest | {"split_leaks": leaks},
            )
        else:
            res = _publish_run_in_memory(records, Store(root), manifest)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert res["created"] and res["version"] == 1 and "card" in res
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "rows": res["rows"],
            "rss_after_reading_input_mb": rss_input,
            "content_hash": res["content_hash"],
            "split_leaks": res["split_leaks"],
        }
    if op in ("publish", "publish_frame"):
        src, root = args
        manifest = {"kind": "sft", "recipe": {"name": DATASET, "sha256": "0" * 64, "text": ""}, "inputs": []}
        if op == "publish_frame":  # the in-memory path: the whole frame read first (not timed)
            df = pl.read_parquet(src)
            rss_input = _vm_mb("VmRSS")
            t0, c0 = time.perf_counter(), time.process_time()
            pub = Store(root).publish(DATASET, df, manifest)
        else:  # the streaming path publish_run takes: batches read from the Parquet file (timed)
            from curate.store.publish import file_batches

            read = file_batches([Path(src)])

            def batches():
                return read(None)

            rss_input = _vm_mb("VmRSS")
            t0, c0 = time.perf_counter(), time.process_time()
            pub = Store(root).publish_batches(DATASET, batches, manifest)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert pub.created and pub.version == 1
        table = Path(root) / DATASET / "table"
        files = [p for p in table.rglob("*.parquet") if "_delta_log" not in p.parts]  # staged in write-*/
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "rows": pub.manifest["rows"],
            "rss_after_reading_input_mb": rss_input,
            "table_bytes": sum(p.stat().st_size for p in files),
            "table_files": len(files),
            "content_hash": pub.manifest["content_hash"],
        }
    (root,) = args
    if op == "load":
        import datasets  # noqa: F401  (imported before the clock starts, like the other children's libraries)

        from curate.store.load import load

        t0, c0 = time.perf_counter(), time.process_time()
        ds = load(f"{DATASET}@latest", split="train", root=root)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert ds.column_names == ["messages"]
        return {"seconds": seconds, "cpu_seconds": cpu, "rows": ds.num_rows}
    if op == "read_polars":
        t0, c0 = time.perf_counter(), time.process_time()
        df = Store(root).read(f"{DATASET}@latest")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"seconds": seconds, "cpu_seconds": cpu, "rows": df.height}
    raise SystemExit(f"unknown child {op}")


# ---------------------------------------------------------------- parent


def run_child(launcher: Launcher, op: str, *args: str) -> dict:
    """One measured run in a fresh interpreter with ``POLARS_MAX_THREADS=1``."""
    env = dict(os.environ, POLARS_MAX_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", op, *args]
    with tempfile.NamedTemporaryFile(suffix=".out") as stdout:
        r = launcher.run(cmd, env, stdout.name)
        text = Path(stdout.name).read_text()
    if r["code"] != 0:
        raise SystemExit(f"benchmark child {op} failed (exit {r['code']}):\n{text}")
    res = json.loads(text.strip().splitlines()[-1])
    res["seconds"] = round(res["seconds"], 4)
    if "cpu_seconds" in res:
        res["cpu_seconds"] = round(res["cpu_seconds"], 4)
    res["process_wall_s"] = round(r["wall"], 3)
    res["cpu_per_wall"] = round(r["cpu"] / r["wall"], 3)
    res["peak_rss_mb"] = round(r["maxrss"] / (1 << 20) if sys.platform == "darwin" else r["maxrss"] / 1024, 1)
    if res["rows"]:
        res["rows_per_second"] = round(res["rows"] / res["seconds"], 1) if res["seconds"] else None
    return res


def summarize(runs: list[dict]) -> dict:
    """Medians of the numeric figures of ``runs``, plus the runs themselves."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    out: dict = {k: round(statistics.median(r[k] for r in runs), 4) for k in keys}
    out["runs"] = runs
    return out


def _ratio(runs: list[dict], base: list[dict], key: str) -> float:
    """Median of ``key`` over ``runs`` divided by its median over ``base``."""
    return round(statistics.median(r[key] for r in runs) / statistics.median(r[key] for r in base), 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="SFT rows (default 1,000,000)")
    ap.add_argument("--repeats", type=int, default=3, help="measured runs of each step; medians (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=CACHE, help="where generated frames are kept (default .bench/)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        res = child(args.child[0], args.child[1:])
        res["vm_hwm_mb"] = _vm_mb("VmHWM")  # cross-check of ru_maxrss
        print(json.dumps(res))
        return 0
    if args.rows < 1 or args.repeats < 1:
        ap.error("--rows and --repeats must be positive")

    launcher = Launcher()  # before the frame is ever in this process's memory
    try:
        data = dataset(args.rows, args.seed, args.cache_dir)
        records_path = records_file(data)
        with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
            baseline = run_child(launcher, "baseline")
            publish, frame, records, records_frame, store = [], [], [], [], None
            ops = (
                (frame, "publish_frame"),
                (publish, "publish"),
                (records_frame, "publish_records_frame"),
                (records, "publish_records"),
            )
            for i in range(args.repeats):
                for runs, op in ops:
                    if store is not None:
                        shutil.rmtree(store)  # keep disk use to one published copy
                    store = Path(tmp) / f"store{i}{op}"
                    src = records_path if op.startswith("publish_records") else data
                    runs.append(run_child(launcher, op, str(src), str(store)))
            assert store is not None
            assert {r["content_hash"] for r in publish + frame + records + records_frame} == {
                publish[0]["content_hash"]
            }
            load = [run_child(launcher, "load", str(store)) for _ in range(args.repeats)]
            read = [run_child(launcher, "read_polars", str(store)) for _ in range(args.repeats)]
    finally:
        launcher.close()
    print(
        json.dumps(
            {
                "benchmark": "store",
                "rows": args.rows,
                "repeats": args.repeats,
                "input_parquet_bytes": data.stat().st_size,
                "publish": summarize(publish),
                "publish_frame": summarize(frame),
                "publish_records": summarize(records),
                "publish_records_frame": summarize(records_frame),
                "cpu_ratio": {
                    "publish_over_publish_frame": _ratio(publish, frame, "cpu_seconds"),
                    "publish_records_over_publish_records_frame": _ratio(records, records_frame, "cpu_seconds"),
                },
                "load": summarize(load),
                "read_polars": summarize(read),
                "baseline_rss_mb": baseline["peak_rss_mb"],
                "threads": {
                    "POLARS_MAX_THREADS": 1,
                    "note": "deltalake's Rust writer/reader uses its own thread pool, not limited by "
                    "POLARS_MAX_THREADS; cpu_per_wall > 1 shows it",
                    "cpus": os.cpu_count(),
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
