"""The ``curate`` command line: one module per command group, thin over the engine, flows and trainers.

It is the top of the layering (``schemas`` < ``curate``/``train`` < ``flows`` < ``curate.cli``): the
only part of ``curate`` that may import ``flows`` and ``train``.

- :mod:`curate.cli.run`: ``validate``, ``run``, ``refresh``, ``serve``
- :mod:`curate.cli.server`: ``server up|down|status`` (a local Prefect server)
- :mod:`curate.cli.catalog`: ``converters``, ``filters``, ``schema``
- :mod:`curate.cli.datasets`: ``datasets list|show|diff|export``
- :mod:`curate.cli.annotate`: ``argilla ...`` and ``annotate push|pull|status|wait``
- :mod:`curate.cli.train`: ``train``
- :mod:`curate.cli.models`: ``models list|show|merge|register|gate|promote|rollback|history|compare|export``
- :mod:`curate.cli.advise`: ``advise`` (which method and adapter, and a recipe to start from)
- :mod:`curate.cli.feedback`: ``feedback calibrate|prompts``
- :mod:`curate.cli.evaluation`: ``eval`` (models side by side, metrics with intervals)
- :mod:`curate.cli.lifecycle`: ``lifecycle run|status`` (the data-to-model loop)
"""

from __future__ import annotations

# isort: off  (each module registers its commands on app; this order is the order of --help)
from curate.cli import catalog, datasets, evaluation, run, server  # noqa: F401
from curate.cli.advise import register as _register_advise

# isort: on
from curate.cli.annotate import annotate_app, argilla_app
from curate.cli.app import app
from curate.cli.feedback import feedback_app
from curate.cli.lifecycle import lifecycle_app
from curate.cli.train import register as _register_train

app.add_typer(argilla_app, name="argilla")
app.add_typer(annotate_app, name="annotate")
_register_train(app)
_register_advise(app)
app.add_typer(feedback_app, name="feedback")
app.add_typer(lifecycle_app, name="lifecycle")

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
