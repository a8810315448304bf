"""The layering of DESIGN.md, checked on every import (module-level and function-level alike).

``schemas`` < ``curate`` (the engine and its units) and ``train`` < ``flows`` < ``curate.cli``:
imports point down only, ``train`` reads data only through ``curate.store``, units never import
Prefect, and no two modules import each other, however indirectly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "curate", "train", "flows")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            if not all(part.isidentifier() for part in rel.parts):  # not importable (argilla-server/)
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Project modules ``name`` imports, anywhere in the file (lazy imports count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for t in targets:
            while t and t not in MODULES:  # `import a.b.c` of a package: the deepest project module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _external(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def _layer(module: str) -> int:
    if module.startswith("curate.cli"):
        return 3
    return {"schemas": 0, "curate": 1, "train": 1, "flows": 2}[module.split(".")[0]]


def test_no_import_cycles() -> None:
    # Tarjan's strongly connected components over the module graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in GRAPH:
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_point_down_the_layers() -> None:
    upward = [(m, t) for m, ts in GRAPH.items() for t in ts if _layer(t) > _layer(m)]
    assert not upward, f"upward imports (schemas < curate, train < flows < curate.cli): {upward}"


def test_curate_and_train_do_not_import_each_other_except_the_store_api() -> None:
    bad = []
    for m, ts in GRAPH.items():
        for t in ts:
            # train reads data through curate.store, loads models through curate.models, and builds judges
            # (evaluation's judge win rate, safety's judge scorer, reward accuracy) through their one
            # construction point, curate.feedback.judges
            allowed = ("curate.store", "curate.models", "curate.feedback.judges")
            if m.startswith("train") and t.startswith("curate") and not t.startswith(allowed):
                bad.append((m, t))
            if m.startswith("curate") and not m.startswith("curate.cli") and t.startswith("train"):
                bad.append((m, t))
    assert not bad, f"train reads data through curate.store only, and curate's units never import train: {bad}"


@pytest.mark.parametrize("pkg", ["schemas", "curate", "train"])
def test_units_never_import_prefect(pkg: str) -> None:
    offenders = [
        m
        for m, p in MODULES.items()
        if m.split(".")[0] == pkg and not m.startswith("curate.cli") and "prefect" in _external(p)
    ]
    assert not offenders, f"only flows/ may import Prefect: {offenders}"


def test_the_checker_sees_lazy_imports() -> None:
    # a function-level import is an edge too (the cycles the issue found hid there)
    assert "curate.engine.steps" in GRAPH["curate.engine.sequence"]
    assert "flows.curation" in GRAPH["curate.cli.run"]
