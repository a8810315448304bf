"""The OpenAI-compatible backend against a real server: ``transformers serve`` on a tiny model folder,
started here (nothing downloaded). Also: what happens when the server is gone."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from curate.background import free_port, serving
from curate.models.backend import Request
from curate.models.openai_backend import OpenAIBackend
from schemas.feedback import EndpointSpec

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).with_name("transformers")


@pytest.fixture(scope="module")
def server(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if not CLI.exists():
        pytest.skip("the transformers CLI is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [str(CLI), "serve", str(tiny_lm), "--port", str(port), "--device", "cpu"]
    url = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{url}/health", log, timeout=90, env=env):
        yield f"{url}/v1", str(tiny_lm)


def test_chat_completions_concurrently_in_order(server: tuple[str, str]) -> None:
    base_url, model = server
    be = OpenAIBackend(EndpointSpec(base_url=base_url, model=model, concurrency=3))
    reqs = [Request((("user", f"count to {i}"),), max_new_tokens=4) for i in range(5)]
    out = be.complete(reqs)
    assert len(out) == 5 and all(c.ok and c.attempts == 1 for c in out), [c.error for c in out]
    assert all(c.usage.get("completion_tokens", 0) >= 1 for c in out)
    # greedy decoding is deterministic on the server too: the same request gives the same text
    again = be.complete(reqs[:1])
    assert again[0].text == out[0].text
    assert be.identity() == {"backend": "openai", "base_url": base_url, "model": model, "revision": None, "chat": True}


def test_a_server_that_ignores_logprobs_gives_none_not_a_guess(server: tuple[str, str]) -> None:
    base_url, model = server
    be = OpenAIBackend(EndpointSpec(base_url=base_url, model=model))
    [c] = be.complete([Request((("user", "A or B?"),), max_new_tokens=2, choices=("A", "B"))])
    assert c.ok and c.choice_logprobs is None  # transformers serve drops logprobs (measured)


def test_an_unreachable_server_fails_after_the_retries_with_the_reason() -> None:
    spec = EndpointSpec(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_retries=2, timeout_s=2)
    t0 = time.time()
    [c] = OpenAIBackend(spec, backoff_s=0.05).complete([Request((("user", "hi"),), max_new_tokens=2)])
    assert not c.ok and c.attempts == 3 and "failed after 3 attempts" in (c.error or "")
    assert "Connection" in (c.error or "") and time.time() - t0 < 30


def test_the_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = EndpointSpec(base_url="http://127.0.0.1:9/v1", model="m", api_key="${CURATE_TEST_KEY}")
    monkeypatch.delenv("CURATE_TEST_KEY", raising=False)
    with pytest.raises(KeyError, match="export CURATE_TEST_KEY"):
        OpenAIBackend(spec)
    monkeypatch.setenv("CURATE_TEST_KEY", "sk-test")
    be = OpenAIBackend(spec)
    assert be.client.api_key == "sk-test" and "sk-test" not in str(be.identity())
