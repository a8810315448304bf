"""Reference log-prob cache for DPO and KTO: computed once per (reference, dataset content, tokenization).

TRL can precompute the reference model's log-probabilities (``precompute_ref_log_probs``), but keys
its own cache on the in-memory dataset's fingerprint and a hash of every weight, so a new process on
the same data recomputes them. Here the key is what actually determines the numbers:

- the reference weights' identity (file hashes of the base or reference model, plus the adapter type
  and init, since QLoRA's reference is the quantized base and PiSSA's is the residual model),
- the dataset's content hash and split (from the store manifest) and the row limit,
- the tokenization: tokenizer vocabulary and chat template hash, max_length, method and precision.

A trainer class gets the cache by mixing in :class:`RefCacheMixin` (the entry points do this);
hits and misses are counted in :attr:`RefCacheMixin.ref_cache_events` so tests can assert a hit.

Example:
    >>> key = cache_key({"model": "m"}, {"content_hash": "ab", "split": "train"}, {"max_length": 8})
    >>> len(key)
    24
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

REF_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps", "ref_logps", "ref_KL_logps")


def cache_key(reference: dict[str, Any], data: dict[str, Any], tokenization: dict[str, Any]) -> str:
    """A short hash of everything the reference log-probs depend on."""
    blob = json.dumps({"reference": reference, "data": data, "tokenization": tokenization}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def tokenizer_digest(tok: Any) -> str:
    """Hash of a tokenizer's vocabulary, special tokens and chat template."""
    h = hashlib.sha256()
    h.update(json.dumps(sorted(tok.get_vocab().items())).encode())
    h.update(str(tok.chat_template).encode())
    h.update(f"{tok.eos_token}|{tok.pad_token}|{tok.bos_token}".encode())
    return h.hexdigest()[:16]


class RefCache:
    """A folder of cached reference log-probs: ``DIR/KEY-SPLIT.parquet`` plus a JSON note of the key's parts."""

    def __init__(self, root: str | Path, key: str, parts: dict[str, Any]):
        self.root, self.key, self.parts = Path(root), key, parts

    def path(self, name: str) -> Path:
        return self.root / f"{self.key}-{name}.parquet"

    def get(self, name: str, rows: int) -> Any:
        """The cached columns for split ``name`` as a ``datasets.Dataset``, or ``None`` (missing or stale)."""
        import datasets

        p = self.path(name)
        if not p.exists():
            return None
        cached = datasets.Dataset.from_parquet(str(p))
        return cached if len(cached) == rows else None

    def put(self, name: str, columns: Any) -> Path:
        """Write the reference columns of split ``name`` (atomically: temp file, then rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path(name).with_suffix(".tmp")
        columns.to_parquet(str(tmp))
        tmp.replace(self.path(name))
        self.root.joinpath(f"{self.key}.json").write_text(json.dumps(self.parts, indent=2, sort_keys=True))
        return self.path(name)


class RefCacheMixin:
    """Mix into TRL's DPOTrainer / KTOTrainer: ``ref_cache=`` selects the cache (``None`` disables it).

    TRL computes the log-probs in ``_precompute_ref_logps(dataset, name, batch_size)`` during
    ``__init__``, returning the dataset with reference columns added; the override serves those
    columns from the cache or stores them after computing.
    """

    ref_cache_events: list[str]

    def __init__(self, *args: Any, ref_cache: RefCache | None = None, **kwargs: Any):
        # set before TRL's __init__, which is where the precompute runs
        self._ref_cache = ref_cache
        self.ref_cache_events = []
        super().__init__(*args, **kwargs)

    def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
        import datasets

        cache = self._ref_cache
        if cache is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)  # type: ignore[misc]
        hit = cache.get(name, len(dataset))
        if hit is not None:
            self.ref_cache_events.append(f"hit:{name}")
            return datasets.concatenate_datasets([dataset, hit], axis=1)
        out = super()._precompute_ref_logps(dataset, name, batch_size)  # type: ignore[misc]
        cols = [c for c in REF_COLUMNS if c in out.column_names]
        if self.accelerator.is_main_process:  # type: ignore[attr-defined]
            cache.put(name, out.select_columns(cols))
        self.ref_cache_events.append(f"miss:{name}")
        return out
