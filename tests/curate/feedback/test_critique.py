"""The critique-and-revise judge on real models: a tiny LM fine-tuned here to answer anything with one
sentence (so its revisions end, and are usable), the untrained tiny LM (which never stops: truncated
revisions), and an endpoint on a closed port (a real connection failure)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.background import free_port
from curate.feedback.cache import RequestCache
from curate.feedback.critique import CritiqueReviseJudge, check_revision
from curate.feedback.prompts import CRITIQUE, REVISE, prompt_hash
from curate.models.backend import Messages
from curate.models.hf_backend import TransformersBackend
from curate.models.openai_backend import OpenAIBackend
from schemas.feedback import DEFAULT_PRINCIPLES, EndpointSpec
from schemas.kinds import MESSAGES

SENTENCE = "The sky is blue."
PRINCIPLES = list(DEFAULT_PRINCIPLES)


@pytest.fixture(scope="module")
def parrot(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny LM after 30 SFT steps (`curate train`, full weights) on multi-line prompts all answered
    with SENTENCE: it ends its answers, whatever the prompt (about 20 s)."""
    from curate.store import Store
    from schemas.train_recipe_loader import load_train_recipe_doc
    from train.run import train_recipe
    from train.tiny import corpus

    root, lines, n = tmp_path_factory.mktemp("parrot"), corpus(), 32
    chat = pl.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "messages": [
                [
                    {"role": "user", "content": "\n".join(lines[i * 7 : i * 7 + 1 + i % 12])},
                    {"role": "assistant", "content": SENTENCE},
                ]
                for i in range(n)
            ],
            "split": ["train"] * n,
        },
        schema={"id": pl.String, "messages": MESSAGES, "split": pl.String},
    )
    Store(root / "store").publish("chat", chat, {"kind": "sft"})
    text = (
        f"name: parrot\nmodel: {{base: {tiny_lm}}}\ndataset: {{ref: chat@latest, store: {root / 'store'}}}\n"
        'method: sft\nadapter: {"type": "none"}\n'
        'training: {"max_steps": 30, "batch_size": 8, "max_length": 256, "learning_rate": 0.01, '
        '"assistant_only_loss": true}\n'
        f"output: {{dir: {root / 'runs'}}}\n"
    )
    outcome = train_recipe(load_train_recipe_doc(text, str(root / "parrot.yaml")))
    return Path(outcome.manifest["output"]["path"])


ITEMS: list[tuple[Messages, str]] = [
    ((("user", "What colour is grass?"),), "Grass is purple."),
    ((("system", "Be brief."), ("user", "Name a fruit.")), "A dog number 3."),
    ((("user", "What colour is the sky?"),), SENTENCE),
]


def test_a_revision_per_item_with_its_critique_and_an_unchanged_one_refused(parrot: Path) -> None:
    judge = CritiqueReviseJudge(TransformersBackend.load(str(parrot)), None, PRINCIPLES, revise_max_new_tokens=32)
    revs = judge.revise(ITEMS)
    assert len(revs) == 3 and judge.calls == 6  # all critiques in one round, all revisions in the next
    for r in revs[:2]:
        assert r.error is None and r.revised == SENTENCE and r.critique == SENTENCE
        assert r.raw == {"critique": SENTENCE, "revision": SENTENCE}
    # the third response already is what the model writes: no usable chosen, raw texts kept
    assert revs[2].error == "unchanged_revision" and revs[2].revised is None and revs[2].raw["revision"] == SENTENCE


def test_a_revision_cut_at_the_token_budget_is_refused_with_its_text(tiny_lm: Path) -> None:
    judge = CritiqueReviseJudge(TransformersBackend.load(str(tiny_lm)), None, PRINCIPLES, 8, revise_max_new_tokens=6)
    [r] = judge.revise(ITEMS[:1])  # the untrained model never writes its end token
    assert r.revised is None and r.critique and r.raw["revision"].strip()
    assert r.error == "truncated_revision: stopped at revise_max_new_tokens=6; raise it"


def test_an_unreachable_endpoint_fails_every_item_with_the_reason() -> None:
    spec = EndpointSpec(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_retries=0, timeout_s=2)
    judge = CritiqueReviseJudge(OpenAIBackend(spec), None, PRINCIPLES)
    revs = judge.revise(ITEMS)
    for r in revs:
        assert r.critique is None and r.revised is None and r.raw == {"critique": ""}
        assert r.error is not None and r.error.startswith("judge_error: critique: ") and "Connection" in r.error


def test_the_cache_makes_the_rerun_free(parrot: Path, tmp_path: Path) -> None:
    backend = TransformersBackend.load(str(parrot))
    first = CritiqueReviseJudge(backend, RequestCache(tmp_path / "c.sqlite"), PRINCIPLES, revise_max_new_tokens=32)
    before = first.revise(ITEMS)
    rerun = CritiqueReviseJudge(backend, RequestCache(tmp_path / "c.sqlite"), PRINCIPLES, revise_max_new_tokens=32)
    assert rerun.revise(ITEMS) == before and first.calls == 6 and rerun.calls == 0
    other = CritiqueReviseJudge(backend, None, [*PRINCIPLES, "Be polite."])
    assert other.identity()["prompt_hash"] != first.identity()["prompt_hash"]
    assert first.identity()["prompt_hash"] == prompt_hash(CRITIQUE, REVISE, *PRINCIPLES)


def test_check_revision() -> None:
    assert check_revision("A dog.", "\n \n", "stop") == "empty_revision"
    assert check_revision("A dog.", "A dog.\n", "length") == "unchanged_revision"
    assert check_revision("A dog.", "The sky is blue", "length") == "truncated_revision"
    assert check_revision("A dog.", "The sky is blue.", None) is None


def test_build_judge_passes_the_revision_budget() -> None:
    from curate.feedback.judges import build_judge
    from schemas.feedback import JudgeSpec

    spec = JudgeSpec(
        kind="critique_revise", endpoint={"base_url": "http://127.0.0.1:9/v1", "model": "m"}, revise_max_new_tokens=512
    )
    judge = build_judge(spec)
    assert isinstance(judge, CritiqueReviseJudge) and judge.revise_max_new_tokens == 512
    assert judge.identity()["revise_max_new_tokens"] == 512
