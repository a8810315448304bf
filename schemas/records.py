"""Pydantic models of single records: the row-level view of the contract in :mod:`schemas.kinds`.

Use them to validate one record from an API or a test, and to document the contract (JSON Schema).
Bulk data never goes through them: frames are validated with vectorized rules
(:mod:`schemas.validate`).

Example:
    >>> from schemas.records import SFTRecord
    >>> r = SFTRecord(id="x", messages=[{"role": "user", "content": "hi"},
    ...                                 {"role": "assistant", "content": "hello"}],
    ...               source={"name": "demo", "uri": "file:///d.jsonl", "sha256": "ab", "row": 0})
    >>> r.messages[1].role
    'assistant'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.kinds import Kind

Role = Literal["system", "user", "assistant", "tool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    role: Role
    content: str


class Source(_Strict):
    """Provenance: which source, which file (URI and sha256), which row (0-based) of that file."""

    name: str
    uri: str
    sha256: str
    row: int = Field(ge=0)


class Judge(_Strict):
    """Who decided chosen vs rejected."""

    kind: Literal["human", "ai", "dataset"]
    model: str | None = None
    annotators: list[str] | None = None


class TextRecord(_Strict):
    id: str
    text: str
    source: Source


class SFTRecord(_Strict):
    id: str
    messages: list[Message] = Field(min_length=1)
    source: Source


class AlpacaRecord(_Strict):
    id: str
    instruction: str
    input: str = ""
    output: str
    source: Source


class PreferenceRecord(_Strict):
    id: str
    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message] = Field(min_length=1)
    rejected: list[Message] = Field(min_length=1)
    score_chosen: float | None = None
    score_rejected: float | None = None
    margin: float | None = None
    judge: Judge | None = None
    source: Source


class KTORecord(_Strict):
    id: str
    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1)
    label: bool
    source: Source


RECORD_MODELS: dict[Kind, type[_Strict]] = {
    Kind.TEXT: TextRecord,
    Kind.SFT: SFTRecord,
    Kind.ALPACA: AlpacaRecord,
    Kind.PREFERENCE: PreferenceRecord,
    Kind.KTO: KTORecord,
}
