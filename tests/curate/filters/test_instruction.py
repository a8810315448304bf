"""Instruction-data defects (alpaca-cleaned style): every rule and bound just inside and just outside."""

from __future__ import annotations

import polars as pl
import pytest

from curate.filters import get_filter
from curate.filters.instruction import (
    IMPERATIVE_VERBS,
    MERGED_MARKERS,
    NA_OUTPUTS,
    REFUSAL_PHRASES,
    UNSEEN_PHRASES,
    UNSEEN_PROMPT_PHRASES,
    InstructionDefectsParams,
)
from schemas.kinds import MESSAGES, Kind

DEFAULTS = {
    "na_outputs": NA_OUTPUTS,
    "unseen_phrases": UNSEEN_PHRASES,
    "unseen_prompt_phrases": UNSEEN_PROMPT_PHRASES,
    "bare_url_prompt": True,
    "copy_min_prompt_chars": 20,
    "merged_marker_pattern": MERGED_MARKERS,
    "merged_min_tasks": 2,
    "imperative_verbs": IMPERATIVE_VERBS,
    "control_chars": True,
    "refusals": "drop",
    "refusal_phrases": REFUSAL_PHRASES,
}
ANSWER = "Blue is the colour of a clear daytime sky."


def defects(pairs: list[tuple[str, str]], kind: Kind = Kind.ALPACA, **params: object) -> list[str | None]:
    """Reasons for (prompt, response) pairs, as Alpaca records (instruction = prompt, empty input)."""
    return get_filter("instruction_defects")(params).reasons(frame(kind, pairs), kind).to_list()


def one(prompt: str, response: str, **params: object) -> str | None:
    return defects([(prompt, response)], **params)[0]


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":")[0]


def frame(kind: Kind, pairs: list[tuple[str, str]]) -> pl.DataFrame:
    prompts = [p for p, _ in pairs]
    responses = [r for _, r in pairs]
    if kind is Kind.ALPACA:
        return pl.DataFrame({"instruction": prompts, "input": [""] * len(pairs), "output": responses})
    user = [[{"role": "user", "content": p}] for p in prompts]
    answer = [[{"role": "assistant", "content": r}] for r in responses]
    if kind is Kind.SFT:
        msgs = [u + a for u, a in zip(user, answer, strict=True)]
        return pl.DataFrame({"messages": msgs}, schema={"messages": MESSAGES})
    rejected = [[{"role": "assistant", "content": "no"}]] * len(pairs)
    return pl.DataFrame(
        {"prompt": user, "chosen": answer, "rejected": rejected},
        schema={"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
    )


def test_defaults_are_documented_lists() -> None:
    assert InstructionDefectsParams().model_dump() == DEFAULTS
    for phrase in ("n/a", "na", "none", "null", "-", "..."):
        assert phrase in NA_OUTPUTS
    for phrase in ("as shown in the image", "see the attached", "[image]", "<image>", "http://", "https://", "www."):
        assert phrase in UNSEEN_PHRASES
    for phrase in ("click the link", "in the video above", "i cannot browse the internet"):
        assert phrase in UNSEEN_PHRASES
    for phrase in ("as an ai language model", "i'm sorry, but i cannot", "i cannot fulfill", "i can't assist with"):
        assert phrase in REFUSAL_PHRASES


def test_a_clean_pair_passes() -> None:
    assert one("What colour is the sky?", ANSWER) is None


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        ("", "output is empty"),
        ("  \n\t", "output is whitespace only"),
        ("N/A", "output is N/A-like: 'n/a'"),
        ("  n/a.  ", "output is N/A-like: 'n/a.'"),
        ("NA", "output is N/A-like: 'na'"),
        ("None", "output is N/A-like: 'none'"),
        ("null", "output is N/A-like: 'null'"),
        ("-", "output is N/A-like: '-'"),
        ("...", "output is N/A-like: '...'"),
        ("<No Output>", "output is N/A-like: '<no output>'"),
        ("<noinput>", "output is N/A-like: '<noinput>'"),
    ],
)
def test_empty_output(response: str, detail: str) -> None:
    assert one("Name a colour.", response) == f"instruction_defects.empty_output: {detail}"


@pytest.mark.parametrize("response", ["No.", "None of the above.", "N/A is short for not applicable.", "0", "-1"])
def test_short_real_answers_are_not_empty(response: str) -> None:
    assert one("Name a colour.", response) is None


def test_na_list_is_a_parameter() -> None:
    assert code(one("Name a colour.", "unknown", na_outputs=["unknown"])) == "instruction_defects.empty_output"
    assert one("Name a colour.", "N/A", na_outputs=[]) is None
    assert code(one("Name a colour.", "", na_outputs=[])) == "instruction_defects.empty_output"


@pytest.mark.parametrize(
    ("response", "phrase"),
    [
        ("As shown in the image, the cat is black.", "as shown in the image"),
        ("See the attached chart for details.", "see the attached"),
        ("[image] A cat on a mat.", "[image]"),
        ("Here: <image>", "<image>"),
        ("Read more at HTTPS://example.com/page", "https://"),
        ("Visit http://example.com now.", "http://"),
        ("Go to www.example.com for more.", "www."),
        ("Click the link below to learn more.", "click the link"),
        ("In the video above, she explains it.", "in the video above"),
        ("I can’t browse the internet, but here is a guess.", "i can't browse the internet"),
        ("I cannot browse the internet.", "i cannot browse the internet"),
    ],
)
def test_refers_to_unseen_output(response: str, phrase: str) -> None:
    assert one("Describe it.", response) == f"instruction_defects.refers_to_unseen: output has '{phrase}'"


def test_refers_to_unseen_prompt() -> None:
    assert one("Classify this shape.\n\n<Picture Attached>", "A triangle.") == (
        "instruction_defects.refers_to_unseen: prompt has '<picture attached>'"
    )
    assert one("Summarize the article.\n\nhttps://www.bbc.com/news/world-51461830", ANSWER) == (
        "instruction_defects.refers_to_unseen: prompt has a bare URL line"
    )
    # a URL inside a sentence is not content behind a link
    assert one("Explain what the scheme in https://example.com means.", ANSWER) is None
    assert one("Summarize.\n\nhttps://x.org/a", ANSWER, bare_url_prompt=False) is None
    assert one("Classify this.\n\n<Picture Attached>", "A triangle.", unseen_prompt_phrases=[]) is None


def test_unseen_phrases_are_a_parameter() -> None:
    assert one("Describe it.", "Visit http://example.com now.", unseen_phrases=["see the attached"]) is None
    assert code(one("Describe it.", "Refer to Figure 3.", unseen_phrases=["figure 3"])) == (
        "instruction_defects.refers_to_unseen"
    )


def test_copied_instruction() -> None:
    prompt = "Explain gravity to a child."  # 27 chars
    assert one(prompt, "explain  gravity to a\nchild.") == (
        "instruction_defects.copied_instruction: output equals the prompt"
    )
    assert one(prompt, prompt + " Gravity pulls things down.") == (
        "instruction_defects.copied_instruction: output starts with the prompt (27 chars > 20)"
    )
    # the prompt must be longer than copy_min_prompt_chars for a prefix to count
    p20, p21 = "Name three red fruit", "Name three red fruits"  # 20 and 21 characters
    assert one(p20, p20 + ": apple, cherry, strawberry.") is None
    assert code(one(p21, p21 + ": apple, cherry, strawberry.")) == "instruction_defects.copied_instruction"
    assert code(one("Hi", "hi")) == "instruction_defects.copied_instruction"  # equal: any length
    assert one(prompt, prompt + " More.", copy_min_prompt_chars=None) is None


def test_copied_instruction_uses_the_whole_alpaca_prompt() -> None:
    df = pl.DataFrame(
        {
            "instruction": ["Correct the grammar of this text."] * 3,
            "input": ["She go to school.", "He go home.", "They goes out."],
            "output": [
                "She goes to school.",
                "Correct the grammar of this text: He goes home.",
                "Correct the grammar of this text. They goes out. They go out.",
            ],
        }
    )
    got = get_filter("instruction_defects")().reasons(df, Kind.ALPACA).to_list()
    assert got[0] is None  # the output may equal the input: that is the answer here
    assert got[1] is None  # starts with the instruction only, not the whole prompt (instruction + input)
    assert got[2] == "instruction_defects.copied_instruction: output starts with the prompt (48 chars > 20)"


def test_merged_instruction_markers() -> None:
    assert one("Write a haiku.\n### Instruction:\nWrite a limerick.", ANSWER) == (
        "instruction_defects.merged_instructions: prompt has the marker '### Instruction'"
    )
    assert one("Translate it.\nInput: bonjour", ANSWER) == (
        "instruction_defects.merged_instructions: prompt has the marker 'Input:'"
    )
    merged = "It depends on your situation.\n##\n18. Instruction: Identify the noun.\n18. Output:\nApple"
    assert one("Should I invest in stocks?", merged) == (
        "instruction_defects.merged_instructions: output has the marker '18. Instruction:'"
    )
    # the words alone, mid-sentence, are fine
    assert one("Give one instruction: be kind.", "The input: a word.") is None
    assert one("Write a haiku.\n### Instruction:\nWrite more.", ANSWER, merged_marker_pattern=None) is None


def test_merged_numbered_tasks() -> None:
    two = "Do these.\n1. Write a poem about rain.\n2) What is the capital of France?"
    assert one(two, ANSWER) == "instruction_defects.merged_instructions: prompt has 2 numbered tasks >= 2"
    one_task = "Do this.\n1. Write a poem about rain.\n2. apples and pears"
    assert one(one_task, ANSWER) is None
    items = "Sort these words:\n1. banana\n2. apple\n3. cherry"
    assert one(items, ANSWER) is None
    three = two + "\n3. Describe a cat."
    assert one(three, ANSWER, merged_min_tasks=3) == (
        "instruction_defects.merged_instructions: prompt has 3 numbered tasks >= 3"
    )
    assert one(two, ANSWER, merged_min_tasks=3) is None
    assert one(two, ANSWER, merged_min_tasks=None) is None
    assert one("1. Paint a wall.\n2. Paint a door.", ANSWER, imperative_verbs=[]) is None
    assert code(one("1. Paint a wall.\n2. Paint a door.", ANSWER, imperative_verbs=["paint"])) == (
        "instruction_defects.merged_instructions"
    )


@pytest.mark.parametrize(
    ("prompt", "response", "detail"),
    [
        ("Name a colour.", "Blue\x0b and green.", "1 control character(s) in output, first U+000B"),
        ("Name a colour.", "Blue\x00\x07.", "2 control character(s) in output, first U+0000"),
        ("Name a colour.", "Blue\x85.", "1 control character(s) in output, first U+0085"),
        ("Name a colour.", "Blue\x7f.", "1 control character(s) in output, first U+007F"),
        ("Name a\x1b[0m colour.", ANSWER, "1 control character(s) in prompt, first U+001B"),
    ],
)
def test_control_chars(prompt: str, response: str, detail: str) -> None:
    assert one(prompt, response) == f"instruction_defects.control_chars: {detail}"


def test_tabs_newlines_and_carriage_returns_are_not_control_chars() -> None:
    assert one("Name\ta colour.\r\n", "Blue\tand\r\ngreen.\n") is None
    assert one("Name a colour.", "Blue\x0b.", control_chars=False) is None


def test_refusals() -> None:
    refusal = "I'm sorry, but I cannot help with that."
    assert one("Write malware.", refusal) == "instruction_defects.refusal: output has 'i'm sorry, but i cannot'"
    assert one("Write malware.", "As an AI language model, I’m unable to.") == (
        "instruction_defects.refusal: output has 'as an ai language model'"
    )
    assert one("Write malware.", refusal, refusals="keep") is None
    assert one("Write malware.", refusal, refusal_phrases=[]) is None
    with pytest.raises(ValueError):
        one("Write malware.", refusal, refusals="maybe")


def test_order_of_checks() -> None:
    # refers to an image and is a refusal: unseen comes first; empty beats everything
    assert code(one("Describe it.", "I'm sorry, but I cannot see [image].")) == "instruction_defects.refers_to_unseen"
    assert code(one("Describe it.\n\n<image>", "")) == "instruction_defects.empty_output"
    assert code(one("Explain gravity to a child.\x0b", "Explain gravity to a child.\x0b")) == (
        "instruction_defects.copied_instruction"
    )


def test_rule_alone_judges_a_response_with_an_empty_prompt() -> None:
    flt = get_filter("instruction_defects")()
    df = pl.DataFrame({"r": ["N/A", ANSWER, "As an AI language model, no."]})
    got = df.select(flt.rule(pl.col("r")).alias("x")).to_series().to_list()
    assert [code(g) for g in got] == ["instruction_defects.empty_output", None, "instruction_defects.refusal"]


def test_text_records_are_rejected() -> None:
    with pytest.raises(ValueError, match="prompt and response"):
        get_filter("instruction_defects")().reasons(pl.DataFrame({"text": ["x"]}), Kind.TEXT)


@pytest.mark.parametrize("kind", [Kind.SFT, Kind.ALPACA, Kind.PREFERENCE])
def test_works_on_each_kind(kind: Kind) -> None:
    pairs = [
        ("What colour is the sky?", ANSWER),
        ("Name a colour.", "N/A"),
        ("Explain gravity to a child.", "Explain gravity to a child."),
        ("Classify this.\n<Picture Attached>", "A triangle."),
    ]
    got = [code(r) for r in defects(pairs, kind)]
    assert got == [
        None,
        "instruction_defects.empty_output",
        "instruction_defects.copied_instruction",
        "instruction_defects.refers_to_unseen",
    ]


def test_sft_prompt_is_every_user_turn_and_response_the_last_assistant_turn() -> None:
    msgs = [
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "N/A"},
        {"role": "user", "content": "Tell me a fact."},
        {"role": "assistant", "content": ANSWER},
    ]
    df = pl.DataFrame({"messages": [msgs, msgs[:2], msgs[:1]]}, schema={"messages": MESSAGES})
    got = get_filter("instruction_defects")().reasons(df, Kind.SFT).to_list()
    assert got[0] is None
    assert code(got[1]) == "instruction_defects.empty_output"
    assert got[2] == "instruction_defects.empty_output: output is empty"  # no assistant turn


def test_preference_field_can_be_the_rejected_side() -> None:
    df = frame(Kind.PREFERENCE, [("Name a colour.", ANSWER)])
    assert get_filter("instruction_defects")().reasons(df, Kind.PREFERENCE).to_list() == [None]
    rejected = get_filter("instruction_defects")(field="rejected").reasons(df, Kind.PREFERENCE).to_list()
    assert rejected == [None]  # "no" is a real (if short) answer
    df = df.with_columns(rejected=pl.lit([{"role": "assistant", "content": "n/a"}], dtype=MESSAGES))
    rejected = get_filter("instruction_defects")(field="rejected").reasons(df, Kind.PREFERENCE).to_list()
    assert code(rejected[0]) == "instruction_defects.empty_output"
