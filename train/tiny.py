"""Tiny models for tests and examples: a Llama-shaped model from a config and a locally trained tokenizer.

Nothing is downloaded: the tokenizer is a byte-level BPE trained on a few hundred sentences, with
ChatML special tokens and the :data:`train.templates.CHATML` template, so chat rendering, loss
masking, padding and EOS behave as with a real instruct model.

Example:
    >>> import tempfile
    >>> path = build_tiny_model(tempfile.mkdtemp())
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained(path)
    >>> tok.eos_token, tok.pad_token
    ('<|im_end|>', '<|endoftext|>')
"""

from __future__ import annotations

from pathlib import Path

from train.templates import CHATML

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_TEXT = (
    "the a an is are was be to of and in that it for on with as at by from this what how why who "
    "which answer question please explain write list give short long good bad help user assistant "
    "system water sun moon cat dog tree house car city river book code python data model train test "
    "shop order refund price time day night red blue green one two three four five yes no thanks "
    "hello capital france paris color sky sea summer winter number add sum hot cold fast slow big "
    "small"
)
_WORDS = _TEXT.split()


def corpus(n: int = 400) -> list[str]:
    """Deterministic sentences over a small vocabulary (what the tokenizer is trained on)."""
    out = []
    for i in range(n):
        words = [_WORDS[(i * 7 + j * 13) % len(_WORDS)] for j in range(4 + i % 9)]
        out.append(" ".join(words).capitalize() + ("?" if i % 3 == 0 else "."))
    return out


def build_tokenizer(vocab_size: int = 600):
    """A byte-level BPE tokenizer (transformers fast tokenizer) with ChatML tokens and template.

    Returns:
        A tokenizer with ``eos_token='<|im_end|>'`` (the end of an assistant turn, so the model learns to
        stop), ``pad_token='<|endoftext|>'`` (distinct from EOS, so padding never masks the EOS label)
        and a chat template with ``{% generation %}`` markers.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([*corpus(), "<|im_start|>user\n", "assistant\n"], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    fast.chat_template = CHATML
    return fast


def build_tiny_model(
    out_dir: str | Path,
    hidden_size: int = 64,
    layers: int = 2,
    vocab_size: int = 600,
    seed: int = 0,
) -> Path:
    """Write a tiny Llama causal LM and its tokenizer to ``out_dir`` (``from_pretrained``-loadable).

    Args:
        out_dir: folder to write (created).
        hidden_size, layers: model size (defaults: about 150k parameters; hidden_size >= 64 keeps each
            weight row a whole 4-bit quantization block, which bitsandbytes' CPU kernels need for QLoRA).
        vocab_size: BPE vocabulary size.
        seed: weight initialisation seed (same seed, same weights).

    Returns:
        ``out_dir`` as a Path.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
