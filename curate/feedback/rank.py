"""Judge each prompt's candidates and choose its preference pairs.

Per prompt, the usable candidates (no error, non-empty, distinct texts) are judged:

- a **pairwise** judge compares every two of them (each comparison in both orders, see
  :mod:`curate.feedback.pairwise`); a candidate's score is its share of wins (a tie is half a win),
  so with two candidates the winner scores 1 and the loser 0, and an inconsistent verdict scores
  both 0.5 (a tie);
- a **rating** or **reward_model** judge scores each candidate on its own;
- a **critique_revise** judge revises each candidate: the revision is ``chosen``, the original
  ``rejected`` (no scores).

Then :func:`choose` picks pairs by ``pairs.strategy`` (``best_worst``: one pair per prompt;
``all``: every pair whose score difference clears ``min_margin``). A prompt ends in exactly one
outcome: ``pairs``, ``tie`` (no pair clears the margin, or the verdict flipped with the order),
``too_few`` (fewer than two usable candidates), ``failed`` (the judge failed or could not be
parsed: the raw answers are kept) or ``routed`` (uncertain, sent to annotators; see
:func:`uncertain`).

Example:
    >>> from schemas.feedback import PairSpec
    >>> v = Verdict(scores=[1.0, 0.0, 0.5])
    >>> [(p.chosen, p.rejected, p.margin) for p in choose(v, PairSpec())]
    [(0, 1, 1.0)]
    >>> [(p.chosen, p.rejected) for p in choose(v, PairSpec(strategy="all", min_margin=0.4))]
    [(0, 1), (0, 2), (2, 1)]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from curate.feedback.generate import Candidate
from curate.feedback.inputs import Prompt
from schemas.feedback import PairSpec, RouteSpec


@dataclass
class Verdict:
    """A prompt's judgement: a score per usable candidate, or the failure with the raw answers."""

    scores: list[float] = field(default_factory=list)
    confidence: dict[tuple[int, int], float | None] = field(default_factory=dict)
    consistent: dict[tuple[int, int], bool] = field(default_factory=dict)
    revisions: list[str] = field(default_factory=list)
    raw: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Pair:
    """Candidate ``chosen`` preferred over ``rejected`` (indexes into the usable candidates)."""

    chosen: int
    rejected: int
    margin: float | None
    confidence: float | None = None
    revised: str | None = None


def usable(cands: list[Candidate]) -> list[Candidate]:
    """The candidates worth judging: no error, some text, each text once (first kept)."""
    seen: set[str] = set()
    out = []
    for c in cands:
        key = c.text.strip()
        if c.ok and key and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def judge_pairwise(judge: Any, prompts: list[Prompt], cands: list[list[Candidate]]) -> list[Verdict]:
    """Every two usable candidates of each prompt compared in one batch; scores are win shares."""
    jobs = [(pi, i, j) for pi, cs in enumerate(cands) for i, j in itertools.combinations(range(len(cs)), 2)]
    comps = judge.compare([(prompts[pi].messages, cands[pi][i].text, cands[pi][j].text) for pi, i, j in jobs])
    out = [Verdict(scores=[0.0] * len(cs), raw=[]) for cs in cands]
    for (pi, i, j), c in zip(jobs, comps, strict=True):
        v = out[pi]
        v.raw.append({"a": i, "b": j, **c.as_dict()})
        if c.error:
            v.error = v.error or c.error
            continue
        if c.winner is None:
            v.scores[i] += 0.5
            v.scores[j] += 0.5
        else:
            v.scores[(i, j)[c.winner]] += 1.0
        v.confidence[(i, j)] = c.confidence
        v.consistent[(i, j)] = c.consistent
    for v, cs in zip(out, cands, strict=True):
        if len(cs) > 1:
            v.scores = [round(s / (len(cs) - 1), 6) for s in v.scores]
    return out


def judge_scores(judge: Any, prompts: list[Prompt], cands: list[list[Candidate]]) -> list[Verdict]:
    """Each usable candidate rated on its own (rating or reward_model judge), in one batch."""
    jobs = [(pi, i) for pi, cs in enumerate(cands) for i in range(len(cs))]
    ratings = judge.rate([(prompts[pi].messages, cands[pi][i].text) for pi, i in jobs])
    out = [Verdict(scores=[0.0] * len(cs), raw=[]) for cs in cands]
    for (pi, i), r in zip(jobs, ratings, strict=True):
        v = out[pi]
        v.raw.append({"candidate": i, "score": r.score, "aspects": r.aspects, "raw": r.raw, "error": r.error})
        if r.error or r.score is None:
            v.error = v.error or r.error or "judge_error: no score"
            continue
        v.scores[i] = float(r.score)
    return out


def judge_revisions(judge: Any, prompts: list[Prompt], cands: list[list[Candidate]]) -> list[Verdict]:
    """Each usable candidate critiqued and revised (critique_revise judge), in one batch."""
    jobs = [(pi, i) for pi, cs in enumerate(cands) for i in range(len(cs))]
    revs = judge.revise([(prompts[pi].messages, cands[pi][i].text) for pi, i in jobs])
    out = [Verdict(raw=[], revisions=[""] * len(cs)) for cs in cands]
    for (pi, i), r in zip(jobs, revs, strict=True):
        v = out[pi]
        v.raw.append({"candidate": i, "critique": r.critique, "revised": r.revised, "raw": r.raw, "error": r.error})
        if r.error or not r.revised:
            v.error = v.error or r.error or "empty_revision"
            continue
        v.revisions[i] = r.revised
    return out


def choose(v: Verdict, spec: PairSpec) -> list[Pair]:
    """The pairs ``spec`` publishes from verdict ``v`` (empty: a tie); see the module docstring."""
    if v.revisions:
        return [Pair(-1, i, None, None, text) for i, text in enumerate(v.revisions) if text]
    s = v.scores
    if len(s) < 2:
        return []
    if spec.strategy == "best_worst":
        best = max(range(len(s)), key=lambda i: (s[i], -i))
        worst = min(range(len(s)), key=lambda i: (s[i], i))
        cand = [(best, worst)]
    else:
        cand = [(i, j) for i, j in itertools.permutations(range(len(s)), 2) if s[i] > s[j]]
        cand.sort(key=lambda p: (-(s[p[0]] - s[p[1]]), p))
    out = []
    for i, j in cand:
        margin = round(s[i] - s[j], 6)
        if i != j and margin > 0 and margin >= spec.min_margin:
            out.append(Pair(i, j, margin, _confidence(v, i, j)))
    if not out and spec.ties == "keep" and len(s) >= 2:
        i, j = cand[0] if cand and cand[0][0] != cand[0][1] else (0, 1)
        out.append(Pair(i, j, round(s[i] - s[j], 6), _confidence(v, i, j)))
    return out


def _confidence(v: Verdict, i: int, j: int) -> float | None:
    """The direct comparison's confidence in ``i`` over ``j`` (None without log-probs or comparison)."""
    return v.confidence.get((i, j)) if (i, j) in v.confidence else v.confidence.get((j, i))


def is_tie(v: Verdict, pairs: list[Pair], spec: PairSpec) -> bool:
    """No pair clears the margin (with ``ties: keep`` a tie is still published, at its small margin)."""
    return not v.revisions and (not pairs or all((p.margin or 0) < max(spec.min_margin, 1e-12) for p in pairs))


def uncertain(v: Verdict, pairs: list[Pair], spec: PairSpec, route: RouteSpec) -> bool:
    """Whether annotators should see this prompt: routing ``all``, or ``uncertain`` and the verdict
    is a tie, flipped with the order, or below ``route.min_confidence``."""
    if route.to_annotators == "all":
        return True
    if route.to_annotators == "none":
        return False
    if is_tie(v, pairs, spec) or not all(v.consistent.values()):
        return True
    confs = [p.confidence for p in pairs if p.confidence is not None]
    return bool(confs) and min(confs) < route.min_confidence
