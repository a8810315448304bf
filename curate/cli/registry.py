"""``curate models register|promote|rollback|history|compare|export``: the model registry on the command line.

Versions are ``NAME@N``; aliases (``champion``...) move only through ``promote`` (which runs the gate
and records its decision) and ``rollback``, each logged with who, when and why. Exit codes: 0 ok,
2 a reference, gate file or folder that cannot be used (the message says what exists), 1 internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.app import EXIT_INVALID, DebugOpt, JsonOpt, _fail_recipe, _internal, err, out, print_json
from curate.cli.train import RootOpt, models_app
from schemas.recipe_loader import RecipeError

REGISTRY_EPILOG = """Examples:

  curate models history quickstart-sft                       # versions, aliases, moves, gate decisions

  curate models promote quickstart-sft@2 --gate recipes/gates/default.yaml --why "weekly refresh"

  curate models promote quickstart-sft@1                     # no gate: the first champion

  curate models rollback quickstart-sft                      # champion back to its previous version

  curate models compare quickstart-sft@1 quickstart-sft@2    # saved evaluations side by side

  curate models export quickstart-sft@champion --to serve/sft --merged
"""


def _fail(e: Exception) -> None:
    err.print(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e), markup=False)
    raise typer.Exit(EXIT_INVALID)


@models_app.command("register", epilog=REGISTRY_EPILOG)
def models_register(run: Annotated[Path, typer.Argument(help="A `curate train` run folder.")]) -> None:
    """Register a finished run as the next version of its name (runs register themselves when they finish)."""
    from train.registry import register_run

    try:
        name, version = register_run(run)
    except (KeyError, FileNotFoundError) as e:
        _fail(e)
        return
    out.print(f"{run} is {name}@{version}", markup=False)


@models_app.command("promote", epilog=REGISTRY_EPILOG)
def models_promote(
    candidate: Annotated[str, typer.Argument(help="The version to promote: NAME@N.")],
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "champion",
    gate: Annotated[Path | None, typer.Option(help="Gate YAML (gate: floors / against_champion / win_rate).")] = None,
    why: Annotated[str, typer.Option(help="Why, for the log.")] = "",
    force: Annotated[bool, typer.Option(help="Move the alias even when the gate refuses (logged as forced).")] = False,
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the promotion gate on a version; move the alias only if it passes. The decision is always recorded."""
    from schemas.eval_recipe import load_gate_file
    from train.registry.gate import promote

    try:
        spec = load_gate_file(gate) if gate else None
        decision = promote(candidate, spec, alias=alias, why=why, force=force, root=root)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    except KeyError as e:
        _fail(e)
        return
    except Exception as e:
        _internal(e, debug)
        return
    if as_json:
        print_json(decision.model_dump(mode="json"))
    else:
        t = Table(
            "criterion",
            "passed",
            "candidate",
            "champion",
            "threshold",
            "detail",
            title=f"{decision.model} -> {alias} (held by {decision.champion or 'nobody'})",
        )
        for c in decision.criteria:
            fmt = lambda x: "" if x is None else f"{x:.4g}"  # noqa: E731
            t.add_row(
                c.name, "yes" if c.passed else "NO", fmt(c.candidate), fmt(c.champion), fmt(c.threshold), c.detail
            )
        out.print(t)
        verdict = "promoted" if decision.promoted else "not promoted"
        out.print(f"{decision.model}: {verdict}: {decision.reason}", markup=False)
    if not decision.promoted:
        raise typer.Exit(EXIT_INVALID)


@models_app.command("rollback", epilog=REGISTRY_EPILOG)
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "champion",
    why: Annotated[str, typer.Option(help="Why, for the log.")] = "",
    root: RootOpt = Path("runs/train"),
) -> None:
    """Point the alias back at the version it held before its current one."""
    from train.registry import Registry

    try:
        event = Registry(root, name).rollback(alias, why)
    except KeyError as e:
        _fail(e)
        return
    out.print(f"{name}@{alias}: {event.previous} -> {event.version} (rollback by {event.who})", markup=False)


@models_app.command("history", epilog=REGISTRY_EPILOG)
def models_history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Versions, aliases, every alias move and every gate decision of a model name."""
    from train.registry import Registry

    reg = Registry(root, name)
    versions, aliases = reg.versions(), reg.aliases()
    if not versions:
        _fail(KeyError(f"no registered versions of {name!r} under {root}"))
    log, decisions = reg.log(), reg.decisions()
    if as_json:
        print_json(
            {
                "versions": versions,
                "aliases": aliases,
                "log": [e.model_dump() for e in log],
                "decisions": [d.model_dump() for d in decisions],
            }
        )
        return
    t = Table("version", "run", "method", "dataset", "aliases", title=f"{name}: versions")
    for v, rec in versions.items():
        t.add_row(
            str(v),
            rec["run_id"],
            rec.get("method") or "",
            rec.get("dataset") or "",
            ", ".join(a for a, x in aliases.items() if x == v),
        )
    out.print(t)
    for e in log:
        out.print(f"{e.when} {e.who}: {e.action} {e.alias} {e.previous} -> {e.version}  {e.why}", markup=False)
    for d in decisions:
        out.print(f"{d.created} gate {d.model} vs {d.champion or '-'}: {d.reason}", markup=False)


@models_app.command("compare", epilog=REGISTRY_EPILOG)
def models_compare(
    a: Annotated[str, typer.Argument(help="First model (NAME@N, NAME@ALIAS, run).")],
    b: Annotated[str, typer.Argument(help="Second model.")],
    root: RootOpt = Path("runs/train"),
    chart: Annotated[Path | None, typer.Option(help="Write the side-by-side chart here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Saved evaluations of two models side by side (newest figure per metric and eval set, with intervals)."""
    from train.eval.results import load_reports
    from train.registry import resolve

    try:
        dirs = [resolve(a, root), resolve(b, root)]
    except KeyError as e:
        _fail(e)
        return
    latest: list[dict[tuple[str, str], object]] = []
    for d in dirs:
        seen: dict[tuple[str, str], object] = {}
        for report in load_reports(d):
            for v in report.metrics:
                seen[(v.metric, v.details.get("set", ""))] = v
        latest.append(seen)
    keys = [k for k in latest[0] if k in latest[1]]
    rows = [
        {"metric": m, "set": s, a: latest[0][(m, s)].model_dump(), b: latest[1][(m, s)].model_dump()} for m, s in keys
    ]
    if chart:
        from schemas.evaluation import EvalReport
        from train.eval.plots import plot_metrics

        reps = [
            (ref, EvalReport(model=ref, created="", metrics=[side[k] for k in keys]))
            for ref, side in zip((a, b), latest, strict=True)
        ]
        plot_metrics(reps, chart, title=f"{a} vs {b}")
    if as_json:
        print_json(rows)
        return
    if not keys:
        _fail(
            KeyError(
                f"{a} and {b} have no metric evaluated on the same eval set: "
                f"run `curate eval {a} {b} --on ... --metrics ...`"
            )
        )
    t = Table("metric", "eval set", a, b, "better", title=f"{a} vs {b}")
    for m, s in keys:
        va, vb = latest[0][(m, s)], latest[1][(m, s)]
        t.add_row(m, s, va.interval(), vb.interval(), "higher" if va.higher_is_better else "lower")
    out.print(t)
    if chart:
        out.print(f"chart: {chart}", markup=False)


@models_app.command("export", epilog=REGISTRY_EPILOG)
def models_export(
    model: Annotated[str, typer.Argument(help="NAME@champion, NAME@N, a run...")],
    to: Annotated[Path, typer.Option("--to", help="A new (or empty) folder.")],
    merged: Annotated[bool, typer.Option(help="Write merged weights (base + adapter) instead of the adapter.")] = False,
    root: RootOpt = Path("runs/train"),
    debug: DebugOpt = False,
) -> None:
    """Write a self-contained folder of a model: adapter (or merged weights), tokenizer, manifest, card, evaluations."""
    from train.registry.export import export

    try:
        path = export(model, to, root, merged)
    except KeyError as e:
        _fail(e)
        return
    except Exception as e:
        _internal(e, debug)
        return
    out.print(f"{model} -> {path}", markup=False)
