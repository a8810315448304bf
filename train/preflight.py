"""Pre-flight checks: catch data/template/tokenizer mistakes before any GPU time is spent.

Checks (each ``ok``, ``warn`` or ``error``, with the recipe field and the fix):

1. ``schema``: the dataset's record kind is what the method trains on.
2. ``template``: the chat template renders every example and keeps every message's text (a template
   that silently drops a role, e.g. ``system``, is caught here).
3. ``tokens``: EOS and pad are set, pad differs from EOS (padding masked by token id would also mask
   every EOS, so the model would never learn to stop; reward models would score the wrong token), and
   assistant turns end with EOS.
4. ``masking``: with ``assistant_only_loss``, the template has ``{% generation %}`` markers and every
   example keeps some trained tokens; one rendered example is shown with the trained tokens in
   ``[[...]]``.
5. ``length``: how many examples exceed ``max_length`` (an error when all do).
6. ``memory``: the estimate of :mod:`train.memory` against the device.

Example:
    >>> import datasets, tempfile
    >>> from train.tiny import build_tiny_model
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained(build_tiny_model(tempfile.mkdtemp()))
    >>> ds = datasets.Dataset.from_list([{"messages": [{"role": "user", "content": "Hi"},
    ...                                                {"role": "assistant", "content": "Hello."}]}])
    >>> report = run_checks("sft", "sft", ds, tok, max_length=64, assistant_only_loss=True)
    >>> report.ok, report.sample
    (True, '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n[[Hello.<|im_end|>]]\\n')
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

EXPECTED_KIND = {
    "sft": ("sft", "alpaca"),
    "reward": ("preference",),
    "dpo": ("preference",),
    "orpo": ("preference",),
    "cpo": ("preference",),
    "kto": ("kto",),
    # online RL samples its own completions: any dataset with prompts (sft: the turns before the last answer)
    "rloo": ("preference", "kto", "alpaca", "sft"),
    "grpo": ("preference", "kto", "alpaca", "sft"),
}
KIND_HINT = {
    "sft": "messages",
    "alpaca": "prompt/completion",
    "preference": "prompt/chosen/rejected",
    "kto": "prompt/completion/label",
    "text": "text",
}


@dataclass
class Check:
    """One check's outcome: ``level`` is ok, warn or error; ``field`` is the recipe key to change."""

    name: str
    level: str
    message: str
    field: str = ""


@dataclass
class PreflightReport:
    """All checks, one rendered example with its trained tokens marked, and the memory estimate."""

    checks: list[Check] = field(default_factory=list)
    sample: str = ""
    memory: dict[str, Any] = field(default_factory=dict)
    lengths: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(c.level == "error" for c in self.checks)

    def add(self, name: str, level: str, message: str, field_: str = "") -> None:
        self.checks.append(Check(name, level, message, field_))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
            "sample": self.sample,
            "memory": self.memory,
            "lengths": self.lengths,
        }

    def format(self) -> str:
        """Human-readable report (one line per check, then the marked example)."""
        mark = {"ok": "ok   ", "warn": "WARN ", "error": "ERROR"}
        lines = ["pre-flight checks:"]
        for c in self.checks:
            where = f" [{c.field}]" if c.field else ""
            lines.append(f"  {mark[c.level]} {c.name}{where}: {c.message}")
        if self.sample:
            lines += ["one example as the model sees it ([[...]] = tokens the loss trains on):", self.sample]
        return "\n".join(lines)


def conversations(row: dict[str, Any], kind: str) -> list[tuple[list[dict], list[dict]]]:
    """The (prompt, completion) message lists a row is trained as (sft: the whole conversation is the
    completion; preference: one per side)."""
    if kind == "sft":
        return [([], row["messages"])]
    if kind == "preference":
        return [(row["prompt"], row["chosen"]), (row["prompt"], row["rejected"])]
    return [(row["prompt"], row["completion"])]


def run_checks(
    method: str,
    kind: str,
    dataset: Any,
    tokenizer: Any,
    max_length: int,
    assistant_only_loss: bool = False,
    memory: dict[str, Any] | None = None,
    dataset_ref: str = "",
) -> PreflightReport:
    """Run every check (see the module docstring) and return the report; nothing is trained.

    Args:
        method: sft, reward, dpo, kto, orpo or cpo.
        kind: the dataset's record kind (from its manifest).
        dataset: the ``datasets.Dataset`` in TRL format (``curate.store.load``).
        tokenizer: the tokenizer with the chat template and pad token the run will use.
        max_length: ``training.max_length``.
        assistant_only_loss: ``training.assistant_only_loss``.
        memory: ``{"estimate": Estimate.as_dict(), "device": name, "device_bytes": n, "fits": bool}``.
    """
    report = PreflightReport()
    if kind not in EXPECTED_KIND[method]:
        want = " or ".join(EXPECTED_KIND[method])
        report.add(
            "schema",
            "error",
            f"{dataset_ref or 'the dataset'} holds {kind} records "
            f"({KIND_HINT.get(kind, kind)}), but method {method} trains on {want} records "
            f"({KIND_HINT[EXPECTED_KIND[method][0]]}); point dataset.ref at a {want} dataset or change method",
            "dataset.ref",
        )
        return report  # the other checks read columns this kind does not have
    report.add("schema", "ok", f"{kind} records suit method {method} ({len(dataset):,} rows)")
    if len(dataset) == 0:
        report.add("schema", "error", "the split has no rows; check dataset.split", "dataset.split")
        return report
    rows = dataset.to_list()
    if kind == "alpaca":
        kind = "kto"  # same prompt/completion shape
    _check_tokens(report, tokenizer, method)
    texts = _check_template(report, tokenizer, rows, kind)
    if texts:
        _check_eos(report, tokenizer, texts[0][1])
        _check_masking(report, tokenizer, rows, kind, assistant_only_loss, method)
        _check_lengths(report, tokenizer, texts, max_length)
    if memory:
        add_memory_check(report, memory)
    return report


def _extra(est: dict[str, Any]) -> str:
    """The estimate's frozen-model and runtime terms, when it has them."""
    parts = [f", {k} {_size(est[k])}" for k in ("frozen", "runtime") if est.get(k)]
    return "".join(parts)


def add_memory_check(report: PreflightReport, memory: dict[str, Any]) -> None:
    """Add the ``memory`` check: the estimate (see :func:`train.memory_check.memory_check`) against the device."""
    report.memory = memory
    est = memory["estimate"]
    seq = f" at {memory['seq']} tokens" if memory.get("seq") else ""
    msg = (
        f"~{_size(est['total'])} needed{seq} (weights {_size(est['weights'])}, gradients "
        f"{_size(est['gradients'])}, optimizer {_size(est['optimizer'])}, activations "
        f"{_size(est['activations'])}{_extra(est)}; {est['trainable']:,} trainable parameters) of "
        f"{memory['device_bytes'] / 2**30:.1f} GiB on {memory['device']}"
    )
    if memory["fits"]:
        report.add("memory", "ok", msg)
    else:
        report.add(
            "memory",
            "error",
            msg + "; lower training.batch_size or max_length, turn on "
            "gradient_checkpointing, or use adapter.type: qlora",
            "training.batch_size",
        )


def _size(gib: float) -> str:
    """GiB as a readable size (MiB below 1 GiB)."""
    return f"{gib:.2f} GiB" if gib >= 1 else f"{gib * 1024:.1f} MiB"


def _check_tokens(report: PreflightReport, tok: Any, method: str) -> None:
    if tok.eos_token_id is None:
        report.add(
            "tokens",
            "error",
            "the tokenizer has no EOS token, so the model cannot learn to stop; set one "
            "in the tokenizer or use a model whose tokenizer defines it",
            "model.base",
        )
        return
    if tok.pad_token_id is None:
        report.add(
            "tokens",
            "error",
            "the tokenizer has no pad token; set model.pad_token to a special token "
            "distinct from EOS (e.g. <|endoftext|>)",
            "model.pad_token",
        )
        return
    if tok.pad_token_id == tok.eos_token_id:
        why = (
            "the reward model would read its score at the first EOS inside the conversation"
            if method == "reward"
            else "masking padding by token id also masks every EOS label, so the model never learns to stop"
        )
        report.add(
            "tokens",
            "error",
            f"pad token == EOS ({tok.eos_token!r}): {why}; set model.pad_token to another "
            "special token (e.g. <|endoftext|>)",
            "model.pad_token",
        )
        return
    report.add("tokens", "ok", f"EOS {tok.eos_token!r}, pad {tok.pad_token!r} (distinct)")


def _render(tok: Any, messages: list[dict], **kw: Any) -> str:
    return tok.apply_chat_template(messages, tokenize=False, **kw)


def _check_template(report: PreflightReport, tok: Any, rows: list[dict], kind: str) -> list[tuple[str, str]]:
    """Render every example; returns (prompt text, full text) pairs."""
    if not getattr(tok, "chat_template", None):
        report.add(
            "template",
            "error",
            "the tokenizer has no chat template; set model.chat_template (e.g. chatml)",
            "model.chat_template",
        )
        return []
    texts: list[tuple[str, str]] = []
    failures: dict[str, int] = {}
    first: dict[str, str] = {}
    for i, row in enumerate(rows):
        for prompt, completion in conversations(row, kind):
            try:
                full = _render(tok, prompt + completion)
                ptext = _render(tok, prompt, add_generation_prompt=True) if prompt else ""
            except Exception as e:  # jinja raises anything the template author wrote (raise_exception)
                key = f"render error: {e}"
                failures[key] = failures.get(key, 0) + 1
                first.setdefault(key, f"row {i}")
                continue
            dropped = [m["role"] for m in prompt + completion if m["content"].strip() and m["content"] not in full]
            for role in dropped:
                key = f"drops {role} messages"
                failures[key] = failures.get(key, 0) + 1
                first.setdefault(key, f"row {i}")
            texts.append((ptext, full))
    if failures:
        detail = "; ".join(f"{k} ({n} example(s), first in {first[k]})" for k, n in failures.items())
        report.add(
            "template",
            "error",
            f"the chat template does not render every example: {detail}; fix the "
            "template or set model.chat_template (e.g. chatml)",
            "model.chat_template",
        )
    else:
        report.add("template", "ok", f"renders all {len(texts):,} conversations with every message kept")
    return texts


def _check_eos(report: PreflightReport, tok: Any, full: str) -> None:
    ids = tok(full, add_special_tokens=False)["input_ids"]
    if tok.eos_token_id is not None and tok.eos_token_id not in ids:
        report.add(
            "eos",
            "warn",
            f"the chat template does not put EOS ({tok.eos_token!r}) after assistant turns; "
            "TRL appends it, but generation will stop only if the template and EOS agree; check "
            "model.chat_template",
            "model.chat_template",
        )
    else:
        report.add("eos", "ok", "assistant turns end with EOS, so the model learns to stop")


def _check_masking(
    report: PreflightReport, tok: Any, rows: list[dict], kind: str, assistant_only: bool, method: str
) -> None:
    from trl.chat_template_utils import has_generation_markers

    prompt, completion = conversations(rows[0], kind)[0]
    if kind == "sft" and assistant_only:
        if not has_generation_markers(tok.chat_template):
            report.add(
                "masking",
                "error",
                "training.assistant_only_loss needs a chat template with "
                "{% generation %} markers around assistant turns, and this one has none; set "
                "model.chat_template: chatml (or add the markers to your template)",
                "model.chat_template",
            )
            return
        empty = 0
        for row in rows:
            enc = tok.apply_chat_template(row["messages"], return_dict=True, return_assistant_tokens_mask=True)
            if not any(enc["assistant_masks"]):
                empty += 1
        enc = tok.apply_chat_template(completion, return_dict=True, return_assistant_tokens_mask=True)
        report.sample = _marked(tok, enc["input_ids"], enc["assistant_masks"])
        if empty == len(rows):
            report.add(
                "masking",
                "error",
                "no example has an assistant token to train on; check the data's roles "
                "and the template's {% generation %} markers",
                "model.chat_template",
            )
        elif empty:
            report.add("masking", "warn", f"{empty} example(s) have no assistant tokens and will be dropped")
        else:
            report.add("masking", "ok", "loss on assistant turns only (see the marked example)")
        return
    full = _render(tok, prompt + completion)
    ptext = _render(tok, prompt, add_generation_prompt=True) if prompt else ""
    ids = tok(full, add_special_tokens=False)["input_ids"]
    n_prompt = len(tok(ptext, add_special_tokens=False)["input_ids"]) if ptext and full.startswith(ptext) else 0
    report.sample = _marked(tok, ids, [0] * n_prompt + [1] * (len(ids) - n_prompt))
    what = (
        "every token (set training.assistant_only_loss: true to train on assistant turns only)"
        if kind == "sft"
        else "the completion only"
    )
    if method == "reward":
        what = "the score at the last token (no token loss)"
    if method in ("rloo", "grpo"):
        what = "completions the policy samples for each prompt (the dataset's answers are not used)"
    report.add("masking", "ok", f"loss on {what}")


def _marked(tok: Any, ids: list[int], mask: list[int]) -> str:
    """Decode ``ids`` with runs of trained tokens wrapped in [[...]]."""
    out, run, cur = [], [], 0
    for i, m in zip(ids, list(mask) + [0] * (len(ids) - len(mask)), strict=False):
        if m != cur and run:
            text = tok.decode(run)
            out.append(f"[[{text}]]" if cur else text)
            run = []
        cur = m
        run.append(i)
    if run:
        text = tok.decode(run)
        out.append(f"[[{text}]]" if cur else text)
    return "".join(out)


def _check_lengths(report: PreflightReport, tok: Any, texts: list[tuple[str, str]], max_length: int) -> None:
    lengths = [len(x) for x in tok([full for _, full in texts], add_special_tokens=False)["input_ids"]]
    over = sum(n > max_length for n in lengths)
    report.lengths = {
        "max": max(lengths),
        "median": statistics.median(lengths),
        "over_max_length": over,
        "max_length": max_length,
        "sequences": len(lengths),
        "distinct": len({min(n, max_length) for n in lengths}),  # bounds the padded batch shapes a run sees
    }
    longest = f"longest {max(lengths)}, median {statistics.median(lengths):g} tokens"
    if over == len(lengths):
        report.add(
            "length",
            "error",
            f"every example is longer than training.max_length={max_length} ({longest}) "
            "and would be truncated; raise training.max_length",
            "training.max_length",
        )
    elif over:
        report.add(
            "length",
            "warn",
            f"{over} of {len(lengths)} sequences exceed max_length={max_length} and will be truncated ({longest})",
            "training.max_length",
        )
    else:
        report.add("length", "ok", f"all {len(lengths):,} sequences fit max_length={max_length} ({longest})")
