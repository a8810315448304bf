"""Agreement measures against hand-computed and published values."""

from __future__ import annotations

import polars as pl
import pytest

from curate.annotate.agreement import agreement_report, cohen_kappa, krippendorff_alpha


def _long(data: dict[str, list]) -> pl.DataFrame:
    rows = [(u, who, v) for who, vals in data.items() for u, v in enumerate(vals) if v is not None]
    return pl.DataFrame(rows, schema=["unit", "annotator", "value"], orient="row")


def test_krippendorff_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers x 12 units with gaps:
    # nominal alpha = 0.743, interval alpha = 0.849.
    n = None
    data = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        "C": [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    }
    assert krippendorff_alpha(_long(data)) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(_long(data), level="interval") == pytest.approx(0.849, abs=5e-4)


def test_cohen_kappa_by_hand() -> None:
    # 10 items, yes/no: agree on 7 (4 yes-yes, 3 no-no); a says yes 6 times, b yes 5 times.
    a = ["y", "y", "y", "y", "y", "y", "n", "n", "n", "n"]
    b = ["y", "y", "y", "y", "n", "n", "y", "n", "n", "n"]
    # po = 0.7; pe = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = 0.2 / 0.5 = 0.4
    assert cohen_kappa(_long({"a": a, "b": b})) == pytest.approx(0.4)


def test_perfect_and_undefined_agreement() -> None:
    same = _long({"a": ["1", "2", "1"], "b": ["1", "2", "1"]})
    assert cohen_kappa(same) == pytest.approx(1.0) and krippendorff_alpha(same) == pytest.approx(1.0)
    constant = _long({"a": ["1", "1"], "b": ["1", "1"]})
    assert cohen_kappa(constant) is None and krippendorff_alpha(constant) is None
    with pytest.raises(ValueError, match="exactly two"):
        cohen_kappa(_long({"a": ["1"], "b": ["1"], "c": ["2"]}))


def test_report_picks_kappa_only_for_two_annotators() -> None:
    three = _long({"a": ["1", "2", "1"], "b": ["1", "2", "2"], "c": ["1", "2", "1"]})
    rep = agreement_report(three)
    assert rep["annotators"] == 3 and rep["cohen_kappa"] is None and rep["krippendorff_alpha"] is not None
    two = agreement_report(_long({"a": ["1", "2"], "b": ["1", "2"]}))
    assert two["cohen_kappa"] == 1.0 and two["units_with_two_or_more"] == 2
