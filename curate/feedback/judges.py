"""Build the backends and judges a recipe's ``feedback:`` section names (one construction point).

:func:`build_backend` turns a :class:`schemas.feedback.ModelSpec` into an in-process transformers
backend or an OpenAI-compatible one; :func:`build_judge` turns a :class:`schemas.feedback.JudgeSpec`
into the judge of its kind. The engine's feedback step, ``curate feedback calibrate`` and the
benchmarks all build through here, so a judge is configured one way everywhere.

Judges by kind and their one method:

- ``pairwise``: :class:`curate.feedback.pairwise.PairwiseJudge` ``.compare(pairs)``;
- ``rating``: :class:`curate.feedback.rating.RatingJudge` ``.rate(items)``;
- ``reward_model``: :class:`curate.feedback.reward.RewardModelJudge` ``.rate(items)``;
- ``critique_revise``: :class:`curate.feedback.critique.CritiqueReviseJudge` ``.revise(items)``.

Example:
    >>> from schemas.feedback import JudgeSpec
    >>> spec = JudgeSpec(kind="pairwise", endpoint={"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    >>> type(build_judge(spec)).__name__
    'PairwiseJudge'
"""

from __future__ import annotations

from typing import Any

from curate.feedback.cache import RequestCache
from curate.models.backend import Backend
from schemas.feedback import JudgeSpec, ModelSpec


def build_backend(spec: ModelSpec) -> Backend:
    """The backend of ``spec``: its ``endpoint`` through the openai client, else ``model`` in-process."""
    if spec.endpoint is not None:
        from curate.models.openai_backend import OpenAIBackend

        return OpenAIBackend(spec.endpoint)
    from curate.models.hf_backend import TransformersBackend  # torch loads only for in-process models

    assert spec.model is not None
    return TransformersBackend.load(spec.model, batch_size=spec.batch_size, device=spec.device)


def build_judge(spec: JudgeSpec, cache: RequestCache | None = None) -> Any:
    """The judge ``spec`` describes, sharing ``cache`` for its requests (see the module docstring)."""
    if spec.kind == "reward_model":
        from curate.feedback.reward import RewardModelJudge

        assert spec.model is not None
        return RewardModelJudge.load(spec.model, batch_size=spec.batch_size, device=spec.device, cache=cache)
    backend = build_backend(spec)
    if spec.kind == "pairwise":
        from curate.feedback.pairwise import PairwiseJudge

        return PairwiseJudge(backend, cache, spec.template, spec.swap, spec.logprobs, spec.max_new_tokens)
    if spec.kind == "rating":
        from curate.feedback.rating import RatingJudge

        return RatingJudge(backend, cache, spec.aspects, spec.template, spec.logprobs, spec.max_new_tokens)
    from curate.feedback.critique import CritiqueReviseJudge

    return CritiqueReviseJudge(backend, cache, spec.principles, spec.max_new_tokens, spec.revise_max_new_tokens)


def reward_judge_over(model: Any, tokenizer: Any, identity: dict[str, Any], batch_size: int = 8) -> Any:
    """A reward-model judge over an already-loaded sequence classifier (evaluation reuses the model it loaded)."""
    from curate.feedback.reward import RewardModelJudge

    return RewardModelJudge(model, tokenizer, identity, batch_size)
