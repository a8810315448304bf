"""Run the recipe's stages (filters, exact/near dedup, decontamination) over ingested records.

The runner keeps one small state per record (alive, which stage removed it, why, its kept twin)
and reads from the ingested Parquet files only the columns a stage needs, for the rows still
alive. Filters work file by file; dedup reads the key text of every alive row (signatures are the
only per-row state it keeps). At the end, survivors are written once to the dataset and removed
records to ``dropped.parquet`` / ``duplicates.parquet`` with their reasons, and every input row's
outcome is settled for the accounting: an input row is kept while any of its records survives;
otherwise the earliest stage that removed one of its records names its outcome.

Example:
    >>> # runner = StageRunner(parts, Kind.SFT, base_dir); runner.run(recipe.stages); state = runner.state()
    >>> # finish_part(parts[0], state[:n0], names, outcomes, out, "part-00000"); settle(parts, state, outcomes, ledger)
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup.contamination import find_leaks
from curate.dedup.decisions import DedupDecision, priority_for
from curate.dedup.exact import exact_duplicates
from curate.dedup.minhash import Sketch
from curate.dedup.near import near_duplicates
from curate.dedup.references import load_reference
from curate.engine.accounting import Ledger
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

AUDIT_COLUMNS = pa.schema(
    [
        ("stage", pa.large_string()),
        ("reason", pa.large_string()),
        ("detail", pa.large_string()),
        ("duplicate_of", pa.large_string()),
        ("similarity", pa.float64()),
    ]
)


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
        self.reason = np.full(n, None, dtype=object)
        self.detail = np.full(n, None, dtype=object)
        self.twin = np.full(n, None, dtype=object)
        self.similarity = np.full(n, np.nan)
        self.results: list[StageResult] = []
        self.leaks: list[dict[str, Any]] = []
        self._ids: np.ndarray | None = None
        self._origins: np.ndarray | None = None

    def lengths(self) -> np.ndarray:
        """Character lengths of :func:`length_field` for every record (alive or not)."""
        return record_lengths(self.parts, self.kind)

    # -- reading -------------------------------------------------------------------------------
    def _read(self, exprs: list[pl.Expr]) -> pl.DataFrame:
        """``exprs`` evaluated over the alive records of every part, in record order."""
        frames = []
        for i, path in enumerate(self.parts):
            mask = self.alive[self.starts[i] : self.starts[i + 1]]
            if not mask.any():
                continue
            frames.append(pl.read_parquet(path).filter(pl.Series(mask)).select(exprs))
        return pl.concat(frames) if frames else pl.DataFrame(schema={e.meta.output_name(): pl.String for e in exprs})

    @property
    def origins(self) -> np.ndarray:
        """``"source row N"`` per record, to say where a kept twin came from."""
        if self._origins is None:
            expr = pl.format("{} row {}", pl.col("source").struct.field("name"), pl.col("source").struct.field("row"))
            parts = [pl.read_parquet(p, columns=["source"]).select(expr).to_series() for p in self.parts]
            self._origins = (pl.concat(parts) if parts else pl.Series([], dtype=pl.String)).to_numpy()
        return self._origins

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            ids = [pl.read_parquet(p, columns=["id"])["id"] for p in self.parts]
            self._ids = (pl.concat(ids) if ids else pl.Series([], dtype=pl.String)).to_numpy()
        return self._ids

    def _remove(self, stage_index: int, rows: np.ndarray, reasons: list[str], details: list[str]) -> None:
        self.alive[rows] = False
        self.stage_of[rows] = stage_index
        self.reason[rows] = reasons
        self.detail[rows] = details

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
            for code, text, snippet, row in zip(codes, texts, field_text, rows.tolist(), strict=True):
                shown = res.examples.setdefault(code, [])
                if len(shown) < EXAMPLES_PER_REASON:
                    shown.append({"id": self.ids[row], "detail": text, "text": _snip(snippet)})
        return res

    def _keys(self, stage: Any) -> tuple[np.ndarray, pl.Series, list[str]]:
        names = stage.key or DEFAULT_KEYS[self.kind]
        rows = np.flatnonzero(self.alive)
        keys = self._read([key_expr(self.kind, names)])["__key"] if rows.size else pl.Series([], dtype=pl.String)
        return rows, keys, names

    def _priority(self, stage: ExactDedupStage | NearDedupStage, keys: pl.Series) -> np.ndarray:
        lengths = np.zeros(len(keys), np.int64)
        if stage.keep == "longest":  # the record with the most text overall, not the longest key
            lengths = self._read([key_expr(self.kind, ["text"]).str.len_chars()]).to_series().to_numpy()
        scores = None
        if stage.keep == "score":
            assert stage.score_field is not None
            scores = self._read([pl.col(stage.score_field).cast(pl.Float64)]).to_series().fill_null(np.nan).to_numpy()
        return priority_for(stage.keep, lengths, scores)

    def _dedup(self, index: int, stage: ExactDedupStage | NearDedupStage) -> StageResult:
        rows, keys, names = self._keys(stage)
        label = stage_label(stage)
        res = StageResult(label, stage.type, "duplicates", 0, 0, stats={"key": names})
        if rows.size == 0:
            return res
        priority = self._priority(stage, keys)
        priority[self.pinned[rows]] = -np.inf  # a published row always wins against a new one
        decision: DedupDecision
        if isinstance(stage, ExactDedupStage):
            decision = exact_duplicates(keys, stage.normalization, priority)
        else:
            decision = near_duplicates(keys, stage, priority, self._sketch(index, rows))
        res.stats.update(decision.stats)
        local = np.flatnonzero(decision.removed & ~self.pinned[rows])
        if local.size == 0:
            return res
        removed, twins = rows[local], rows[decision.dup_of[local]]
        sims = decision.similarity[local]
        twin_ids = self.ids[twins]
        details = [
            f"duplicate of {t} ({o}), similarity {s:.3f}"
            for t, o, s in zip(twin_ids.tolist(), self.origins[twins].tolist(), sims.tolist(), strict=True)
        ]
        self._remove(index, removed, [label] * removed.size, details)
        self.twin[removed] = twin_ids
        self.similarity[removed] = sims
        res.by_reason[label] = int(removed.size)
        key_list = keys.to_list()
        res.examples[label] = [
            {
                "id": self.ids[r],
                "duplicate_of": f"{self.ids[t]} ({self.origins[t]})",
                "similarity": round(float(s), 3),
                "text": _snip(key_list[lo]),
                "kept_text": _snip(key_list[tl]),
            }
            for r, t, s, lo, tl in zip(
                removed[:EXAMPLES_PER_REASON].tolist(),
                twins[:EXAMPLES_PER_REASON].tolist(),
                sims[:EXAMPLES_PER_REASON].tolist(),
                local[:EXAMPLES_PER_REASON].tolist(),
                decision.dup_of[local][:EXAMPLES_PER_REASON].tolist(),
                strict=True,
            )
        ]
        return res

    def _sketch(self, index: int, rows: np.ndarray) -> Sketch | None:
        """Precomputed signatures of ``rows`` for stage ``index``, if the driver sketched per shard."""
        files = self.sketches.get(index)
        if not files:
            return None
        loaded = [np.load(f) for f in files]
        sig = np.concatenate([z["signatures"] for z in loaded])
        empty = np.concatenate([z["empty"] for z in loaded])
        if sig.shape[0] != self.n:
            raise ValueError(f"signature files cover {sig.shape[0]} records, the parts hold {self.n}")
        none = np.empty(0, np.uint64)
        return Sketch(sig[rows], none, np.zeros(1, np.int64), empty[rows])

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
        for lo in local.tolist():
            j = int(leaks.ref_index[lo])
            ref = refs[int(owner[j])]
            k = j - int(offsets[int(owner[j])])
            how = "exact match" if leaks.exact[lo] else f"jaccard {leaks.similarity[lo]:.3f}"
            code = f"contamination.{ref.name}"
            codes.append(code)
            details.append(f"{how} with {ref.name} row {ref.rows[k]} ({ref.uris[k]})")
            self.leaks.append(
                {
                    "id": self.ids[rows[lo]],
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

    # -- output and accounting -----------------------------------------------------------------
    def state(self) -> pl.DataFrame:
        """Per record: alive, the stage index that removed it, reason, detail, kept twin, similarity."""
        return pl.DataFrame(
            {
                "alive": self.alive,
                "stage": self.stage_of,
                "reason": self.reason.tolist(),
                "detail": self.detail.tolist(),
                "duplicate_of": self.twin.tolist(),
                "similarity": self.similarity,
            },
            schema=STATE_SCHEMA,
        )


STATE_SCHEMA = {
    "alive": pl.Boolean,
    "stage": pl.Int32,
    "reason": pl.String,
    "detail": pl.String,
    "duplicate_of": pl.String,
    "similarity": pl.Float64,
}


@dataclass
class PartOutput:
    """What :func:`finish_part` wrote for one part: survivors and the audit rows of removed records."""

    kept: int
    data: str | None = None
    dropped: str | None = None
    duplicates: str | None = None


def finish_part(
    part: Path, state: pl.DataFrame, names: list[str], outcomes: list[str], out: Path, label: str
) -> PartOutput:
    """Phase 3 (per part): write the survivors of ``part`` and its removed records with their reasons.

    ``state`` is the part's slice of :meth:`StageRunner.state`; ``names``/``outcomes`` name each stage
    index. Writes ``out/LABEL.parquet`` (survivors, same schema as ``part``), ``out/LABEL.dropped.parquet``
    and ``out/LABEL.duplicates.parquet`` (records plus stage, reason, detail, duplicate_of, similarity).
    """
    out.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(part)
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    alive = state["alive"].to_numpy()
    result = PartOutput(int(alive.sum()))
    if alive.any():
        result.data = str(out / f"{label}.parquet")
        pq.write_table(table.filter(pa.array(alive)), result.data, compression="zstd", use_dictionary=False)
    gone = state.with_row_index("__i").filter(~pl.col("alive"))
    if gone.height == 0:
        return result
    index = list(range(len(names)))
    gone = gone.with_columns(
        pl.col("stage").replace_strict(index, names, return_dtype=pl.String).alias("stage_name"),
        pl.col("stage").replace_strict(index, outcomes, return_dtype=pl.String).alias("outcome"),
    )
    audit_schema = pa.schema(list(table.schema) + list(AUDIT_COLUMNS))
    for outcome in ("dropped", "duplicates"):
        sel = gone.filter(pl.col("outcome") == outcome)
        if sel.height == 0:
            continue
        extra = sel.select(pl.col("stage_name").alias("stage"), "reason", "detail", "duplicate_of", "similarity")
        rows = df[sel["__i"].to_list()]
        path = out / f"{label}.{outcome}.parquet"
        pq.write_table(
            pl.concat([rows, extra], how="horizontal").to_arrow().cast(audit_schema),
            path,
            compression="zstd",
            use_dictionary=False,
        )
        setattr(result, outcome, str(path))
    return result


def settle(parts: list[Path], state: pl.DataFrame, outcomes: list[str], ledger: Ledger) -> None:
    """Settle every input row's outcome in ``ledger`` from the records' fates.

    An input row is kept while any of its records survives; otherwise the earliest stage that removed
    one of its records names its outcome and reason. Also sets each file's output record count.
    """
    if not parts:
        return
    sources = pl.concat([pl.read_parquet(p, columns=["source"]) for p in parts]).select(
        pl.col("source").struct.field("name", "uri", "row")
    )
    df = pl.concat([sources, state.select("alive", "stage", "reason")], how="horizontal")
    for name, uri, n in df.group_by("name", "uri").agg(pl.col("alive").sum()).iter_rows():
        ledger.set_output_records(name, uri, int(n))
    per_row = (
        df.sort("stage")
        .group_by("name", "uri", "row")
        .agg(
            pl.col("alive").any().alias("kept"),
            pl.col("stage").filter(~pl.col("alive")).first(),
            pl.col("reason").filter(~pl.col("alive")).first(),
        )
        .filter(~pl.col("kept"))
    )
    counts = per_row.group_by("name", "uri", "stage", "reason").len()
    for name, uri, stage, reason, n in counts.iter_rows():
        ledger.move(name, uri, outcomes[stage], reason, n)
