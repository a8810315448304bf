"""Run a judge over human-labelled pairs and report how far it agrees (the calibration runner).

:mod:`curate.feedback.calibrate` holds the statistics (agreement, kappas, flip rate, length
preference, bootstrap CIs); this module feeds it: it reads labelled pairs, runs any judge that can
rank two responses over them, and writes the report that ``curate feedback calibrate`` prints.

- :func:`load_labelled` reads pairs into columns ``prompt`` (messages), ``a``, ``b`` (response
  texts), ``label`` (``0``: a better, ``1``: b better, ``-1``: tie or no decision), ``swapped``,
  ``labeller`` and ``origin``, from a store version ``NAME@VERSION``/``NAME`` (e.g. an Argilla
  pull), a preference file (JSONL/JSON/Parquet with ``prompt``/``chosen``/``rejected``, plain
  strings or conversations), an AlpacaEval annotation file (``output_1``, ``output_2``,
  ``preference``) or an OpenAssistant tree file (best vs worst ranked sibling per parent). Which
  response is shown as ``a`` comes from a hash of the pair, so the reference says "a" about half
  the time and a judge that always picks the first response cannot look good.
- :func:`calibrate` judges the pairs (pairwise ``compare``; rating and reward-model ``rate`` of both
  responses, the higher score wins) and returns :func:`~curate.feedback.calibrate.agreement_report`
  with the judge's identity, the data, the failures (each with its raw output; a failed pair counts
  as no decision, so failures lower agreement) and the "always the longer answer" baseline on the
  same pairs.
- :func:`check_min_agreement` is the publishing gate; :func:`write_calibration` writes
  ``calibration.json``, ``calibration.md`` and (with matplotlib) ``calibration.png``.

Example:
    >>> rep = {"agreement": {"value": 0.41, "ci95": [0.34, 0.48]}, "n": 200}
    >>> check_min_agreement(rep, 0.4)
    >>> try:
    ...     check_min_agreement(rep, 0.6)
    ... except CalibrationGateError as e:
    ...     print(str(e)[:70])
    judge agreement with the reference labels is 0.41 (95% CI 0.34-0.48, 2
    >>> # pairs = load_labelled("prefs-human@2", limit=200)   # or a preference / AlpacaEval file
    >>> # report = calibrate(build_judge(spec.judge), pairs); write_calibration(report, Path("calib"))
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from curate.feedback.cache import RequestCache
from curate.feedback.calibrate import agreement_report
from curate.models.backend import Messages
from schemas.feedback import FeedbackSpec
from schemas.kinds import MESSAGES

LABEL_A, LABEL_B, NO_DECISION = 0, 1, -1
COLUMNS = ("prompt", "a", "b", "label", "swapped", "labeller", "origin")
_FORMATS = (
    "a store reference NAME@VERSION, or a file: preference JSONL/JSON/Parquet (prompt, chosen, rejected), "
    "AlpacaEval annotations JSON (instruction, output_1, output_2, preference) or OpenAssistant trees JSONL"
)


_SCHEMA = {"prompt": MESSAGES, "a": pl.String, "b": pl.String, "label": pl.Int8, "labeller": pl.String}


class CalibrationGateError(ValueError):
    """The judge agrees with the reference labels less than ``calibration.min_agreement`` asks."""


class CalibrationDataError(ValueError):
    """Labelled data that cannot be read as pairs; the message names the file or reference and the fix."""


# ---------------------------------------------------------------- loading


def _messages_expr(col: str, dtype: pl.DataType) -> pl.Expr:
    """A prompt column as messages: a plain string becomes one user turn."""
    if dtype in (pl.String, pl.Null):
        text = pl.col(col).cast(pl.String)
        return (
            pl.when(text.is_not_null())
            .then(pl.concat_list([pl.struct(pl.lit("user").alias("role"), text.alias("content"))]))
            .cast(MESSAGES)
        )
    return pl.col(col).cast(MESSAGES)


def _response_expr(col: str, dtype: pl.DataType) -> pl.Expr:
    """A response column as text: a conversation's last message (TRL's implicit-prompt form too)."""
    if dtype in (pl.String, pl.Null):
        return pl.col(col).cast(pl.String)
    return pl.col(col).list.last().struct.field("content")


def _from_preference(df: pl.DataFrame, origin: str) -> pl.DataFrame:
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in df.columns]
    if missing:
        raise CalibrationDataError(
            f"{origin}: preference data needs prompt, chosen and rejected; missing {', '.join(missing)}"
        )
    labeller = (
        pl.col("judge").struct.field("kind").fill_null("unknown")
        if "judge" in df.columns and isinstance(df.schema["judge"], pl.Struct)
        else pl.lit("unknown")
    )
    return df.select(
        _messages_expr("prompt", df.schema["prompt"]).alias("prompt"),
        _response_expr("chosen", df.schema["chosen"]).alias("a"),
        _response_expr("rejected", df.schema["rejected"]).alias("b"),
        pl.lit(LABEL_A, pl.Int8).alias("label"),
        labeller.alias("labeller"),
    )


def _from_alpaca_eval(rows: list[dict[str, Any]], origin: str) -> pl.DataFrame:
    """AlpacaEval annotations as pairs, ``preference`` read as the converter reads it (ties and
    no-decisions kept, as ``-1``: calibration counts them)."""
    from curate.convert.alpaca_eval import preference_reason, preference_value

    missing = {"instruction", "output_1", "output_2"} - set(rows[0])
    if missing:
        raise CalibrationDataError(
            f"{origin}: AlpacaEval annotations need instruction, output_1, output_2; "
            f"missing {', '.join(sorted(missing))}"
        )
    # preferences come as ints, floats or strings ("2.0") in one file: read them as text, like ingest
    df = pl.DataFrame(rows, infer_schema_length=None, strict=False)
    raw = pl.col("preference").cast(pl.String) if "preference" in df.columns else pl.lit(None, pl.String)
    annotator = pl.col("annotator").cast(pl.String) if "annotator" in df.columns else pl.lit(None, pl.String)
    decided = preference_reason(raw).is_null()
    return df.select(
        pl.concat_list(pl.struct(pl.lit("user").alias("role"), pl.col("instruction").alias("content")))
        .cast(MESSAGES)
        .alias("prompt"),
        pl.col("output_1").alias("a"),
        pl.col("output_2").alias("b"),
        pl.when(decided)
        .then(pl.when(preference_value(raw) < 1.5).then(LABEL_A).otherwise(LABEL_B))
        .otherwise(NO_DECISION)
        .cast(pl.Int8)
        .alias("label"),
        annotator.fill_null("unknown").alias("labeller"),
    )


def _from_oasst(rows: list[dict[str, Any]], origin: str) -> pl.DataFrame:
    """Best vs worst ranked sibling reply per parent, through the ``oasst_to_preference`` converter."""
    from curate.convert import get_converter
    from curate.convert.oasst import OasstPairOptions
    from curate.convert.registry import ROW

    trees = pl.DataFrame({ROW: range(len(rows)), "prompt": pl.Series([r["prompt"] for r in rows], dtype=pl.Object)})
    pairs = get_converter("oasst_to_preference").fn(trees, OasstPairOptions(max_pairs_per_parent=1)).ok
    return _from_preference(pairs, origin)


def _read_file(path: Path) -> pl.DataFrame:
    """Pairs with chosen as ``a`` where the format has chosen/rejected (placement is decided later)."""
    origin = str(path)
    if path.suffix == ".parquet":
        return _from_preference(pl.read_parquet(path), origin)
    if path.suffix not in (".json", ".jsonl"):
        raise CalibrationDataError(f"{path}: unknown file type {path.suffix!r}; give {_FORMATS}")
    text = path.read_bytes()
    try:
        if path.suffix == ".json":
            rows = orjson.loads(text)
        else:
            rows = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError as e:
        raise CalibrationDataError(f"{path}: not valid JSON{'' if path.suffix == '.json' else ' lines'}: {e}") from None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise CalibrationDataError(
            f"{path}: expected a list of records (JSON array or one object per line); give {_FORMATS}"
        )
    keys = set(rows[0])
    if {"output_1", "output_2"} <= keys:
        return _from_alpaca_eval(rows, origin)
    if isinstance(rows[0].get("prompt"), dict) and "replies" in rows[0]["prompt"]:
        return _from_oasst(rows, origin)
    if {"chosen", "rejected"} <= keys:
        return _from_preference(pl.DataFrame(rows, infer_schema_length=None), origin)
    raise CalibrationDataError(f"{path}: records with keys {sorted(keys)[:8]} are not labelled pairs; give {_FORMATS}")


def _read_store(ref: str, store: str | Path) -> tuple[pl.DataFrame, str]:
    from curate.store import Store

    st = Store(store)
    name, version = st.resolve(ref)
    resolved = f"{name}@{version}"
    kind = st.manifest(resolved).get("kind")
    if kind != "preference":
        raise CalibrationDataError(
            f"{resolved}: calibration needs preference records (prompt/chosen/rejected), not {kind}"
        )
    return _from_preference(st.read(resolved), resolved), resolved


def _digests(df: pl.DataFrame, salt: str) -> list[bytes]:
    text = pl.concat_str(
        [pl.col("prompt").list.eval(pl.element().struct.field("content")).list.join("\n"), pl.col("a"), pl.col("b")],
        separator="\x00",
        ignore_nulls=True,
    )
    # sha256 rather than polars' hash: the order and placement must not change with the polars version
    return [hashlib.sha256(f"{salt}\x00{t}".encode()).digest() for t in df.select(text).to_series()]


def load_labelled(
    ref: str, base_dir: Path = Path("."), store: str | Path | None = None, limit: int = 200, seed: int = 0
) -> pl.DataFrame:
    """The first ``limit`` labelled pairs of ``ref`` after a seeded, deterministic shuffle.

    Args:
        ref: a file (absolute, or relative to ``base_dir``: a recipe's folder) or a store reference
            ``NAME@VERSION``/``NAME`` (see the module docstring for the formats).
        base_dir: folder that relative file paths are read from.
        store: store root for references (default ``data/store``).
        limit: pairs kept.
        seed: shuffle seed (the same seed gives the same pairs).

    Returns:
        Columns :data:`COLUMNS`; ``swapped`` tells which pairs show the reference's preferred
        response second, ``origin`` is the file or the resolved ``NAME@VERSION``.
    """
    path = Path(ref) if Path(ref).is_absolute() else Path(base_dir) / ref
    if path.is_file():
        df, origin = _read_file(path), str(path.resolve())
    elif any(ref.endswith(s) for s in (".json", ".jsonl", ".parquet")) or "/" in ref:
        raise CalibrationDataError(f"calibration.data: {path} does not exist; give {_FORMATS}")
    else:
        df, origin = _read_store(ref, store or "data/store")
    bad = df.select(pl.any_horizontal(pl.col("prompt", "a", "b").is_null()).sum()).item()
    if bad:
        raise CalibrationDataError(f"{origin}: {bad} pair(s) lack a prompt or a response; remove them or fill them in")
    if df.is_empty():
        raise CalibrationDataError(f"{origin}: no labelled pairs found")
    # placement by the pair's own content: the same pair is shown the same way under every seed
    swap = np.array([d[0] & 1 for d in _digests(df, "placement")], dtype=bool)
    keys = np.frombuffer(b"".join(d[:8] for d in _digests(df, f"order{seed}")), dtype=">u8")
    order = np.argsort(keys, kind="stable")
    flip = pl.Series("swapped", swap)
    df = df.with_columns(flip).with_columns(
        pl.when(pl.col("swapped")).then(pl.col("b")).otherwise(pl.col("a")).alias("a"),
        pl.when(pl.col("swapped")).then(pl.col("a")).otherwise(pl.col("b")).alias("b"),
        pl.when(pl.col("swapped") & (pl.col("label") >= 0))
        .then(1 - pl.col("label"))
        .otherwise(pl.col("label"))
        .cast(pl.Int8)
        .alias("label"),
        pl.lit(origin).alias("origin"),
    )
    return df[order[:limit]].select(COLUMNS)


# ---------------------------------------------------------------- judging


def _as_messages(prompt: list[dict[str, str]]) -> Messages:
    return tuple((m["role"], m["content"]) for m in prompt)


def first_shown_wins(said_a: np.ndarray, said: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Share of a pairwise judge's single-order verdicts that named the response shown first (``A``).

    ``said_a``/``said``: per pair, how many of its orders named A / named either letter. 0.5 is no
    position preference; 1.0 or 0.0 is a judge that reads only the position. Bootstrap over pairs.

    >>> first_shown_wins(np.array([2, 1, 2]), np.array([2, 2, 2]), n_boot=50)["value"]
    0.8333
    """
    total = int(said.sum())
    if not total:
        return {"value": None, "ci95": None, "n_verdicts": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, said.size, (n_boot, said.size))
    num, den = said_a[idx].sum(axis=1), said[idx].sum(axis=1)
    boot = num[den > 0] / den[den > 0]
    ci = [round(float(x), 4) for x in np.percentile(boot, [2.5, 97.5])] if boot.size else None
    return {"value": round(float(said_a.sum()) / total, 4), "ci95": ci, "n_verdicts": total}


def _judge_pairwise(
    judge: Any, items: list[tuple[Messages, str, str]], n_boot: int, seed: int
) -> tuple[np.ndarray, Any, list[dict], dict[str, Any]]:
    comps = judge.compare(items)
    verdicts = np.array([NO_DECISION if c.winner is None else c.winner for c in comps], np.int8)
    flips = np.array([c.error is None and not c.consistent for c in comps]) if judge.swap else None
    failures = [{"pair": i, "error": c.error, "raw": c.raw} for i, c in enumerate(comps) if c.error]
    said_a = np.array([sum(v == "A" for v in c.verdicts) for c in comps])
    said = np.array([sum(v is not None for v in c.verdicts) for c in comps])
    return verdicts, flips, failures, first_shown_wins(said_a, said, n_boot, seed)


def _judge_by_score(
    judge: Any, items: list[tuple[Messages, str, str]], min_margin: float
) -> tuple[np.ndarray, None, list[dict]]:
    n = len(items)
    rated = judge.rate([(p, a) for p, a, _ in items] + [(p, b) for p, _, b in items])
    sa = np.array([np.nan if r.score is None else r.score for r in rated[:n]], float)
    sb = np.array([np.nan if r.score is None else r.score for r in rated[n:]], float)
    diff = sb - sa
    verdicts = np.where(np.isnan(diff) | (np.abs(diff) <= min_margin), NO_DECISION, (diff > 0).astype(np.int8))
    failures = [
        {
            "pair": i,
            "error": "; ".join(f"{side}: {r.error}" for side, r in (("a", ra), ("b", rb)) if r.error),
            "raw": {"a": ra.raw, "b": rb.raw},
        }
        for i, (ra, rb) in enumerate(zip(rated[:n], rated[n:], strict=True))
        if ra.error or rb.error
    ]
    return verdicts.astype(np.int8), None, failures


def _figures(rep: dict[str, Any]) -> dict[str, Any]:
    keys = ("agreement", "decisive_agreement", "kappa_with_ties", "kappa_without_ties")
    return {k: rep[k] for k in keys}


def calibrate(
    judge: Any,
    pairs: pl.DataFrame,
    n_boot: int = 1000,
    seed: int = 0,
    min_margin: float = 0.0,
    data_ref: str | None = None,
) -> dict[str, Any]:
    """Judge ``pairs`` (from :func:`load_labelled`) and measure agreement with their ``label``.

    Args:
        judge: a pairwise judge (``compare``) or a rating / reward-model judge (``rate``).
        pairs: columns ``prompt``, ``a``, ``b``, ``label`` (``labeller``, ``origin`` if present).
        n_boot, seed: bootstrap resamples and seed of the confidence intervals.
        min_margin: score judges: a score difference up to this is a tie.
        data_ref: the data's name in the report (default: the ``origin`` column).

    Returns:
        :func:`~curate.feedback.calibrate.agreement_report`'s figures plus ``judge`` (identity),
        ``data`` (ref, labellers, reference label counts), ``failures`` (count and each failed pair
        with its raw output), ``first_shown_wins`` (pairwise: share of single-order verdicts naming
        the response shown first, see :func:`first_shown_wins`), ``length_baseline`` (the "always
        the longer answer" rule's agreement on the same pairs), ``verdicts`` (counts),
        ``model_calls`` and ``seconds``.
    """
    kind = getattr(judge, "kind", type(judge).__name__)
    if not hasattr(judge, "compare") and not hasattr(judge, "rate"):
        raise TypeError(f"a {kind} judge cannot be calibrated: it neither compares nor rates responses")
    items = [(_as_messages(p), a, b) for p, a, b in pairs.select("prompt", "a", "b").iter_rows()]
    t0 = time.perf_counter()
    if hasattr(judge, "compare"):
        verdicts, flips, failures, first = _judge_pairwise(judge, items, n_boot, seed)
    else:
        verdicts, flips, failures = _judge_by_score(judge, items, min_margin)
        first = {"value": None, "ci95": None, "n_verdicts": 0}  # a score judge sees one response at a time
    seconds = time.perf_counter() - t0
    ref = pairs["label"].to_numpy().astype(np.int8)
    la = pairs["a"].str.len_chars().to_numpy()
    lb = pairs["b"].str.len_chars().to_numpy()
    report = agreement_report(ref, verdicts, flips, (la, lb), n_boot=n_boot, seed=seed)
    longer = np.where(la == lb, NO_DECISION, (lb > la).astype(np.int8)).astype(np.int8)
    baseline = agreement_report(ref, longer, n_boot=n_boot, seed=seed)
    origins = pairs["origin"].unique().sort().to_list() if "origin" in pairs.columns else []
    labellers = Counter(pairs["labeller"].to_list()) if "labeller" in pairs.columns else Counter()
    counts = Counter(ref.tolist())
    report.update(
        judge=judge.identity(),
        data={
            "ref": data_ref or ", ".join(origins) or None,
            "n": int(ref.size),
            "labellers": dict(sorted(labellers.items())),
            "reference_labels": {"a": counts[LABEL_A], "b": counts[LABEL_B], "tie": counts[NO_DECISION]},
        },
        failures={"count": len(failures), "pairs": failures},
        first_shown_wins=first,
        length_baseline=_figures(baseline),
        verdicts={"a": int((verdicts == 0).sum()), "b": int((verdicts == 1).sum()), "none": int((verdicts < 0).sum())},
        model_calls=getattr(judge, "calls", None),  # requests sent (cache hits are not calls)
        seconds=round(seconds, 2),
    )
    return report


def check_min_agreement(report: dict[str, Any], min_agreement: float | None) -> None:
    """Raise :class:`CalibrationGateError` when the report's agreement is below ``min_agreement``."""
    if min_agreement is None:
        return
    fig = report["agreement"]
    value, ci = fig["value"], fig.get("ci95")
    if value is None:
        raise CalibrationGateError(
            "judge agreement is undefined: the calibration data has no pair with a decisive reference label; "
            "give calibration.data with human preferences, or remove calibration.min_agreement"
        )
    if value < min_agreement:
        span = f"95% CI {ci[0]}-{ci[1]}" if ci else "no CI"
        raise CalibrationGateError(
            f"judge agreement with the reference labels is {value} ({span}, {report.get('n')} pairs), below "
            f"calibration.min_agreement {min_agreement}: AI labels are not published; use a stronger judge "
            "(feedback.judge) or lower calibration.min_agreement"
        )


def calibrate_spec(
    spec: FeedbackSpec,
    base_dir: Path,
    store: str | Path | None,
    cache: RequestCache | None,
    data: str | None = None,
    limit: int | None = None,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Calibrate the judge of a recipe's ``feedback:`` section on its ``calibration.data`` (or ``data``).

    The one calibration both ``curate feedback calibrate`` and a run's gate use. Returns the
    :func:`calibrate` report with ``min_agreement`` and ``passed`` (the gate is not enforced here:
    :func:`check_min_agreement` raises). ``base_dir``: the recipe's folder (relative data files).
    """
    from curate.feedback.judges import build_judge

    cal = spec.calibration
    ref = data or (cal.data if cal is not None else None)
    if not ref:
        raise CalibrationDataError(
            "feedback.calibration is missing: add `calibration: {data: NAME@VERSION}` under feedback (a store "
            "version of human preferences, or a preference / AlpacaEval / OpenAssistant file), or pass --data"
        )
    seed = cal.seed if cal is not None else 0
    pairs = load_labelled(ref, base_dir, store, limit or (cal.limit if cal is not None else 200), seed)
    report = calibrate(build_judge(spec.judge, cache), pairs, n_boot=n_boot, seed=seed)
    min_agreement = cal.min_agreement if cal is not None else None
    try:
        check_min_agreement(report, min_agreement)
        passed = True
    except CalibrationGateError:
        passed = False
    report.update(min_agreement=min_agreement, passed=passed)
    return report


SUMMARY_FIGURES = (
    "n",
    "agreement",
    "decisive_agreement",
    "kappa_with_ties",
    "kappa_without_ties",
    "position_flip_rate",
    "first_shown_wins",
    "prefers_longer",
    "reference_prefers_longer",
    "length_baseline",
    "judge",
    "data",
    "min_agreement",
    "passed",
)
"""What a run's summary and a version's manifest keep of a calibration report (the full one, with
each failure's raw output, is ``calibration.json`` in the run folder)."""


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of ``report`` a summary keeps (see :data:`SUMMARY_FIGURES`), plus the failure count."""
    return {**{k: report[k] for k in SUMMARY_FIGURES if k in report}, "failures": report["failures"]["count"]}


# ---------------------------------------------------------------- writing

_ROWS = (
    ("agreement", "agreement"),
    ("decisive_agreement", "agreement on decided pairs"),
    ("kappa_with_ties", "Cohen's kappa (ties as a class)"),
    ("kappa_without_ties", "Cohen's kappa (both decided)"),
    ("position_flip_rate", "position flip rate"),
    ("first_shown_wins", "single-order verdicts naming the first shown"),
    ("prefers_longer", "judge prefers the longer response"),
    ("reference_prefers_longer", "reference prefers the longer response"),
)


def _fmt(fig: dict[str, Any] | None) -> tuple[str, str]:
    if not fig or fig.get("value") is None:
        return "n/a", ""
    ci = fig.get("ci95")
    return f"{fig['value']:.3f}", f"{ci[0]:.3f} - {ci[1]:.3f}" if ci else ""


def _plot(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, report[k]) for k, label in _ROWS if report.get(k) and report[k]["value"] is not None]
    rows.insert(1, ("longer-answer baseline agreement", report["length_baseline"]["agreement"]))
    rows = [(label, f) for label, f in rows if f["value"] is not None]
    values = np.array([f["value"] for _, f in rows])
    ci = np.array([f["ci95"] or [f["value"], f["value"]] for _, f in rows])
    err = np.abs(np.stack([values - ci[:, 0], ci[:, 1] - values]))
    colors = ["#DD8452" if "baseline" in label else "#4C72B0" for label, _ in rows]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    ax.barh(range(len(rows)), values, xerr=err, color=colors, capsize=3)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlim(min(-0.1, float(ci[:, 0].min()) - 0.05), 1.0)
    ax.set_xlabel("value (bars: 95% bootstrap CI)")
    for i, (v, hi) in enumerate(zip(values, ci[:, 1], strict=True)):
        ax.text(min(float(hi), 0.86), i, f" {v:.2f}", va="center")
    name = Path(str(report["data"]["ref"])).name
    ax.set_title(f"judge calibration on {report['n']} pairs\n{name}", fontsize=9, loc="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibration_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page (a table of figures with their CIs)."""
    judge = report["judge"]
    model = judge.get("model") or {}
    name = model.get("spec") or model.get("model") or model.get("path") or json.dumps(model, sort_keys=True)
    lines = [
        "# Judge calibration",
        "",
        f"Judge: **{judge.get('kind')}** `{name}` (prompt {judge.get('prompt_hash', 'n/a')}); data: "
        f"`{report['data']['ref']}`, {report['n']} pairs ({report['n_reference_decisive']} with a decisive "
        f"reference label), labelled by {', '.join(report['data']['labellers']) or 'unknown'}; "
        f"{report['failures']['count']} failed judgement(s); {report['seconds']} s.",
        "",
        "| figure | value | 95% CI |",
        "|---|---|---|",
    ]
    for key, label in _ROWS:
        v, ci = _fmt(report.get(key))
        lines.append(f"| {label} | {v} | {ci} |")
    for key, label in (("agreement", "agreement"), ("kappa_with_ties", "Cohen's kappa (ties as a class)")):
        v, ci = _fmt(report["length_baseline"][key])
        lines.append(f"| longer-answer baseline: {label} | {v} | {ci} |")
    if report.get("min_agreement") is not None:
        lines += ["", f"Required agreement: {report['min_agreement']} ({'passed' if report['passed'] else 'FAILED'})."]
    if report["failures"]["count"]:
        lines += ["", "## Failed judgements", ""]
        lines += [f"- pair {f['pair']}: {f['error']}" for f in report["failures"]["pairs"][:50]]
    return "\n".join(lines) + "\n"


def write_calibration(report: dict[str, Any], folder: Path) -> Path:
    """Write ``calibration.json``, ``calibration.md`` and ``calibration.png`` (with matplotlib) into ``folder``.

    Returns the JSON file's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "calibration.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    (folder / "calibration.md").write_text(calibration_markdown(report), encoding="utf-8")
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # the plot is a convenience; the JSON and the table carry every figure
        return path
    _plot(folder / "calibration.png", report)
    return path
