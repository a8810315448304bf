"""Find and load a reward model: a sequence classifier scoring a whole conversation with ``logits[:, 0]``.

Shared by AI feedback (``curate.feedback.reward``: the reward model as a judge) and online RL
(``train.online``: the reward model as GRPO/RLOO's reward), so both read a reward run the same way.

A reference is one of (see :func:`locate`):

- a ``curate train`` run of method ``reward``: its folder (``manifest.json`` inside), the ``latest``
  link, or ``NAME`` / ``NAME/RUN_ID`` under ``runs_root``. Its output is a peft LoRA adapter with
  ``task_type=SEQ_CLS`` on the base its manifest names (the merged model when the run has one), or
  full weights;
- a peft SEQ_CLS adapter folder (``adapter_config.json``), on the base it records;
- a ``*ForSequenceClassification`` model folder.

Example:
    >>> import tempfile
    >>> try:
    ...     locate("no-such-run", tempfile.mkdtemp(), field="grpo.reward_model")
    ... except ModelError as e:
    ...     print(str(e)[:60])
    grpo.reward_model: 'no-such-run' is neither a `curate train`
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.models.source import ModelError, ModelSource, folder_digest, load_model, load_tokenizer, resolve_source
from curate.models.trained import MANIFEST, locate_trained


@dataclass(frozen=True)
class RewardSource:
    """Where a reward model's pieces are: the classifier folder (or the base), the adapter, the tokenizer."""

    model: Path | str  # a seq-cls model folder, or the base an adapter applies to
    adapter: Path | None
    tokenizer: Path | str
    run: dict[str, Any] | None = None  # name, run_id, dir of a `curate train` run
    manifest: dict[str, Any] | None = None  # that run's manifest (its dataset versions: the lineage)


def locate(ref: str, runs_root: str | Path = "runs/train", field: str = "judge.model") -> RewardSource:
    """Classify ``ref`` without loading weights; :class:`ModelError` (prefixed with the recipe ``field``)
    says what it is and what to give instead."""
    src = locate_trained(ref, runs_root)  # run folders and adapters resolve as for any trained model
    if src.manifest is not None:
        m = src.manifest
        if m["method"] != "reward":
            raise ModelError(
                f"{field}: {src.run_dir} is a `curate train` run of method {m['method']}, not a reward model; "
                f"train one with `method: reward` and point {field} at that run"
            )
        run = {"name": m["name"], "run_id": m["run_id"], "dir": str(src.run_dir)}
        tok = src.tokenizer if src.tokenizer is not None else src.weights
        return RewardSource(src.weights, src.adapter, tok, run, m)
    if src.adapter is not None:
        if src.adapter_task != "SEQ_CLS":
            raise ModelError(
                f"{field}: {src.adapter} is a {src.adapter_task} adapter, not a reward model (SEQ_CLS); "
                "train one with `curate train` method reward"
            )
        return RewardSource(src.weights, src.adapter, src.adapter)
    path = Path(ref).expanduser()
    if (path / "config.json").is_file():
        archs = json.loads((path / "config.json").read_text(encoding="utf-8")).get("architectures") or []
        if not any(a.endswith("ForSequenceClassification") for a in archs):
            raise ModelError(
                f"{field}: {path} is a {', '.join(archs) or 'model'} without a sequence-classification "
                "head; give a reward model (a `curate train` run of method reward or a *ForSequenceClassification "
                "folder)"
            )
        return RewardSource(path, None, path)
    raise ModelError(
        f"{field}: {ref!r} is neither a `curate train` run (no {MANIFEST}; also looked under "
        f"{runs_root}/{ref}) nor a model folder; list runs with `curate models list --root {runs_root}`"
    )


def load_reward_model(
    ref: str,
    device: str = "auto",
    runs_root: str | Path = "runs/train",
    field: str = "judge.model",
    merge: bool = False,
) -> tuple[Any, Any, dict[str, Any]]:
    """Load reward model ``ref`` in eval mode on ``device`` (auto: cuda when available).

    Args:
        merge: fold a LoRA adapter into the classifier (a plain ``PreTrainedModel``, which is what TRL's
            GRPO/RLOO trainers recognise as a reward model); otherwise the ``PeftModel`` is returned.

    Returns:
        ``(model, tokenizer, identity)``: the tokenizer has a pad token and the model's ``pad_token_id``
        is that token (the classifier reads each sequence's last non-pad token); ``identity`` names the
        weights (base identity, adapter path and hash, the run).
    """
    import torch

    src = locate(ref, runs_root, field)
    base = resolve_source(str(src.model))
    tok = load_tokenizer(ModelSource(str(src.tokenizer), "local", Path(src.tokenizer)))
    if tok.pad_token_id is None:  # TRL's rule: pad with EOS when the tokenizer has no pad token
        tok.pad_token = tok.eos_token
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    dtype = torch.bfloat16 if dev.startswith("cuda") else torch.float32
    model = load_model(base, task="seq_cls", dtype=dtype, pad_token_id=tok.pad_token_id)
    ident: dict[str, Any] = {"model": base.identity()}
    if src.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, src.adapter)
        ident["adapter"] = str(src.adapter)
        ident["adapter_sha256"] = folder_digest(src.adapter)
        if merge:
            model = model.merge_and_unload()
    if src.run is not None:
        ident["run"] = src.run
    return model.to(dev).eval(), tok, ident
