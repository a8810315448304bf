"""The reward model as a judge: a sequence classifier's score for each (prompt, response).

Input: ``(prompt, response)`` items; output: one :class:`curate.feedback.rating.Rating` per item
whose ``score`` is the model's ``logits[:, 0]`` on the conversation ``prompt + assistant response``
rendered and tokenized by the reward tokenizer's chat template, exactly as TRL's ``RewardTrainer``
trains it and its GRPO/RLOO trainers score with it. Scores are unbounded reals; only their order
and differences mean something.

The model is a ``curate train`` run of method ``reward`` (its folder, the ``latest`` link, or its
``NAME`` / ``NAME/RUN_ID`` under ``runs_root``): a LoRA adapter with ``task_type=SEQ_CLS`` on the
base its ``manifest.json`` names (the merged model when the run has one), or full weights; or a
plain sequence-classification model folder; or a peft SEQ_CLS adapter folder. Finding and loading it
lives in :mod:`curate.models.reward_model` (shared with GRPO/RLOO training).

Items are scored ``batch_size`` at a time, sorted by length so a batch pads little, right-padded
(the classifier reads the last non-pad token, so the model's ``pad_token_id`` is always set), without
gradients, in fp32 on the CPU (a score does not depend on its batch) and bf16 on a GPU (where it can
move by bf16 rounding with its batch's padding). An item longer than the model's context fails with
the reason (never truncated: a cut response would be scored on what it did not say); a failed batch
fails only its own items.

Scores are cached in the shared :class:`curate.feedback.cache.RequestCache`: the key is the
:class:`curate.models.backend.Request` of the full conversation with ``max_new_tokens=0`` under
this judge's identity (weights and adapter hashes), the value a completion whose text is the score
(``repr`` of the float, so it round-trips exactly). A rerun scores only what is not cached.

Example:
    >>> # judge = RewardModelJudge.load("runs/train/my-rm/latest", cache=RequestCache(path))
    >>> # [r] = judge.rate([((("user", "What colour is the sky?"),), "Blue.")])
    >>> # r.score, r.error            # (1.73, None): higher is better
    >>> parse_score(repr(1.5)), parse_score("nan")
    (1.5, None)
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from curate.feedback.cache import RequestCache
from curate.feedback.rating import Rating
from curate.models.backend import Completion, Messages, Request
from curate.models.reward_model import RewardSource, load_reward_model, locate
from curate.models.trained import find_run

__all__ = ["RewardModelJudge", "RewardSource", "find_run", "locate", "parse_score"]
_LOADED: dict[tuple[str, str, str], tuple[Any, Any, dict[str, Any], threading.Lock]] = {}
_LOADED_LOCK = threading.Lock()


def parse_score(text: str) -> float | None:
    """A cached score back to a float (None for anything that is not a finite number)."""
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


class RewardModelJudge:
    """Scores single responses with a reward model; ``rate`` is its one method (thread-safe)."""

    kind = "reward_model"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        ident: dict[str, Any],
        batch_size: int = 8,
        cache: RequestCache | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.cache = batch_size, cache
        self._identity = ident
        self.device = next(model.parameters()).device
        cfg = model.config
        self.context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        self.calls = 0  # items scored by the model (cache hits excluded)
        self._lock = lock or threading.Lock()  # shared by every judge on the same loaded model

    @classmethod
    def load(
        cls,
        ref: str,
        batch_size: int = 8,
        device: str = "auto",
        cache: RequestCache | None = None,
        runs_root: str | Path = "runs/train",
    ) -> RewardModelJudge:
        """The judge for reward model ``ref`` (see the module docstring) on ``device`` (auto: cuda if any).

        The weights load once per process (every part of a run, and its calibration, share them);
        each call gets its own judge with its own ``cache`` and call count.
        """
        key = (ref, device, str(runs_root))
        with _LOADED_LOCK:
            if key not in _LOADED:
                _LOADED[key] = (*cls._load(ref, device, runs_root), threading.Lock())
            model, tok, ident, lock = _LOADED[key]
        return cls(model, tok, ident, batch_size, cache, lock)

    @staticmethod
    def _load(ref: str, device: str, runs_root: str | Path) -> tuple[Any, Any, dict[str, Any]]:
        return load_reward_model(ref, device, runs_root)

    def identity(self) -> dict[str, Any]:
        """The judge kind, the base/classifier weights' identity and the adapter's hash."""
        return {"kind": self.kind, **self._identity}

    def _cache_identity(self) -> dict[str, Any]:
        # where the files lie is no part of the scores: moving a run must not empty the cache
        ident = {k: v for k, v in self._identity.items() if k not in ("run", "adapter")}
        hashed = any(k.endswith("sha256") for k in ident["model"])
        ident["model"] = {k: v for k, v in ident["model"].items() if not (hashed and k in ("folder", "spec"))}
        return {"backend": "reward_model", **ident}

    def encode(self, prompt: Messages, response: str) -> list[int]:
        """Token ids of ``prompt`` + the assistant ``response`` as the reward model was trained on them."""
        msgs = [{"role": r, "content": c} for r, c in (*prompt, ("assistant", response))]
        if self.tokenizer.chat_template:
            out = self.tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True)
            return list(out["input_ids"])
        # TRL's non-conversational rule: plain text with EOS appended
        text = "\n".join(m["content"] for m in msgs) + (self.tokenizer.eos_token or "")
        return list(self.tokenizer(text)["input_ids"])

    def rate(self, items: list[tuple[Messages, str]]) -> list[Rating]:
        """Score each ``(prompt, response)``; one :class:`Rating` per item, in order (see the module docstring)."""
        keys = [Request((*p, ("assistant", r)), max_new_tokens=0).cache_key(self._cache_identity()) for p, r in items]
        found = self.cache.get(keys) if self.cache is not None else {}
        out: list[Rating | None] = [None] * len(items)
        todo: dict[str, list[int]] = {}  # key -> items with it (identical items are scored once)
        for i, k in enumerate(keys):
            score = parse_score(found[k].text) if k in found else None
            if score is not None:
                out[i] = Rating(score, {"reward": score})
            else:
                todo.setdefault(k, []).append(i)
        ids: dict[str, list[int]] = {}
        for k, idx in todo.items():
            prompt, response = items[idx[0]]
            try:
                ids[k] = self.encode(prompt, response)
            except Exception as e:  # a template that rejects the conversation fails this item only
                for i in idx:
                    out[i] = Rating(None, error=f"template_error: {type(e).__name__}: {e}")
                continue
            if self.context and len(ids[k]) > self.context:
                for i in idx:
                    out[i] = Rating(None, error=f"too_long: {len(ids[k])} tokens > context {self.context}")
                del ids[k]
        order = sorted(ids, key=lambda k: len(ids[k]))
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            try:
                with self._lock:
                    scores = self._score([ids[k] for k in batch])
            except Exception as e:  # out of memory, a bad model: this batch's items fail, the rest go on
                for k in batch:
                    for i in todo[k]:
                        out[i] = Rating(None, error=f"judge_error: {type(e).__name__}: {e}")
                continue
            self.calls += len(batch)
            fresh = {}
            for k, s in zip(batch, scores, strict=True):
                fresh[k] = Completion(text=repr(s), finish_reason="score")
                for i in todo[k]:
                    out[i] = Rating(s, {"reward": s}) if math.isfinite(s) else Rating(None, error=f"non_finite: {s}")
            if self.cache is not None:
                self.cache.put({k: c for k, c in fresh.items() if parse_score(c.text) is not None})
        return [r if r is not None else Rating(None, error="not scored") for r in out]

    def _score(self, seqs: list[list[int]]) -> list[float]:
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits
        return [float(x) for x in logits[:, 0].float().cpu()]

    def close(self) -> None:
        """Release the model (also for later judges of this process, which load it again)."""
        with _LOADED_LOCK:
            for k, v in list(_LOADED.items()):
                if v[0] is self.model:
                    del _LOADED[k]
        self.model = None
