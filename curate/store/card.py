"""Dataset cards: a Hugging Face style ``README.md`` (+ ``lengths.png``) for each published version.

Written to ``STORE/NAME/cards/vN/`` from the version's records and manifest: YAML front matter
(``configs``, ``dataset_info``, ``license``, ``task_categories``, ``tags``) and sections on what the
dataset is, its sources, the curation funnel, the schema, example rows, lineage and known limitations.

The front matter's ``data_files`` (:data:`DATA_FILES`: ``SPLIT.parquet``) and ``features`` (the TRL
columns) describe the output of ``curate datasets export NAME@N --format trl_parquet --out DIR``
(:mod:`curate.store.export`): the store itself is a Delta table, so the card becomes a loadable Hub
card once copied into that folder as ``README.md``.

Nothing secret goes in: the recipe appears only by name and sha256 (its text keeps ``${ENV}``
references anyway), URIs lose any credentials, and no environment variable is read.

Example:
    >>> # path = write_card(store, "chat", 3, df, manifest)   # -> store/chat/cards/v3/README.md
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import polars as pl
import yaml

from curate.engine.report import length_field
from curate.store.load import trl_columns
from curate.store.store import Store
from schemas.fields import field_expr
from schemas.kinds import Kind

SPLIT_ORDER = ("train", "eval", "test")
DATA_FILES = "{split}.parquet"
"""Where a split's files are, relative to the card: what ``export(..., "trl_parquet", out)`` writes."""
EXAMPLES_PER_SPLIT = {"train": 3, "eval": 1, "test": 1}
MAX_EXAMPLE_CHARS = 300
SECTIONS = (
    "What it is",
    "Sources",
    "Curation funnel",
    "Schema",
    "Examples",
    "Lineage",
    "Known limitations",
)
_SECRETISH = re.compile(r"(key|secret|token|password|credential|signature|sig|auth)", re.IGNORECASE)
_COLUMN_NOTES = {
    "id": "content hash of the record (equal content, equal id)",
    "source": "provenance: source name, input URI, input sha256, row number",
    "split": "train / eval / test, from a hash of the split key (never moves)",
}


# ------------------------------------------------------------------ what a card needs, in one pass


@dataclass
class CardStats:
    """Everything a card shows about a version's records, gathered batch by batch.

    The card never needs the whole version in memory: rows per split, the column schema, the
    estimated Arrow size of the TRL columns, the first rows by id of each split (a bounded sample)
    and, per split, a count of records per length of :func:`curate.engine.report.length_field` (exact
    percentiles and histograms from counts; a few MB whatever the row count).

    Example:
        >>> df = pl.DataFrame({"id": ["b", "a"], "text": ["hi", "hello"], "split": ["train", "train"]})
        >>> st = CardStats.of(Kind.TEXT, [df])
        >>> st.rows, st.splits, [r["id"] for r in st.example_rows()]
        (2, {'train': 2}, ['a', 'b'])
    """

    kind: Kind
    rows: int = 0
    schema: pl.Schema | None = None
    counts: Counter[str] = field(default_factory=Counter)
    trl_bytes: int = 0
    examples: dict[str, pl.DataFrame] = field(default_factory=dict)
    lengths: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, kind: Kind, frames: Iterable[pl.DataFrame]) -> CardStats:
        """The stats of the records in ``frames`` (a DataFrame's batches, or a version's)."""
        st = cls(kind)
        for df in frames:
            st.update(df)
        return st

    def update(self, df: pl.DataFrame) -> None:
        """Add one batch of records (with ``split``)."""
        if self.schema is None:
            self.schema = df.schema
        if not df.height:
            return
        self.rows += df.height
        self.trl_bytes += trl_columns(df, self.kind).estimated_size()
        n = field_expr(self.kind, length_field(self.kind)).str.len_chars().fill_null(0)
        small = df.select("id", "split", n.alias("__n"))
        for (split,), group in small.group_by("split", maintain_order=True):
            self.counts[split] += group.height
            add = np.bincount(group["__n"].to_numpy(), minlength=1)
            have = self.lengths.get(split)
            if have is None or have.size < add.size:
                add[: 0 if have is None else have.size] += 0 if have is None else have
                self.lengths[split] = add
            else:
                have[: add.size] += add
        _add_examples(self, df)

    @property
    def splits(self) -> dict[str, int]:
        """Rows per split, train/eval/test first; splits without rows are left out."""
        order = [s for s in SPLIT_ORDER if self.counts.get(s)] + sorted(s for s in self.counts if s not in SPLIT_ORDER)
        return {s: int(self.counts[s]) for s in order}

    def empty(self) -> pl.DataFrame:
        """A frame with the records' columns and no rows."""
        return pl.DataFrame(schema=self.schema or {})

    def example_rows(self) -> list[dict[str, Any]]:
        """The first rows by id of each split (train 3, eval 1, test 1), untruncated, URIs redacted."""
        rows = [r for s in self.splits for r in self.examples[s].to_dicts()]
        for row in rows:
            src = row.get("source")
            if isinstance(src, dict) and isinstance(src.get("uri"), str):
                src["uri"] = redact_uri(src["uri"])
        return rows


def _add_examples(st: CardStats, df: pl.DataFrame) -> None:
    """Keep, per split, the rows of ``df`` that sort among the first ids seen so far."""
    for split in df["split"].unique(maintain_order=True).to_list():
        k = EXAMPLES_PER_SPLIT.get(split, 1)
        ids = df.filter(pl.col("split") == split)["id"]
        seen = st.examples.get(split)
        if seen is not None and seen.height >= k and ids.min() > seen["id"].max():
            continue  # nothing in this batch sorts before what is already kept
        cut = ids.bottom_k(k).max()
        rows = df.filter((pl.col("split") == split) & (pl.col("id") <= cut))
        both = rows if seen is None else pl.concat([seen, rows], how="vertical_relaxed")
        # copied out of the batch: a filtered frame's strings still point into the whole batch's data
        kept = pl.from_arrow(both.sort("id", maintain_order=True).head(k).to_arrow())
        assert isinstance(kept, pl.DataFrame)
        st.examples[split] = kept


def card_stats(data: pl.DataFrame | CardStats, kind: Kind) -> CardStats:
    """``data`` as :class:`CardStats` (a frame is read in slices, as a version would be)."""
    if isinstance(data, CardStats):
        return data
    return CardStats.of(kind, (data.slice(lo, 65_536) for lo in range(0, max(data.height, 1), 65_536)))


def _percentile(counts: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear method) of the values whose histogram is ``counts``."""
    total = int(counts.sum())
    if not total:
        return float("nan")
    cum = np.cumsum(counts)
    h = (total - 1) * q / 100.0
    lo = int(np.floor(h))
    x_lo = int(np.searchsorted(cum, lo + 1))
    x_hi = int(np.searchsorted(cum, min(lo + 1, total - 1) + 1))
    return x_lo + (h - lo) * (x_hi - x_lo)


# ------------------------------------------------------------------ front matter


def _hf_dtype(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "string"
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_numeric():
        return str(dtype).lower()  # Int64 -> int64, Float32 -> float32, UInt8 -> uint8
    if isinstance(dtype, pl.Datetime):
        return f"timestamp[{dtype.time_unit or 'us'}]"
    if dtype == pl.Date:
        return "date32"
    return "string"


def _hf_type(dtype: pl.DataType) -> dict[str, Any]:
    """The ``dataset_info.features`` entry (without ``name``) of a polars type, as the Hub writes it."""
    if isinstance(dtype, pl.Struct):
        return {"struct": [{"name": f.name, **_hf_type(f.dtype)} for f in dtype.fields]}
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        assert inner is not None
        sub = _hf_type(inner)
        if "struct" in sub:
            return {"list": sub["struct"]}
        if "dtype" in sub:
            return {"list": sub["dtype"]}
        return {"list": sub}
    return {"dtype": _hf_dtype(dtype)}


def hf_features(schema: pl.Schema) -> list[dict[str, Any]]:
    """``dataset_info.features`` for columns of ``schema`` (``datasets.Features._from_yaml_list`` reads it)."""
    return [{"name": name, **_hf_type(dtype)} for name, dtype in schema.items()]


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
    ):
        if n < limit:
            return label
    return "n>100M"


def front_matter(name: str, version: int, data: pl.DataFrame | CardStats, manifest: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML metadata (a plain dict); ``data``: the records, or their :class:`CardStats`."""
    kind = Kind(manifest["kind"])
    st = card_stats(data, kind)
    splits = st.splits
    tags = ["curate"]
    if kind is Kind.PREFERENCE:
        tags += ["rlhf", "dpo"]
    elif kind is Kind.KTO:
        tags += ["rlhf", "kto"]
    elif kind in (Kind.SFT, Kind.ALPACA):
        tags += ["sft"]
    features = hf_features(trl_columns(st.empty(), kind).schema)
    # num_bytes: the in-memory (Arrow) size of the split's TRL columns, as the Hub's splits metadata records it;
    # estimated pro rata from the whole version (summed over batches), so no split is copied out
    sizes = {s: round(st.trl_bytes * n / st.rows) for s, n in splits.items()}
    return {
        "pretty_name": f"{name}@{version}",
        "license": manifest.get("license") or "other",
        "task_categories": ["text-generation"],
        "tags": tags,
        "size_categories": [_size_category(st.rows)],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": DATA_FILES.format(split=s)} for s in splits],
            }
        ],
        "dataset_info": {
            "config_name": "default",
            "features": features,
            "splits": [{"name": s, "num_bytes": sizes[s], "num_examples": n} for s, n in splits.items()],
            "dataset_size": sum(sizes.values()),
        },
    }


# ------------------------------------------------------------------ markdown helpers


def redact_uri(uri: str) -> str:
    """``uri`` without credentials: no password in ``user:pass@``, no secret-looking query values."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not parts.scheme or parts.scheme == "file":
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRETISH.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[list[Any]], head: list[str]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _truncate(value: Any, limit: int = MAX_EXAMPLE_CHARS) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"… [{len(value) - limit:,} more characters]"
    if isinstance(value, dict):
        return {k: _truncate(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate(v, limit) for v in value]
    return value


def _fence(text: str, lang: str = "") -> str:
    """A code block whose fence is longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def example_rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows the card shows: the first by id of each split (train 3, eval 1, test 1), untruncated."""
    kind = Kind.TEXT if "text" in df.columns else Kind.SFT  # the kind only matters for lengths, not examples
    st = CardStats(kind)
    st.schema = df.schema
    for lo in range(0, df.height, 65_536):
        batch = df.slice(lo, 65_536)
        st.counts.update(dict(batch["split"].value_counts().iter_rows()))
        st.rows += batch.height
        _add_examples(st, batch)
    return st.example_rows()


# ------------------------------------------------------------------ sections


def _what_it_is(name: str, version: int, st: CardStats, manifest: dict[str, Any], root: Path | str) -> list[str]:
    kind = manifest["kind"]
    splits = st.splits
    per_split = ", ".join(f"{s} {_n(n)}" for s, n in splits.items()) or "no rows"
    return [
        "## What it is",
        "",
        f"`{name}@{version}` is version {version} of the **{kind}** dataset `{name}`, published by "
        f"curate from the recipe `{manifest.get('recipe', {}).get('name', '?')}`: "
        f"**{_n(st.rows)} rows** ({per_split}).",
        "",
        f"- Content hash: `{manifest.get('content_hash', '?')}` (SHA-256 over every row's content and split, "
        "provenance excluded: equal hash, equal content)",
        f"- Record kind: `{kind}`; the TRL columns are "
        f"{', '.join(f'`{c}`' for c in trl_columns(st.empty(), Kind(kind)).columns)}",
        "",
        "Load it (from the store, as a `datasets.Dataset` in the format TRL's trainers take):",
        "",
        _fence(
            "from curate.store.load import load\n\n"
            f'ds = load("{name}@{version}", split="train", root={json.dumps(str(root))})',
            "python",
        ),
        "",
        "The store keeps each dataset as a Delta Lake table, so the `data_files` paths in this card's metadata "
        f"(`{DATA_FILES.format(split='SPLIT')}`) and its `features` (the TRL columns) apply to the output of "
        f"`curate datasets export {name}@{version} --format trl_parquet --out DIR`: copy this file to "
        "`DIR/README.md` to load the export with `datasets.load_dataset(DIR)` or to upload it to the Hub.",
        "",
    ]


def _sources(manifest: dict[str, Any]) -> list[str]:
    inputs = manifest.get("inputs") or []
    rows = [
        [
            i.get("source", ""),
            f"`{redact_uri(str(i.get('uri', '')))}`",
            f"`{str(i.get('sha256', ''))[:12]}`",
            i.get("format", ""),
            _n(i.get("rows", "")),
        ]
        for i in inputs
    ]
    lines = ["## Sources", ""]
    if rows:
        lines += [_table(rows, ["source", "uri", "sha256 (prefix)", "format", "input rows"]), ""]
        lines += ["Full SHA-256 digests are in the version's manifest (`curate datasets show`).", ""]
    else:
        lines += ["The manifest records no inputs.", ""]
    return lines


def _stage_settings(stage: dict[str, Any]) -> str:
    keep = {k: v for k, v in stage.items() if k not in ("type", "name") and v not in (None, [], {})}
    text = json.dumps(keep, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= 160 else text[:160] + "…"


def _funnel(manifest: dict[str, Any]) -> list[str]:
    acc = manifest.get("accounting") or {}
    lines = ["## Curation funnel", ""]
    if acc:
        lines += [
            f"Every input row has exactly one outcome: **{_n(acc.get('input_rows'))} input = "
            f"{_n(acc.get('kept'))} kept + {_n(acc.get('quarantined'))} quarantined + "
            f"{_n(acc.get('duplicates'))} duplicates + {_n(acc.get('dropped'))} dropped** "
            f"(balanced: {acc.get('balanced')}). Kept rows can yield more than one record (conversation trees, "
            f"KTO pairs), so the published row count ({_n(manifest.get('rows', '?'))}) may differ from `kept`.",
            "",
            _table(
                [[k, _n(acc.get(k, 0))] for k in ("input_rows", "kept", "quarantined", "duplicates", "dropped")],
                ["outcome", "rows"],
            ),
            "",
        ]
    else:
        lines += ["The manifest records no accounting.", ""]
    stages = manifest.get("stages") or []
    results = {r.get("name"): r for r in manifest.get("stage_results") or [] if isinstance(r, dict)}
    if stages:
        lines += ["Stages, in order:", ""]
        head = ["#", "type", "name"] + (["records in", "removed", "records out"] if results else []) + ["settings"]
        rows = []
        for i, st in enumerate(stages, 1):
            r = results.get(st.get("name") or st.get("type")) or {}
            counts = [_n(r.get(k, "")) for k in ("records_in", "removed", "records_out")] if results else []
            rows.append([i, st.get("type", ""), st.get("name") or "", *counts, f"`{_stage_settings(st)}`"])
        lines += [_table(rows, head), ""]
    else:
        lines += ["No filter, dedup or decontamination stages ran: every converted record was kept.", ""]
    for key, title in (("duplicates_by_reason", "Duplicates"), ("dropped_by_reason", "Dropped")):
        by = acc.get(key) or {}
        if by:
            lines += [f"{title} by reason:", "", _table([[k, _n(v)] for k, v in by.items()], ["reason", "rows"]), ""]
    return lines


def _schema(st: CardStats, manifest: dict[str, Any]) -> list[str]:
    rows = [[f"`{c}`", f"`{t}`", _COLUMN_NOTES.get(c, "")] for c, t in (st.schema or {}).items()]
    return [
        "## Schema",
        "",
        f"Columns of the `{manifest['kind']}` records in the store (the trl_parquet export keeps the TRL columns "
        "listed in the metadata):",
        "",
        _table(rows, ["column", "type", "notes"]),
        "",
    ]


def _examples(st: CardStats) -> list[str]:
    lines = [
        "## Examples",
        "",
        f"The first rows by id of each split (strings cut at {MAX_EXAMPLE_CHARS} characters):",
        "",
    ]
    rows = st.example_rows()
    if not rows:
        return [*lines, "No rows.", ""]
    for row in rows:
        text = json.dumps(_truncate(row), indent=2, ensure_ascii=False, default=str)
        lines += [f"**{row.get('split')}** `{row.get('id')}`", "", _fence(text, "json"), ""]
    return lines


def _lineage(manifest: dict[str, Any]) -> list[str]:
    recipe = manifest.get("recipe") or {}
    code = manifest.get("code_version") or {}
    parent = manifest.get("parent_version")
    rows = [
        ["recipe", f"`{recipe.get('name', '?')}`"],
        ["recipe sha256", f"`{recipe.get('sha256', '?')}`"],
        ["parent version", f"`{manifest.get('dataset')}@{parent}`" if parent else "none (first version)"],
        ["run id", f"`{manifest.get('run_id')}`"],
        [
            "code version",
            f"curate {code.get('package', '?')}, git `{code.get('git_commit')}`, Python {code.get('python', '?')}",
        ],
        ["published at", manifest.get("published_at", "?")],
    ]
    if manifest.get("orchestrator_run_id"):
        rows.insert(4, ["orchestrator run id", f"`{manifest['orchestrator_run_id']}`"])
    return [
        "## Lineage",
        "",
        _table(rows, ["", ""]),
        "",
        "The full recipe text (secrets stay `${ENV}` references) and stage settings are in the manifest, "
        "which travels inside the version's Delta commit.",
        "",
    ]


def _limitations(st: CardStats, manifest: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    leaks = manifest.get("split_leaks") or {}
    threshold = leaks.get("threshold")
    for side in ("eval", "test"):
        info = leaks.get(side)
        if not isinstance(info, dict):
            continue
        n, held = info.get("near_duplicates_of_train", 0), info.get("rows", 0)
        if n:
            ex = ", ".join(f"`{e['id']}`~`{e['train_id']}` ({e['similarity']})" for e in info.get("examples", []))
            notes.append(
                f"**Split leak**: {_n(n)} of {_n(held)} {side} rows are near-duplicates of train rows "
                f"(Jaccard >= {threshold}); e.g. {ex}. Scores on {side} may be optimistic."
            )
        else:
            notes.append(
                f"Split leak check: 0 of {_n(held)} {side} rows are near-duplicates of train (Jaccard >= {threshold})."
            )
    acc = manifest.get("accounting") or {}
    quarantined = acc.get("quarantined_by_reason") or {}
    if quarantined:
        top = ", ".join(f"{k} {_n(v)}" for k, v in sorted(quarantined.items(), key=lambda kv: -kv[1]))
        share = acc.get("quarantined", 0) / acc["input_rows"] if acc.get("input_rows") else 0.0
        notes.append(
            f"**Quarantined input**: {_n(acc.get('quarantined', 0))} input rows ({share:.1%}) could not be read or "
            f"converted and are not in the dataset: {top}. The run folder's `quarantine.jsonl` has each one."
        )
    elif acc:
        notes.append("No input row was quarantined.")
    if acc and not acc.get("balanced", True):
        notes.append("**The accounting does not balance**: treat the row counts of this version with suspicion.")
    splits = st.splits
    for side in SPLIT_ORDER:
        if side not in splits:
            notes.append(f"There is no {side} split (0 rows).")
        elif side != "train" and splits[side] < 100:
            notes.append(f"The {side} split is small ({_n(splits[side])} rows): metrics on it are noisy.")
    if not manifest.get("license"):
        notes.append(
            "`license: other`: the inputs' licenses were not recorded; check each source's terms before "
            "redistributing or training on this dataset."
        )
    if not manifest.get("stage_results") and manifest.get("stages"):
        notes.append("Per-stage record counts are not in the manifest: see the run's `report.md` (run id above).")
    notes.append(
        f"Strings in the example rows are cut at {MAX_EXAMPLE_CHARS} characters; the `data_files` in the metadata "
        "refer to a trl_parquet export, not to the Delta table of the store."
    )
    return ["## Known limitations", "", *[f"- {n}" for n in notes], ""]


# ------------------------------------------------------------------ plot and writer


def _plot_lengths(path: Path, st: CardStats) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    length = length_field(st.kind)
    splits = list(st.splits) or ["train"]
    width = max((c.size for c in st.lengths.values()), default=1)
    all_counts = np.zeros(width, np.int64)
    for c in st.lengths.values():
        all_counts[: c.size] += c
    top = max(_percentile(all_counts, 99) if all_counts.sum() else 1.0, 1.0)
    bins = np.linspace(0, top, 40)
    fig, axes = plt.subplots(len(splits), 1, figsize=(7, 1.8 * len(splits) + 1.0), sharex=True, squeeze=False)
    colors = {"train": "#4C72B0", "eval": "#DD8452", "test": "#55A868"}
    for ax, split in zip(axes[:, 0], splits, strict=True):
        counts = st.lengths.get(split, np.zeros(1, np.int64))
        present = np.flatnonzero(counts)  # a histogram of the distinct lengths weighted by their counts
        ax.hist(np.minimum(present, top), bins=bins, weights=counts[present], color=colors.get(split, "#8172B3"))
        ax.set_ylabel("records")
        n = int(counts.sum())
        ax.set_title(f"{split} ({n:,} rows, median {int(_percentile(counts, 50)) if n else 0:,})")
    axes[-1, 0].set_xlabel(f"{length} length (characters; longer than the 99th percentile counted in the last bin)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)


def card_text(
    name: str, version: int, data: pl.DataFrame | CardStats, manifest: dict[str, Any], root: Path | str
) -> str:
    """The card's full text (front matter + markdown); ``data``: the records or their :class:`CardStats`."""
    st = card_stats(data, Kind(manifest["kind"]))
    meta = yaml.safe_dump(front_matter(name, version, st, manifest), sort_keys=False, allow_unicode=True)
    lines = [
        "---",
        meta.rstrip("\n"),
        "---",
        "",
        f"# {name}@{version}",
        "",
        *_what_it_is(name, version, st, manifest, root),
        *_sources(manifest),
        *_funnel(manifest),
        f"Length of each record's `{length_field(Kind(manifest['kind']))}` per split:",
        "",
        "![lengths](lengths.png)",
        "",
        *_schema(st, manifest),
        *_examples(st),
        *_lineage(manifest),
        *_limitations(st, manifest),
    ]
    return "\n".join(lines)


def card_dir(store: Store, name: str, version: int) -> Path | str:
    """Where version ``name@version``'s card lives: a local folder, or a URL for a remote store."""
    rel = f"{name}/cards/v{version}"
    return Path(store.location.join(rel)) if store.location.local is not None else store.location.join(rel)


def write_card(
    store: Store,
    name: str,
    version: int,
    data: pl.DataFrame | CardStats,
    manifest: dict[str, Any],
    extra: Callable[[Path], None] | None = None,
) -> Path | str:
    """Write ``STORE/NAME/cards/vN/README.md`` and ``lengths.png`` for a published version; return the README.

    ``data`` is the version's records with ``split`` or, for versions larger than memory, their
    :class:`CardStats` (gathered while publishing); ``manifest`` its full manifest (as
    :meth:`Store.publish` returns it); ``extra`` adds more files to the card's folder (given as a
    local folder). Each file is written to a temporary name and renamed, the plot first, so a
    README that exists is complete and its plot is there. A remote store's card is written to a
    local temporary folder and uploaded, README last.
    """
    st = card_stats(data, Kind(manifest["kind"]))
    if store.location.local is None:
        with tempfile.TemporaryDirectory(prefix="curate-card-") as tmpdir:
            folder = Path(tmpdir)
            _plot_lengths(folder / "lengths.png", st)
            if extra is not None:
                extra(folder)
            (folder / "README.md").write_text(card_text(name, version, st, manifest, store.root), encoding="utf-8")
            rel = f"{name}/cards/v{version}"
            store.location.put_dir(folder, rel, last=("README.md",))
            return store.location.join(rel, "README.md")
    folder = Path(card_dir(store, name, version))
    folder.mkdir(parents=True, exist_ok=True)
    _plot_lengths(folder / "lengths.png", st)
    path = folder / "README.md"
    tmp = folder / f".README.md.{os.getpid()}.tmp"
    tmp.write_text(card_text(name, version, st, manifest, store.root), encoding="utf-8")
    tmp.replace(path)
    if extra is not None:
        extra(folder)
    return path


def rewrite_card(store: Store, ref: str) -> Path | str:
    """(Re)write the card of ``ref`` from the store alone, e.g. for a version whose publish stopped before it.

    The version is read batch by batch (:meth:`Store.batches`), never whole.
    """
    name, version = store.resolve(ref)
    exact = f"{name}@{version}"
    manifest = store.manifest(exact)
    st = CardStats.of(Kind(manifest["kind"]), store.batches(exact))
    return write_card(store, name, version, st, manifest)


def repair_cards(store: Store, name: str) -> list[int]:
    """Repair ``name``'s manifest copies and write the cards missing for committed versions.

    A crash between a version's commit and its card leaves the card unwritten; every publish runs
    this first. Returns the versions that needed either.
    """
    fixed = set(store.repair(name))
    if name not in store.names():
        return sorted(fixed)
    for version in store.versions(name):
        if not store.location.exists(f"{name}/cards/v{version}/README.md"):
            rewrite_card(store, f"{name}@{version}")
            fixed.add(version)
    return sorted(fixed)
