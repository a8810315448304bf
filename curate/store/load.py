"""Load a published version as a ``datasets.Dataset`` in the format TRL's trainers take.

Kinds map to TRL's dataset types (conversational forms): sft -> ``messages`` (language modeling);
preference -> ``prompt``/``chosen``/``rejected``; kto -> ``prompt``/``completion``/``label``
(unpaired preference); alpaca -> ``prompt``/``completion`` message lists; text -> ``text``.

Example:
    >>> # ds = load("chat@latest", split="train")          # root defaults to data/store
    >>> # trl.SFTTrainer(model=..., train_dataset=ds)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from curate.store.store import Store
from schemas.kinds import MESSAGES, Kind

DEFAULT_ROOT = Path("data/store")


TRL_SOURCE_COLUMNS: dict[Kind, list[str]] = {
    Kind.SFT: ["messages"],
    Kind.PREFERENCE: ["prompt", "chosen", "rejected"],
    Kind.KTO: ["prompt", "completion", "label"],
    Kind.ALPACA: ["instruction", "input", "output"],
    Kind.TEXT: ["text"],
}
"""Stored columns each kind's TRL format is built from (only these are read when loading)."""


def trl_columns(df: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """The TRL-format columns for records of ``kind``."""
    if kind is Kind.SFT:
        return df.select("messages")
    if kind is Kind.PREFERENCE:
        return df.select("prompt", "chosen", "rejected")
    if kind is Kind.KTO:
        return df.select("prompt", "completion", "label")
    if kind is Kind.ALPACA:
        inp = pl.col("input").fill_null("")
        user = pl.when(inp.str.strip_chars() != "").then(pl.col("instruction") + "\n\n" + inp)
        user = user.otherwise(pl.col("instruction"))
        prompt = pl.concat_list([pl.struct(pl.lit("user").alias("role"), user.alias("content"))]).cast(MESSAGES)
        completion = pl.concat_list(
            [pl.struct(pl.lit("assistant").alias("role"), pl.col("output").alias("content"))]
        ).cast(MESSAGES)
        return df.select(prompt.alias("prompt"), completion.alias("completion"))
    return df.select("text")


def load(
    ref: str,
    split: str | None = "train",
    root: str | Path = DEFAULT_ROOT,
    columns: str = "trl",
    with_manifest: bool = False,
) -> Any:
    """Load ``name@version`` (or ``name@latest``) as a ``datasets.Dataset``.

    Args:
        ref: dataset reference; ``@latest`` (or none) resolves to the newest version.
        split: ``train``, ``eval``, ``test``, or ``None`` for every row.
        root: the store root.
        columns: ``"trl"`` for TRL's columns only, ``"all"`` to keep ids, provenance and split.
        with_manifest: also return the manifest, with ``resolved`` = the exact ``name@N`` loaded.

    Returns:
        ``datasets.Dataset`` (or ``(dataset, manifest)`` with ``with_manifest``).
    """
    import datasets

    if columns not in ("trl", "all"):
        raise ValueError(f"columns must be 'trl' or 'all', not {columns!r}")
    store = Store(root)
    name, version = store.resolve(ref)
    manifest = store.manifest(f"{name}@{version}")
    kind = Kind(manifest["kind"])
    wanted = None if columns == "all" else TRL_SOURCE_COLUMNS[kind]
    df = store.read(f"{name}@{version}", split=split, columns=wanted)
    out = df if columns == "all" else trl_columns(df, kind)
    # the content hash already identifies the data: spare datasets hashing the whole table again
    fingerprint = f"curate-{manifest['content_hash'][:16]}-{split or 'all'}-{columns}"
    ds = datasets.Dataset(out.to_arrow(), fingerprint=fingerprint)
    if with_manifest:
        return ds, {**manifest, "resolved": f"{name}@{version}"}
    return ds
