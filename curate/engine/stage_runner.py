"""Run the recipe's stages (filters, exact/near dedup, decontamination) over ingested records.

The runner keeps one small state per record (alive, which stage removed it, why, its kept twin)
and reads from the ingested Parquet files only the columns a stage needs, for the rows still
alive. Filters work file by file; dedup reads the key text of every alive row (signatures are the
only per-row state it keeps). At the end, survivors are written once to the dataset and removed
records to ``dropped.parquet`` / ``duplicates.parquet`` with their reasons, and every input row's
outcome is settled for the accounting (:mod:`curate.engine.fates`).

Example:
    >>> # runner = StageRunner(parts, Kind.SFT, base_dir); runner.run(recipe.stages)
    >>> # write_fates(folder, runner.alive, runner.stage_of, runner.similarity, runner.removed_frame())
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from curate.dedup.contamination import find_leaks
from curate.dedup.decisions import DedupDecision, priority_for
from curate.dedup.exact import exact_from_hashes, key_hashes
from curate.dedup.lsh import band_keys, candidate_pairs
from curate.dedup.minhash import sketch
from curate.dedup.near import lsh_shape, near_from_candidates
from curate.dedup.references import load_reference
from curate.engine.fates import REMOVED_SCHEMA, SLICE_ROWS
from curate.engine.report import record_lengths
from curate.filters import get_filter
from schemas.fields import key_expr
from schemas.kinds import Kind, content_schema
from schemas.stages import DecontaminateStage, ExactDedupStage, FilterStage, NearDedupStage

EXAMPLES_PER_REASON = 3
SNIPPET = 240

DEFAULT_KEYS: dict[Kind, list[str]] = {
    Kind.TEXT: ["text"],
    Kind.ALPACA: ["text"],
    Kind.SFT: ["conversation"],
    Kind.PREFERENCE: ["prompt", "chosen"],
    Kind.KTO: ["conversation"],
}


def stage_label(stage: Any) -> str:
    """The name a stage goes by in reports and reason codes."""
    if stage.name:
        return stage.name
    return stage.rule if isinstance(stage, FilterStage) else stage.type


def _snip(text: str | None) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "…"


@dataclass
class StageResult:
    """One stage's effect, for the funnel and the report."""

    name: str
    type: str
    outcome: str
    records_in: int
    records_out: int
    by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "outcome": self.outcome,
            "records_in": self.records_in,
            "records_out": self.records_out,
            "removed": self.records_in - self.records_out,
            "by_reason": dict(self.by_reason.most_common()),
            "seconds": round(self.seconds, 3),
            "stats": self.stats,
            "examples": self.examples,
        }


class StageRunner:
    """Applies stages to the records in ``parts`` (the ingested Parquet files, in order)."""

    def __init__(
        self,
        parts: list[Path],
        kind: Kind,
        base_dir: Path,
        max_chars: int = 200_000,
        sketches: dict[int, list[str]] | None = None,
        pinned_parts: int = 0,
    ):
        """``sketches``: per near-dedup stage index, signature files (:func:`curate.engine.shards.sketch_shard`)
        covering ``parts`` in order. ``pinned_parts``: the first parts hold rows already published;
        they are never filtered or removed, but new rows are deduplicated against them."""
        self.parts, self.kind, self.base_dir, self.max_chars = parts, kind, base_dir, max_chars
        self.sketches = sketches or {}
        self.pinned_parts = pinned_parts
        self.sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        n = int(self.starts[-1])
        self.n = n
        self.pinned = np.zeros(n, bool)
        self.pinned[: int(self.starts[pinned_parts])] = True
        self.alive = np.ones(n, bool)
        self.stage_of = np.full(n, -1, np.int32)
        self.similarity = np.full(n, np.nan)
        # reasons, details and kept twins only for removed rows (a few per cent): per-row object
        # arrays would cost 24 bytes a row even for the rows that stay
        self._removed: list[tuple[np.ndarray, list[str], list[str], list[str] | None, list[str] | None]] = []
        self.results: list[StageResult] = []
        self.leaks: list[dict[str, Any]] = []

    def lengths(self) -> np.ndarray:
        """Character lengths of :func:`length_field` for every record (alive or not)."""
        return record_lengths(self.parts, self.kind)

    # -- reading -------------------------------------------------------------------------------
    def _alive_parts(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(part index, alive mask of its records)`` of every part with an alive record."""
        for i in range(len(self.parts)):
            mask = self.alive[self.starts[i] : self.starts[i + 1]]
            if mask.any():
                yield i, mask

    def _part(self, i: int, exprs: list[pl.Expr], mask: np.ndarray | None = None) -> pl.DataFrame:
        """``exprs`` over part ``i`` (only the columns they read), optionally only its ``mask`` rows."""
        frames = [df for _, df in self._slices(i, exprs, mask)]
        return pl.concat(frames) if frames else pl.DataFrame(schema={e.meta.output_name(): pl.String for e in exprs})

    def _slices(
        self, i: int, exprs: list[pl.Expr], mask: np.ndarray | None = None
    ) -> Iterator[tuple[int, pl.DataFrame]]:
        """``(first record, frame)``: ``exprs`` over part ``i`` in slices of :data:`SLICE_ROWS` records.

        Only the columns ``exprs`` read are decoded, a slice at a time, so the transient memory of a
        stage (decoded messages, the key text and its normalized copies) is bounded by the slice,
        not by the part (500k records by default). With ``mask``, only those records are kept.
        """
        columns = list(dict.fromkeys(c for e in exprs for c in e.meta.root_names()))
        pf = pq.ParquetFile(self.parts[i], pre_buffer=False, buffer_size=1 << 20)
        lo = 0
        for batch in pf.iter_batches(batch_size=SLICE_ROWS, columns=columns, use_threads=False):
            raw = pl.from_arrow(batch)
            assert isinstance(raw, pl.DataFrame)
            df = raw.select(exprs)
            if mask is not None:
                df = df.filter(pl.Series(mask[lo : lo + batch.num_rows]))
            yield lo, df
            lo += batch.num_rows

    def _read(self, exprs: list[pl.Expr]) -> pl.DataFrame:
        """``exprs`` evaluated over the alive records of every part, in record order."""
        frames = [self._part(i, exprs, mask) for i, mask in self._alive_parts()]
        return pl.concat(frames) if frames else pl.DataFrame(schema={e.meta.output_name(): pl.String for e in exprs})

    def _at(self, rows: np.ndarray, expr: pl.Expr) -> np.ndarray:
        """``expr`` at the records ``rows`` (global indices, any order), reading only the parts holding them."""
        rows = np.asarray(rows, np.int64)
        if rows.size == 0:
            return np.empty(0, dtype=object)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        part_of = np.searchsorted(self.starts, ordered, side="right") - 1
        pieces = []
        for i in np.unique(part_of).tolist():
            local = ordered[part_of == i] - self.starts[i]
            for lo, df in self._slices(i, [expr]):
                want = local[(local >= lo) & (local < lo + df.height)] - lo
                if want.size:
                    # to numpy at once: a gathered string Series keeps the whole slice's text buffers
                    # alive (views), which over every slice of a run is every text of the run
                    pieces.append(df.to_series().gather(want).to_numpy())
        values = np.concatenate(pieces)
        out = np.empty(rows.size, dtype=values.dtype)
        out[order] = values
        return out

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        """Record ids of ``rows``."""
        return self._at(rows, pl.col("id"))

    def origins_at(self, rows: np.ndarray) -> np.ndarray:
        """``"source row N"`` of ``rows``, to say where a kept twin came from."""
        src = pl.col("source").struct
        return self._at(rows, pl.format("{} row {}", src.field("name"), src.field("row")))

    def _remove(
        self,
        stage_index: int,
        rows: np.ndarray,
        reasons: list[str],
        details: list[str],
        twins: list[str] | None = None,
        representatives: list[str] | None = None,
    ) -> None:
        self.alive[rows] = False
        self.stage_of[rows] = stage_index
        self._removed.append((np.asarray(rows, np.int64), list(reasons), list(details), twins, representatives))

    # -- stages --------------------------------------------------------------------------------
    def run(self, stages: list[Any]) -> list[StageResult]:
        for i, stage in enumerate(stages):
            started = time.perf_counter()
            before = int(self.alive.sum())
            if isinstance(stage, FilterStage):
                res = self._filter(i, stage)
            elif isinstance(stage, (ExactDedupStage, NearDedupStage)):
                res = self._dedup(i, stage)
            elif isinstance(stage, DecontaminateStage):
                res = self._decontaminate(i, stage)
            else:  # pragma: no cover - the recipe model admits only the types above
                raise TypeError(f"unknown stage {stage!r}")
            res.records_in, res.records_out = before, int(self.alive.sum())
            res.seconds = time.perf_counter() - started
            self.results.append(res)
        return self.results

    def _filter(self, index: int, stage: FilterStage) -> StageResult:
        flt = get_filter(stage.rule)(stage.params, stage.field)
        label = stage_label(stage)
        res = StageResult(label, "filter", "dropped", 0, 0, stats={"rule": stage.rule, "field": flt.field})
        content = list(content_schema(self.kind))
        for i, path in enumerate(self.parts):
            lo = int(self.starts[i])
            mask = self.alive[lo : int(self.starts[i + 1])]
            if i < self.pinned_parts or not mask.any():  # published rows passed the filters already
                continue
            df = pl.read_parquet(path, columns=content).filter(pl.Series(mask))
            reasons = flt.reasons(df, self.kind)
            bad = reasons.is_not_null().to_numpy()
            if not bad.any():
                continue
            rows = lo + np.flatnonzero(mask)[bad]
            texts = reasons.filter(pl.Series(bad)).to_list()
            codes = [t.partition(": ")[0] for t in texts]
            self._remove(index, rows, codes, texts)
            res.by_reason.update(codes)
            field_text = df.filter(pl.Series(bad)).select(key_expr(self.kind, [flt.field]))["__key"].to_list()
            counted: Counter[str] = Counter()
            want = []
            for j, code in enumerate(codes):  # only rows that can still be shown need their id
                counted[code] += 1
                if counted[code] + len(res.examples.get(code, [])) <= EXAMPLES_PER_REASON:
                    want.append(j)
            ids = dict(zip(want, self.ids_at(rows[want]).tolist(), strict=True))
            for j, (code, text, snippet) in enumerate(zip(codes, texts, field_text, strict=True)):
                shown = res.examples.setdefault(code, [])
                if len(shown) < EXAMPLES_PER_REASON:
                    shown.append({"id": ids[j], "detail": text, "text": _snip(snippet)})
        return res

    def _keys(self, stage: Any) -> tuple[np.ndarray, pl.Series, list[str]]:
        names = stage.key or DEFAULT_KEYS[self.kind]
        rows = np.flatnonzero(self.alive)
        keys = self._read([key_expr(self.kind, names)])["__key"] if rows.size else pl.Series([], dtype=pl.String)
        return rows, keys, names

    def _priority(self, stage: ExactDedupStage | NearDedupStage, n: int) -> np.ndarray:
        lengths = np.zeros(n, np.int64)
        if stage.keep == "longest":  # the record with the most text overall, not the longest key
            lengths = self._read([key_expr(self.kind, ["text"]).str.len_chars()]).to_series().to_numpy()
        scores = None
        if stage.keep == "score":
            assert stage.score_field is not None
            scores = self._read([pl.col(stage.score_field).cast(pl.Float64)]).to_series().fill_null(np.nan).to_numpy()
        return priority_for(stage.keep, lengths, scores)

    def _dedup(self, index: int, stage: ExactDedupStage | NearDedupStage) -> StageResult:
        names = stage.key or DEFAULT_KEYS[self.kind]
        expr = key_expr(self.kind, names)
        rows = np.flatnonzero(self.alive)
        label = stage_label(stage)
        res = StageResult(label, stage.type, "duplicates", 0, 0, stats={"key": names})
        if rows.size == 0:
            return res
        priority = self._priority(stage, rows.size)
        priority[self.pinned[rows]] = -np.inf  # a published row always wins against a new one
        decision: DedupDecision
        if isinstance(stage, ExactDedupStage):
            # 16 bytes per row: each part's keys are hashed and dropped, no text is held
            started = time.perf_counter()
            norm = stage.normalization
            hashes = [
                key_hashes(df.to_series(), norm)
                for i, mask in self._alive_parts()
                for _, df in self._slices(i, [expr], mask)
            ]
            decision = exact_from_hashes(pl.concat(hashes), priority, started)
        else:
            decision = self._near(index, stage, rows, expr, priority)
        res.stats.update(decision.stats)
        local = np.flatnonzero(decision.removed & ~self.pinned[rows])
        if local.size == 0:
            return res
        # twins: the row each removed row was verified against; reps: the row that stays for it
        # (different only along chains of a connected group)
        removed, twins = rows[local], rows[decision.dup_of[local]]
        reps = rows[decision.representative[local]]
        sims = decision.similarity[local]
        twin_ids = self.ids_at(twins)
        rep_ids = twin_ids if np.array_equal(twins, reps) else self.ids_at(reps)
        details = [
            f"duplicate of {t} ({o}), similarity {s:.3f}" + ("" if t == r else f"; group kept {r}")
            for t, o, s, r in zip(
                twin_ids.tolist(), self.origins_at(twins).tolist(), sims.tolist(), rep_ids.tolist(), strict=True
            )
        ]
        self._remove(index, removed, [label] * removed.size, details, twin_ids.tolist(), rep_ids.tolist())
        self.similarity[removed] = sims
        res.by_reason[label] = int(removed.size)
        shown, kept = removed[:EXAMPLES_PER_REASON], twins[:EXAMPLES_PER_REASON]
        ids, kept_ids, kept_origins = self.ids_at(shown), self.ids_at(kept), self.origins_at(kept)
        texts, kept_texts = self._at(shown, expr), self._at(kept, expr)
        res.examples[label] = [
            {
                "id": ids[k],
                "duplicate_of": f"{kept_ids[k]} ({kept_origins[k]})",
                "similarity": round(float(sims[k]), 3),
                "text": _snip(texts[k]),
                "kept_text": _snip(kept_texts[k]),
                **({} if twins[k] == reps[k] else {"representative": str(rep_ids[k])}),
            }
            for k in range(shown.size)
        ]
        return res

    def _near(
        self, index: int, stage: NearDedupStage, rows: np.ndarray, expr: pl.Expr, priority: np.ndarray
    ) -> DedupDecision:
        """Near-dedup of the alive ``rows`` from band keys only (``bands`` x 8 bytes a row).

        Band keys come from the per-shard signature files one file at a time (or, without them,
        from signatures of each part's keys); verification re-reads the texts of candidate rows.
        """
        started = time.perf_counter()
        p = stage.minhash
        bands, per_band = lsh_shape(stage.threshold, p, stage.bands, stage.rows, stage.verify)
        keys_b = np.empty((rows.size, bands), np.uint64)
        empty = np.zeros(rows.size, bool)
        files = self.sketches.get(index)
        if files:
            lo = 0
            for f in files:
                with np.load(f) as z:
                    sig_empty = z["empty"]
                    hi = lo + sig_empty.size
                    a, b = np.searchsorted(rows, [lo, hi])
                    if b > a:
                        sig = z["signatures"]
                        keys_b[a:b] = band_keys(sig[rows[a:b] - lo], bands, per_band, stage.workers)
                        empty[a:b] = sig_empty[rows[a:b] - lo]
                        del sig
                lo = hi
            if lo != self.n:
                raise ValueError(f"signature files cover {lo} records, the parts hold {self.n}")
        else:
            at = 0
            for i, mask in self._alive_parts():
                for _, df in self._slices(i, [expr], mask):
                    sk = sketch(df.to_series(), p, keep_shingles=False, workers=stage.workers)
                    m = sk.empty.size
                    keys_b[at : at + m] = band_keys(sk.signatures, bands, per_band, stage.workers)
                    empty[at : at + m] = sk.empty
                    at += m
        seconds = time.perf_counter() - started
        t1 = time.perf_counter()
        a, b = candidate_pairs(keys_b, ~empty, workers=stage.workers)
        del keys_b, empty  # bands x 8 bytes a row: gone before verification holds texts and shingles
        band_seconds = time.perf_counter() - t1

        def texts_of(local: np.ndarray) -> pl.Series:
            return pl.Series(self._at(rows[local], expr), dtype=pl.String)

        return near_from_candidates(
            rows.size, a, b, stage, priority, texts_of, seconds, band_seconds, always_kept=self.pinned[rows]
        )

    def _decontaminate(self, index: int, stage: DecontaminateStage) -> StageResult:
        rows, keys, names = self._keys(stage)
        if self.pinned_parts:  # published rows were checked when they were published
            new = ~self.pinned[rows]
            rows, keys = rows[new], keys.filter(pl.Series(new))
        label = stage_label(stage)
        res = StageResult(label, "decontaminate", "dropped", 0, 0, stats={"key": names, "references": {}})
        refs = [load_reference(spec, self.base_dir, self.max_chars) for spec in stage.against]
        for ref in refs:
            res.stats["references"][ref.name] = len(ref.texts)
        if rows.size == 0 or not any(len(r.texts) for r in refs):
            return res
        all_texts = pl.concat([r.texts.cast(pl.String) for r in refs])
        owner = np.concatenate([np.full(len(r.texts), i) for i, r in enumerate(refs)])
        offsets = np.concatenate([[0], np.cumsum([len(r.texts) for r in refs])])
        leaks = find_leaks(keys, all_texts, stage)
        local = np.flatnonzero(leaks.leaked)
        key_list, ref_list = keys.to_list(), all_texts.to_list()
        codes, details = [], []
        leak_ids = self.ids_at(rows[local])
        for k_, lo in enumerate(local.tolist()):
            j = int(leaks.ref_index[lo])
            ref = refs[int(owner[j])]
            k = j - int(offsets[int(owner[j])])
            how = "exact match" if leaks.exact[lo] else f"jaccard {leaks.similarity[lo]:.3f}"
            code = f"contamination.{ref.name}"
            codes.append(code)
            details.append(f"{how} with {ref.name} row {ref.rows[k]} ({ref.uris[k]})")
            self.leaks.append(
                {
                    "id": leak_ids[k_],
                    "reference": ref.name,
                    "reference_uri": ref.uris[k],
                    "reference_row": ref.rows[k],
                    "exact": bool(leaks.exact[lo]),
                    "similarity": round(float(leaks.similarity[lo]), 4),
                    "text": _snip(key_list[lo]),
                    "reference_text": _snip(ref_list[j]),
                }
            )
        self._remove(index, rows[local], codes, details)
        self.similarity[rows[local]] = leaks.similarity[local]
        res.by_reason.update(codes)
        for leak, code in zip(self.leaks[-local.size :], codes, strict=True):
            shown = res.examples.setdefault(code, [])
            if len(shown) < EXAMPLES_PER_REASON:
                shown.append({k: leak[k] for k in ("id", "similarity", "text", "reference_text")})
        res.stats["leaks"] = int(local.size)
        return res

    # -- output ---------------------------------------------------------------------------------
    def removed_frame(self) -> pl.DataFrame:
        """The strings of removed records (:data:`curate.engine.fates.REMOVED_SCHEMA`), by global row.

        Records that stay have none: with :attr:`alive`, :attr:`stage_of` and :attr:`similarity`
        this is what :func:`curate.engine.fates.write_fates` stores.
        """
        if not self._removed:
            return pl.DataFrame(schema=REMOVED_SCHEMA)

        def column(values: list[str] | None, size: int) -> list[str] | list[None]:
            return values if values is not None else [None] * size

        return pl.DataFrame(
            {
                "row": np.concatenate([r for r, *_ in self._removed]),
                "reason": [x for _, rs, _, _, _ in self._removed for x in rs],
                "detail": [x for _, _, ds, _, _ in self._removed for x in ds],
                "duplicate_of": [x for r, _, _, ts, _ in self._removed for x in column(ts, r.size)],
                "representative": [x for r, _, _, _, rp in self._removed for x in column(rp, r.size)],
            },
            schema=REMOVED_SCHEMA,
        )
