"""What changed between two versions of a dataset: rows added, removed, changed and unchanged, by id.

Ids are content hashes, so an edited row gets a new id. A row of the new version is **changed** when
its id is new but its *split key* (default: the prompt; the text for text records; the recipe's
``publish.splits.key`` when it set one) matches a row that disappeared, compared after the same
normalization the split assignment uses. The remaining new ids are **added**, the remaining missing
ids **removed**, shared ids **unchanged**. Splits are a function of the key, so a shared id should
never change split; ``moved_split`` counts the ones that did (a changed split seed or key).

Accounting: ``rows_a = unchanged + removed + changed_old`` and ``rows_b = unchanged + added + changed``
(``changed_old`` is the old rows the changed ones replace; equal to ``changed`` for one-to-one edits).
Ids repeated inside a version count once.

Example:
    >>> import tempfile, polars as pl
    >>> from curate.store import Store
    >>> st = Store(tempfile.mkdtemp())
    >>> df = pl.DataFrame({"id": ["a", "b"], "text": ["one", "two"], "split": ["train", "train"]})
    >>> _ = st.publish("t", df, {"kind": "text"})
    >>> _ = st.publish("t", pl.DataFrame({"id": ["a", "c"], "text": ["one", "three"], "split": ["train"] * 2}),
    ...                {"kind": "text"})
    >>> d = diff(st, "t@1", "t@2")
    >>> {k: d["counts"][k] for k in ("unchanged", "added", "removed", "changed")}
    {'unchanged': 1, 'added': 1, 'removed': 1, 'changed': 0}
"""

from __future__ import annotations

from typing import Any

import polars as pl

from curate.dedup.normalize import normalize_series
from curate.store.refs import RefError
from curate.store.splits import split_key_fields
from curate.store.store import Store
from schemas.fields import field_expr, field_names, key_expr
from schemas.kinds import IDENTITY_COLUMNS, Kind
from schemas.recipe import SplitSpec
from schemas.stages import Normalization

SNIPPET = 80
CATEGORIES = ("unchanged", "added", "removed", "changed", "changed_old", "moved_split")


def default_key(kind: Kind, manifest: dict[str, Any]) -> list[str]:
    """The split key a version was made with: the manifest's ``splits.key``, else the kind's default."""
    recorded = (manifest.get("splits") or {}).get("key")
    return list(recorded) if recorded else split_key_fields(kind, SplitSpec())


def _snippet(expr: pl.Expr) -> pl.Expr:
    text = expr.str.replace_all("\x1d", " | ", literal=True).str.replace_all(r"\s+", " ")
    return pl.when(text.str.len_chars() > SNIPPET).then(text.str.slice(0, SNIPPET - 1) + "…").otherwise(text)


def _frame(store: Store, ref: str, kind: Kind, key: list[str]) -> pl.DataFrame:
    """``id``, ``split``, raw ``key``, normalized ``nkey`` and ``response`` (null when the kind has none)."""
    df = store.read(ref, columns=["id", "split", *IDENTITY_COLUMNS[kind]])
    response = field_expr(kind, "response") if "response" in field_names(kind) else pl.lit(None, pl.String)
    out = df.select("id", "split", key_expr(kind, key).alias("key"), response.alias("response"))
    out = out.unique(subset="id", keep="first", maintain_order=True)
    return out.with_columns(normalize_series(out["key"], Normalization()).alias("nkey"))


def _per_split(frames: dict[str, pl.DataFrame]) -> dict[str, dict[str, int]]:
    """Counts per category per split, as ``{split: {category: n}}`` (zeros included)."""
    counted = [f.group_by("split").len().with_columns(pl.lit(cat).alias("cat")) for cat, f in frames.items()]
    long = pl.concat(counted) if counted else pl.DataFrame()
    splits = sorted(set(long["split"].to_list())) if long.height else []
    table: dict[str, dict[str, int]] = {s: dict.fromkeys(frames, 0) for s in splits}
    for split, n, cat in long.iter_rows():
        table[split][cat] = n
    return table


def _examples(df: pl.DataFrame, n: int, cols: list[str]) -> list[dict[str, Any]]:
    return df.sort(cols[0]).head(n).select(cols).to_dicts()


def diff(store: Store, ref_a: str, ref_b: str, key: list[str] | None = None, examples: int = 5) -> dict[str, Any]:
    """Compare version ``ref_a`` (old) with ``ref_b`` (new); see the module docstring for the categories.

    Args:
        store: the store holding both versions (they may belong to different datasets of one kind).
        ref_a, ref_b: ``NAME@N`` references (``NAME`` / ``NAME@latest`` resolve to the newest).
        key: split-key fields (e.g. ``["prompt"]`` or ``["prompt", "chosen"]``); default: the key
            ``ref_b`` was split with.
        examples: how many examples to keep per category.

    Raises:
        RefError: a reference names nothing, the kinds differ, or ``key`` names an unknown field.
    """
    name_a, ver_a = store.resolve(ref_a)
    name_b, ver_b = store.resolve(ref_b)
    a_ref, b_ref = f"{name_a}@{ver_a}", f"{name_b}@{ver_b}"
    man_a, man_b = store.manifest(a_ref), store.manifest(b_ref)
    kind = Kind(man_b["kind"])
    if Kind(man_a["kind"]) is not kind:
        raise RefError(f"cannot diff {a_ref} ({man_a['kind']} records) with {b_ref} ({kind} records)")
    key = list(key) if key else default_key(kind, man_b)
    unknown = [k for k in key if k not in field_names(kind)]
    if unknown:
        raise RefError(f"{kind} records have no field {', '.join(unknown)}; use one of {', '.join(field_names(kind))}")

    a, b = _frame(store, a_ref, kind, key), _frame(store, b_ref, kind, key)
    shared = b.join(a.select("id", pl.col("split").alias("split_a")), on="id", how="inner")
    only_a = a.join(b.select("id"), on="id", how="anti")
    only_b = b.join(a.select("id"), on="id", how="anti")
    changed = only_b.join(only_a.select("nkey").unique(), on="nkey", how="semi")
    changed_old = only_a.join(only_b.select("nkey").unique(), on="nkey", how="semi")
    added = only_b.join(changed.select("id"), on="id", how="anti")
    removed = only_a.join(changed_old.select("id"), on="id", how="anti")
    moved = shared.filter(pl.col("split") != pl.col("split_a"))

    frames = {
        "unchanged": shared,
        "added": added,
        "removed": removed,
        "changed": changed,
        "changed_old": changed_old,
        "moved_split": moved,
    }
    counts = {cat: f.height for cat, f in frames.items()}

    snip = [_snippet(pl.col("key")).alias("key")]
    old_side = changed_old.group_by("nkey").agg(
        pl.col("id").sort().first().alias("old_id"),
        pl.col("split").sort_by("id").first().alias("old_split"),
        _snippet(pl.col("response").sort_by("id").first()).alias("old_response"),
        pl.len().alias("old_rows"),
    )
    new_side = changed.group_by("nkey").agg(
        pl.col("id").sort().first().alias("new_id"),
        pl.col("split").sort_by("id").first().alias("split"),
        _snippet(pl.col("key").sort_by("id").first()).alias("key"),
        _snippet(pl.col("response").sort_by("id").first()).alias("new_response"),
        pl.len().alias("new_rows"),
    )
    pairs = new_side.join(old_side, on="nkey", how="inner")
    change_cols = ["new_id", "old_id", "split", "old_split", "key", "old_response", "new_response"]
    change_cols += ["old_rows", "new_rows"]
    return {
        "a": a_ref,
        "b": b_ref,
        "kind": kind.value,
        "key": key,
        "rows": {"a": a.height, "b": b.height},
        "counts": counts,
        "per_split": _per_split(
            {
                "unchanged": shared,
                "added": added,
                "removed": removed,  # old rows count in their old split
                "changed": changed,
                "changed_old": changed_old,
                "moved_split": moved,  # counted in the split they moved to
            }
        ),
        "examples": {
            "added": _examples(added.with_columns(snip), examples, ["id", "split", "key"]),
            "removed": _examples(removed.with_columns(snip), examples, ["id", "split", "key"]),
            "changed": _examples(pairs, examples, change_cols),
            "moved_split": _examples(
                moved.with_columns(snip).rename({"split_a": "from_split"}),
                examples,
                ["id", "from_split", "split", "key"],
            ),
        },
    }
