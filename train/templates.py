"""Chat templates the training backend ships, with ``{% generation %}`` markers for assistant-only loss.

TRL's ``assistant_only_loss`` trains only on tokens the template wraps in ``{% generation %}``; most
shipped templates lack the markers, so a recipe can ask for ``chat_template: chatml`` (the format of
SmolLM2, Qwen and many others) and get the same rendering with the markers added.

Example:
    >>> "generation" in CHATML
    True
    >>> template_for("chatml") == CHATML and template_for("auto") is None
    True
"""

from __future__ import annotations

from pathlib import Path

# ChatML, as SmolLM2-Instruct renders it, plus generation markers around what the assistant says
# (its content and the closing <|im_end|>, so the model learns to stop).
CHATML = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

NAMED = {"chatml": CHATML}


def template_for(spec: str) -> str | None:
    """The chat template a recipe's ``model.chat_template`` names.

    Args:
        spec: ``auto`` (keep the tokenizer's own), a name in :data:`NAMED`, or a path to a Jinja file.

    Returns:
        The template text, or ``None`` for ``auto``.
    """
    if spec == "auto":
        return None
    if spec in NAMED:
        return NAMED[spec]
    return Path(spec).read_text(encoding="utf-8")
