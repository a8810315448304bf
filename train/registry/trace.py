"""Trace a model version back to the raw input files it came from.

A model's manifest names the dataset version it trained on (and the run it started from, and its
reward model); a dataset version's manifest names its input files, and an input that is another
published version's Parquet file (a labelling recipe reads the curated version) leads to that
version's manifest in turn. :func:`trace_model` follows every link and returns the tree;
:func:`render` prints it. ``curate models show NAME@champion`` ends with it.

Example:
    >>> # print("\\n".join(render(trace_model("loop-dpo@champion", "runs/train"))))
    >>> # model loop-dpo@4 (dpo), lifecycle loop run 5, flow run c18164e5-...
    >>> #   dataset pairs@4 (preference, 42 rows) in /work/store
    >>> #     dataset prompts@4 (text, 42 rows) in /work/store
    >>> #       file file:///work/raw/d.jsonl (6 rows, sha256 88b3c234...) new in this version
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.lineage import MANIFEST, read_manifest

MAX_DEPTH = 12


@dataclass
class Node:
    """One link of the lineage: a model, a dataset version or a raw file, with what it came from."""

    kind: str  # model | dataset | file | missing
    ref: str
    detail: dict[str, Any] = field(default_factory=dict)
    parents: list[Node] = field(default_factory=list)

    def files(self) -> list[Node]:
        """Every raw file anywhere up the tree."""
        if self.kind == "file":
            return [self]
        return [f for p in self.parents for f in p.files()]


def trace_model(ref: str, root: str | Path = "runs/train") -> Node:
    """The lineage tree of the model ``ref`` (any registry reference or run folder)."""
    from train.registry.resolve import resolve
    from train.registry.versions import version_of

    run_dir = Path(resolve(ref, root))
    v = version_of(run_dir.resolve())
    return _model(run_dir, v.ref if v else run_dir.name, 0)


def _model(run_dir: Path, label: str, depth: int) -> Node:
    m = read_manifest(run_dir / MANIFEST)
    lc = m.get("lifecycle") or {}
    node = Node(
        "model",
        label,
        {
            "method": m.get("method"),
            "run_dir": str(run_dir),
            "lifecycle": {k: lc.get(k) for k in ("lifecycle", "run", "flow_run_id", "state")} if lc else None,
        },
    )
    if depth >= MAX_DEPTH:
        return node
    ds = m.get("dataset") or {}
    if ds.get("ref"):
        node.parents.append(_dataset(ds["ref"], ds.get("store") or "data/store", depth + 1, ds.get("split")))
    base_run = (m.get("base_model") or {}).get("run")
    if isinstance(base_run, dict) and base_run.get("dir") and (Path(base_run["dir"]) / MANIFEST).is_file():
        label = f"{base_run.get('name')}/{base_run.get('run_id')}"
        node.parents.append(_model(Path(base_run["dir"]), label, depth + 1))
    reward = m.get("reward_model") or {}
    if isinstance(reward, dict) and reward.get("dir") and (Path(reward["dir"]) / MANIFEST).is_file():
        node.parents.append(_model(Path(reward["dir"]), f"reward {reward.get('name')}", depth + 1))
    return node


def _dataset(ref: str, store: str, depth: int, split: str | None = None) -> Node:
    from curate.store import RefError, Store, StoreError

    try:
        st = Store(store)
        manifest = st.manifest(ref)
    except (RefError, StoreError, OSError) as e:
        return Node("missing", ref, {"store": store, "why": str(e)})
    node = Node(
        "dataset",
        f"{manifest.get('dataset')}@{manifest.get('version')}",
        {"store": store, "kind": manifest.get("kind"), "rows": manifest.get("rows"), "split": split},
    )
    if depth >= MAX_DEPTH:
        return node
    for entry in manifest.get("inputs") or []:
        uri = str(entry.get("uri", ""))
        upstream = _version_holding(uri)
        if upstream is not None:
            node.parents.append(_dataset(upstream[1], upstream[0], depth + 1))
            continue
        node.parents.append(
            Node(
                "file",
                uri,
                {
                    "rows": entry.get("rows"),
                    "sha256": entry.get("sha256"),
                    "carried": bool(entry.get("carried")),
                    "source": entry.get("source"),
                },
            )
        )
    return node


def _version_holding(uri: str) -> tuple[str, str] | None:
    """(store, NAME@N) of the published version whose Parquet file ``uri`` is, if it is one."""
    from curate.store import RefError, Store, StoreError
    from curate.store.store import dataset_of_data_file

    path = Path(uri.removeprefix("file://"))
    held = dataset_of_data_file(path)
    if held is None:
        return None
    store, name = str(held[0]), held[1]
    try:
        st = Store(store)
        for v in sorted(st.versions(name), reverse=True):
            files = {str(Path(str(f).removeprefix("file://")).resolve()) for f in st.version_files(f"{name}@{v}")}
            if str(path.resolve()) in files:
                return store, f"{name}@{v}"
    except (RefError, StoreError, OSError, KeyError):
        return None
    return None


def render(node: Node, indent: int = 0) -> list[str]:
    """The tree as indented lines (models, dataset versions, raw files)."""
    pad = "  " * indent
    d = node.detail
    if node.kind == "model":
        lc = d.get("lifecycle")
        line = f"{pad}model {node.ref} ({d.get('method')})"
        if lc:
            line += f", lifecycle {lc['lifecycle']} run {lc['run']}"
            line += f", flow run {lc['flow_run_id']}" if lc.get("flow_run_id") else ""
    elif node.kind == "dataset":
        split = f" split {d['split']}" if d.get("split") else ""
        line = f"{pad}dataset {node.ref}{split} ({d.get('kind')}, {d.get('rows')} rows) in {d.get('store')}"
    elif node.kind == "file":
        sha = (d.get("sha256") or "")[:12]
        how = "carried from the previous version" if d.get("carried") else "new in this version"
        line = f"{pad}file {node.ref} ({d.get('rows')} rows, sha256 {sha}...) {how}"
    else:
        line = f"{pad}{node.ref}: not found ({d.get('why')})"
    out = [line]
    for p in node.parents:
        out += render(p, indent + 1)
    return out
