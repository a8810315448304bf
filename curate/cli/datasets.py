"""``curate datasets list | show | diff | export``: published dataset versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from curate.cli.app import EXIT_INVALID, JsonOpt, app, err, headline, out

datasets_app = typer.Typer(
    help="Published dataset versions: list, show, diff, export.\n\nExamples:\n\n  curate datasets list\n\n"
    "  curate datasets show quickstart@latest --json\n\n"
    "  curate datasets diff quickstart@1 quickstart@2\n\n"
    "  curate datasets export quickstart@latest --format trl_parquet --out exports/quickstart",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(datasets_app, name="datasets")
StoreOpt = Annotated[
    str, typer.Option("--store", help="Store root folder or URL (s3://bucket/prefix; credentials: AWS_* variables).")
]
DEFAULT_STORE = "data/store"


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Expected failures (bad reference, unusable store, impossible export) exit 2 with their message."""
    from curate.store import RefError
    from curate.store.export import ExportError
    from curate.store.refs import StoreError

    try:
        yield
    except (RefError, StoreError, ExportError) as e:
        err.print(str(e), highlight=False, markup=False)
        raise typer.Exit(EXIT_INVALID) from None


@datasets_app.command(
    "list", epilog="Examples:\n\n  curate datasets list\n\n  curate datasets list --store /data/store"
)
def datasets_list(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """List datasets with their latest version, kind, rows and content hash."""
    from curate.store import Store

    st = Store(store)
    rows = []
    with _clear_errors():
        names = st.names()
    for name in names:
        m = st.manifest(name)
        rows.append(
            {
                "dataset": name,
                "latest": m["version"],
                "versions": len(st.versions(name)),
                "kind": m["kind"],
                "rows": m["rows"],
                "rows_per_split": m["rows_per_split"],
                "content_hash": m["content_hash"],
                "published_at": m["published_at"],
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print(
            f"no datasets in {store} (publish one with a recipe `publish:` section and `curate run`)", markup=False
        )
        return
    table = Table(title=f"datasets in {store}")
    for col in ("dataset", "latest", "versions", "kind", "rows", "splits", "content hash", "published"):
        table.add_column(col, no_wrap=col in ("dataset", "content hash"))
    for r in rows:
        splits = " ".join(f"{k}={v}" for k, v in r["rows_per_split"].items())
        table.add_row(
            r["dataset"],
            str(r["latest"]),
            str(r["versions"]),
            r["kind"],
            f"{r['rows']:,}",
            splits,
            r["content_hash"][:12],
            r["published_at"],
        )
    out.print(table)


@datasets_app.command(
    "show", epilog="Examples:\n\n  curate datasets show quickstart\n\n  curate datasets show quickstart@2 --json"
)
def datasets_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest or NAME@VERSION.")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Show a version's manifest: inputs, recipe, accounting, splits, leaks, lineage."""
    from curate.store import Store

    with _clear_errors():
        m = Store(store).manifest(ref)
    if as_json:
        print(json.dumps(m, indent=2, sort_keys=True))
        return
    out.print(
        Text.assemble(
            (f"{m['dataset']}@{m['version']}", "bold"),
            f" ({m['kind']}), {m['rows']:,} rows, published {m['published_at']}",
        )
    )
    out.print(
        f"content hash: {m['content_hash']}   parent: {m['parent_version']}   run: {m.get('run_id')}", markup=False
    )
    out.print("splits: " + ", ".join(f"{k}={v:,}" for k, v in m["rows_per_split"].items()), markup=False)
    leaks = m.get("split_leaks") or {}
    for side in ("eval", "test"):
        if isinstance(leaks.get(side), dict) and leaks[side]["rows"]:
            out.print(
                f"  {side}: {leaks[side]['near_duplicates_of_train']} rows near-duplicate a train row "
                f"(Jaccard >= {leaks['threshold']})",
                markup=False,
            )
    out.print(f"recipe: {m['recipe']['name']} (sha256 {m['recipe']['sha256'][:12]})", markup=False)
    for f in m.get("inputs", []):
        out.print(
            f"  input {f['source']}: {f['uri']} sha256 {f['sha256'][:12]} ({f['rows']} rows)",
            highlight=False,
            markup=False,
        )
    a = m.get("accounting", {})
    if a:
        out.print(
            f"accounting: {a['input_rows']:,} input = {a['kept']:,} kept + {a['quarantined']:,} quarantined + "
            f"{a['duplicates']:,} duplicates + {a['dropped']:,} dropped",
            markup=False,
        )
    cv = m.get("code_version") or {}
    out.print(f"code: curate {cv.get('package')} commit {cv.get('git_commit')}", markup=False)


@datasets_app.command(
    "diff",
    epilog="Examples:\n\n  curate datasets diff chat@1 chat@2\n\n"
    "  curate datasets diff chat@1 chat@latest --key prompt --key chosen --json\n\n"
    "Rows are matched by id (a content hash); a new id whose split key (default: the prompt, or the "
    "text for text records) matches a removed row counts as changed. Exit code 2 for an unknown "
    "dataset, version or key field.",
)
def datasets_diff(
    ref_a: Annotated[str, typer.Argument(help="Old version: NAME@VERSION.")],
    ref_b: Annotated[str, typer.Argument(help="New version: NAME@VERSION or NAME@latest.")],
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Split-key field (repeat for several); default: the key the version used."),
    ] = None,
    examples: Annotated[int, typer.Option(help="Examples shown per category.", min=0)] = 5,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Rows added, removed, changed and unchanged between two versions, overall and per split."""
    from curate.store import Store
    from curate.store.diff import diff

    with _clear_errors():
        d = diff(Store(store), ref_a, ref_b, key=key or None, examples=examples)
    if as_json:
        print(json.dumps(d, indent=2, ensure_ascii=False))
        return
    c = d["counts"]
    table = Table(title=f"{d['a']} -> {d['b']} ({d['kind']}, key: {', '.join(d['key'])})")
    cols = ("unchanged", "added", "removed", "changed", "changed_old", "moved_split")
    table.add_column("split", no_wrap=True)
    for col in cols:
        table.add_column(col.replace("_", " "), justify="right")
    for split, counts in d["per_split"].items():
        table.add_row(split, *(f"{counts[k]:,}" for k in cols))
    table.add_row("[bold]total", *(f"{c[k]:,}" for k in cols))
    out.print(table)
    out.print(
        f"rows: {d['rows']['a']:,} -> {d['rows']['b']:,}   (changed = new rows replacing changed_old rows "
        "with the same split key)",
        highlight=False,
        markup=False,
    )
    if c["moved_split"]:
        out.print(
            headline("warning", f"{c['moved_split']} unchanged row(s) moved split (seed or key changed?)", "yellow")
        )
    ex = d["examples"]
    for row in ex["added"]:
        out.print(f"  + {row['id'][:12]} [{row['split']}] {row['key']}", markup=False, highlight=False)
    for row in ex["removed"]:
        out.print(f"  - {row['id'][:12]} [{row['split']}] {row['key']}", markup=False, highlight=False)
    for row in ex["changed"]:
        out.print(
            f"  ~ {row['old_id'][:12]} -> {row['new_id'][:12]} [{row['split']}] {row['key']}\n"
            f"      old: {row['old_response']}\n      new: {row['new_response']}",
            markup=False,
            highlight=False,
        )


@datasets_app.command(
    "export",
    epilog="Examples:\n\n  curate datasets export chat@3 --format hf_disk --out exports/chat-v3\n\n"
    "  curate datasets export chat@3 --format trl_text_jsonl --template tokenizer "
    "--tokenizer models/my-tokenizer --out exports/chat-text\n\n"
    "  curate datasets export chat@latest --format sharegpt_json --out LLaMA-Factory/data   "
    "# merges dataset_info.json\n\n"
    "  curate datasets export chat@3 --format trl_parquet --out s3://bucket/exports/chat-v3   "
    "# credentials from AWS_* in the environment\n\n"
    "  HF_TOKEN=... curate datasets export chat@3 --format hub --repo-id me/chat --out exports/chat-hub\n\n"
    "Formats: hf_disk, trl_jsonl, trl_parquet (TRL conversational), trl_text_jsonl, trl_text_parquet "
    "(rendered with a chat template), alpaca_json, sharegpt_json (LLaMA-Factory), hub. "
    "Every export writes export_manifest.json in --out. Exit code 2 for a bad reference, format, "
    "split or option, an --out that is an existing file or object, or a failed Hub push.",
)
def datasets_export(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest or NAME@VERSION.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="hf_disk, trl_jsonl, trl_parquet, trl_text_jsonl, trl_text_parquet, "
            "alpaca_json, sharegpt_json or hub.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[
        str, typer.Option("--out", help="Output folder, or a folder URL (s3://...).", show_default=False)
    ],
    split: Annotated[str | None, typer.Option(help="Export one split only (default: all).")] = None,
    template: Annotated[str, typer.Option(help="Chat template for trl_text_*: chatml or tokenizer.")] = "chatml",
    tokenizer: Annotated[
        Path | None, typer.Option(help="Local tokenizer folder whose chat_template renders (template tokenizer).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="LLaMA-Factory dataset name prefix (default: the dataset's name).")
    ] = None,
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="Hub dataset repository for --format hub (token: HF_TOKEN).")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Write a version for a trainer: datasets folder, TRL jsonl/parquet, LLaMA-Factory json, or the Hub."""
    from curate.store import Store
    from curate.store.export import export

    with _clear_errors():
        r = export(
            Store(store),
            ref,
            fmt,
            out_dir,
            split=split,
            template=template,
            tokenizer=tokenizer,
            name=name,
            repo_id=repo_id,
        )
    if as_json:
        print(json.dumps(r, indent=2, sort_keys=True))
        return
    splits = ", ".join(f"{k}={v:,}" for k, v in r["splits"].items())
    where = r.get("repo_id") or r["out"]
    out.print(Text.assemble(("exported", "green"), f" {r['ref']} ({r['kind']}) as {r['format']} -> {where}: {splits}"))
    for s, reasons in r["skipped"].items():
        detail = ", ".join(f"{k}={v}" for k, v in reasons.items())
        out.print(Text.assemble(("skipped", "yellow"), f" in {s} (not representable in {r['format']}): {detail}"))
    out.print(f"manifest: {r['out'].rstrip('/')}/export_manifest.json", highlight=False, markup=False)
