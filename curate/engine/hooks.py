"""After-publish hooks: the work both drivers do once a run has published (or found nothing new).

Default hooks, in order:

1. ``annotation_push``: a recipe with ``annotation:`` pushes the version just created to Argilla;
2. ``refresh_log``: a refresh appends what it did (no-op or not) to ``OUT/NAME/refreshes.jsonl``;
3. ``artifacts``: the funnel table and the run report (or the no-op notice) go to the executor's
   artifact sink (Prefect's UI under a flow; nothing locally, where ``report.md`` is the artifact).

Later steps of the lifecycle (AI feedback, training, evaluation, promotion) are hooks too: append a
:class:`~curate.engine.sequence.Hook` to the list a driver is given.

Example:
    >>> [h.name for h in default_hooks()]
    ['annotation_push', 'refresh_log', 'artifacts']
"""

from __future__ import annotations

from typing import Any

from curate.engine.artifacts import funnel_rows, report_markdown
from curate.engine.refresh import record_refresh
from curate.engine.sequence import ArtifactSink, Hook, Outcome


def artifact_key(name: str, what: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes.

    >>> artifact_key("My_Recipe", "funnel")
    'my-recipe-funnel'
    """
    clean = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"{clean}-{what}"


def _push_applies(outcome: Outcome) -> bool:
    recipe = outcome.prep.doc.recipe
    if recipe.annotation is None:
        return False
    if recipe.feedback is not None and recipe.feedback.routes_to_annotators:  # the routed prompts go out
        return outcome.result is not None and outcome.result.summary["feedback"]["outcomes"]["routed"] > 0
    return bool(outcome.published and outcome.published["created"])


def push_annotation(outcome: Outcome, sink: ArtifactSink) -> dict[str, Any]:
    """Push the recipe's dataset (the version just published) to its Argilla dataset; a recipe that
    routes AI feedback pushes the run's routed prompts instead (with the AI scores as suggestions)."""
    from curate.annotate.steps import push_stage  # Argilla's SDK loads only when a recipe annotates

    run_dir = outcome.result.run_dir if outcome.result is not None else None
    return push_stage(outcome.prep.doc, run_dir=run_dir).as_dict()


def log_refresh(outcome: Outcome, sink: ArtifactSink) -> None:
    """One line per refresh in ``OUT/NAME/refreshes.jsonl`` (a no-op leaves no run folder)."""
    entry: dict[str, Any] = {"noop": outcome.noop, **(outcome.refresh or {})}
    if not outcome.noop:
        entry["published"] = outcome.published
        entry["annotation_push"] = outcome.hooks.get("annotation_push")
    entry["orchestrator"] = outcome.orchestrator
    record_refresh(outcome.prep, entry)


def show_artifacts(outcome: Outcome, sink: ArtifactSink) -> None:
    """The funnel per stage and reason as a table, the report (plots inlined) as markdown."""
    name = outcome.prep.name
    if outcome.result is None:
        base = (outcome.refresh or {}).get("base_version") or "-"
        sink.markdown(
            artifact_key(name, "refresh"),
            f"# {name}: refresh was a no-op\n\nEvery input file is already in `{base}` "
            f"({len(outcome.prep.file_indexes())} files checked by content hash).",
            "refresh outcome",
        )
        return
    summary = outcome.result.summary
    sink.table(artifact_key(name, "funnel"), funnel_rows(summary), "funnel")
    if outcome.result.run_dir is not None:
        sink.markdown(artifact_key(name, "report"), report_markdown(outcome.result.run_dir, summary), "run report")


def default_hooks() -> list[Hook]:
    """The hooks every run executes, in order (see the module docstring)."""
    return [
        Hook("annotation_push", push_annotation, _push_applies, retries=2),
        Hook("refresh_log", log_refresh, lambda o: o.refresh is not None),
        Hook("artifacts", show_artifacts),
    ]
