"""Eval rows that leak from the training data: near-duplicates of a training row, excluded before scoring.

Input: the eval rows (stored columns with ``id``) of kind ``kind``, and the model's training data
(the dataset version and split its manifest names). Output: a boolean mask of leaked eval rows and up
to five examples ``{id, train_id, similarity}``. The check is the store's split-leak check (the same
MinHash index, the eval side indexed once and the training version streamed past it in batches, so
memory does not grow with the training set), on the prompt (the text, for text records): a prompt
the model saw in training, reworded or not, inflates every figure measured on it.

Example:
    >>> # leaked, examples = leaks(eval_df, "sft", "chat@3", "data/store", "train", threshold=0.8)
    >>> # eval_df.filter(~pl.Series(leaked))      # the rows left to score
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.dedup.contamination import LeakIndex
from curate.store.store import Store
from schemas.fields import key_expr
from schemas.kinds import Kind
from schemas.stages import DecontaminateStage, ReferenceSpec

EXAMPLES = 5


def key_field(kind: str) -> list[str]:
    """The field a leak is judged on: the prompt (the text for text records)."""
    return ["text"] if kind == "text" else ["prompt"]


def leaks(
    rows: pl.DataFrame,
    kind: str,
    train_ref: str,
    train_store: str | Path,
    train_split: str | None,
    threshold: float = 0.8,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Which of ``rows`` nearly duplicate a row of ``train_ref`` (its ``train_split``); see the module doc."""
    store = Store(train_store)
    train_kind = Kind(store.manifest(train_ref)["kind"])
    stage = DecontaminateStage(
        type="decontaminate", threshold=threshold, against=[ReferenceSpec(name="train", path="-", column="-")]
    )
    index = LeakIndex(rows.select(key_expr(Kind(kind), key_field(kind))).to_series(), stage)
    expr = key_expr(train_kind, key_field(train_kind.value))
    columns = list(dict.fromkeys(["id", "split", *expr.meta.root_names()]))
    for df in store.batches(train_ref, columns=columns):
        if train_split is not None:
            df = df.filter(pl.col("split") == train_split)
        if df.height:
            index.add(df.select(expr).to_series(), df["id"].to_numpy())
    found = index.result()
    hit = found.leaked
    ids = rows["id"].to_numpy() if "id" in rows.columns else np.arange(len(rows)).astype(str)
    examples = [
        {"id": str(ids[i]), "train_id": str(found.ref_id[i]), "similarity": round(float(found.similarity[i]), 3)}
        for i in np.flatnonzero(hit)[:EXAMPLES].tolist()
    ]
    return hit, examples
