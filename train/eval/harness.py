"""Benchmark tasks through lm-evaluation-harness (``lm_eval``), offline, on local task files.

Input: the loaded model under test (a peft adapter stays on its base: the harness is handed the
model object, nothing is loaded twice) and ``spec.tasks``, names of task YAML files found under
``spec.include_path`` (default: ``data/eval/lm_eval``, which ships ``curate_facts``, a 40-question
multiple-choice task written by this project). Output: one :class:`MetricValue` per task and metric,
named ``lm_eval:TASK:METRIC`` (e.g. ``lm_eval:curate_facts:acc``), with n = documents scored and a
bootstrap 95% interval over the per-document scores the harness logs.

Task files name their data with ``dataset_kwargs: {data_files: ...}``; paths relative to the YAML's
folder are made absolute in a private copy of the task folder, so a task runs from any working
directory. Only local tasks are offered (``include_defaults=False``): the harness's own tasks
download their datasets from a hub, which these machines cannot reach.

Example:
    >>> sorted(local_tasks(DEFAULT_TASKS))
    ['curate_facts']
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML

from schemas.evaluation import MetricValue
from train.eval.base import EvalContext, EvalError, Metric, bootstrap_ci, register

DEFAULT_TASKS = Path(__file__).resolve().parents[2] / "data" / "eval" / "lm_eval"


def local_tasks(folder: Path) -> dict[str, Path]:
    """Task name -> YAML file, for every task YAML directly in ``folder``."""
    yaml = YAML(typ="safe")
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("task"), str):
            found[doc["task"]] = path
    return found


def _absolute_copy(tasks: dict[str, Path], names: list[str], into: Path) -> None:
    """Copy the ``names`` task files into ``into`` with their data_files made absolute."""
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    for name in names:
        src = tasks[name]
        doc = yaml.load(src.read_text(encoding="utf-8"))
        files = (doc.get("dataset_kwargs") or {}).get("data_files")
        if isinstance(files, dict):
            doc["dataset_kwargs"]["data_files"] = {
                split: str((src.parent / f).resolve()) if not Path(f).is_absolute() else f for split, f in files.items()
            }
        elif isinstance(files, str) and not Path(files).is_absolute():
            doc["dataset_kwargs"]["data_files"] = str((src.parent / files).resolve())
        with (into / src.name).open("w", encoding="utf-8") as f:
            yaml.dump(doc, f)


@register
class HarnessTasks(Metric):
    """``lm_eval``: the harness's metrics on local tasks, per task, with intervals over documents."""

    name = "lm_eval"
    kinds = frozenset()  # its data comes from the task files, not from a dataset version
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        folder = Path(ctx.spec.include_path).expanduser() if ctx.spec.include_path else DEFAULT_TASKS
        if not folder.is_dir():
            raise EvalError(f"metrics.lm_eval.include_path: {folder} is not a folder of task YAML files")
        tasks = local_tasks(folder)
        names = ctx.spec.tasks or sorted(tasks)
        missing = [n for n in names if n not in tasks]
        if missing:
            raise EvalError(
                f"metrics.lm_eval.tasks: no task {', '.join(missing)} in {folder}; "
                f"known: {', '.join(sorted(tasks)) or 'none'}"
            )
        # the harness reads datasets through `datasets`, which must not try a hub
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        with tempfile.TemporaryDirectory(prefix="curate-lm-eval-") as tmp:
            _absolute_copy(tasks, names, Path(tmp))
            lm = HFLM(pretrained=ctx.model, tokenizer=ctx.tokenizer, batch_size=ctx.batch_size)
            res = simple_evaluate(
                model=lm,
                tasks=names,
                task_manager=TaskManager(include_path=tmp, include_defaults=False),
                limit=ctx.spec.limit,
                log_samples=True,
                bootstrap_iters=0,  # our own interval below, over the logged per-document scores
                random_seed=ctx.seed,
                numpy_random_seed=ctx.seed,
                torch_random_seed=ctx.seed,
                fewshot_random_seed=ctx.seed,
            )
        if res is None:
            raise EvalError("metrics.lm_eval: the harness returned no results")
        return [v for name in names for v in _figures(name, res, ctx)]


def _figures(task: str, res: dict[str, Any], ctx: EvalContext) -> list[MetricValue]:
    """One MetricValue per metric the harness logged per document for ``task``."""
    samples = res["samples"][task]
    better = res.get("higher_is_better", {}).get(task, {})
    metrics = [m for m in samples[0]["metrics"]] if samples else []
    out = []
    for metric in metrics:
        per_doc = np.array([float(s[metric]) for s in samples], dtype=np.float64)
        lo, hi = bootstrap_ci(per_doc, resamples=ctx.bootstrap, seed=ctx.seed)
        out.append(
            MetricValue(
                metric=f"lm_eval:{task}:{metric}",
                value=float(per_doc.mean()),
                n=len(per_doc),
                unit="documents",
                ci_low=lo,
                ci_high=hi,
                higher_is_better=bool(better.get(metric, True)),
                details={"harness_value": res["results"][task].get(f"{metric},none")},
            )
        )
    return out
