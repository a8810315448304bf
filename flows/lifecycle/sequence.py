"""The lifecycle sequence, written once: curate -> label -> train (each recipe) -> evaluate -> gate -> report.

:func:`run_lifecycle` spells the order out; the executor decides how each step runs, exactly as
for the curation sequence (:mod:`curate.engine.sequence`): :class:`curate.engine.local.LocalExecutor`
in this process (``curate lifecycle run --local``), :class:`flows.executor.PrefectExecutor` as Prefect
tasks (:mod:`flows.lifecycle.flow`). Each step is a :class:`~curate.engine.sequence.Step` whose
content key names the lifecycle run and the step, and whose ``done`` check is the run's
``state.json``: Prefect shows a step finished in an earlier attempt as ``Cached``. The curation
and labelling steps run the curation sequence inside them with the same kind of executor
(``Lifecycle.sub``), so their own steps show up too.

With nothing new (the refresh is a no-op and the latest version was already trained on) the run
is a logged no-op: no label, train, evaluate or gate step runs.

Example:
    >>> [s.name for s in (CURATE, LABEL, EVALUATE, GATE)]
    ['curate', 'label', 'evaluate', 'gate']
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.engine.sequence import Executor, Hook, Step
from flows.lifecycle import steps
from flows.lifecycle.chain import Chain
from flows.lifecycle.state import RunFolder
from flows.lifecycle.steps import Lifecycle


def _key(name: str) -> Callable[[Lifecycle], str]:
    def key(lc: Lifecycle) -> str:
        return f"lifecycle-{lc.name}-{lc.state.run:06d}-{name.replace(':', '-')}"

    return key


def _done(name: str) -> Callable[[Lifecycle, str], bool]:
    def done(lc: Lifecycle, key: str) -> bool:
        return lc.state.done(name)

    return done


def _step(name: str, fn: Callable[[Lifecycle], dict[str, Any]]) -> Step:
    return Step(name.replace(":", "-"), fn, _key(name), _done(name))


CURATE = _step("curate", steps.curate)
LABEL = _step("label", steps.label)
EVALUATE = _step("evaluate", steps.evaluate)
GATE = _step("gate", steps.gate)
REPORT = Hook("lifecycle_report", steps.report)  # type: ignore[arg-type]  # runs on the Lifecycle, not an Outcome


def train_step(chain: Chain, index: int) -> Step:
    """The step that trains ``chain.train[index]`` (named ``train-NAME``)."""
    name = f"train:{chain.train[index].recipe.name}"

    def fn(lc: Lifecycle) -> dict[str, Any]:
        return steps.train(lc, index)

    return _step(name, fn)


def run_lifecycle(lc: Lifecycle, ex: Executor) -> dict[str, Any]:
    """Run (or resume) the lifecycle run ``lc`` on ``ex``; returns :func:`summary`.

    Raises what a step raises; the run's state then says which step failed and why, the data and
    the champion are as they were, and the next start resumes at that step.
    """
    curated = ex.call(CURATE, lc)  # type: ignore[arg-type]
    if curated["noop"]:
        lc.state.status = "noop"
        lc.log(f"nothing new since {curated.get('version') or '-'}: no-op (nothing labelled, trained or promoted)")
    else:
        if lc.chain.recipe.label is not None:
            ex.call(LABEL, lc)  # type: ignore[arg-type]
        for i in range(len(lc.chain.train)):
            ex.call(train_step(lc.chain, i), lc)  # type: ignore[arg-type]
        if lc.chain.train:
            ex.call(EVALUATE, lc)  # type: ignore[arg-type]
            ex.call(GATE, lc)  # type: ignore[arg-type]
        lc.state.status = "done"  # every step finished: the report says so
    ex.hook(REPORT, lc)  # type: ignore[arg-type]
    return summary(lc)


def summary(lc: Lifecycle) -> dict[str, Any]:
    """What the run did: status, versions, models, the gate's decision, where the report is."""
    st = lc.state
    out: dict[str, Any] = {
        "lifecycle": lc.name,
        "run": st.run,
        "status": "noop" if st.status == "noop" else "done",
        "attempts": st.attempts,
        "orchestrator": st.orchestrator,
        "datasets": lc.versions(),
        "state": str(lc.run_dir / "state.json"),
        "report": str(lc.run_dir / "report.md"),
        "steps": {k: v.seconds for k, v in st.steps.items()},
    }
    models = {k.removeprefix("train:"): v.output.get("model") for k, v in st.steps.items() if k.startswith("train:")}
    if models:
        out["models"] = models
    if st.done("gate"):
        g = st.output("gate")
        out["gate"] = {
            "candidate": g["decision"]["model"],
            "champion_before": g["decision"].get("champion"),
            "promoted": g["promoted"],
            "failed": g["failed"],
            "reason": g["decision"]["reason"],
        }
    return out


def execute(chain: Chain, executor: Callable[[Any], Executor], orchestrator: dict[str, Any]) -> dict[str, Any]:
    """Open (or resume) the lifecycle's next run and run it; ``executor(prep)`` makes the executor
    for the lifecycle steps and for the curation sequences inside them."""
    folder = RunFolder(chain.out)
    digest = hashlib.sha256(chain.text.encode()).hexdigest()
    with folder.open(chain.name, {"file": str(chain.file), "sha256": digest}, orchestrator) as state:
        lc = Lifecycle(chain, folder, state, sub=executor)
        if state.attempts > 1:
            lc.log(
                f"resuming run {state.run} (attempt {state.attempts}): finished steps {', '.join(state.steps) or '-'}"
            )
            if state.recipe.get("sha256") != digest:
                lc.log(
                    f"warning: {chain.file} changed since run {state.run} started; its finished steps are kept "
                    "and the rest runs with the recipe as it is now"
                )
        return run_lifecycle(lc, executor(lc))


def data_only_chain(recipe: Path, out_dir: str | None = None) -> Chain:
    """A curation recipe as a lifecycle with no label, train or gate step: the scheduled data refresh.
    Its lifecycle state goes under the run folders' root (``out_dir`` or the recipe's output.dir)."""
    from curate.engine.steps import prepare
    from schemas.lifecycle import LifecycleRecipe
    from schemas.recipe_loader import load_recipe_file

    doc = load_recipe_file(recipe)
    root = prepare(doc, out_dir).root  # a URL output.dir: its local mirror
    lr = LifecycleRecipe(name=doc.recipe.name, data=str(Path(recipe).resolve()), out=str(Path(root).resolve()))
    return Chain(Path(recipe).resolve(), doc.text, lr, None, doc, None, data_out=out_dir)


def load_any(recipe: str | Path, out_dir: str | None = None) -> Chain:
    """The chain of a lifecycle recipe, or of a curation recipe as a data-only lifecycle."""
    from flows.lifecycle.chain import load_chain
    from schemas.lifecycle import is_lifecycle_text
    from schemas.recipe_loader import read_recipe_text

    if is_lifecycle_text(read_recipe_text(recipe)):
        return load_chain(recipe)
    return data_only_chain(Path(recipe), out_dir)
