"""Instruction-data defects, after the cleaning of the Alpaca data (gururise/AlpacaDataCleaned).

That project lists the defects it fixed by hand in Stanford Alpaca: hallucinations on instructions that
point at internet content or pictures the model cannot see (``<Picture Attached>``, a bare URL as input),
merged instructions (``18. Instruction: ...`` left inside a record; its ``tool_mergedInstructions.py``
searches ``\\d{1,2}\\.\\sInstruction:``), empty outputs, N/A outputs (``<noinput>``, ``<No Output>``),
instructions copied into the output, and extraneous control characters. Refusals ("As an AI language
model ...") are the usual extra for distilled chat data. It publishes no thresholds; the phrase lists
below are this project's defaults, all parameters.

This filter reads two fields: the prompt (``prompt``: Alpaca instruction + input, the user turns of a
conversation) and the response (``response`` by default: Alpaca output, the last assistant turn, a
preference's chosen side; set ``field`` to judge another one). Checks, in order:

=========================  ==============================================================================
reason code                drop when
=========================  ==============================================================================
``empty_output``           the response is empty, whitespace only, or N/A-like: after stripping and
                           lowercasing (and, failing that, dropping trailing periods) it is one of
                           ``na_outputs`` ("n/a", "na", "none", "null", "-", "...", "<noinput>", ...)
``refers_to_unseen``       the response contains one of ``unseen_phrases`` (images, attachments, links,
                           videos, "I cannot browse the internet"), or the prompt contains one of
                           ``unseen_prompt_phrases`` ("<picture attached>", "see the attached", ...), or
                           (``bare_url_prompt``) a prompt line is nothing but a URL. Matching ignores ASCII
                           case and treats ``’`` as ``'``
``copied_instruction``     the response equals the prompt, or (prompt longer than
                           ``copy_min_prompt_chars`` = 20) starts with it; both compared lowercased with
                           runs of whitespace collapsed
``merged_instructions``    the prompt or the response contains a template marker left by merging
                           (``merged_marker_pattern``: a line starting ``### Instruction``/``Input``/
                           ``Response``, a line starting ``Instruction:`` or ``Input:``, or
                           ``<n>. Instruction:`` anywhere), or the prompt has at least
                           ``merged_min_tasks`` (2) numbered lines (``1.``/``1)``) that are each a task:
                           a question (ending in ``?``) or starting with an imperative verb
                           (``imperative_verbs``)
``control_chars``          the prompt or response has a control character other than tab, newline and
                           carriage return (C0, DEL, C1)
``refusal``                ``refusals: drop`` (default) and the response contains one of
                           ``refusal_phrases`` ("as an ai language model", "i'm sorry, but i cannot", ...)
=========================  ==============================================================================

Set a phrase list to ``[]`` (or ``merged_min_tasks``/``copy_min_prompt_chars``/``merged_marker_pattern``
to ``null``) to switch that part off.

:meth:`InstructionDefects.rule` sees one text only: it judges that text as the response with an empty
prompt (so prompt-side checks cannot fire). :meth:`InstructionDefects.reasons` reads both fields and is
what the pipeline calls.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> df = pl.DataFrame({"instruction": ["Name a colour."], "input": [""], "output": ["N/A"]})
    >>> InstructionDefects().reasons(df, Kind.ALPACA).to_list()
    ["instruction_defects.empty_output: output is N/A-like: 'n/a'"]
"""

from __future__ import annotations

import re
from typing import Literal

import polars as pl
from pydantic import ConfigDict

from curate.filters.base import Filter, FilterParams, first_reason, register
from schemas.fields import field_expr
from schemas.kinds import Kind

NA_OUTPUTS: tuple[str, ...] = (
    "n/a", "na", "n.a", "none", "null", "nil", "nan", "undefined", "-", "--", "---", "...", "…", "?",
    "no output", "<no output>", "<nooutput>", "(no output)", "no input", "noinput", "<noinput>", "<no input>",
    "(no input)", "no answer", "not applicable", "empty", "tbd", "todo",
)  # fmt: skip

UNSEEN_PHRASES: tuple[str, ...] = (
    "as shown in the image", "as shown in the picture", "as shown in the photo", "as shown in the video",
    "in the image above", "in the image below", "in the picture above", "in the picture below",
    "in the video above", "in the video below", "watch the video", "the attached image", "the attached file",
    "the attached picture", "see the attached", "see attached", "[image]", "<image>", "<img", "![",
    "http://", "https://", "www.", "click the link", "click on the link", "click here",
    "i cannot browse the internet", "i can't browse the internet", "i am unable to browse",
    "i'm unable to browse", "i don't have access to the internet", "i do not have access to the internet",
    "i cannot access the link", "i can't access the link", "i cannot access the url", "i can't access the url",
    "i cannot view images", "i can't view images", "i cannot see the image", "i can't see the image",
    "unable to view the image",
)  # fmt: skip

UNSEEN_PROMPT_PHRASES: tuple[str, ...] = (
    "<picture attached>", "<image>", "[image]", "<img", "![", "see the attached", "see attached",
    "the attached image", "the attached picture", "the attached photo", "the attached file",
    "the attached document", "the image above", "the image below", "the picture above", "the picture below",
    "the video above", "the video below", "the following image", "the following picture",
    "the following photo", "the following video", "the given image", "the given picture", "the given video",
)  # fmt: skip

REFUSAL_PHRASES: tuple[str, ...] = (
    "as an ai language model", "as a language model", "as an ai model", "i'm sorry, but i cannot",
    "i'm sorry, but i can't", "i am sorry, but i cannot", "i'm sorry, i cannot", "i'm sorry, i can't",
    "i cannot fulfill", "i can't fulfill", "i cannot comply", "i can't comply", "i cannot assist with",
    "i can't assist with", "i cannot help with", "i can't help with", "i'm not able to help with",
    "i am not able to help with", "i'm unable to help with", "i am unable to help with",
    "i cannot provide assistance", "i can't provide assistance", "i must decline",
)  # fmt: skip

IMPERATIVE_VERBS: tuple[str, ...] = (
    "add", "analyze", "answer", "arrange", "brainstorm", "calculate", "categorize", "choose", "classify",
    "compare", "compose", "construct", "convert", "correct", "create", "define", "delete", "describe",
    "design", "determine", "develop", "edit", "evaluate", "explain", "find", "formulate", "generate", "give",
    "identify", "insert", "list", "make", "name", "outline", "paraphrase", "predict", "provide", "remove",
    "replace", "rewrite", "select", "sort", "suggest", "summarize", "tell", "translate", "write",
)  # fmt: skip

MERGED_MARKERS = (
    r"(?im)^[ \t]*#{1,6}[ \t]*(?:instruction|input|response)\b"
    r"|^[ \t]*(?:instruction|input)[ \t]*:"
    r"|\d{1,2}\.[ \t]*instruction[ \t]*:"
)
CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"
BARE_URL_LINE = r"(?im)^[ \t]*(?:https?://|www\.)\S+[ \t]*$"


class InstructionDefectsParams(FilterParams):
    """Phrase lists and switches; the defaults are this project's (the source publishes none)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    na_outputs: tuple[str, ...] = NA_OUTPUTS
    """Whole outputs (stripped, lowercased) that mean 'no answer'."""
    unseen_phrases: tuple[str, ...] = UNSEEN_PHRASES
    """Output phrases pointing at images, links or videos the model cannot see (ASCII case-insensitive)."""
    unseen_prompt_phrases: tuple[str, ...] = UNSEEN_PROMPT_PHRASES
    """Prompt phrases pointing at attachments the model cannot see (ASCII case-insensitive)."""
    bare_url_prompt: bool = True
    """Drop prompts with a line that is only a URL (content behind a link)."""
    copy_min_prompt_chars: int | None = 20
    """Drop outputs starting with a prompt longer than this (outputs equal to the prompt always)."""
    merged_marker_pattern: str | None = MERGED_MARKERS
    """Regex of template markers left by merged records, searched in prompt and output."""
    merged_min_tasks: int | None = 2
    """Drop prompts with at least this many numbered task lines (questions or imperatives)."""
    imperative_verbs: tuple[str, ...] = IMPERATIVE_VERBS
    """Verbs that make a numbered line a task (case-insensitive)."""
    control_chars: bool = True
    """Drop control characters other than tab, newline, carriage return."""
    refusals: Literal["drop", "keep"] = "drop"
    """Drop refusals, or keep them (when the recipe trains refusals on purpose)."""
    refusal_phrases: tuple[str, ...] = REFUSAL_PHRASES
    """Output phrases marking a refusal (ASCII case-insensitive, ’ read as ')."""


def _phrase(text: pl.Expr, phrases: tuple[str, ...]) -> pl.Expr:
    """The first of ``phrases`` found in ``text`` (ASCII case ignored, ``’`` read as ``'``), lowercased, or null."""
    variants = list(phrases) + [ph.replace("'", "’") for ph in phrases if "'" in ph]
    found = text.str.extract_many(variants, ascii_case_insensitive=True, leftmost=True).list.first()
    return found.str.to_lowercase().str.replace_all("’", "'", literal=True)


def _squash(text: pl.Expr) -> pl.Expr:
    return text.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


@register
class InstructionDefects(Filter):
    """Alpaca-cleaned defects: empty/N-A outputs, unseen content, copies, merged instructions, control
    characters, refusals.

    Example recipe stage: ``{type: filter, rule: instruction_defects, params: {refusals: keep}}``
    """

    name = "instruction_defects"
    Params = InstructionDefectsParams
    summary = "instruction-data defects (alpaca-cleaned style)"

    def rule(self, text: pl.Expr) -> pl.Expr:
        """Response-only form: ``text`` is the response, the prompt is taken as empty."""
        return self.pair_rule(pl.lit(""), text)

    def reasons(self, df: pl.DataFrame, kind: Kind) -> pl.Series:
        if kind is Kind.TEXT:
            raise ValueError("instruction_defects needs prompt and response fields; text records have neither")
        prompt = field_expr(kind, "prompt")
        response = field_expr(kind, self.field)
        frame = df.lazy().select(prompt=prompt, response=response)
        # lazy, so the optimizer computes shared subexpressions (the squashed texts) once
        reason = self.pair_rule(pl.col("prompt"), pl.col("response"))
        return frame.with_columns(reason=reason).collect().get_column("reason")

    def pair_rule(self, prompt: pl.Expr, response: pl.Expr) -> pl.Expr:
        """Reason expression over a prompt and a response expression."""
        p: InstructionDefectsParams = self.params  # type: ignore[assignment]
        code = "instruction_defects."
        prompt = prompt.fill_null("")
        response = response.fill_null("")
        checks: list[tuple[pl.Expr, pl.Expr | str]] = []

        # empty / N/A
        stripped = response.str.strip_chars()
        checks.append((response.str.len_bytes() == 0, code + "empty_output: output is empty"))
        checks.append((stripped == "", code + "empty_output: output is whitespace only"))
        if p.na_outputs:
            na = list(p.na_outputs)
            # only short outputs can be N/A-like: lowercase those alone (null for the rest)
            longest = 2 * max(len(x) for x in na) + 8
            short = stripped.str.strip_chars_end(".").str.len_chars() <= longest
            norm = pl.when(short).then(stripped).str.to_lowercase()
            norm_dots = norm.str.strip_chars_end(".")
            is_na = norm.is_in(na) | ((norm_dots != "") & norm_dots.is_in(na))
            checks.append((is_na, pl.format(code + "empty_output: output is N/A-like: '{}'", norm)))

        # content the model cannot see
        if p.unseen_phrases:
            found = _phrase(response, p.unseen_phrases)
            checks.append((found.is_not_null(), pl.format(code + "refers_to_unseen: output has '{}'", found)))
        if p.unseen_prompt_phrases:
            found = _phrase(prompt, p.unseen_prompt_phrases)
            checks.append((found.is_not_null(), pl.format(code + "refers_to_unseen: prompt has '{}'", found)))
        if p.bare_url_prompt:
            checks.append((prompt.str.contains(BARE_URL_LINE), code + "refers_to_unseen: prompt has a bare URL line"))

        # the instruction copied into the output
        if p.copy_min_prompt_chars is not None:
            sp = _squash(prompt)
            # Squash only a head of the response: a head that squashes to more characters than the prompt
            # decides both "equals" and "starts with"; otherwise (a short or very spaced-out response) the
            # whole response is squashed.
            head = response.str.slice(0, prompt.str.len_chars() * 2 + 64)
            decided = (head.str.len_bytes() == response.str.len_bytes()) | (
                _squash(head).str.len_chars() > sp.str.len_chars()
            )
            sr = pl.when(decided).then(_squash(head)).otherwise(_squash(pl.when(~decided).then(response)))
            checks.append(((sp != "") & (sr == sp), code + "copied_instruction: output equals the prompt"))
            long_prompt = sp.str.len_chars() > p.copy_min_prompt_chars
            checks.append(
                (
                    long_prompt & sr.str.starts_with(sp),
                    pl.format(
                        code + "copied_instruction: output starts with the prompt ({} chars > {})",
                        sp.str.len_chars(),
                        p.copy_min_prompt_chars,
                    ),
                )
            )

        # several instructions in one record
        if p.merged_marker_pattern:
            for where, text in (("prompt", prompt), ("output", response)):
                if p.merged_marker_pattern == MERGED_MARKERS:  # run the regex only where its words occur
                    words = ["instruction", "input", "response"]
                    text = pl.when(text.str.contains_any(words, ascii_case_insensitive=True)).then(text)
                marker = text.str.extract(f"({p.merged_marker_pattern})", 1).str.strip_chars()
                msg = pl.format(code + "merged_instructions: " + where + " has the marker '{}'", marker)
                checks.append((marker.is_not_null(), msg))
        if p.merged_min_tasks is not None:
            verbs = "|".join(re.escape(v) for v in p.imperative_verbs) or r"[^\s\S]"
            task = rf"(?im)^[ \t]*\d{{1,2}}[.)][ \t]+(?:[^\n]*\?[ \t]*$|(?:{verbs})\b)"
            tasks = prompt.str.count_matches(task)
            msg = pl.format(code + "merged_instructions: prompt has {} numbered tasks >= {}", tasks, p.merged_min_tasks)
            checks.append((tasks >= p.merged_min_tasks, msg))

        # control characters
        if p.control_chars:
            for where, text in (("prompt", prompt), ("output", response)):
                first = text.str.extract(f"({CONTROL})", 1)
                hexcode = first.cast(pl.Binary).bin.encode("hex").str.slice(-2).str.to_uppercase()
                n = pl.when(first.is_not_null()).then(text).str.count_matches(CONTROL)
                tpl = code + "control_chars: {} control character(s) in " + where + ", first U+00{}"
                msg = pl.format(tpl, n, hexcode)
                checks.append((first.is_not_null(), msg))

        # refusals
        if p.refusals == "drop" and p.refusal_phrases:
            found = _phrase(response, p.refusal_phrases)
            checks.append((found.is_not_null(), pl.format(code + "refusal: output has '{}'", found)))
        return first_reason(checks)
