"""Memory-saving full-parameter optimizers: GaLore (through transformers) and BAdam (block coordinate Adam).

GaLore needs no code of ours beyond mapping the recipe onto transformers' ``optim``,
``optim_target_modules`` and ``optim_args``: the Trainer builds ``galore_torch``'s optimizer with the
target modules' weights in the projected group. BAdam's ``BlockOptimizer`` wraps a plain AdamW and
switches which decoder layer trains every ``switch_block_every`` steps (the others have
``requires_grad`` off, so they hold no gradients and no Adam states); it is passed to the trainer
as its optimizer.

Example:
    >>> from schemas.train_recipe import OptimizerSpec
    >>> galore_args(OptimizerSpec(type="galore_adamw", rank=8, update_proj_gap=10, scale=0.5))["optim_args"]
    'rank=8, update_proj_gap=10, scale=0.5'
    >>> galore_args(OptimizerSpec())
    {}
"""

from __future__ import annotations

from typing import Any

from schemas.train_recipe import OptimizerSpec

GALORE = ("galore_adamw", "galore_adamw_8bit", "galore_adafactor")


def galore_args(spec: OptimizerSpec) -> dict[str, Any]:
    """TrainingArguments for a GaLore optimizer (``{}`` for any other optimizer)."""
    if spec.type not in GALORE:
        return {}
    return {
        "optim": spec.type,
        "optim_target_modules": list(spec.target_modules),
        "optim_args": f"rank={spec.rank}, update_proj_gap={spec.update_proj_gap}, scale={spec.scale}",
    }


def badam_optimizer(model: Any, spec: OptimizerSpec, lr: float, weight_decay: float = 0.0) -> Any:
    """BAdam's ``BlockOptimizer`` over ``model``'s decoder layers (one trains at a time).

    Blocks are inferred from parameter names (``...layers.N.``); embeddings and the LM head stay frozen,
    as in the BAdam paper's setting.
    """
    import warnings

    import torch
    from badam import BlockOptimizer

    base = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    with warnings.catch_warnings():
        # BAdam warns about fp32 weights; on CPU (and for exact reloads) they are fp32 on purpose
        warnings.filterwarnings("ignore", message="BAdam expect model")
        return BlockOptimizer(
            base_optimizer=base,
            named_parameters_list=list(model.named_parameters()),
            switch_block_every=spec.switch_block_every,
            switch_mode=spec.switch_mode,
            verbose=0,
        )
