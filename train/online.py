"""Online RL (RLHF phase 3) shared by ``train/rloo.py`` and ``train/grpo.py``: the policy samples
``num_generations`` completions per prompt, rewards score them, and TRL's trainer updates the policy
against a KL term (``beta``) to where it started.

- **Checks before anything loads** (:func:`check_online`, part of the compatibility matrix):
  ``num_generations`` >= 2 and dividing the effective batch, at least one reward, one weight per reward,
  rule patterns that compile; in pre-flight (:func:`check_reward_model`), the reward model is found.
- **Prompts** (:func:`prompt_dataset`): the ``prompt`` column of a preference, KTO or Alpaca dataset
  version; an SFT conversation without its final assistant turn.
- **Rewards** (:func:`reward_functions`): the reward model (:func:`resolve_reward_model`, loaded by
  :func:`curate.models.reward_model.load_reward_model` and merged into a plain classifier, which TRL
  scores as ``logits[:, 0]`` after the reward tokenizer's chat template) and the recipe's rule-based
  rewards (:func:`rule_reward`), weighted by ``reward_weights``.
- **Lineage and summary**: the reward model's run, its dataset version and content hash, and the
  per-step reward mean/std, KL and completion length (TRL's logs) summarized into the manifest.

Example:
    >>> from schemas.train_recipe import RewardFunctionSpec
    >>> fn = rule_reward(RewardFunctionSpec(type="contains", pattern="blue", max_count=2))
    >>> fn(completions=[[{"role": "assistant", "content": "blue, blue and blue"}], "red"], completion_ids=[[1], [2]])
    [1.0, 0.0]
    >>> rule_reward(RewardFunctionSpec(type="length_penalty", target=4, scale=2.0))(["x"], completion_ids=[[1, 2]])
    [-1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.models.reward_model import RewardSource, locate
from curate.models.source import ModelError
from schemas.recipe_loader import Problem
from schemas.train_recipe import ONLINE_METHODS, OnlineSpec, RewardFunctionSpec, TrainRecipe
from schemas.train_recipe_loader import LoadedTrainRecipe
from train.common import Setup, TrainResult, build_model, config_kwargs, progress_callback, run_trainer

REWARD_MODEL_NAME = "reward_model"  # the reward model's name in TRL's logs: rewards/reward_model/mean


def resolve_reward_model(ref: str, runs_root: str | Path, field: str = "reward_model") -> RewardSource:
    """The one place a recipe's reward-model reference is resolved (no weights load).

    Accepts a run folder, ``NAME`` (its latest run) or ``NAME/RUN_ID`` under ``runs_root``, or a
    sequence-classification model / SEQ_CLS adapter folder, or a registry reference (``rm@3``,
    ``rm@champion``: see :func:`train.registry.resolve`).
    """
    if "@" in ref and not Path(ref).exists():
        from train.registry import resolve

        try:
            ref = str(resolve(ref, runs_root))
        except KeyError as e:
            raise ModelError(f"{field}: {e}") from None
    return locate(ref, runs_root, field)


def check_online(doc: LoadedTrainRecipe) -> list[Problem]:
    """The online methods' rules of the compatibility matrix (nothing is loaded); [] for other methods."""
    r = doc.recipe
    if r.method not in ONLINE_METHODS:
        return []
    spec: OnlineSpec = r.method_spec()
    m, p, t = r.method, doc.problem, r.training
    out: list[Problem] = []
    g = spec.num_generations
    procs = r.distributed.num_processes if r.distributed is not None else 1
    if g < 2:
        out.append(
            p(
                (m, "num_generations"),
                f"{m.upper()} compares each completion with the others sampled for the same prompt, so it needs "
                "at least 2 per prompt; set num_generations: 2 or more (4-16 is usual)",
            )
        )
    else:
        effective = t.batch_size * t.grad_accum * procs
        if effective % g:
            multiple = -(-t.batch_size // g) * g
            out.append(
                p(
                    ("training", "batch_size"),
                    f"the effective batch (batch_size {t.batch_size} x grad_accum {t.grad_accum} x {procs} "
                    f"process(es) = {effective} completions) must hold whole groups of {m}.num_generations={g}; "
                    f"set training.batch_size: {multiple} (a multiple of {g}) or change num_generations",
                )
            )
        if r.dataset.eval_split and (t.batch_size * procs) % g:
            out.append(
                p(
                    ("dataset", "eval_split"),
                    f"evaluation batches (batch_size {t.batch_size} x {procs} process(es)) must hold whole groups "
                    f"of num_generations={g}; make batch_size a multiple of {g} or remove dataset.eval_split",
                )
            )
    n_rewards = (spec.reward_model is not None) + len(spec.reward_functions)
    if n_rewards == 0:
        out.append(
            p(
                (m,),
                f"{m} needs a reward: set {m}.reward_model (a reward run of `curate train`) and/or "
                f"{m}.reward_functions (e.g. - {{type: length_penalty, target: 64}})",
            )
        )
    if spec.reward_weights is not None and len(spec.reward_weights) != n_rewards:
        out.append(
            p(
                (m, "reward_weights"),
                f"{len(spec.reward_weights)} weight(s) for {n_rewards} reward(s); give one per reward, the "
                "reward model first (when set), then reward_functions in order",
            )
        )
    for i, fn in enumerate(spec.reward_functions):
        out += _check_rule(doc, (m, "reward_functions", i), fn)
    names = reward_names(spec)
    if len(set(names)) != len(names):
        out.append(p((m, "reward_functions"), f"reward names repeat ({', '.join(names)}); give each a distinct name"))
    return out


def check_reward_model(recipe: TrainRecipe) -> tuple[str, str, str] | None:
    """The pre-flight check of the reward model (found, and a reward model; no weights load):
    ``(level, message, field)``, or ``None`` when the method has no reward model."""
    if recipe.method not in ONLINE_METHODS or recipe.method_spec().reward_model is None:
        return None
    field = f"{recipe.method}.reward_model"
    ref = recipe.method_spec().reward_model
    try:
        src = resolve_reward_model(ref, recipe.output.dir, field)
    except ModelError as e:
        return "error", str(e).removeprefix(f"{field}: "), field
    if src.manifest is None:
        return "ok", f"{ref}: a reward model folder (no `curate train` lineage)", field
    ds = src.manifest.get("dataset", {})
    return "ok", f"run {src.manifest['name']}/{src.manifest['run_id']}, trained on {ds.get('ref')}", field


def _check_rule(doc: LoadedTrainRecipe, loc: tuple[Any, ...], fn: RewardFunctionSpec) -> list[Problem]:
    import polars as pl

    p = doc.problem
    if fn.type == "length_penalty":
        if fn.target is None:
            return [p(loc, "length_penalty needs target: the completion length to aim at, in tokens")]
        if fn.pattern is not None:
            return [p((*loc, "pattern"), "length_penalty uses no pattern; remove it")]
        return []
    if fn.pattern is None:
        return [p(loc, f"{fn.type} needs pattern: a regular expression (e.g. pattern: 'answer: \\d+')")]
    if fn.target is not None:
        return [p((*loc, "target"), f"target belongs to length_penalty, not {fn.type}; remove it")]
    try:
        pl.Series([""]).str.contains(fn.pattern)
    except pl.exceptions.PolarsError as e:
        lines = [s.strip() for s in str(e).splitlines()]
        why = next((s.removeprefix("error: ") for s in lines if s.startswith("error:")), lines[0] if lines else "")
        return [p((*loc, "pattern"), f"not a valid regular expression (Rust regex syntax): {why}")]
    return []


def reward_names(spec: OnlineSpec) -> list[str]:
    """The names rewards are logged under (``rewards/NAME/mean``), in ``reward_weights`` order."""
    names = [REWARD_MODEL_NAME] if spec.reward_model is not None else []
    return names + [f.name or f.type for f in spec.reward_functions]


def _text(completion: Any) -> str:
    """A completion's text: conversational completions are message lists."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion)


def rule_reward(spec: RewardFunctionSpec) -> Callable[..., list[float]]:
    """A TRL reward function for a rule (see :class:`schemas.train_recipe.RewardFunctionSpec`).

    The callable takes TRL's keyword arguments (``completions``, ``completion_ids``, ...) and returns
    one float per completion, computed over the whole batch with polars / numpy.
    """
    import numpy as np
    import polars as pl

    def reward(completions: list[Any], completion_ids: list[list[int]] | None = None, **_: Any) -> list[float]:
        if spec.type == "length_penalty":
            lengths = np.array([len(ids) for ids in (completion_ids or [])], dtype=float)
            target = float(spec.target or 1)
            return (-spec.scale * np.abs(lengths - target) / target).tolist()
        texts = pl.Series([_text(c) for c in completions], dtype=pl.String)
        if spec.type == "contains":
            counts = texts.str.count_matches(spec.pattern or "").clip(upper_bound=spec.max_count)
            return (counts / spec.max_count).cast(pl.Float64).to_list()
        return texts.str.strip_chars().str.contains(f"^(?:{spec.pattern})$").cast(pl.Float64).to_list()

    reward.__name__ = spec.name or spec.type  # TRL logs each reward as rewards/<__name__>/mean|std
    return reward


def prompt_dataset(dataset: Any, kind: str) -> Any:
    """The distinct prompts of a loaded dataset version as a ``datasets.Dataset`` with one ``prompt``
    column (conversational), in first-seen order: SFT conversations lose their final assistant turn;
    rows left with no message drop; a prompt shared by several pairs or KTO rows is sampled as one
    (the policy generates its own completions, so repeats would only weigh that prompt more)."""
    import datasets
    import polars as pl

    df = pl.from_arrow(dataset.with_format("arrow")[:])
    if kind == "sft":
        msgs = pl.col("messages")
        ends_with_answer = msgs.list.last().struct.field("role") == "assistant"
        prompt = pl.when(ends_with_answer).then(msgs.list.head(msgs.list.len() - 1)).otherwise(msgs)
    else:
        prompt = pl.col("prompt")
    out = df.select(prompt.alias("prompt")).filter(pl.col("prompt").list.len() > 0)
    return datasets.Dataset(out.unique(subset="prompt", maintain_order=True).to_arrow())


def longest_prompt(dataset: Any, kind: str, tokenizer: Any) -> int:
    """Tokens of the longest prompt the policy will see (rendered with the generation prompt), for the
    memory estimate: the policy trains on prompt + completion, each batch padded to its longest row."""
    prompts = prompt_dataset(dataset, kind)["prompt"]
    if not prompts:
        return 0
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in prompts]
    return max(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def reward_functions(recipe: TrainRecipe, device: str) -> tuple[list[Any], list[Any], dict[str, Any] | None]:
    """The reward callables/models in ``reward_weights`` order, their tokenizers (``None`` for rules),
    and the reward model's lineage (``None`` without one)."""
    spec: OnlineSpec = recipe.method_spec()
    funcs: list[Any] = []
    tokenizers: list[Any] = []
    lineage = None
    if spec.reward_model is not None:
        model, tok, lineage = load_reward(spec.reward_model, recipe.output.dir, device, f"{recipe.method}.reward_model")
        funcs.append(model)
        tokenizers.append(tok)
    for fn in spec.reward_functions:
        funcs.append(rule_reward(fn))
        tokenizers.append(None)
    return funcs, tokenizers, lineage


def load_reward(ref: str, runs_root: str | Path, device: str, field: str) -> tuple[Any, Any, dict[str, Any]]:
    """The reward model merged into a plain classifier, its tokenizer, and its lineage for the manifest."""
    from curate.models.reward_model import load_reward_model
    from train.policy import run_lineage

    src = resolve_reward_model(ref, runs_root, field)
    run_dir = src.run["dir"] if src.run else ref
    model, tok, ident = load_reward_model(run_dir, device, runs_root, field, merge=True)
    model.config._name_or_path = REWARD_MODEL_NAME  # TRL names the reward in its logs after this
    for param in model.parameters():
        param.requires_grad_(False)
    lineage: dict[str, Any] = {"ref": ref, "weights": ident}
    if src.manifest is not None:
        lineage.update(run_lineage({**src.manifest, "dir": src.run["dir"] if src.run else None}))
    return model, tok, lineage


def config_args(setup: Setup, spec: OnlineSpec) -> dict[str, Any]:
    """TRL RLOOConfig/GRPOConfig arguments from the recipe (the shared loop settings plus the method's)."""
    kw = config_kwargs(setup)
    kw.pop("max_length", None)  # online configs bound the completion (max_completion_length), not the pair
    kw.update(
        num_generations=spec.num_generations,
        max_completion_length=spec.max_completion_length,
        temperature=spec.temperature,
        top_p=spec.top_p,
        num_iterations=spec.num_iterations,
        epsilon=spec.epsilon,
        mask_truncated_completions=spec.mask_truncated_completions,
        reward_weights=spec.reward_weights,
        log_completions=False,
    )
    if spec.beta is not None:
        kw["beta"] = spec.beta
    kw.update(setup.recipe.training.extra_args)  # the escape hatch still wins
    return kw


def train_online(setup: Setup, config: Any, trainer_cls: Any) -> TrainResult:
    """Build the policy, the rewards and the trainer (TRL's ``RLOOTrainer`` or ``GRPOTrainer`` with its
    ``config``); train; return the result with the reward lineage and the per-step summary."""
    r = setup.recipe
    funcs, reward_tokenizers, lineage = reward_functions(r, setup.defaults.device)
    model, optimizers = build_model(setup, task="causal", lr=config.learning_rate)
    prompts = prompt_dataset(setup.train_dataset, setup.kind)
    trainer = trainer_cls(
        model=model,
        reward_funcs=funcs,
        args=config,
        train_dataset=prompts,
        eval_dataset=prompt_dataset(setup.eval_dataset, setup.kind) if setup.eval_dataset is not None else None,
        processing_class=setup.tokenizer,
        reward_processing_classes=reward_tokenizers,
        optimizers=optimizers,
        callbacks=[progress_callback(setup)],
    )
    result = run_trainer(setup, trainer, task="causal")
    result.metrics.update(step_summary(setup.logs), prompts=len(prompts))
    result.extra["reward_model"] = lineage
    result.extra["rewards"] = {
        "names": reward_names(r.method_spec()),
        "weights": r.method_spec().reward_weights,
        "functions": [f.model_dump() for f in r.method_spec().reward_functions],
    }
    return result


SUMMARY_KEYS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "kl": "kl",
    "completion_length": "completions/mean_length",
}


def step_summary(logs: list[dict[str, Any]]) -> dict[str, float]:
    """First, last and mean over the logged steps of reward, reward std, KL and completion length.

    >>> step_summary([{"step": 1, "reward": 0.2}, {"step": 2, "reward": 0.6}])
    {'reward_first': 0.2, 'reward_last': 0.6, 'reward_mean': 0.4, 'steps_logged': 2}
    """
    steps = [e for e in logs if "reward" in e]
    out: dict[str, float] = {}
    for name, key in SUMMARY_KEYS.items():
        values = [float(e[key]) for e in steps if isinstance(e.get(key), int | float)]
        if values:
            out[f"{name}_first"] = values[0]
            out[f"{name}_last"] = values[-1]
            out[f"{name}_mean"] = sum(values) / len(values)
    if steps:
        out["steps_logged"] = len(steps)
    return out
