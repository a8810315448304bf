"""AI feedback over one part of curated prompts: generate, judge, choose pairs, write the outputs.

Input: a Parquet file of records of ``feedback.input_kind`` (the survivors of the recipe's stages).
Output, in ``out_dir`` (written to a temporary folder and renamed, so a killed step leaves nothing
half-written; the request cache keeps every paid-for answer):

- ``data.parquet``: preference records (or KTO rows) in the output kind's schema. Each carries its
  prompt's ``source`` (lineage to the raw file and row), ``score_chosen``/``score_rejected``,
  ``margin`` and ``judge = {kind: ai, model: "<judge model> prompt:<template hash>"}``;
- ``judgements.parquet``: one row per prompt: its outcome and reason, every candidate (generator,
  seed, text, score, error), the pairs chosen and the judge's raw answers (JSON), so every
  published score can be traced to what the judge said;
- ``quarantine.jsonl``: prompts that failed (no user turn, the judge failed or answered something
  unparsable) and candidates whose generation failed, each with reason and raw output;
- ``uncertain.parquet``: with ``route.to_annotators``, the prompts routed to annotators (prompt,
  responses, scores): the annotation push sends them to Argilla with the AI scores as suggestions.

Every prompt ends in exactly one outcome (``pairs``, ``tie``, ``too_few``, ``failed``, ``routed``);
:class:`FeedbackTally` proves ``prompts_in`` equals their sum.

Example:
    >>> # res = label_part(Path("part.parquet"), spec, Kind.SFT, Kind.PREFERENCE, Path("out"), cache)
    >>> # res["tally"]["prompts_in"] == sum(res["tally"]["outcomes"].values())  -> True
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from curate.feedback.cache import RequestCache
from curate.feedback.errors import FeedbackError
from curate.feedback.generate import Candidate, generate
from curate.feedback.inputs import Prompt, prompts_of
from curate.feedback.judges import build_backend, build_judge
from curate.feedback.rank import Pair, Verdict, choose, is_tie, judge_pairwise, judge_revisions, judge_scores, usable
from curate.feedback.rank import uncertain as is_uncertain
from schemas.feedback import FeedbackSpec
from schemas.ids import with_ids
from schemas.kinds import MESSAGES, SOURCE, Kind, polars_schema

OUTCOMES = ("pairs", "tie", "too_few", "failed", "routed")


@dataclass
class FeedbackTally:
    """What one part's (or a run's) feedback did; ``prompts_in == sum(outcomes.values())``."""

    prompts_in: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    too_few_by_reason: dict[str, int] = field(default_factory=dict)
    records_out: int = 0
    candidates: int = 0
    candidate_failures: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0

    def add(self, other: dict[str, Any]) -> None:
        """Add another tally (as :meth:`as_dict` wrote it) to this one."""
        for k in ("prompts_in", "records_out", "candidates", "candidate_failures", "model_calls"):
            setattr(self, k, getattr(self, k) + other[k])
        self.cache_hits += other["cache_hits"]
        self.cache_misses += other["cache_misses"]
        for name in ("outcomes", "failed_by_reason", "too_few_by_reason"):
            mine = getattr(self, name)
            for k, v in other[name].items():
                mine[k] = mine.get(k, 0) + v

    @property
    def balanced(self) -> bool:
        return self.prompts_in == sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "balanced": self.balanced}


def judge_label(spec: FeedbackSpec, judge: Any) -> str:
    """``judge.model`` of the records: the judge's model and the hash of its prompt templates."""
    ident = judge.identity()
    return f"{spec.judge.label} prompt:{ident.get('prompt_hash', 'none')}"


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _messages(p: Prompt) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in p.messages]


def _verdicts(spec: FeedbackSpec, judge: Any, prompts: list[Prompt], cands: list[list[Candidate]]) -> list[Verdict]:
    kind = spec.judge.kind
    if kind == "pairwise":
        return judge_pairwise(judge, prompts, cands)
    if kind == "critique_revise":
        return judge_revisions(judge, prompts, cands)
    return judge_scores(judge, prompts, cands)


def _rows(
    spec: FeedbackSpec, out_kind: Kind, p: Prompt, cs: list[Candidate], v: Verdict, pairs: list[Pair], label: str
) -> list[dict[str, Any]]:
    """Output records of one prompt's pairs (preference), or its labelled completions (kto)."""
    judge = {"kind": "ai", "model": label, "annotators": None}
    score = (lambda i: v.scores[i]) if v.scores else (lambda i: None)
    if out_kind is Kind.PREFERENCE:
        rows = []
        for pr in pairs:
            chosen = pr.revised if pr.revised is not None else cs[pr.chosen].text
            rows.append(
                {
                    "prompt": _messages(p),
                    "chosen": _assistant(chosen),
                    "rejected": _assistant(cs[pr.rejected].text),
                    "score_chosen": None if pr.revised is not None else score(pr.chosen),
                    "score_rejected": score(pr.rejected),
                    "margin": pr.margin,
                    "judge": judge,
                    "source": p.source,
                }
            )
        return rows
    labelled: dict[str, bool] = {}
    threshold = spec.pairs.kto_threshold
    if threshold is not None and v.scores:
        labelled = {cs[i].text: s >= threshold for i, s in enumerate(v.scores)}
    else:
        for pr in pairs:
            labelled.setdefault(pr.revised if pr.revised is not None else cs[pr.chosen].text, True)
            labelled.setdefault(cs[pr.rejected].text, False)
    return [
        {"prompt": _messages(p), "completion": _assistant(t), "label": lab, "source": p.source}
        for t, lab in labelled.items()
    ]


def _built(where: str, build: Any, *args: Any) -> Any:
    """``build(*args)``; a model that cannot be found or loaded becomes a FeedbackError naming ``where``."""
    from curate.models.source import ModelError

    try:
        return build(*args)
    except (ModelError, OSError) as e:
        message = str(e).removeprefix("model.base: ")
        raise FeedbackError(where, f"{message} (a model folder, a .gguf file, package:PKG/FILE or a hub id)") from e


def _quarantine(p: Prompt, reason: str, raw: Any, detail: str = "") -> dict[str, Any]:
    src = p.source or {}
    return {
        "source": src.get("name"),
        "uri": src.get("uri"),
        "row": src.get("row"),
        "record_id": p.record_id,
        "stage": "feedback",
        "reason": reason,
        "detail": detail,
        "raw": raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode(),
    }


def _reason_code(error: str) -> str:
    """``judge_error: HTTP 500 ...`` -> ``judge_error`` (the by-reason key; the detail stays in the row)."""
    return error.split(":", 1)[0].strip() or "judge_error"


def label_part(
    records: Path | None,
    spec: FeedbackSpec,
    in_kind: Kind,
    out_kind: Kind,
    out_dir: Path,
    cache: RequestCache | None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run feedback over one part (see the module docstring); returns the files and the tally.

    ``run_id``: the run doing the work, recorded in the payload so a later run that reuses this
    output can tell its own model calls (none) from the ones paid for here.
    """
    df = pl.read_parquet(records) if records is not None else pl.DataFrame(schema=polars_schema(in_kind))
    prompts = prompts_of(df, in_kind)
    tally = FeedbackTally(prompts_in=len(prompts))
    hits0, misses0 = (cache.hits, cache.misses) if cache is not None else (0, 0)
    cands: list[list[Candidate]] = [[] for _ in prompts]
    label = ""
    if prompts:
        backends = {
            g.name: _built(f"feedback.generators[{k}].model", build_backend, g) for k, g in enumerate(spec.generators)
        }
        cands, calls = generate(prompts, spec.generators, backends, cache)
        if not spec.candidates_from_input:
            cands = [[c for c in cs if c.generator != "input"] for cs in cands]
        tally.model_calls += calls
    quarantine: list[dict[str, Any]] = []
    for p, cs in zip(prompts, cands, strict=True):
        for c in cs:
            tally.candidates += 1
            if not c.ok:
                tally.candidate_failures += 1
                quarantine.append(_quarantine(p, "generation_error", c.text, c.error or ""))
    good = [usable(cs) if p.reason is None else [] for p, cs in zip(prompts, cands, strict=True)]
    need = 1 if spec.judge.kind == "critique_revise" else 2
    judged = [i for i, p in enumerate(prompts) if p.reason is None and len(good[i]) >= need]
    verdicts: dict[int, Verdict] = {}
    if judged:
        judge = _built("feedback.judge.model", build_judge, spec.judge, cache)
        label = judge_label(spec, judge)
        before = getattr(judge, "calls", 0)
        got = _verdicts(spec, judge, [prompts[i] for i in judged], [good[i] for i in judged])
        verdicts = dict(zip(judged, got, strict=True))
        tally.model_calls += getattr(judge, "calls", 0) - before
    rows: list[dict[str, Any]] = []
    routed: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for i, p in enumerate(prompts):
        v = verdicts.get(i)
        pairs: list[Pair] = []
        reason = None
        if p.reason is not None:
            outcome, reason = "failed", p.reason
            quarantine.append(_quarantine(p, p.reason, "", "the record has no prompt to answer"))
        elif v is None:
            outcome = "too_few"
            failed = sum(1 for c in cands[i] if not c.ok)
            reason = "generation_failed" if failed else "too_few_distinct"
        elif v.error is not None:
            outcome, reason = "failed", _reason_code(v.error)
            quarantine.append(_quarantine(p, reason, v.raw, v.error))
        else:
            pairs = choose(v, spec.pairs)
            if is_uncertain(v, pairs, spec.pairs, spec.route):
                outcome = "routed"
                routed.append(_routed(p, good[i], v, label))
            elif is_tie(v, pairs, spec.pairs):
                outcome = "tie"
                if spec.pairs.ties == "keep":
                    rows += _rows(spec, out_kind, p, good[i], v, pairs, label)
            else:
                outcome = "pairs"
                rows += _rows(spec, out_kind, p, good[i], v, pairs, label)
        tally.outcomes[outcome] += 1
        if outcome == "failed" and reason:
            tally.failed_by_reason[reason] = tally.failed_by_reason.get(reason, 0) + 1
        if outcome == "too_few" and reason:
            tally.too_few_by_reason[reason] = tally.too_few_by_reason.get(reason, 0) + 1
        audit.append(_audit(p, cands[i], good[i], v, pairs, outcome, reason))
    if cache is not None:
        tally.cache_hits, tally.cache_misses = cache.hits - hits0, cache.misses - misses0
    return _write(out_dir, out_kind, rows, audit, quarantine, routed, tally, label, run_id)


def _routed(p: Prompt, good: list[Candidate], v: Verdict, label: str) -> dict[str, Any]:
    """A routed prompt for annotators: the AI's best and worst candidates (two responses, so every
    record of the Argilla dataset ranks the same number) with their scores as the suggestion."""
    if v.revisions:
        i = next(k for k, t in enumerate(v.revisions) if t)
        texts, scores = [v.revisions[i], good[i].text], None
    else:
        order = sorted(range(len(v.scores)), key=lambda k: (-v.scores[k], k))
        texts = [good[order[0]].text, good[order[-1]].text]
        scores = [v.scores[order[0]], v.scores[order[-1]]]
    return {
        "prompt": _messages(p),
        "responses": texts,
        "scores": scores,
        "judge": {"kind": "ai", "model": label, "annotators": None},
        "source": p.source,
    }


def _audit(
    p: Prompt,
    cands: list[Candidate],
    good: list[Candidate],
    v: Verdict | None,
    pairs: list[Pair],
    outcome: str,
    reason: str | None,
) -> dict[str, Any]:
    scores = {id(c): (v.scores[k] if v is not None and v.scores else None) for k, c in enumerate(good)}
    return {
        "record_id": p.record_id,
        "prompt": _messages(p),
        "outcome": outcome,
        "reason": reason,
        "candidates": [{**c.as_dict(), "score": scores.get(id(c))} for c in cands],
        "pairs": [
            {
                "chosen": good[pr.chosen].text if pr.revised is None else pr.revised,
                "rejected": good[pr.rejected].text,
                "margin": pr.margin,
                "confidence": pr.confidence,
            }
            for pr in pairs
        ],
        "judge_raw": orjson.dumps(v.raw if v is not None else None, default=str).decode(),
        "source": p.source,
    }


AUDIT_SCHEMA = {
    "record_id": pl.String,
    "prompt": MESSAGES,
    "outcome": pl.String,
    "reason": pl.String,
    "candidates": pl.List(
        pl.Struct(
            {
                "generator": pl.String,
                "seed": pl.Int64,
                "text": pl.String,
                "error": pl.String,
                "finish_reason": pl.String,
                "score": pl.Float64,
            }
        )
    ),
    "pairs": pl.List(
        pl.Struct({"chosen": pl.String, "rejected": pl.String, "margin": pl.Float64, "confidence": pl.Float64})
    ),
    "judge_raw": pl.String,
    "source": SOURCE,
}
"""``judgements.parquet``: one row per prompt (see the module docstring)."""

ROUTED_SCHEMA = {
    "prompt": MESSAGES,
    "responses": pl.List(pl.String),
    "scores": pl.List(pl.Float64),
    "judge": polars_schema(Kind.PREFERENCE)["judge"],
    "source": SOURCE,
}
"""``uncertain.parquet``: the prompts routed to annotators, in the shape the annotation push reads."""


def _write(
    out_dir: Path,
    out_kind: Kind,
    rows: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    quarantine: list[dict[str, Any]],
    routed: list[dict[str, Any]],
    tally: FeedbackTally,
    label: str,
    run_id: str | None,
) -> dict[str, Any]:
    schema = polars_schema(out_kind)
    content = {k: t for k, t in schema.items() if k != "id"}
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    data = pl.DataFrame(rows, schema=content)
    data = with_ids(data, out_kind).select(list(schema))
    # the same pair from two prompts' records (identical content) is one record
    data = data.unique("id", keep="first", maintain_order=True)
    data.write_parquet(tmp / "data.parquet")
    pl.DataFrame(audit, schema=AUDIT_SCHEMA).write_parquet(tmp / "judgements.parquet")
    (tmp / "quarantine.jsonl").write_bytes(b"".join(orjson.dumps(q) + b"\n" for q in quarantine))
    if routed:
        pl.DataFrame(routed, schema=ROUTED_SCHEMA).write_parquet(tmp / "uncertain.parquet")
    tally.records_out = data.height
    payload = {
        "data": str(out_dir / "data.parquet"),
        "judgements": str(out_dir / "judgements.parquet"),
        "quarantine": str(out_dir / "quarantine.jsonl"),
        "uncertain": str(out_dir / "uncertain.parquet") if routed else None,
        "judge_model": label or None,
        "run_id": run_id,
        "tally": tally.as_dict(),
    }
    (tmp / "part.json").write_bytes(orjson.dumps(payload))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return payload


def finished_feedback(out_dir: Path) -> dict[str, Any] | None:
    """The payload of a completed :func:`label_part` in ``out_dir``, else None."""
    meta = out_dir / "part.json"
    if not meta.exists():
        return None
    payload = orjson.loads(meta.read_bytes())
    files = [payload[k] for k in ("data", "judgements", "quarantine", "uncertain") if payload.get(k)]
    return payload if all(Path(f).exists() for f in files) else None
