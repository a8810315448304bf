"""The metric interface every evaluator implements, and the bootstrap interval they all report.

A metric is a small class: it declares the record kinds it can score (``kinds``), whether higher is
better, and one method, :meth:`Metric.compute`, which takes an :class:`EvalContext` (the loaded
model, the decontaminated eval rows, batch size, seed...) and returns :class:`MetricValue` items
(one metric may report several figures, e.g. loss and perplexity). Per-item scores go through
:func:`bootstrap_ci` so every figure carries ``n`` and a 95% interval. Metrics register themselves by
name with :func:`register`; the runner looks them up with :func:`get_metric`.

Example:
    >>> import numpy as np
    >>> lo, hi = bootstrap_ci(np.array([1.0, 0.0, 1.0, 1.0]), resamples=200, seed=0)
    >>> 0.0 <= lo <= 0.75 <= hi <= 1.0
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from schemas.evaluation import MetricSpec, MetricValue


class EvalError(ValueError):
    """An evaluation cannot run as asked (wrong record kind, missing model, bad options): exit 2."""


@dataclass
class EvalContext:
    """What a metric gets: the model under test, its eval rows, and the run's settings.

    ``model``/``tokenizer`` are loaded (eval mode); ``rows`` is a polars DataFrame of the eval split's
    records of kind ``kind`` after leaked rows were dropped. ``other`` is the model compared with
    (reference, champion), loaded only when a metric asks for it through ``load_other``.
    """

    model: Any
    tokenizer: Any
    rows: Any  # polars.DataFrame
    kind: str
    spec: MetricSpec
    batch_size: int = 8
    bootstrap: int = 1000
    seed: int = 0
    model_ref: str = ""
    load_other: Callable[[str | None], tuple[Any, Any]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """One evaluator. Subclasses set ``name``, ``kinds`` and ``higher_is_better`` and implement ``compute``."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]  # record kinds it scores; empty = needs no dataset (e.g. safety, lm_eval)
    higher_is_better: ClassVar[bool]

    def check(self, kind: str | None) -> None:
        """Raise :class:`EvalError` when this metric cannot score records of ``kind``."""
        if self.kinds and kind not in self.kinds:
            raise EvalError(
                f"metrics: {self.name} scores {', '.join(sorted(self.kinds))} records, not {kind}; "
                f"evaluate it on a dataset of one of those kinds or drop it"
            )

    @abstractmethod
    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        """The figures of this metric on ``ctx``."""


_REGISTRY: dict[str, type[Metric]] = {}


def register(cls: type[Metric]) -> type[Metric]:
    """Class decorator: make ``cls`` available to eval recipes under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def get_metric(name: str) -> Metric:
    """A new instance of the metric ``name`` (imports the built-in metric modules first)."""
    import train.eval.metrics  # noqa: F401  (registers the built-ins)

    if name not in _REGISTRY:
        raise EvalError(f"metrics: unknown metric {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def bootstrap_ci(
    values: np.ndarray,
    stat: Callable[[np.ndarray], Any] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` (default: mean) over per-item ``values``.

    ``values`` may be 1-D (one score per item) or 2-D (items x columns, e.g. per-item loss sum and
    token count, resampled together so a ratio statistic stays paired). Vectorized: all resamples
    are drawn as one index matrix. An empty input gives ``(nan, nan)``.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    if stat is None:
        stats = values[idx].mean(axis=1)
        if stats.ndim > 1:
            raise ValueError("bootstrap_ci: give a stat for 2-D values")
    else:
        stats = np.array([stat(values[row]) for row in idx], dtype=np.float64)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def value_with_ci(
    metric: str,
    per_item: np.ndarray,
    higher_is_better: bool,
    ctx: EvalContext,
    unit: str = "rows",
    details: dict[str, Any] | None = None,
) -> MetricValue:
    """The mean of ``per_item`` as a :class:`MetricValue` with its bootstrap interval."""
    per_item = np.asarray(per_item, dtype=np.float64)
    lo, hi = bootstrap_ci(per_item, resamples=ctx.bootstrap, seed=ctx.seed)
    return MetricValue(
        metric=metric,
        value=float(per_item.mean()) if len(per_item) else float("nan"),
        n=len(per_item),
        unit=unit,
        ci_low=lo,
        ci_high=hi,
        higher_is_better=higher_is_better,
        details=details or {},
    )


def ratio_ci(
    num: np.ndarray, den: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``sum(num) / sum(den)`` resampling items (rows) together.

    For per-token figures (loss per token over rows of different lengths): resampling rows keeps
    each row's tokens together, as the rows, not the tokens, are the independent draws.
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if len(num) == 0:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(num), size=(resamples, len(num)))
    stats = num[idx].sum(axis=1) / np.maximum(den[idx].sum(axis=1), 1e-12)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)
