"""The AI feedback section of a run report: what happened to each prompt, who judged, and plots.

Reads the run's ``summary["feedback"]`` and ``judgements.parquet``; writes ``feedback.png`` (the
prompt outcomes, and the distribution of the published pairs' margins) and returns markdown lines
for ``report.md``: the outcome table (``prompts in = pairs + ties + too_few + failed + routed``),
failure reasons, the judge and generators, the cache hit rate, the calibration figures when the
recipe measured the judge, and one example pair with the judge's raw answer.

Example:
    >>> # lines = feedback_section(run_folder, summary)   # [] when the run had no feedback
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import polars as pl


def _plot(path: Path, fb: dict[str, Any], margins: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    names = list(fb["outcomes"])
    vals = [fb["outcomes"][k] for k in names]
    a.barh(names, vals, color=["#55A868", "#CCB974", "#8172B2", "#C44E52", "#4C72B0"][: len(names)])
    a.invert_yaxis()
    for i, v in enumerate(vals):
        a.text(v, i, f" {v:,}", va="center")
    a.set_title(f"{fb['prompts_in']:,} prompts: outcomes")
    b.hist(margins or [0.0], bins=20, color="#4C72B0")
    b.set_title(f"margins of {len(margins):,} published pairs")
    b.set_xlabel("score(chosen) - score(rejected)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(fig: dict[str, Any] | None) -> str:
    if not fig or fig.get("value") is None:
        return "-"
    ci = fig.get("ci95")
    return f"{fig['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def feedback_section(folder: Path, summary: dict[str, Any]) -> list[str]:
    """Markdown lines (and ``feedback.png`` in ``folder``) for a run with AI feedback; else ``[]``."""
    fb = summary.get("feedback")
    if not fb:
        return []
    judgements = folder / "judgements.parquet"
    audit = pl.read_parquet(judgements) if judgements.exists() else pl.DataFrame()
    margins: list[float] = []
    if audit.height:
        margins = [
            m for m in audit.select(pl.col("pairs").explode().struct.field("margin")).to_series() if m is not None
        ]
    _plot(folder / "feedback.png", fb, margins)
    o = fb["outcomes"]
    judge = fb["judge"]
    lines = [
        "## AI feedback",
        "",
        f"**{fb['prompts_in']:,} prompts = {o.get('pairs', 0):,} with pairs + {o.get('tie', 0):,} ties + "
        f"{o.get('too_few', 0):,} too few candidates + {o.get('failed', 0):,} failed + "
        f"{o.get('routed', 0):,} routed to annotators** (balanced: {fb['balanced']}); "
        f"{fb['records_out']:,} records published.",
        "",
        "![feedback](feedback.png)",
        "",
        f"- judge: `{judge['kind']}` with `{judge.get('model')}`",
        "- generators: "
        + (", ".join(f"`{g['name']}` x{g['n']}" for g in fb["generators"]) or "none (input responses)"),
        f"- candidates: {fb['candidates']:,} ({fb['candidate_failures']:,} failed to generate)",
        f"- model calls: {fb['model_calls']:,}; request cache hit rate: {fb['cache_hit_rate']}",
        "",
    ]
    reasons = [[f"failed: {k}", v] for k, v in fb["failed_by_reason"].items()]
    reasons += [[f"too_few: {k}", v] for k, v in fb["too_few_by_reason"].items()]
    if reasons:
        lines += ["| reason | prompts |", "|---|---|", *[f"| {k} | {v} |" for k, v in reasons], ""]
        lines += [
            "Failed prompts and candidates, with the raw model output: "
            "[feedback_quarantine.jsonl](feedback_quarantine.jsonl).",
            "",
        ]
    cal = fb.get("calibration")
    if cal:
        lines += [
            f"### Judge calibration (n = {cal.get('n')}, reference: `{cal.get('data')}`)",
            "",
            "| figure | value [95% CI] |",
            "|---|---|",
            *[
                f"| {k} | {_fmt(cal.get(k))} |"
                for k in ("agreement", "kappa_with_ties", "kappa_without_ties", "position_flip_rate", "prefers_longer")
                if k in cal
            ],
            "",
        ]
    example = audit.filter(pl.col("pairs").list.len() > 0).head(1) if audit.height else audit
    if example.height:
        row = example.row(0, named=True)
        pair = row["pairs"][0]
        raw = orjson.loads(row["judge_raw"]) if row["judge_raw"] else None
        lines += [
            "### An example pair",
            "",
            f"- prompt: {row['prompt'][-1]['content'][:300]}",
            f"- chosen: {pair['chosen'][:300]}",
            f"- rejected: {pair['rejected'][:300]}",
            f"- margin {pair['margin']}, confidence {pair['confidence']}",
            f"- judge said: `{orjson.dumps(raw)[:400].decode(errors='replace')}`",
            "",
        ]
    lines += [
        "Every prompt's candidates, scores, pairs and the judge's raw answers: "
        "[judgements.parquet](judgements.parquet).",
        "",
    ]
    return lines
