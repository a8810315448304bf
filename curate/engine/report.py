"""The run report: a markdown page with the funnel, reasons, examples and plots, next to the data.

Example:
    >>> # write_report(run_folder, summary, stage_results, lengths_before, lengths_after)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from schemas.fields import key_expr
from schemas.kinds import Kind

AUDIT_FILES = (
    "quarantine.jsonl",
    "dropped.parquet",
    "duplicates.parquet",
    "contamination.jsonl",
    "rejected_records.jsonl",
    "summary.json",
    "recipe.yaml",
    "judgements.parquet",
    "feedback_quarantine.jsonl",
)
"""Files of a run folder the report links to (those a run wrote)."""


def link_audit_files(text: str, run_dir: Path) -> str:
    """``text`` (the report) with its relative links to audit files made absolute ``file://`` URIs."""
    for name in AUDIT_FILES:
        text = text.replace(f"]({name})", f"]({(run_dir / name).resolve().as_uri()})")
    return text


def length_field(kind: Kind) -> str:
    """The field whose length the report plots."""
    return "text" if kind is Kind.TEXT else "response"


LENGTH_BATCH_ROWS = 65_536
"""Records decoded at a time when measuring lengths (memory stays flat however large a part is)."""


def record_lengths(parts: list[Path], kind: Kind) -> np.ndarray:
    """Character lengths of :func:`length_field` for every record of ``parts``, in order.

    Reads only the columns the field needs, a batch at a time: a part can hold millions of records.
    """
    expr = key_expr(kind, [length_field(kind)]).str.len_chars()
    columns = list(dict.fromkeys(expr.meta.root_names()))
    lengths = []
    for p in parts:
        for batch in pq.ParquetFile(p).iter_batches(batch_size=LENGTH_BATCH_ROWS, columns=columns):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            lengths.append(frame.select(expr).to_series().to_numpy())
    return np.concatenate(lengths) if lengths else np.empty(0, np.int64)


def _plot_funnel(path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = summary.get("stages", [])
    labels = ["input rows", "records after ingest"] + [f"after {s['name']}" for s in stages]
    # one input row can give several records (trees, KTO pairs): stages count records
    ingested = stages[0]["records_in"] if stages else summary["output_records"]
    values = [summary["input_rows"], ingested] + [s["records_out"] for s in stages]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(labels) + 1.2))
    ax.barh(range(len(labels)), values, color="#4C72B0")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,}", va="center")
    ax.set_xlabel("rows (input) / records (stages)")
    ax.set_title(f"{summary['recipe']}: curation funnel")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_lengths(path: Path, before: np.ndarray, after: np.ndarray, field: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    top = max(float(np.percentile(before, 99)) if before.size else 1.0, 1.0)
    bins = np.linspace(0, top, 40)
    ax.hist(before, bins=bins, alpha=0.5, label=f"before stages ({before.size:,})", color="#DD8452")
    ax.hist(after, bins=bins, alpha=0.6, label=f"kept ({after.size:,})", color="#4C72B0")
    ax.set_xlabel(f"{field} length (characters, up to the 99th percentile)")
    ax.set_ylabel("records")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(rows: list[list[Any]], head: list[str]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_report(
    folder: Path, summary: dict[str, Any], before: np.ndarray, after: np.ndarray, length_field: str
) -> Path:
    """Write ``report.md`` (+ ``funnel.png``, ``lengths.png``) into ``folder``; return the page's path."""
    _plot_funnel(folder / "funnel.png", summary)
    _plot_lengths(folder / "lengths.png", before, after, length_field)
    s = summary
    lines = [
        f"# Run report: {s['recipe']} ({s['kind']})",
        "",
        f"Run `{s['run_id']}`, {s['seconds']} s. Every input row has one outcome: "
        f"**{s['input_rows']:,} input = {s['kept']:,} kept + {s['quarantined']:,} quarantined + "
        f"{s['duplicates']:,} duplicates + {s['dropped']:,} dropped** (balanced: {s['balanced']}).",
        "",
        "![funnel](funnel.png)",
        "",
        "## Sources",
        "",
        _table(
            [
                [n, v["input_rows"], v["kept"], v["quarantined"], v["duplicates"], v["dropped"], v["output_records"]]
                for n, v in s["sources"].items()
            ],
            ["source", "input rows", "kept", "quarantined", "duplicates", "dropped", "records out"],
        ),
        "",
    ]
    if s["quarantined_by_reason"]:
        lines += [
            "## Quarantined at ingest",
            "",
            _table([[k, v] for k, v in s["quarantined_by_reason"].items()], ["reason", "rows"]),
            "",
            "Every quarantined row, with its file, row and raw text: [quarantine.jsonl](quarantine.jsonl).",
            "",
        ]
    stages = s.get("stages", [])
    if stages:
        lines += [
            "## Stages (records)",
            "",
            _table(
                [
                    [st["name"], st["type"], st["records_in"], st["removed"], st["records_out"], st["seconds"]]
                    for st in stages
                ],
                ["stage", "type", "in", "removed", "out", "seconds"],
            ),
            "",
            "Removed records are in [dropped.parquet](dropped.parquet) and [duplicates.parquet](duplicates.parquet) "
            "(with `stage`, `reason`, `detail`, `duplicate_of`, `similarity`, `representative`: the row each "
            "duplicate was verified against, their Jaccard similarity, and the row kept for its group).",
            "",
        ]
        for st in stages:
            if not st["by_reason"]:
                continue
            lines += [
                f"### {st['name']}",
                "",
                _table([[k, v] for k, v in st["by_reason"].items()], ["reason", "records"]),
                "",
            ]
            for reason, examples in st["examples"].items():
                lines.append(f"Examples of `{reason}`:")
                lines.append("")
                for ex in examples:
                    text = ex.get("text", "")
                    extra = ""
                    if "duplicate_of" in ex:
                        extra = (
                            f" — duplicate of `{ex['duplicate_of']}` (similarity {ex['similarity']}): {ex['kept_text']}"
                        )
                        if ex.get("representative"):  # a chain: the row that stays is another one
                            extra += f" (group kept `{ex['representative']}`)"
                    elif "reference_text" in ex:
                        extra = f" — matches reference (similarity {ex['similarity']}): {ex['reference_text']}"
                    elif "detail" in ex:
                        extra = f" — {ex['detail']}"
                    lines.append(f"- `{ex['id']}`: {text}{extra}")
                lines.append("")
    if s.get("feedback"):
        from curate.feedback.report import feedback_section

        lines += feedback_section(folder, s)
    lines += ["## Lengths", "", "![lengths](lengths.png)", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
