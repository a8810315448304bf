"""Shared helpers for filter tests."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest

from schemas.kinds import MESSAGES, Kind


@pytest.fixture
def kind_frame() -> Callable[[Kind, list[str]], pl.DataFrame]:
    """Build a tiny frame of ``kind`` records whose responses are the given texts."""

    def build(kind: Kind, responses: list[str]) -> pl.DataFrame:
        prompts = [f"Tell me about thing {i}." for i in range(len(responses))]
        if kind is Kind.ALPACA:
            return pl.DataFrame({"instruction": prompts, "input": [""] * len(responses), "output": responses})
        user = [[{"role": "user", "content": p}] for p in prompts]
        answer = [[{"role": "assistant", "content": r}] for r in responses]
        if kind is Kind.SFT:
            msgs = [u + a for u, a in zip(user, answer, strict=True)]
            return pl.DataFrame({"messages": msgs}, schema={"messages": MESSAGES})
        rejected = [[{"role": "assistant", "content": "no"}]] * len(responses)
        return pl.DataFrame(
            {"prompt": user, "chosen": answer, "rejected": rejected},
            schema={"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
        )

    return build
