"""What a run shows a person beside its files: the funnel as a table, the run report as markdown (Prefect artifacts).

Example:
    >>> rows = funnel_rows({"input_rows": 3, "kept": 2, "quarantined": 1, "duplicates": 0, "dropped": 0,
    ...                     "quarantined_by_reason": {"invalid_json": 1}, "stages": []})
    >>> rows[0]["step"], rows[-1]["reason"]
    ('input', 'invalid_json')
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from curate.engine.report import AUDIT_FILES, link_audit_files


def funnel_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per funnel step (input, ingest, each stage) and one per reason under it."""
    rows: list[dict[str, Any]] = [
        {"step": "input", "outcome": "rows", "reason": "", "count": summary["input_rows"]},
        {
            "step": "ingest",
            "outcome": "kept",
            "reason": "",
            "count": summary["kept"] + summary["duplicates"] + summary["dropped"],
        },
    ]
    for st in summary.get("stages", []):
        rows.append(
            {"step": st["name"], "outcome": f"{st['type']}: records out", "reason": "", "count": st["records_out"]}
        )
        rows += [
            {"step": st["name"], "outcome": st["outcome"], "reason": r, "count": n} for r, n in st["by_reason"].items()
        ]
    rows += [
        {"step": "ingest", "outcome": "quarantined", "reason": r, "count": n}
        for r, n in summary.get("quarantined_by_reason", {}).items()
    ]
    return rows


def _inline_images(text: str, folder: Path) -> str:
    """Embed the report's PNGs (Prefect's UI cannot read files from the run folder)."""
    for png in ("funnel.png", "lengths.png"):
        path = folder / png
        if path.exists():
            data = base64.b64encode(path.read_bytes()).decode()
            text = text.replace(f"]({png})", f"](data:image/png;base64,{data})")
    return text


def report_markdown(run_dir: Path, summary: dict[str, Any]) -> str:
    """The run's ``report.md`` with plots inlined and audit files linked by absolute URI."""
    page = run_dir / "report.md"
    text = page.read_text(encoding="utf-8") if page.exists() else f"# {summary.get('recipe')}\n"
    text = _inline_images(text, run_dir)
    text = link_audit_files(text, run_dir)
    links = "\n".join(f"- [{n}]({(run_dir / n).resolve().as_uri()})" for n in AUDIT_FILES if (run_dir / n).exists())
    published = summary.get("published")
    pub = f"\n\nPublished: `{published['ref']}` (content {published['content_hash'][:12]})" if published else ""
    return f"{text}\n\n## Files\n\nRun folder: `{run_dir.resolve()}`{pub}\n\n{links}\n"
