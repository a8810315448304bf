from __future__ import annotations

import polars as pl
import pytest

from schemas.ids import with_ids
from schemas.kinds import MESSAGES, Kind, arrow_schema, polars_schema
from schemas.records import RECORD_MODELS


@pytest.mark.parametrize("kind", list(Kind))
def test_pydantic_models_and_arrow_schemas_agree(kind: Kind) -> None:
    model_fields = list(RECORD_MODELS[kind].model_fields)
    assert model_fields == list(polars_schema(kind))
    assert arrow_schema(kind).names == model_fields
    assert arrow_schema(kind).metadata[b"curate.kind"] == kind.value.encode()


def test_ids_are_stable_and_normalized() -> None:
    df = pl.DataFrame({"text": ["Caf\u00e9 ", "Cafe\u0301", "other"]})
    ids = with_ids(df, Kind.TEXT)["id"].to_list()
    assert ids[0] == ids[1]  # NFC + strip
    assert ids[0] != ids[2]
    # the same content always hashes to the same id (pinned so a change in hashing is noticed)
    assert ids[2] == with_ids(pl.DataFrame({"text": ["other"]}), Kind.TEXT)["id"][0]
    assert len(ids[0]) == 32


def test_ids_depend_on_kind_and_roles() -> None:
    a = pl.DataFrame({"messages": [[{"role": "user", "content": "x"}]]}, schema={"messages": MESSAGES})
    b = pl.DataFrame({"messages": [[{"role": "assistant", "content": "x"}]]}, schema={"messages": MESSAGES})
    assert with_ids(a, Kind.SFT)["id"][0] != with_ids(b, Kind.SFT)["id"][0]
    t = pl.DataFrame({"text": ["x"]})
    assert with_ids(t, Kind.TEXT)["id"][0] != with_ids(a, Kind.SFT)["id"][0]


def test_scores_do_not_change_preference_identity() -> None:
    base = {
        "prompt": [[{"role": "user", "content": "q"}]],
        "chosen": [[{"role": "assistant", "content": "a"}]],
        "rejected": [[{"role": "assistant", "content": "b"}]],
    }
    schema = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "margin": pl.Float64}
    one = pl.DataFrame({**base, "margin": [0.1]}, schema=schema)
    two = pl.DataFrame({**base, "margin": [0.9]}, schema=schema)
    assert with_ids(one, Kind.PREFERENCE)["id"][0] == with_ids(two, Kind.PREFERENCE)["id"][0]


def test_nfc_normalizes_exactly_what_full_normalization_would() -> None:
    import random
    import unicodedata

    from schemas.ids import nfc

    # Latin-1 and Latin Extended (left alone), decomposed accents, Hangul jamo, CJK, Greek tonos and
    # singletons (U+212B ANGSTROM SIGN, U+0340): all must come out as unicodedata's NFC
    alphabet = ["a", "Z", " ", "\u00e9", "\u00c5", "\u0101", "e\u0301", "A\u030a", "\u212b", "\u1100\u1161", "\u65e5"]
    alphabet += ["\u0340", "\u03ac", "\u00bd", "\u02c6", "\x1e", "\u0300"]
    rng = random.Random(3)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(2000)]
    texts += ["plain ascii", "caf\u00e9 na\u00efve", None]  # type: ignore[list-item]
    got = nfc(pl.Series(texts, dtype=pl.String)).to_list()
    assert got == [None if t is None else unicodedata.normalize("NFC", t) for t in texts]


def test_message_ids_are_pinned() -> None:
    """Ids of message lists, nulls and empty lists included, pinned: a change in their encoding is noticed."""
    rows = [
        [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "the\u0301re"}],
        [{"role": None, "content": None}],
        None,
        [],
    ]
    ids = with_ids(pl.DataFrame({"messages": rows}, schema={"messages": MESSAGES}), Kind.SFT)["id"].to_list()
    assert ids == [
        "c333dc49adeb68f2e2cba663bcfbb0ea",
        "47321ecc913ea92a305a0f9b98baf44a",
        "8b1abc8dfeb65649bf836b3db9e9960e",
        "8b1abc8dfeb65649bf836b3db9e9960e",
    ]
