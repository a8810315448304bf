"""The model registry: immutable versions ``NAME@N``, aliases, the promotion gate, loading and export.

- :func:`resolve` (``NAME@N``, ``NAME@ALIAS``, ``NAME@latest``, ``NAME``, ``NAME/RUN_ID``, run folder -> run folder)
- :func:`register_run` (``curate train`` calls it when a run finishes), :func:`list_versions`
- :func:`move_alias`, :func:`rollback`, :func:`alias_log`, :func:`list_aliases`
- :func:`decide` (the gate), :func:`promote` (gate + decision record + alias move), :func:`load_gate_file`
- :func:`load_model`, :func:`export`, :func:`compare_models`

Layout and crash safety: see :mod:`train.registry.layout`.

Example:
    >>> # run = resolve("chat-sft@champion", "runs/train")
    >>> # model, tok = load_model("chat-sft@champion", root="runs/train")
"""

from __future__ import annotations

from train.registry.aliases import alias_log, list_aliases, move_alias, read_alias, rollback
from train.registry.compare import compare_models
from train.registry.gate import decide
from train.registry.gate_file import load_gate_file, load_gate_text
from train.registry.layout import RegistryError
from train.registry.loading import export, load_model
from train.registry.promote import list_decisions, promote
from train.registry.resolve import resolve, resolve_version, version_for
from train.registry.versions import ModelVersion, get_version, list_versions, register_run, version_of

__all__ = [
    "ModelVersion",
    "RegistryError",
    "alias_log",
    "compare_models",
    "decide",
    "export",
    "get_version",
    "list_aliases",
    "list_decisions",
    "list_versions",
    "load_gate_file",
    "load_gate_text",
    "load_model",
    "move_alias",
    "promote",
    "read_alias",
    "register_run",
    "resolve",
    "resolve_version",
    "rollback",
    "version_for",
    "version_of",
]
