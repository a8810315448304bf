"""``curate lifecycle run | status``: the scheduled data-to-model loop, once, or what it has done.

``curate lifecycle run RECIPE`` runs (or resumes) one lifecycle run as a Prefect flow: the
incremental refresh of the data recipe, the labelling, the train recipes in order, candidate vs
champion on the same eval sets, the promotion gate, and one report. ``--local`` runs the same
steps in this process. ``curate serve RECIPE --cron ...`` runs it on a schedule.

Exit codes: 0 when the run finished (promoted, refused by the gate, or a no-op: the summary says
which), 2 when a step failed on something the user can fix (recipe, input, data, model, store,
another run holding the lock; the rerun resumes at that step), 1 internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from curate.cli.app import (
    EXIT_INVALID,
    DebugOpt,
    JsonOpt,
    LocalOpt,
    _fail_recipe,
    _internal,
    _prefect_env,
    err,
    headline,
    out,
)
from schemas.recipe_loader import RecipeError

lifecycle_app = typer.Typer(
    no_args_is_help=True,
    help="The data-to-model loop: curate, label, train, evaluate, gate, report (`curate serve` schedules it).",
)

LifecycleArg = Annotated[Path, typer.Argument(help="A lifecycle recipe (recipes/lifecycle/*.yaml).", exists=False)]


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a user fixes (exit 2), from every layer the loop runs through."""
    from curate.annotate.progress import AnnotationTimeout
    from curate.engine.local import QuarantineLimitError
    from curate.engine.steps import EmptyVersionError
    from curate.feedback.calibration import CalibrationDataError, CalibrationGateError
    from curate.feedback.errors import FeedbackError
    from curate.ingest import InputError
    from curate.models.source import ModelError
    from curate.store.refs import StoreError
    from flows.lifecycle.state import LifecycleBusy
    from train.common import DataError
    from train.eval.base import EvalError
    from train.registry import RegistryError
    from train.run import PreflightError

    return (
        AnnotationTimeout,
        InputError,
        QuarantineLimitError,
        EmptyVersionError,
        FeedbackError,
        StoreError,
        CalibrationGateError,
        CalibrationDataError,
        ModelError,
        DataError,
        PreflightError,
        EvalError,
        RegistryError,
        LifecycleBusy,
    )


@lifecycle_app.command(
    "run",
    epilog="Examples:\n\n  curate lifecycle run recipes/lifecycle/demo.yaml\n\n"
    "  curate lifecycle run recipes/lifecycle/demo.yaml --local --json | jq .gate\n\n"
    "  curate serve recipes/lifecycle/demo.yaml --cron '0 3 * * *'     # every night at 03:00",
)
def lifecycle_run(
    recipe: LifecycleArg, local: LocalOpt = False, as_json: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Run (or resume) one lifecycle run: new raw data in, a gated model out.

    Only new input files are curated; nothing new is a logged no-op. A run that failed or was killed
    is resumed at its first unfinished step (finished steps are not repeated). The champion moves
    only when the gate passes.
    """
    from flows.lifecycle.chain import load_chain

    try:
        chain = load_chain(recipe)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    try:
        if local:
            from curate.engine.local import LocalExecutor
            from flows.lifecycle.sequence import execute

            summary = execute(chain, lambda prep: LocalExecutor(), {"name": "local"})
        else:
            _prefect_env()
            from flows.lifecycle.flow import lifecycle_flow

            summary = lifecycle_flow(str(recipe.resolve()))
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    except _expected_errors() as e:
        err.print(headline("lifecycle step failed", e), highlight=False)
        err.print(
            f"state: {chain.out / 'runs'}; fix the cause and rerun: finished steps are not repeated",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID) from None
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as e:
        _internal(e, debug)
        return
    _print(summary, as_json)


def _print(s: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(s, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    flow = s["orchestrator"].get("flow_run_id")
    out.print(
        f"lifecycle {s['lifecycle']} run {s['run']}: {s['status']}" + (f" (flow run {flow})" if flow else ""),
        markup=False,
    )
    for k, v in s["datasets"].items():
        out.print(f"  {k}: {v}", markup=False)
    for k, v in (s.get("models") or {}).items():
        out.print(f"  trained {k}: {v}", markup=False)
    g = s.get("gate")
    if g:
        verdict = "PROMOTED" if g["promoted"] else "REFUSED (" + ", ".join(g["failed"]) + ")"
        out.print(f"  gate: {g['candidate']} {verdict}; {g['reason']}", markup=False)
    out.print(f"report: {s['report']}", markup=False)


@lifecycle_app.command("status", epilog="Example:\n\n  curate lifecycle status recipes/lifecycle/demo.yaml")
def lifecycle_status(recipe: LifecycleArg, as_json: JsonOpt = False) -> None:
    """The lifecycle's runs, newest last: status, steps finished, the gate's decision."""
    from flows.lifecycle.chain import load_chain
    from flows.lifecycle.state import RunFolder

    try:
        chain = load_chain(recipe, check_files=False)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    states = RunFolder(chain.out).states()
    if as_json:
        sys.stdout.write(orjson.dumps([s.model_dump(mode="json") for s in states], option=orjson.OPT_INDENT_2).decode())
        return
    if not states:
        out.print(f"lifecycle {chain.name}: no runs yet (curate lifecycle run {recipe})", markup=False)
        return
    for s in states:
        gate = ""
        if s.done("gate"):
            g = s.output("gate")
            gate = f"; {g['decision']['model']} " + (
                "promoted" if g["promoted"] else "refused: " + ", ".join(g["failed"])
            )
        steps = ", ".join(f"{k}{'' if v.status == 'done' else ' FAILED'}" for k, v in s.steps.items())
        out.print(f"run {s.run} [{s.status}] {s.created} attempts={s.attempts}: {steps}{gate}", markup=False)
        if s.error:
            out.print(f"  error: {s.error.splitlines()[0]}", markup=False)


def validate_lifecycle(path: Path, as_json: bool) -> bool:
    """``curate validate`` of a lifecycle recipe: True when ``path`` is one (checked and reported)."""
    from flows.lifecycle.chain import load_chain
    from schemas.lifecycle import is_lifecycle_text
    from schemas.recipe_loader import read_recipe_text

    try:
        if not is_lifecycle_text(read_recipe_text(path)):
            return False
        chain = load_chain(path)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return True
    steps = ["curate"] + (["label"] if chain.recipe.label else [])
    steps += [f"train:{t.recipe.name}" for t in chain.train] + (["evaluate", "gate"] if chain.train else [])
    if as_json:
        body = {"ok": True, "lifecycle": chain.name, "steps": steps, "kinds": chain.kinds()}
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.print(headline("ok", f"lifecycle {chain.name}: {' -> '.join(steps)} -> report", "green"), highlight=False)
    return True
