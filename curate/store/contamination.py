"""Which rows nearly duplicate a published version's rows: the store's leak check, for any caller.

Input: the keys (text) and ids of rows to check (e.g. an eval set), a version reference, the field
its key is built from, and optionally the split to compare against. Output: a mask of leaking rows
and, for each, the matched row's id and the similarity. The version streams past an index of the
checked rows in batches (the same MinHash machinery as near dedup and the publish-time split-leak
check), so memory does not grow with the version.

Example:
    >>> # hit, train_ids, sims = version_leaks(keys, "chat@3", "data/store", ["prompt"], split="train")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from curate.dedup.contamination import LeakIndex
from curate.store.store import Store
from schemas.fields import key_expr
from schemas.kinds import Kind
from schemas.stages import DecontaminateStage, ReferenceSpec


def version_leaks(
    keys: pl.Series,
    ref: str,
    store: str | Path,
    fields: list[str] | None = None,
    split: str | None = None,
    threshold: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(leaked, matched_id, similarity)`` per key against version ``ref`` (only its ``split`` rows).

    ``fields`` build the version's key (default: the prompt; the text for text records).
    """
    st = Store(store)
    kind = Kind(st.manifest(ref)["kind"])
    stage = DecontaminateStage(
        type="decontaminate", threshold=threshold, against=[ReferenceSpec(name="reference", path="-", column="-")]
    )
    index = LeakIndex(keys, stage)
    expr = key_expr(kind, fields or (["text"] if kind is Kind.TEXT else ["prompt"]))
    columns = list(dict.fromkeys(["id", "split", *expr.meta.root_names()]))
    for df in st.batches(ref, columns=columns):
        if split is not None:
            df = df.filter(pl.col("split") == split)
        if df.height:
            index.add(df.select(expr).to_series(), df["id"].to_numpy())
    found = index.result()
    return found.leaked, found.ref_id, found.similarity
