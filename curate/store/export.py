"""Export a published version for a trainer: Hugging Face ``datasets``, TRL files, LLaMA-Factory, the Hub.

Formats (one file or folder per split; every export also writes ``export_manifest.json`` in ``out``
with the resolved ``name@version``, the version's content hash, the format and the rows per split):

==================  ==========================================================================
``hf_disk``         ``datasets.DatasetDict`` of the splits, TRL columns, ``save_to_disk(out)``
``trl_jsonl``       ``SPLIT.jsonl``: TRL's conversational format (message lists, as :func:`load` gives)
``trl_parquet``     ``SPLIT.parquet``: the same
``trl_text_jsonl``  ``SPLIT.jsonl``: TRL's standard format, rendered through a chat template (ChatML, or a
                    local tokenizer's ``chat_template``): sft -> ``text``; preference -> ``prompt``
                    (with the generation prompt) / ``chosen`` / ``rejected``; kto -> ``prompt`` /
                    ``completion`` / ``label`` -- the strings TRL's ``apply_chat_template`` makes
``trl_text_parquet`` ``SPLIT.parquet``: the same
``alpaca_json``     ``NAME_SPLIT.json`` + a ``dataset_info.json`` entry per file (LLaMA-Factory, alpaca)
``sharegpt_json``   ``NAME_SPLIT.json`` + ``dataset_info.json`` entries (LLaMA-Factory, sharegpt)
``hub``             push the ``DatasetDict`` to a Hub dataset repo (token from ``HF_TOKEN`` only)
==================  ==========================================================================

Rows a format cannot represent (a LLaMA-Factory conversation that does not alternate user/assistant,
a message with null content) are left out and counted in ``skipped`` by reason, never silently.

Example:
    >>> # export(Store("data/store"), "chat@3", "sharegpt_json", "LLaMA-Factory/data")
    >>> # then in LLaMA-Factory: dataset: chat_train
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from enum import StrEnum
from itertools import takewhile
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from curate.convert.render import IM_END, load_tokenizer, render_chatml
from curate.store.load import trl_columns
from curate.store.location import Location, is_url
from curate.store.store import Store
from schemas.fields import field_expr
from schemas.kinds import MESSAGES, Kind

MANIFEST_FILE = "export_manifest.json"
DATASET_INFO = "dataset_info.json"
SPLIT_ORDER = ("train", "eval", "test")


class ExportFormat(StrEnum):
    """The export formats (see the module docstring)."""

    HF_DISK = "hf_disk"
    TRL_JSONL = "trl_jsonl"
    TRL_PARQUET = "trl_parquet"
    TRL_TEXT_JSONL = "trl_text_jsonl"
    TRL_TEXT_PARQUET = "trl_text_parquet"
    ALPACA_JSON = "alpaca_json"
    SHAREGPT_JSON = "sharegpt_json"
    HUB = "hub"


class ExportError(ValueError):
    """An export that cannot be made as asked (the message says what to change)."""


# ---------------------------------------------------------------------------------------------- helpers


def _plain_type(t: pa.DataType) -> pa.DataType:
    """Arrow type with large/view strings and lists made plain (what every ``datasets`` version reads)."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_list(t) or pa.types.is_list(t) or pa.types.is_list_view(t):
        return pa.list_(_plain_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain_type(f.type), f.nullable) for f in t])
    return t


def _to_arrow(df: pl.DataFrame) -> pa.Table:
    table = df.to_arrow()
    schema = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in table.schema])
    return table.cast(schema)


def _dataset_dict(frames: dict[str, pl.DataFrame]) -> Any:
    import datasets

    return datasets.DatasetDict({s: datasets.Dataset(_to_arrow(f)) for s, f in frames.items()})


def _roles(col: str) -> pl.Expr:
    """The message roles of ``col`` as one letter each (S system, U user, A assistant, T tool, X other)."""
    letter = (
        pl.element()
        .struct.field("role")
        .replace_strict(
            {"system": "S", "user": "U", "assistant": "A", "tool": "T"}, default="X", return_dtype=pl.String
        )
    )
    return pl.col(col).list.eval(letter).list.join("")


def _has_null(col: str) -> pl.Expr:
    msg = pl.element()
    bad = msg.is_null() | msg.struct.field("role").is_null() | msg.struct.field("content").is_null()
    return pl.col(col).is_null() | pl.col(col).list.eval(bad).list.any()


def _split_ok(df: pl.DataFrame, reason: pl.Expr) -> tuple[pl.DataFrame, dict[str, int]]:
    """Rows where ``reason`` is null, and the counts of the others by reason."""
    tagged = df.with_columns(reason.alias("__skip"))
    bad = tagged.filter(pl.col("__skip").is_not_null())
    counts = dict(sorted(bad["__skip"].value_counts().iter_rows())) if bad.height else {}
    return tagged.filter(pl.col("__skip").is_null()).drop("__skip"), counts


# ----------------------------------------------------------------------------------- TRL standard (text)


def _chatml_prompt(col: str) -> pl.Expr:
    """TRL's prompt rendering in ChatML: a generation prompt after a user/tool turn, and the last
    assistant turn left open (``continue_final_message``) when the prompt ends with one."""
    last_role = pl.col(col).list.last().struct.field("role")
    open_end = render_chatml(pl.col(col)).str.strip_suffix(f"{IM_END}\n")
    return pl.when(last_role == "assistant").then(open_end).otherwise(render_chatml(pl.col(col), True))


def _render_chatml(df: pl.DataFrame, kind: Kind) -> tuple[pl.DataFrame, dict[str, int]]:
    if kind is Kind.TEXT:
        return _split_ok(df.select("text"), pl.when(pl.col("text").is_null()).then(pl.lit("null_content")))
    trl = trl_columns(df, kind)
    if "messages" in trl.columns:
        out = trl.select(render_chatml(pl.col("messages")).alias("text"))
        return _split_ok(out, pl.when(pl.col("text").is_null()).then(pl.lit("null_content")))
    answers = [c for c in ("chosen", "rejected", "completion") if c in trl.columns]
    prompt = _chatml_prompt("prompt").alias("prompt")
    fulls = [render_chatml(pl.concat_list("prompt", c)).alias(f"__full_{c}") for c in answers]
    wide = trl.with_columns(prompt, *fulls)
    nulls = pl.any_horizontal(pl.col("prompt").is_null(), *[pl.col(f"__full_{c}").is_null() for c in answers])
    not_prefix = ~pl.all_horizontal(*[pl.col(f"__full_{c}").str.starts_with(pl.col("prompt")) for c in answers])
    reason = (
        pl.when(nulls)
        .then(pl.lit("null_content"))
        .when(not_prefix)
        .then(pl.lit("answer_not_assistant"))  # the prompt's generation prompt does not start the answer
    )
    ok, skipped = _split_ok(wide, reason)
    n = pl.col("prompt").str.len_chars()
    texts = [pl.col(f"__full_{c}").str.slice(n).alias(c) for c in answers]
    extra = ["label"] if "label" in trl.columns else []
    return ok.select("prompt", *texts, *extra), skipped


def _render_row(tok: Any, example: dict[str, Any]) -> dict[str, Any]:
    """TRL's ``apply_chat_template`` for one conversational example (no tools)."""

    def render(msgs: list[dict[str, str]], **kw: Any) -> str:
        return tok.apply_chat_template(msgs, tokenize=False, **kw)

    if "messages" in example:
        return {"text": render(example["messages"])}
    last = example["prompt"][-1]["role"]
    cont = last == "assistant"
    prompt = render(example["prompt"], add_generation_prompt=not cont, continue_final_message=cont)
    answers = {c: example[c] for c in ("chosen", "rejected", "completion") if c in example}
    fulls = {c: render(example["prompt"] + msgs) for c, msgs in answers.items()}
    for full in fulls.values():  # common prefix, as TRL does for templates that differ at the seam
        prompt = "".join(x for x, _ in takewhile(lambda p: p[0] == p[1], zip(prompt, full, strict=False)))
    out: dict[str, Any] = {"prompt": prompt, **{c: full[len(prompt) :] for c, full in fulls.items()}}
    if "label" in example:
        out["label"] = example["label"]
    return out


def _render_tokenizer(df: pl.DataFrame, kind: Kind, path: str) -> tuple[pl.DataFrame, dict[str, int]]:
    if kind is Kind.TEXT:
        return _render_chatml(df, kind)
    tok = load_tokenizer(path)
    trl = trl_columns(df, kind)
    msg_cols = [c for c in trl.columns if c != "label"]
    trl, skipped = _split_ok(
        trl, pl.when(pl.any_horizontal(*[_has_null(c) for c in msg_cols])).then(pl.lit("null_content"))
    )
    rows: list[dict[str, Any]] = []
    errors: dict[str, int] = {}
    for example in trl.iter_rows(named=True):
        try:
            rows.append(_render_row(tok, example))
        except Exception as exc:  # a template may refuse a conversation (e.g. no system role): skip the row
            reason = f"template_error: {type(exc).__name__}"
            errors[reason] = errors.get(reason, 0) + 1
    names = ["text"] if "messages" in trl.columns else ["prompt", *[c for c in msg_cols if c != "prompt"]]
    schema: dict[str, pl.DataType] = {c: pl.String() for c in names}
    if "label" in trl.columns:
        schema["label"] = pl.Boolean()
    return pl.DataFrame(rows, schema=schema), {**skipped, **errors}


# ------------------------------------------------------------------------------------------ LLaMA-Factory

SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
_FROM = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}
_TURN = pl.Struct({"from": pl.String, "value": pl.String})


def _sharegpt_turns(col: str) -> pl.Expr:
    el = pl.element().struct
    role = el.field("role").replace_strict(_FROM, default=None, return_dtype=pl.String)
    return pl.col(col).list.eval(pl.struct(role.alias("from"), el.field("content").alias("value")))


def _gpt(text: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit("gpt").alias("from"), text.alias("value")).cast(_TURN)


def _lf_reason(valid: pl.Expr, null_cols: list[str], pattern_name: str) -> pl.Expr:
    nulls = pl.any_horizontal(*[_has_null(c) for c in null_cols])
    return pl.when(nulls).then(pl.lit("null_content")).when(~valid).then(pl.lit(f"not_{pattern_name}"))


def _pairs(contents: pl.Expr) -> pl.Expr:
    """``[u1, a1, u2, a2]`` -> ``[[u1, a1], [u2, a2]]`` (LLaMA-Factory's alpaca ``history``)."""
    return contents.list.eval(pl.element().reshape((-1, 2))).cast(pl.List(pl.List(pl.String)))


def _strip_system(col: str) -> tuple[pl.Expr, pl.Expr]:
    """(messages without a leading system message, that system message's content or "")."""
    first = pl.col(col).list.first().struct.field("role") == "system"
    rest = pl.when(first).then(pl.col(col).list.slice(1)).otherwise(pl.col(col))
    system = pl.when(first).then(pl.col(col).list.first().struct.field("content")).otherwise(pl.lit(""))
    return rest, system


def _contents(msgs: pl.Expr) -> pl.Expr:
    return msgs.list.eval(pl.element().struct.field("content"))


def _as_sft(df: pl.DataFrame, kind: Kind) -> tuple[pl.DataFrame, Kind]:
    """Alpaca records as conversations (for sharegpt); other kinds unchanged."""
    if kind is Kind.ALPACA:
        trl = trl_columns(df, kind)
        return trl.select(pl.concat_list("prompt", "completion").cast(MESSAGES).alias("messages")), Kind.SFT
    return df, kind


def _sharegpt(df: pl.DataFrame, kind: Kind) -> tuple[pl.DataFrame, dict[str, int], dict[str, Any]]:
    """Rows as LLaMA-Factory sharegpt records, the skipped counts and the ``dataset_info`` entry (no file)."""
    if kind is Kind.TEXT:
        raise ExportError(
            "LLaMA-Factory's sharegpt format has no pre-training form; export text records as alpaca_json"
        )
    df, kind = _as_sft(df, kind)
    entry: dict[str, Any] = {"formatting": "sharegpt", "columns": {"messages": "conversations"}, "tags": SHAREGPT_TAGS}
    if kind is Kind.SFT:
        ok, skipped = _split_ok(
            df, _lf_reason(_roles("messages").str.contains(r"^S?([UT]A)+$"), ["messages"], "alternating")
        )
        return ok.select(_sharegpt_turns("messages").alias("conversations")), skipped, entry
    if kind is Kind.PREFERENCE:
        valid = _roles("prompt").str.contains(r"^S?([UT]A)*[UT]$")
        ok, skipped = _split_ok(df, _lf_reason(valid, ["prompt", "chosen", "rejected"], "alternating_prompt"))
        out = ok.select(
            _sharegpt_turns("prompt").alias("conversations"),
            _gpt(field_expr(kind, "chosen")).alias("chosen"),
            _gpt(field_expr(kind, "rejected")).alias("rejected"),
        )
        entry |= {"ranking": True, "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}
        return out, skipped, entry
    valid = (_roles("prompt") + pl.lit("A")).str.contains(r"^S?([UT]A)+$")  # KTO: the completion is one gpt turn
    ok, skipped = _split_ok(df, _lf_reason(valid, ["prompt", "completion"], "alternating_prompt"))
    conv = pl.concat_list(_sharegpt_turns("prompt"), pl.concat_list(_gpt(field_expr(kind, "completion"))))
    out = ok.select(conv.alias("conversations"), pl.col("label").alias("kto_tag"))
    entry["columns"] = {"messages": "conversations", "kto_tag": "kto_tag"}
    return out, skipped, entry


def _alpaca(df: pl.DataFrame, kind: Kind) -> tuple[pl.DataFrame, dict[str, int], dict[str, Any]]:
    """Rows as LLaMA-Factory alpaca records, the skipped counts and the ``dataset_info`` entry (no file)."""
    entry: dict[str, Any] = {"formatting": "alpaca"}
    full_cols = {
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "history": "history",
        "system": "system",
    }
    if kind is Kind.TEXT:
        ok, skipped = _split_ok(df, pl.when(pl.col("text").is_null()).then(pl.lit("null_content")))
        return ok.select("text"), skipped, entry | {"columns": {"prompt": "text"}}
    if kind is Kind.ALPACA:
        ok, skipped = _split_ok(
            df, pl.when(pl.col("instruction").is_null() | pl.col("output").is_null()).then(pl.lit("null_content"))
        )
        out = ok.select("instruction", pl.col("input").fill_null(""), "output")
        return out, skipped, entry | {"columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    if kind is Kind.SFT:
        rest, system = _strip_system("messages")
        ok, skipped = _split_ok(
            df, _lf_reason(_roles("messages").str.contains(r"^S?(UA)+$"), ["messages"], "user_assistant_pairs")
        )
        c = _contents(rest)
        out = ok.select(
            c.list.get(-2).alias("instruction"),
            pl.lit("").alias("input"),
            c.list.get(-1).alias("output"),
            _pairs(c.list.head(c.list.len() - 2)).alias("history"),
            system.alias("system"),
        )
        return out, skipped, entry | {"columns": full_cols}
    rest, system = _strip_system("prompt")
    c = _contents(rest)
    head = [c.list.last().alias("instruction"), pl.lit("").alias("input")]
    tail = [_pairs(c.list.head(c.list.len() - 1)).alias("history"), system.alias("system")]
    valid = _roles("prompt").str.contains(r"^S?(UA)*U$")
    if kind is Kind.PREFERENCE:
        ok, skipped = _split_ok(df, _lf_reason(valid, ["prompt", "chosen", "rejected"], "user_assistant_pairs"))
        out = ok.select(*head, field_expr(kind, "chosen"), field_expr(kind, "rejected"), *tail)
        cols = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
        cols |= {"history": "history", "system": "system"}
        return out, skipped, entry | {"ranking": True, "columns": cols}
    ok, skipped = _split_ok(df, _lf_reason(valid, ["prompt", "completion"], "user_assistant_pairs"))
    out = ok.select(*head, field_expr(kind, "completion").alias("output"), *tail, pl.col("label").alias("kto_tag"))
    return out, skipped, entry | {"columns": full_cols | {"kto_tag": "kto_tag"}}


def _merge_dataset_info(out: Path, entries: dict[str, Any]) -> Path:
    path = out / DATASET_INFO
    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ExportError(f"{path} is not valid JSON ({e}); fix or remove it before exporting") from None
        if not isinstance(info, dict):
            raise ExportError(f"{path} is not a JSON object of dataset entries; fix or remove it")
    info.update(entries)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------------ export


def _hub_token(repo_id: str | None) -> str:
    if not repo_id:
        raise ExportError("format hub needs a repository: --repo-id OWNER/NAME")
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ExportError(
            "pushing to the Hugging Face Hub needs a token in the HF_TOKEN environment variable "
            "(a write token; it is read from the environment only) and network access"
        )
    return token


def _push_to_hub(dd: Any, repo_id: str, token: str, private: bool) -> None:
    try:
        dd.push_to_hub(repo_id, token=token, private=private)
    except Exception as e:  # offline machines raise connection errors of several kinds
        detail = str(e).replace(token, "***")[:300]
        raise ExportError(
            f"could not push to {repo_id}: the Hub push needs network access and a valid HF_TOKEN "
            f"({type(e).__name__}: {detail})"
        ) from None


def export(
    store: Store,
    ref: str,
    fmt: str,
    out: str | Path,
    split: str | None = None,
    template: str = "chatml",
    tokenizer: str | Path | None = None,
    name: str | None = None,
    repo_id: str | None = None,
    private: bool = True,
) -> dict[str, Any]:
    """Write version ``ref`` in format ``fmt`` under ``out``; return what was written (also in
    ``out/export_manifest.json``).

    Args:
        store: the store.
        ref: ``NAME@N`` (``NAME`` / ``NAME@latest`` resolve to the newest version).
        fmt: an :class:`ExportFormat` value.
        out: output folder (created; for LLaMA-Factory formats, its ``dataset_info.json`` is merged into),
            or a folder URL (``s3://bucket/exports/chat``, credentials from the environment): the export is
            written to a local temporary folder, then uploaded with ``export_manifest.json`` last.
        split: one split only (default: every split of the version).
        template: ``chatml`` or ``tokenizer`` (text formats only).
        tokenizer: local tokenizer folder for ``template="tokenizer"`` (nothing is downloaded).
        name: LLaMA-Factory dataset name prefix (default: the dataset's name): files ``NAME_SPLIT.json``.
        repo_id: Hub dataset repository for ``hub``.
        private: create the Hub repository private (``hub`` only).

    Raises:
        RefError: ``ref`` names nothing.
        ExportError: a bad format, split, template or kind for the format, or a failed Hub push.
    """
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(f.value for f in ExportFormat)}") from None
    text_fmt = fmt in (ExportFormat.TRL_TEXT_JSONL, ExportFormat.TRL_TEXT_PARQUET)
    if template not in ("chatml", "tokenizer"):
        raise ExportError(f"unknown template {template!r}; use chatml or tokenizer")
    if template == "tokenizer" and not tokenizer:
        raise ExportError("template tokenizer needs --tokenizer DIR (a local folder with the tokenizer files)")
    if tokenizer and template != "tokenizer":
        raise ExportError("--tokenizer is only used with --template tokenizer")
    if (template != "chatml" or tokenizer) and not text_fmt:
        raise ExportError(f"--template/--tokenizer apply to trl_text_jsonl/trl_text_parquet, not {fmt}")
    token = _hub_token(repo_id) if fmt is ExportFormat.HUB else None
    if tokenizer:
        try:
            load_tokenizer(str(tokenizer))
        except (FileNotFoundError, ValueError, ImportError, OSError) as e:
            raise ExportError(f"cannot use tokenizer {str(tokenizer)!r}: {e}") from None

    ds_name, version = store.resolve(ref)
    resolved = f"{ds_name}@{version}"
    manifest = store.manifest(resolved)
    kind = Kind(manifest["kind"])
    df = store.read(resolved, split=split)
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    present = sorted(set(df["split"].unique().to_list()), key=lambda s: (order.get(s, len(order)), s))
    if split is not None and df.height == 0:
        raise ExportError(
            f"{resolved} has no rows in split {split!r} (splits: {', '.join(manifest['rows_per_split'])})"
        )
    parts = {s: df.filter(pl.col("split") == s) for s in present}

    with ExitStack() as stack:
        remote = Location(out) if is_url(out) else None
        if remote is None:
            folder = Path(out)
            if folder.exists() and not folder.is_dir():
                raise ExportError(f"--out {out} is an existing file; exports write a folder: choose a folder name")
        else:
            if remote.is_file():
                raise ExportError(f"--out {out} is an existing object; exports write a folder: choose a folder name")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="curate-export-")))
            if remote.exists(DATASET_INFO):  # LLaMA-Factory's list of datasets is merged into, as locally
                (folder / DATASET_INFO).write_text(remote.read_text(DATASET_INFO), encoding="utf-8")
        folder.mkdir(parents=True, exist_ok=True)
        result = _write(folder, fmt, kind, parts, present, ds_name, name, template, tokenizer, repo_id, token, private)
        result = {
            "dataset": ds_name,
            "version": version,
            "ref": resolved,
            "kind": kind.value,
            "content_hash": manifest["content_hash"],
            "format": fmt.value,
            **result,
            "out": str(out) if remote is not None else str(folder),
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if remote is not None:
            try:
                remote.put_dir(folder, "", last=(MANIFEST_FILE,))
            except OSError as e:  # a missing bucket, no permission: s3fs raises these as OSError subclasses
                raise ExportError(
                    f"cannot write the export to {out} ({type(e).__name__}: {e}); check the bucket exists and the "
                    "credentials in the environment may write to it"
                ) from None
    return result


def _write(
    out: Path,
    fmt: ExportFormat,
    kind: Kind,
    parts: dict[str, pl.DataFrame],
    present: list[str],
    ds_name: str,
    name: str | None,
    template: str,
    tokenizer: str | Path | None,
    repo_id: str | None,
    token: str | None,
    private: bool,
) -> dict[str, Any]:
    """Write the splits ``parts`` into local folder ``out``; returns splits, rows, skipped, files and extras."""
    text_fmt = fmt in (ExportFormat.TRL_TEXT_JSONL, ExportFormat.TRL_TEXT_PARQUET)
    files: list[str] = []
    skipped: dict[str, dict[str, int]] = {}
    rows: dict[str, int] = {}
    extra: dict[str, Any] = {}

    if fmt in (ExportFormat.HF_DISK, ExportFormat.HUB):
        frames = {s: trl_columns(f, kind) for s, f in parts.items()}
        dd = _dataset_dict(frames)
        if fmt is ExportFormat.HUB:
            assert repo_id and token  # checked by _hub_token
            _push_to_hub(dd, repo_id, token, private)
            extra = {"repo_id": repo_id, "private": private}
        else:
            dd.save_to_disk(str(out))
            files = ["dataset_dict.json", *present]
        rows = {s: f.height for s, f in frames.items()}
    elif fmt in (ExportFormat.TRL_JSONL, ExportFormat.TRL_PARQUET) or text_fmt:
        suffix = "jsonl" if fmt.value.endswith("jsonl") else "parquet"
        for s, f in parts.items():
            if not text_fmt:
                frame, skip = trl_columns(f, kind), {}
            elif template == "chatml":
                frame, skip = _render_chatml(f, kind)
            else:
                frame, skip = _render_tokenizer(f, kind, str(tokenizer))
            rows[s] = frame.height
            if skip:
                skipped[s] = skip
            if frame.height == 0:  # every row skipped: no empty file
                continue
            path = out / f"{s}.{suffix}"
            if suffix == "jsonl":
                frame.write_ndjson(path)
            else:
                frame.write_parquet(path)
            files.append(path.name)
        if text_fmt:
            extra = {"template": template, "tokenizer": str(tokenizer) if tokenizer else None}
    else:
        build = _alpaca if fmt is ExportFormat.ALPACA_JSON else _sharegpt
        prefix = name or ds_name
        entries: dict[str, Any] = {}
        for s, f in parts.items():
            frame, skip, entry = build(f, kind)
            rows[s] = frame.height
            if skip:
                skipped[s] = skip
            if frame.height == 0:  # every row skipped: no empty file, no entry
                continue
            path = out / f"{prefix}_{s}.json"
            frame.write_json(path)
            files.append(path.name)
            entries[f"{prefix}_{s}"] = {"file_name": path.name, **entry}
        _merge_dataset_info(out, entries)
        files.append(DATASET_INFO)
        extra = {"llamafactory_datasets": list(entries)}

    return {"splits": rows, "rows": sum(rows.values()), "skipped": skipped, **extra, "files": files}
