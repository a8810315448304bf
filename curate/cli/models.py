"""``curate models``: trained runs, their registered versions ``NAME@N``, aliases, the promotion gate,
export. Registered into the ``curate`` CLI by :mod:`curate.cli.train`.

Every reference accepts what :func:`train.registry.resolve` does: ``NAME@N``, ``NAME@ALIAS``,
``NAME@latest``, ``NAME`` (latest run), ``NAME/RUN_ID`` or a run folder. Exit codes: 0 ok, 2 an
expected failure (unknown model/alias, invalid gate file, gate refused, export folder not empty) with a
message saying what to do, 1 internal error.

Example:
    >>> sorted(c.name for c in models_app.registered_commands)[:4]
    ['compare', 'export', 'gate', 'history']
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

EXIT_INVALID = 2
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)

MODELS_HELP = """Trained models with their lineage, registered versions (NAME@N), aliases and promotion.

Every `curate train` run is registered as the next version NAME@N; aliases (champion, challenger,
any name) point at versions and move atomically, logged with who/when/why.

Examples:

  curate models list

  curate models show chat-sft@champion

  curate models register runs/train/chat-sft/20260101-000000-42   # a run trained before the registry

  curate models gate recipes/gates/default.yaml chat-sft@4       # what the gate would decide (moves nothing)

  curate models promote chat-sft@4 --gate recipes/gates/default.yaml --why "nightly refresh"

  curate models rollback chat-sft                  # champion back to the previous version

  curate models history chat-sft

  curate models compare chat-sft@champion chat-sft@4

  curate models export chat-sft@champion --to deploy/chat --merged

  curate models merge chat-sft                     # write merged/ beside the adapter
"""

models_app = typer.Typer(help=MODELS_HELP, no_args_is_help=True, rich_markup_mode=None)
RootOpt = Annotated[Path, typer.Option("--root", help="Where trained runs live (a recipe's output.dir).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
RefArg = Annotated[str, typer.Argument(help="NAME@N, NAME@ALIAS, NAME@latest, NAME, NAME/RUN_ID or a run folder.")]
AliasOpt = Annotated[str, typer.Option("--alias", help="The alias to move.")]
WhyOpt = Annotated[str, typer.Option("--why", help="Why (kept in the alias log).")]


def _invalid(message: str) -> None:
    err.print(message, markup=False)
    raise typer.Exit(EXIT_INVALID)


def _json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@contextmanager
def _expected() -> Iterator[None]:
    """Registry lookups, gate files and model loading failures exit 2 with their message."""
    from curate.models.source import ModelError
    from schemas.recipe_loader import RecipeError
    from train.registry import RegistryError

    try:
        yield
    except RecipeError as e:
        _invalid(f"gate file invalid: {len(e.problems)} problem(s)\n" + "\n".join(f"  {p}" for p in e.problems))
    except (RegistryError, ModelError) as e:
        _invalid(str(e))


def gate_file_or_none(path: Path) -> Any:
    """The :class:`GateSpec` in ``path`` when it is a gate file (top key ``gate:``), else None.

    For ``curate validate``; raises :class:`schemas.recipe_loader.RecipeError` for an invalid gate file.
    """
    from ruamel.yaml import YAML

    from train.registry import load_gate_text

    try:
        text = path.read_text(encoding="utf-8")
        doc = YAML(typ="safe").load(text)
    except Exception:  # unreadable or not YAML: the recipe loader says why
        return None
    if not isinstance(doc, dict) or "gate" not in doc or "data" in doc:  # data: a lifecycle recipe
        return None
    return load_gate_text(text, str(path))


def validate_gate_file(path: Path, as_json: bool) -> bool:
    """``curate validate`` of a gate file: True when ``path`` is one (checked and reported; exit 2 if invalid)."""
    from curate.cli.app import _fail_recipe
    from schemas.recipe_loader import RecipeError

    try:
        gate = gate_file_or_none(path)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return True
    if gate is None:
        return False
    if as_json:
        _json({"ok": True, "gate": gate.model_dump()})
    else:
        out.print(f"ok: promotion gate (moves {gate.alias})", markup=False)
    return True


def _versions_by_run(root: Path) -> dict[str, tuple[str, list[str]]]:
    """run folder -> (NAME@N, aliases) for every registered run under ``root``."""
    from train.registry import list_aliases, list_versions

    found: dict[str, tuple[str, list[str]]] = {}
    names = {p.parent.parent.name for p in root.glob("*/registry/versions")} if root.is_dir() else set()
    for name in names:
        aliases = list_aliases(root, name)
        for v in list_versions(root, name):
            key = str(v.run_dir(root).resolve())
            found[key] = (v.ref, [a for a, n in aliases.items() if n == v.version])
    return found


@models_app.command("list")
def models_list(root: RootOpt = Path("runs/train"), as_json: JsonOpt = False) -> None:
    """List trained runs, newest first: version NAME@N and aliases, method, adapter, dataset version, loss, folder."""
    from rich.markup import escape
    from rich.table import Column, Table

    from train.lineage import list_models

    found = list_models(root)
    reg = _versions_by_run(root)
    for m in found:
        m["version"], m["aliases"] = reg.get(str(Path(m["dir"]).resolve()), (None, []))
    if as_json:
        keys = ("name", "version", "aliases", "run_id", "method", "created", "dataset", "output", "metrics", "dir")
        _json([{k: m.get(k) for k in keys} for m in found])
        return
    if not found:
        out.print(f"no trained models under {root} (curate train RECIPE)", markup=False)
        return
    table = Table("run", "method", "adapter", "dataset", "train_loss", "folder")
    table.columns.insert(0, Column(escape("model [aliases]"), no_wrap=True))
    for m in found:
        loss = m.get("metrics", {}).get("train_loss")
        tags = f" [{', '.join(m['aliases'])}]" if m["aliases"] else ""
        table.add_row(
            escape((m["version"] or f"{m['name']} (unregistered)") + tags),
            m["run_id"],
            m["method"],
            m.get("adapter", {}).get("type", ""),
            m["dataset"]["ref"],
            f"{loss:.4g}" if isinstance(loss, float) else "",
            m["dir"],
        )
    out.print(table)


@models_app.command("show")
def models_show(model: RefArg, root: RootOpt = Path("runs/train"), as_json: JsonOpt = False) -> None:
    """Show one trained run's lineage: version, base model, dataset version and hash, recipe hash, metrics,
    the lifecycle run that trained it, and the chain back to the raw input files."""
    from train.lineage import find_model
    from train.registry import list_aliases, resolve, version_of

    with _expected():
        m = find_model(str(resolve(model, root)), root)
    v = version_of(m["dir"])
    aliases = [a for a, n in list_aliases(Path(m["dir"]).parent.parent, m["name"]).items() if v and n == v.version]
    from dataclasses import asdict

    from train.registry.trace import render, trace_model

    tree = trace_model(m["dir"], root)
    if as_json:
        _json({**m, "version": v.ref if v else None, "aliases": aliases, "trace": asdict(tree)})
        return
    ds, base = m["dataset"], m["base_model"]
    lines = [
        f"{m['name']} / {m['run_id']} ({m['method']}, adapter {m['adapter']['type']}), created {m['created']}",
        f"  version:   {v.ref if v else 'unregistered (curate models register ' + m['dir'] + ')'}"
        + (f", aliases: {', '.join(aliases)}" if aliases else ""),
        f"  folder:    {m['dir']}",
        f"  output:    {m['output']['path']} ({m['output']['kind']})"
        + (f", merged: {m['output']['merged']}" if m["output"].get("merged") else ""),
        f"  base:      {base.get('spec')} ({base.get('kind')})",
        f"  dataset:   {ds['ref']} split {ds['split']}, {ds['rows']} rows, content {ds['content_hash']}",
        f"  recipe:    {m['recipe']['file']} sha256 {m['recipe']['sha256'][:16]}...",
        f"  code:      {m['code_version']}",
        f"  hardware:  {m['hardware']}",
        "  metrics:   "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in m["metrics"].items()),
    ]
    if m.get("ref_cache"):
        lines.append(f"  reference log-prob cache: {', '.join(m['ref_cache'])}")
    lc = m.get("lifecycle")
    if lc:
        flow = lc.get("flow_run_id")
        lines.append(f"  lifecycle: {lc['lifecycle']} run {lc['run']} ({lc['state']}), flow run {flow}")
    lines += ["", "Lineage (back to the raw input files):", *render(tree, 1)]
    out.print("\n".join(lines), markup=False)


@models_app.command("merge")
def models_merge(
    model: RefArg,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write (default: RUN/merged).")] = None,
    root: RootOpt = Path("runs/train"),
) -> None:
    """Merge a run's adapter into its base model and save a standalone model (for deployment)."""
    from train.adapters import merge_adapter
    from train.lineage import MANIFEST, find_model
    from train.registry import resolve

    with _expected():
        m = find_model(str(resolve(model, root)), root)
    if m["output"]["kind"] != "adapter":
        _invalid(f"{m['dir']} holds full weights ({m['output']['path']}), nothing to merge")
    target = out_dir or Path(m["dir"]) / "merged"
    merge_adapter(m["base_model"]["folder"], Path(m["output"]["path"]), target, m.get("task", "causal"))
    m["output"]["merged"] = str(target)
    manifest = {k: v for k, v in m.items() if k != "dir"}
    (Path(m["dir"]) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    out.print(f"merged {m['name']}/{m['run_id']} -> {target}", markup=False)


@models_app.command("register")
def models_register(
    runs: Annotated[list[str] | None, typer.Argument(help="Run folders (or NAME/RUN_ID) to register.")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Register every unregistered run under --root.")] = False,
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Register finished runs as versions NAME@N (runs trained before the registry; registered ones are kept)."""
    from train.lineage import list_models
    from train.registry import register_run, resolve

    if not runs and not all_runs:
        _invalid("give run folders to register, or --all for every run under --root")
    done = []
    with _expected():
        dirs = [resolve(r, root) for r in runs or []]
        if all_runs:  # oldest first, so version numbers follow training order
            dirs += [Path(m["dir"]) for m in reversed(list_models(root))]
        for d in dirs:
            v = register_run(d)
            done.append({"version": v.ref, "run": str(d)})
    if as_json:
        _json(done)
        return
    for d in done:
        out.print(f"{d['version']}: {d['run']}", markup=False)


def _print_decision(decision: Any) -> None:
    for c in decision.criteria:
        out.print(f"  {'pass' if c.passed else 'FAIL'}  {c.name}: {c.detail}", markup=False)
    out.print(f"{decision.model}: {decision.reason}", markup=False)


@models_app.command("gate")
def models_gate(
    gate_file: Annotated[Path, typer.Argument(help="Gate YAML (see recipes/gates/).")],
    candidate: Annotated[str | None, typer.Argument(help="NAME@N to hold against the champion.")] = None,
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Check a gate file; with a candidate, show what the gate decides (records nothing, moves nothing)."""
    from train.registry import decide, load_gate_file

    with _expected():
        gate = load_gate_file(gate_file)
        decision = decide(candidate, gate, root) if candidate else None
    if decision is None:
        if as_json:
            _json({"ok": True, "gate": gate.model_dump()})
        else:
            out.print(f"{gate_file}: gate ok", markup=False)
        return
    if as_json:
        _json(decision.model_dump())
    else:
        _print_decision(decision)
    if not decision.passed:
        raise typer.Exit(EXIT_INVALID)


@models_app.command("promote")
def models_promote(
    model: Annotated[str, typer.Argument(help="The version to promote: NAME@N (or any reference to a run).")],
    alias: Annotated[
        str | None, typer.Option("--alias", help="The alias to move (default: the gate's, champion).")
    ] = None,
    gate_file: Annotated[
        Path | None, typer.Option("--gate", help="Gate YAML; the alias moves only if it passes.")
    ] = None,
    why: WhyOpt = "",
    force: Annotated[bool, typer.Option("--force", help="Move even if the gate fails (logged as forced).")] = False,
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Point an alias (champion) at a version, through the promotion gate when --gate is given.

    The decision (every criterion with its figures) is recorded whether or not the alias moves.
    Exit 2 when the gate refuses.
    """
    from train.registry import load_gate_file, promote

    with _expected():
        gate = load_gate_file(gate_file) if gate_file else None
        decision, event = promote(model, alias=alias, gate=gate, why=why, force=force, root=root)
    if as_json:
        _json({"decision": decision.model_dump(), "event": event.model_dump() if event else None})
    else:
        _print_decision(decision)
        if event is not None:
            name = decision.model.split("@")[0]
            was = f" (was {name}@{event.previous})" if event.previous is not None else ""
            out.print(f"{name}@{event.alias} -> {decision.model}{was}", markup=False)
    if not decision.promoted:
        if not as_json:
            err.print(f"not promoted: the gate refused {decision.model} (decision recorded; --force overrides)")
        raise typer.Exit(EXIT_INVALID)


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: AliasOpt = "champion",
    why: WhyOpt = "",
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Move an alias back to the version it pointed at before (from the alias log)."""
    from train.registry import rollback

    with _expected():
        event = rollback(root, name, alias, why)
    if as_json:
        _json(event.model_dump())
        return
    out.print(f"{name}@{alias} -> {name}@{event.version} (was {name}@{event.previous})", markup=False)


@models_app.command("history")
def models_history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Versions, aliases, every alias move (who/when/why) and every gate decision of a model."""
    from train.registry import RegistryError, alias_log, list_aliases, list_decisions, list_versions

    versions = list_versions(root, name)
    if not versions and not (root / name).is_dir():
        with _expected():
            raise RegistryError(f"no trained model named {name!r} under {root}")
    aliases, log, decisions = list_aliases(root, name), alias_log(root, name), list_decisions(root, name)
    if as_json:
        _json(
            {
                "versions": [v.model_dump() for v in versions],
                "aliases": aliases,
                "log": [e.model_dump() for e in log],
                "decisions": [d.model_dump() for d in decisions],
            }
        )
        return
    by_version: dict[int, list[str]] = {}
    for a, n in aliases.items():
        by_version.setdefault(n, []).append(a)
    lines = [f"{name}: {len(versions)} version(s)"]
    for v in versions:
        tags = f"  [{', '.join(by_version[v.version])}]" if v.version in by_version else ""
        lines.append(
            f"  {v.ref:<16} {v.run_id}  {v.method or ''} on {v.dataset or '?'}  registered {v.registered}{tags}"
        )
    lines.append("alias log:" if log else "alias log: empty")
    for e in log:
        moved = f"{e.previous if e.previous is not None else '-'} -> {e.version if e.version is not None else '-'}"
        lines.append(f"  {e.when}  {e.alias:<10} {moved:<8} {e.action:<8} by {e.who}" + (f": {e.why}" if e.why else ""))
    lines.append("decisions:" if decisions else "decisions: none")
    for d in decisions:
        verdict = "promoted" if d.promoted else ("passed" if d.passed else "refused")
        lines.append(f"  {d.created}  {d.model} -> {d.alias}: {verdict} ({d.reason})")
    out.print("\n".join(lines), markup=False)


@models_app.command("compare")
def models_compare(
    a: Annotated[str, typer.Argument(help="Model A (e.g. NAME@champion).")],
    b: Annotated[str, typer.Argument(help="Model B (e.g. NAME@4).")],
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Metrics of A and B side by side with intervals (saved evaluations on common eval sets), plus the
    paired judge win rate when one was evaluated against the other."""
    from rich.markup import escape
    from rich.table import Table

    from train.registry import compare_models

    with _expected():
        c = compare_models(a, b, root)
    if as_json:
        _json(
            {
                "a": {"ref": a, "dir": str(c.a_dir)},
                "b": {"ref": b, "dir": str(c.b_dir)},
                "rows": [
                    {
                        "metric": r.metric,
                        "sets": list(r.sets),
                        "a": r.a.model_dump(),
                        "b": r.b.model_dump(),
                        "better": r.better,
                    }
                    for r in c.rows
                ],
                "win_rate": c.win_rate.model_dump() if c.win_rate else None,
                "win_rate_from": c.win_rate_from,
                "only_a": c.only_a,
                "only_b": c.only_b,
            }
        )
        return
    if not c.rows and c.win_rate is None:
        _invalid(
            f"no saved evaluations of {a} and {b} on common eval sets: run `curate eval MODEL --on DATASET@VERSION` "
            "for both on the same dataset version"
        )
    table = Table("metric", "eval sets", escape(f"A {a}"), escape(f"B {b}"), "better")
    for r in c.rows:
        table.add_row(*(escape(x) for x in (r.metric, ", ".join(r.sets), r.a.interval(), r.b.interval(), r.better)))
    out.print(table)
    if c.win_rate is not None:
        out.print(
            f"paired {c.win_rate.metric} of A against B: {c.win_rate.interval()} ({c.win_rate_from})", markup=False
        )
    for side, names in (("A", c.only_a), ("B", c.only_b)):
        if names:
            out.print(f"only {side} has (on these sets): {', '.join(sorted(set(names)))}", markup=False)


@models_app.command("export")
def models_export(
    model: RefArg,
    to: Annotated[Path, typer.Option("--to", help="A new (or empty) folder to write.")],
    merged: Annotated[bool, typer.Option("--merged", help="Merged weights instead of the adapter.")] = False,
    root: RootOpt = Path("runs/train"),
) -> None:
    """Write a self-contained folder: the adapter (with tokenizer) or merged weights, manifest, card, registry.json."""
    from train.registry import export

    with _expected():
        path = export(model, to, merged=merged, root=root)
    out.print(f"exported {model} -> {path}", markup=False)
