"""The feedback section's models refuse what cannot work, naming the field and the fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.feedback import FeedbackSpec

GEN = {"name": "g", "model": "m", "n": 2}


def _spec(**kw: object) -> FeedbackSpec:
    return FeedbackSpec.model_validate({"generators": [GEN], "judge": {"kind": "pairwise", "model": "m"}, **kw})


def test_defaults() -> None:
    s = _spec()
    assert s.judge.swap and s.pairs.ties == "drop" and s.input_kind.value == "sft"


def test_api_keys_must_be_environment_references() -> None:
    with pytest.raises(ValidationError, match="environment reference"):
        FeedbackSpec.model_validate(
            {
                "generators": [GEN],
                "judge": {"kind": "pairwise", "endpoint": {"base_url": "u", "model": "m", "api_key": "sk-live"}},
            }
        )
    ok = FeedbackSpec.model_validate(
        {
            "generators": [GEN],
            "judge": {"kind": "pairwise", "endpoint": {"base_url": "u", "model": "m", "api_key": "${OPENAI_API_KEY}"}},
        }
    )
    assert ok.judge.endpoint is not None and ok.judge.endpoint.api_key == "${OPENAI_API_KEY}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"generators": [{"name": "g", "n": 2}], "judge": {"kind": "pairwise", "model": "m"}}, "exactly one"),
        ({"generators": [GEN, GEN], "judge": {"kind": "pairwise", "model": "m"}}, "unique"),
        ({"generators": [{**GEN, "n": 1}], "judge": {"kind": "pairwise", "model": "m"}}, "at least 2"),
        ({"judge": {"kind": "pairwise", "model": "m"}}, "without generators"),
        ({"generators": [GEN], "judge": {"kind": "rating", "model": "m", "aspects": {}}}, "aspect"),
        ({"generators": [GEN], "judge": {"kind": "pairwise", "model": "m"}, "input_kind": "kto"}, "kto"),
        (
            {"generators": [{**GEN, "max_new_tokens": 512}], "judge": {"kind": "critique_revise", "model": "m"}},
            "raise it to 512",
        ),
        ({"generators": [GEN], "judge": {"kind": "critique_revise", "model": "m", "template": "{x}"}}, "two templates"),
    ],
)
def test_refusals(body: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeedbackSpec.model_validate(body)
