"""Inter-annotator agreement: Cohen's kappa (two annotators) and Krippendorff's alpha (any number).

Both take long frames of ``(unit, annotator, value)``; missing values are simply absent rows.

Example:
    >>> import polars as pl
    >>> votes = pl.DataFrame({"unit": ["a", "a", "b", "b", "c", "c"], "annotator": ["x", "y"] * 3,
    ...                       "value": ["1", "1", "2", "2", "1", "2"]})
    >>> round(cohen_kappa(votes), 3), round(krippendorff_alpha(votes), 3)
    (0.4, 0.444)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl


def cohen_kappa(votes: pl.DataFrame) -> float | None:
    """Cohen's kappa of the two annotators in ``votes`` over the units both labelled.

    Returns None when it is undefined (fewer than one shared unit, or chance agreement of 1).
    """
    annotators = sorted(votes["annotator"].unique().to_list())
    if len(annotators) != 2:
        raise ValueError(f"Cohen's kappa needs exactly two annotators, got {len(annotators)}: use krippendorff_alpha")
    a, b = annotators
    pairs = (
        votes.filter(pl.col("annotator") == a)
        .select("unit", pl.col("value").cast(pl.String).alias("a"))
        .join(votes.filter(pl.col("annotator") == b).select("unit", pl.col("value").cast(pl.String).alias("b")), "unit")
    )
    n = pairs.height
    if n == 0:
        return None
    observed = float((pairs["a"] == pairs["b"]).sum()) / n
    pa = pairs["a"].value_counts(normalize=True, name="pa").rename({"a": "v"})
    pb = pairs["b"].value_counts(normalize=True, name="pb").rename({"b": "v"})
    expected = float(pa.join(pb, "v").select((pl.col("pa") * pl.col("pb")).sum()).item() or 0.0)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(votes: pl.DataFrame, level: Literal["nominal", "interval"] = "nominal") -> float | None:
    """Krippendorff's alpha over units with at least two values (nominal or interval distance).

    ``alpha = 1 - (n - 1) * sum(o_ck * d_ck) / sum(n_c * n_k * d_ck)`` from the coincidence matrix
    ``o``. Returns None when undefined (no pairable values, or a single value everywhere).
    """
    df = votes.select("unit", pl.col("value").cast(pl.Float64 if level == "interval" else pl.String))
    df = df.drop_nulls()
    sizes = df.group_by("unit").len("m")
    df = df.join(sizes.filter(pl.col("m") >= 2), "unit")
    if df.height == 0:
        return None
    values = sorted(df["value"].unique().to_list())
    index = {v: i for i, v in enumerate(values)}
    k = len(values)
    if k < 2:
        return None
    codes = np.array([index[v] for v in df["value"].to_list()], dtype=np.int64)
    units = df["unit"].cast(pl.String).to_numpy()
    m = df["m"].to_numpy().astype(np.float64)
    # counts[u, c] per unit, then o = sum_u (counts_u counts_u^T - diag(counts_u)) / (m_u - 1)
    unit_ids, unit_idx = np.unique(units, return_inverse=True)
    counts = np.zeros((len(unit_ids), k))
    np.add.at(counts, (unit_idx, codes), 1.0)
    weight = np.zeros(len(unit_ids))
    weight[unit_idx] = 1.0 / (m - 1.0)
    o = np.einsum("u,uc,uk->ck", weight, counts, counts) - np.diag((counts * weight[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "interval":
        v = np.array(values, dtype=np.float64)
        delta = (v[:, None] - v[None, :]) ** 2
    else:
        delta = 1.0 - np.eye(k)
    expected = float((np.outer(n_c, n_c) * delta).sum())
    if expected == 0:
        return None
    return float(1.0 - (n - 1.0) * float((o * delta).sum()) / expected)


def agreement_report(choices: pl.DataFrame, ratings: pl.DataFrame | None = None) -> dict[str, Any]:
    """Agreement on each annotator's preferred response (and on ratings when given).

    Args:
        choices: ``unit, annotator, value`` with the preferred candidate (``"tie"`` for a tie).
        ratings: optional ``unit, annotator, value`` with numeric ratings (unit = record and candidate).

    Returns:
        ``{"annotators", "units", "cohen_kappa" (two annotators only), "krippendorff_alpha",
        "ratings_alpha_interval"}`` with None where undefined.
    """
    annotators = choices["annotator"].n_unique() if choices.height else 0
    shared = choices.group_by("unit").len().filter(pl.col("len") >= 2).height if choices.height else 0
    report: dict[str, Any] = {"annotators": annotators, "units_with_two_or_more": shared}
    report["cohen_kappa"] = cohen_kappa(choices) if annotators == 2 else None
    report["krippendorff_alpha"] = krippendorff_alpha(choices) if annotators >= 2 else None
    if ratings is not None and ratings.height:
        report["ratings_alpha_interval"] = krippendorff_alpha(ratings, level="interval")
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()}
