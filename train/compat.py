"""The compatibility matrix: recipe combinations that cannot work, rejected before anything loads.

Each rule returns problems placed on the recipe's YAML lines, with the fix in the message; all
rules run, so a recipe's problems are reported together.

Example:
    >>> from schemas.train_recipe_loader import load_train_recipe_doc
    >>> doc = load_train_recipe_doc(
    ...     "name: t\\nmodel: {base: m}\\ndataset: {ref: d@1}\\nmethod: kto\\n"
    ...     "training: {batch_size: 1, packing: true}\\n", "t.yaml")
    >>> for p in check_compat(doc):
    ...     print(str(p)[:95] + " ..." if len(str(p)) > 100 else p)
    t.yaml:5: training.packing: packing is only for method sft (kto examples are scored whole); set ...
    t.yaml:5: training.batch_size: KTO needs a per-device batch size of at least 2 (its KL term ...
"""

from __future__ import annotations

from schemas.recipe_loader import Problem, RecipeError
from schemas.train_recipe import METHODS
from schemas.train_recipe_loader import LoadedTrainRecipe
from train.online import check_online

PREFERENCE_METHODS = ("reward", "dpo", "orpo", "cpo")
REFERENCE_METHODS = ("dpo", "kto")


def check_compat(doc: LoadedTrainRecipe) -> list[Problem]:
    """Every rule of the matrix applied to ``doc``; an empty list means the combination can run."""
    r, p = doc.recipe, doc.problem
    t, a = r.training, r.adapter
    out: list[Problem] = []

    for m in METHODS:
        if m != r.method and getattr(r, m) is not None:
            out.append(
                p((m,), f"settings for method {m}, but method is {r.method}; remove this section or set method: {m}")
            )
    if t.packing and r.method != "sft":
        out.append(
            p(
                ("training", "packing"),
                f"packing is only for method sft ({r.method} examples are scored whole); set packing: false",
            )
        )
    if r.method == "kto" and t.batch_size < 2 and (r.kto is None or r.kto.loss_type == "kto"):
        out.append(
            p(
                ("training", "batch_size"),
                "KTO needs a per-device batch size of at least 2 (its KL term "
                "compares examples within a batch); set batch_size: 2 or more",
            )
        )
    if t.assistant_only_loss and r.method != "sft":
        out.append(
            p(
                ("training", "assistant_only_loss"),
                "assistant_only_loss is an SFT setting; preference methods always train on the completion only",
            )
        )
    if a.init == "pissa" and r.reference.model is not None:
        out.append(
            p(
                ("adapter", "init"),
                "PiSSA rewrites the base weights, so a separate reference model no longer "
                "matches the policy's starting point; remove reference.model or use "
                "init: default",
            )
        )
    if a.type in ("none", "freeze"):
        for key, bad in (("init", a.init != "default"), ("loraplus_lr_ratio", a.loraplus_lr_ratio is not None)):
            if bad:
                out.append(
                    p(
                        ("adapter", key),
                        f"{key} applies to LoRA adapters, not type {a.type}; remove it or use type: lora",
                    )
                )
    if a.type == "freeze" and a.freeze_last_n is None:
        out.append(p(("adapter", "type"), "type freeze needs freeze_last_n: how many final layers to train"))
    if a.type != "freeze" and a.freeze_last_n is not None:
        out.append(p(("adapter", "freeze_last_n"), "freeze_last_n applies to type: freeze; remove it"))
    if t.device == "cpu" and t.precision in ("fp16",):
        out.append(p(("training", "precision"), "fp16 mixed precision needs a GPU; use precision: auto or fp32"))
    if r.reference.model is not None and r.method not in REFERENCE_METHODS:
        out.append(p(("reference", "model"), f"method {r.method} uses no reference model; remove reference.model"))
    if r.method == "reward" and a.init == "pissa":
        out.append(
            p(("adapter", "init"), "PiSSA with a sequence-classification head is not supported; use init: default")
        )
    out += check_online(doc)  # rloo / grpo: generations per prompt, rewards, reward model
    d = r.distributed
    if d is not None:
        if (d.preset.startswith("fsdp") and d.strategy != "fsdp") or (
            d.preset.startswith("zero") and (d.strategy != "deepspeed")
        ):
            out.append(
                p(
                    ("distributed", "preset"),
                    f"preset {d.preset} belongs to another strategy than "
                    f"{d.strategy}; use fsdp1/fsdp2 with fsdp, zero1-3 with deepspeed",
                )
            )
        if d.num_machines > 1 and not d.main_process_ip:
            out.append(
                p(
                    ("distributed", "main_process_ip"),
                    "multi-node runs need the address of machine 0; set main_process_ip",
                )
            )
        if d.machine_rank >= d.num_machines:
            out.append(p(("distributed", "machine_rank"), "machine_rank must be below num_machines"))
        if d.cpu and d.strategy != "ddp":
            out.append(p(("distributed", "strategy"), f"{d.strategy} needs GPUs; CPU (gloo) runs use strategy: ddp"))
        if a.type == "qlora" and d.strategy == "deepspeed" and d.preset == "zero3":
            out.append(
                p(
                    ("distributed", "preset"),
                    "QLoRA with ZeRO-3 needs bnb_4bit_quant_storage set to the compute dtype; use zero2 or fsdp2",
                )
            )
    return out


def require_compatible(doc: LoadedTrainRecipe) -> None:
    """Raise :class:`RecipeError` listing every incompatibility in ``doc``."""
    problems = check_compat(doc)
    if problems:
        raise RecipeError(problems)
