"""How far a judge agrees with reference labels (humans, or a stronger judge), with bootstrap CIs.

This module is the statistics only (labels in, figures out); :mod:`curate.feedback.calibration`
is the runner that loads labelled pairs, runs a judge over them and calls :func:`agreement_report`.

Inputs are coded per pair: ``0`` the first response is better, ``1`` the second, ``-1`` a tie (or no
decision). :func:`agreement_report` returns:

- ``agreement``: share of pairs with a decisive reference label where the judge picked the same
  response (a judge's tie counts as a miss), and ``decisive_agreement``: the same over pairs the
  judge decided too;
- ``kappa_with_ties``: Cohen's kappa over the three categories on every pair, and
  ``kappa_without_ties``: over pairs both sides decided;
- ``position_flip_rate``: share of pairs whose verdict flipped when the order was swapped;
- ``prefers_longer``: share of the judge's decisive verdicts that chose the longer response
  (the same figure for the reference labels sits beside it, so a length bias shows as a gap);
- a 95% percentile-bootstrap interval for each rate (``n_boot`` resamples of the pairs) and ``n``.

Example:
    >>> import numpy as np
    >>> r = agreement_report(np.array([0, 1, 0, 1]), np.array([0, 1, 1, -1]), n_boot=200)
    >>> r["n"], r["agreement"]["value"], r["decisive_agreement"]["value"]
    (4, 0.5, 0.6667)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two label arrays (None when undefined: no items, or one label everywhere)."""
    if a.size == 0:
        return None
    cats = np.union1d(a, b)
    po = float(np.mean(a == b))
    pe = float(sum(np.mean(a == c) * np.mean(b == c) for c in cats))
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def _rates(ref: np.ndarray, judge: np.ndarray, longer: np.ndarray | None, flips: np.ndarray | None) -> dict:
    decisive_ref = ref >= 0
    both = decisive_ref & (judge >= 0)
    out: dict[str, float | None] = {
        "agreement": float(np.mean(judge[decisive_ref] == ref[decisive_ref])) if decisive_ref.any() else None,
        "decisive_agreement": float(np.mean(judge[both] == ref[both])) if both.any() else None,
        "kappa_with_ties": cohen_kappa(ref, judge),
        "kappa_without_ties": cohen_kappa(ref[both], judge[both]),
        "position_flip_rate": float(np.mean(flips)) if flips is not None and flips.size else None,
    }
    if longer is not None:
        dj, dr = (judge >= 0) & (longer >= 0), decisive_ref & (longer >= 0)
        out["prefers_longer"] = float(np.mean(judge[dj] == longer[dj])) if dj.any() else None
        out["reference_prefers_longer"] = float(np.mean(ref[dr] == longer[dr])) if dr.any() else None
    return out


def agreement_report(
    reference: np.ndarray,
    judge: np.ndarray,
    flips: np.ndarray | None = None,
    lengths: tuple[np.ndarray, np.ndarray] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Agreement figures of ``judge`` against ``reference`` (see the module docstring).

    ``flips``: per pair, whether the swapped order changed the verdict; ``lengths``: the two
    responses' lengths (for the length-preference figures). Each figure is
    ``{"value", "ci95": [lo, hi]}`` rounded to 4 places.
    """
    ref, jud = np.asarray(reference, np.int8), np.asarray(judge, np.int8)
    if ref.shape != jud.shape:
        raise ValueError(f"reference and judge labels differ in length ({ref.size} vs {jud.size})")
    longer = None
    if lengths is not None:
        la, lb = (np.asarray(x) for x in lengths)
        longer = np.where(la == lb, -1, (lb > la).astype(np.int8)).astype(np.int8)
    point = _rates(ref, jud, longer, flips)
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {k: [] for k in point}
    n = ref.size
    for _ in range(n_boot if n else 0):
        i = rng.integers(0, n, n)
        r = _rates(ref[i], jud[i], None if longer is None else longer[i], None if flips is None else flips[i])
        for k, v in r.items():
            if v is not None:
                boot[k].append(v)
    report: dict[str, Any] = {"n": int(n), "n_reference_decisive": int((ref >= 0).sum())}
    for k, v in point.items():
        ci = [round(float(x), 4) for x in np.percentile(boot[k], [2.5, 97.5])] if boot[k] else None
        report[k] = {"value": None if v is None else round(v, 4), "ci95": ci}
    return report
