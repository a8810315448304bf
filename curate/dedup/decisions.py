"""What a dedup stage decides for each row: kept, or a duplicate of which row and how similar."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class DedupDecision:
    """``dup_of[i]`` is the row that ``i`` duplicates, or -1 when ``i`` stays.

    For exact dedup that is the row that stays in ``i``'s group. For near dedup it is the neighbour
    that linked ``i`` (a verified pair), and ``similarity[i]`` is their Jaccard similarity (1.0 for
    exact matches; NaN for rows that stay): the pair an audit names really is that similar.
    ``representative[i]`` is the row that stays in ``i``'s group (-1 when ``i`` stays); it equals
    ``dup_of`` except along chains (connected components). ``stats`` holds counts and timings.
    """

    dup_of: np.ndarray
    similarity: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    pairs: Any = None
    """Verified pairs behind the decision (near dedup), for audits and benchmarks."""
    representative: np.ndarray = None  # type: ignore[assignment]  # None: the same as dup_of

    def __post_init__(self) -> None:
        if self.representative is None:
            self.representative = self.dup_of

    @property
    def removed(self) -> np.ndarray:
        return self.dup_of >= 0


def priority_for(keep: str, lengths: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Lower wins: ``first`` -> row order; ``longest`` -> more characters; ``score`` -> higher score
    (missing scores lose). Ties fall back to row order in :func:`curate.dedup.lsh.representatives`."""
    n = lengths.size
    if keep == "first":
        return np.arange(n, dtype=np.float64)
    if keep == "longest":
        return -lengths.astype(np.float64)
    if scores is None:
        raise ValueError("keep: score needs scores")
    return np.where(np.isnan(scores), np.inf, -scores)
