"""Recipe models: the declarative description of a curation run (YAML on disk).

Every model rejects unknown keys. Secrets are written as ``${ENV_VAR}`` references and stay
references in the model (and therefore in every manifest and log): they are resolved with
:func:`resolve_secrets` only at the moment of use.

Example (YAML):
    name: quickstart
    output: {kind: sft, dir: runs}
    sources:
      - name: alpaca_sample
        path: data/raw/alpaca_*.jsonl
        convert: alpaca_to_messages
        columns: {instruction: prompt, output: response}
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.annotation import AnnotationSpec
from schemas.feedback import FeedbackSpec
from schemas.kinds import Kind
from schemas.stages import Stage

URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
"""A URL's scheme (two letters or more, so a Windows drive ``C:/`` is a path)."""
SECRET_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_SECRET_KEY = re.compile(r"(key|secret|token|password|credential)", re.IGNORECASE)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

Format = Literal["auto", "jsonl", "json", "parquet", "csv", "text", "hf_disk"]
Compression = Literal["auto", "none", "gzip", "zstd"]


class StrictModel(BaseModel):
    """Base for recipe models: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CsvOptions(StrictModel):
    """How CSV files are read. All values are read as text."""

    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str | None = Field(
        "auto",
        description='Quote character; `auto` (default) is `"` for CSV and no quoting for TSV (`.tsv` or tab '
        "delimiter); `none`, `null` or an empty string turn quoting off (every line is one row).",
    )
    header: bool = True

    @field_validator("quote", mode="before")
    @classmethod
    def _quote(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "null", "off")):
            return None
        if v == "auto" or (isinstance(v, str) and len(v) == 1):
            return v
        raise ValueError(f"quote must be one character, `auto` or `none`; got {v!r}")


class SourceSpec(StrictModel):
    """One input: files, how to read them, and how to convert their rows."""

    name: str = Field(pattern=_NAME, description="Short unique name; appears in provenance and reports.")
    path: str | list[str] | None = Field(
        None, description="File, directory, or glob (relative to the recipe's folder), or a list of them."
    )
    dataset: str | None = Field(
        None,
        description="Instead of path: a published version NAME@VERSION (or NAME for the latest) in `store`; its "
        "Parquet files are read (e.g. prompts@3 with convert: text / openai_messages / alpaca).",
    )
    store: str = Field("data/store", description="Store root of `dataset` (relative to the recipe's folder) or URL.")
    format: Format = Field("auto", description="Input format; `auto` picks by file extension.")
    compression: Compression = Field("auto", description="`auto` detects gzip/zstd by extension and magic bytes.")
    convert: str | list[str] = Field(
        description="Converter name, or a chain (e.g. [hh_rlhf_to_preference, preference_to_kto]). "
        "`curate converters` lists them."
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="Converter field -> column in the input, where the names differ."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the first converter (see `curate converters NAME`)."
    )
    chain_options: list[dict[str, Any]] = Field(
        default_factory=list, description="Options of the later converters of a chain, in order."
    )
    text_unit: Literal["line", "file"] = Field("line", description="Plain text: a document per line or per file.")
    csv: CsvOptions = Field(default_factory=CsvOptions)
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="fsspec options for remote paths; secrets as ${ENV_VAR}."
    )

    @property
    def steps(self) -> list[str]:
        """The converter chain as a list."""
        return [self.convert] if isinstance(self.convert, str) else list(self.convert)

    @property
    def paths(self) -> list[str]:
        if self.path is None:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)

    @model_validator(mode="after")
    def _path_or_dataset(self) -> SourceSpec:
        if (self.path is None) == (self.dataset is None):
            raise ValueError(
                "give exactly one of path (files) or dataset (a published version, e.g. dataset: prompts@3)"
            )
        return self

    @field_validator("convert")
    @classmethod
    def _non_empty_chain(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("convert needs at least one converter name")
        return v

    @field_validator("storage_options")
    @classmethod
    def _secrets_are_refs(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if _SECRET_KEY.search(key) and not SECRET_REF.match(value):
                raise ValueError(
                    f"storage_options.{key} looks like a secret: write it as an environment reference, "
                    f"e.g. {key}: ${{{key.upper()}}}, and export {key.upper()} before running"
                )
        return v


class Limits(StrictModel):
    """Bounds that turn absurd input into quarantined rows instead of crashes."""

    max_chars: int = Field(200_000, gt=0, description="Longest text value kept (characters).")
    max_line_bytes: int = Field(8_000_000, gt=0, description="Longest JSONL/text line read (bytes).")
    batch_rows: int = Field(50_000, gt=0, description="Rows per streamed batch (memory vs. speed).")
    max_quarantined_fraction: float = Field(
        1.0, ge=0, le=1, description="Fail the run (exit 2) when more of the input than this is quarantined."
    )


class OutputSpec(StrictModel):
    """Where and in which record kind the run writes its dataset."""

    kind: Kind = Field(description="Record kind of the output: text, sft, alpaca, preference or kto.")
    dir: str = Field("runs", description="Run outputs go to DIR/NAME/RUN_ID (relative to the recipe's folder).")
    rows_per_file: int = Field(1_000_000, gt=0, description="Rows per output Parquet file.")
    work_dir: str | None = Field(
        None,
        description="Work files (shards, sketches, stage decisions, cached steps) go to WORK_DIR/NAME (relative "
        "to the recipe's folder). Default: DIR/.work, or for a URL dir a local cache ($CURATE_LOCAL_DIR/remote/"
        "HASH/.work). A local path: on a Dask cluster of several machines, a folder every worker mounts at the "
        "same path (NFS, a shared volume); work files are not written to object storage.",
    )

    @field_validator("work_dir")
    @classmethod
    def _work_dir_local(cls, v: str | None) -> str | None:
        if v is not None and is_url(v) and not v.startswith("file://"):
            raise ValueError(
                f"work_dir {v!r} is a URL: work files need a local or mounted folder (steps rename folders into "
                "place, hard-link files and read them by local path); use a folder every worker mounts, e.g. "
                "NFS, or leave it unset"
            )
        return v.removeprefix("file://") if v is not None else None


_LATER = {
    "train": "training",
    "eval": "evaluation",
}


class SplitSpec(StrictModel):
    """Deterministic splits: a row's split follows from a hash of its split key, so it never moves."""

    eval: float = Field(0.05, ge=0, lt=1, description="Fraction of rows in the eval split.")
    test: float = Field(0.0, ge=0, lt=1, description="Fraction of rows in the test split.")
    key: list[str] | None = Field(
        None,
        description="Fields whose text decides the split (default [prompt]; text kind: [text]): rows sharing "
        "a prompt land on the same side.",
    )
    seed: int = Field(0, ge=0, description="Salt of the split hash (changing it reshuffles every row).")
    leak_threshold: float = Field(0.8, gt=0, le=1, description="Jaccard at which a train/eval pair is reported.")

    @field_validator("test")
    @classmethod
    def _fractions(cls, v: float, info: ValidationInfo) -> float:
        if v + info.data.get("eval", 0.0) >= 1:
            raise ValueError("eval + test must leave rows for train (sum below 1)")
        return v


class FlowSpec(StrictModel):
    """How ``curate run`` orchestrates the recipe when it runs as a Prefect flow (the default)."""

    runner: str = Field(
        "thread",
        pattern=r"^(thread(:[0-9]+)?|dask(:.+)?)$",
        description="Task runner: thread[:N] (threads in this process), dask[:N] (a local Dask cluster of N "
        "worker processes, default 2) or dask:tcp://HOST:PORT (an existing Dask scheduler; inputs, output.dir "
        "and the store must then be paths every worker can reach). `curate run --runner` overrides it.",
    )


class PublishSpec(StrictModel):
    """Where and how a run's dataset is published as a version."""

    store: str = Field(
        "data/store",
        description="Store root folder (relative to the recipe's folder) or URL (s3://bucket/prefix; credentials "
        "from the environment, AWS_* for S3, or storage_options).",
    )
    dataset: str | None = Field(None, pattern=_NAME, description="Dataset name in the store (default: recipe name).")
    splits: SplitSpec = Field(default_factory=SplitSpec)
    skip_unchanged: bool = Field(True, description="Do not publish a version whose content equals the latest one.")
    allow_empty: bool = Field(
        False,
        description="Publish a version with no rows. Off: a run that keeps no row writes its run folder and "
        "exits 2, publishing nothing (an empty `latest` would silently replace real data).",
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="fsspec options for a URL store (e.g. endpoint_url); secrets as ${ENV_VAR}."
    )

    @field_validator("storage_options")
    @classmethod
    def _secrets_are_refs(cls, v: dict[str, str]) -> dict[str, str]:
        return SourceSpec._secrets_are_refs(v)


class RefreshSpec(StrictModel):
    """How ``curate refresh`` treats the input files of the version it builds on."""

    deleted_files: Literal["keep", "retire"] = Field(
        "keep",
        description="An input file of the latest version that no longer exists: keep its rows in the next "
        "version (the version is a growing archive), or retire them (the version mirrors the files there now). "
        "Either way the manifest's refresh section lists the files and the policy.",
    )


class Recipe(StrictModel):
    """A curation recipe: sources are ingested and converted, then ``stages`` run in order."""

    version: Literal[1] = Field(1, description="Recipe format version.")
    name: str = Field(pattern=_NAME, description="Dataset name.")
    description: str = ""
    output: OutputSpec
    limits: Limits = Field(default_factory=Limits)
    sources: list[SourceSpec] = Field(min_length=1)
    stages: list[Stage] = Field(
        default_factory=list,
        description="Filters, dedup and decontamination, applied in this order after ingest.",
    )
    flow: FlowSpec = Field(default_factory=FlowSpec, description="Orchestration settings for the Prefect flow.")
    feedback: FeedbackSpec | None = Field(
        None,
        description="AI feedback (RLAIF): the sources hold prompts (of feedback.input_kind); candidates are generated, "
        "judged and published as preference pairs or KTO rows (output.kind preference or kto).",
    )
    annotation: AnnotationSpec | None = Field(
        None, description="Human preference annotation in Argilla (output.kind preference; `curate annotate`)."
    )
    publish: PublishSpec | None = Field(None, description="Publish the result as the next version of a dataset.")
    refresh: RefreshSpec = Field(default_factory=RefreshSpec, description="Policies of `curate refresh`.")
    train: dict[str, Any] | None = Field(None, description="Reserved: " + _LATER["train"])
    eval: dict[str, Any] | None = Field(None, description="Reserved: " + _LATER["eval"])

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[SourceSpec]) -> list[SourceSpec]:
        names = [s.name for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return v

    @field_validator("annotation")
    @classmethod
    def _annotation_needs_preferences(cls, v: AnnotationSpec | None, info: ValidationInfo) -> AnnotationSpec | None:
        output = info.data.get("output")
        if v is not None and output is not None and output.kind is not Kind.PREFERENCE:
            raise ValueError(
                f"annotation compares candidate responses, so it needs output.kind: preference "
                f"(this recipe writes {output.kind.value}); change output.kind or remove the annotation section"
            )
        return v

    @field_validator("feedback")
    @classmethod
    def _feedback_makes_preferences(cls, v: FeedbackSpec | None, info: ValidationInfo) -> FeedbackSpec | None:
        output = info.data.get("output")
        if v is not None and output is not None and output.kind not in (Kind.PREFERENCE, Kind.KTO):
            raise ValueError(
                f"feedback turns judged candidates into preference pairs or KTO rows, so it needs output.kind: "
                f"preference or kto (this recipe writes {output.kind.value}); the sources' converters produce "
                f"feedback.input_kind records (the prompts)"
            )
        return v

    def with_paths_from(self, base: Path) -> Recipe:
        """This recipe with its folder settings (``output.dir``, ``publish.store``, the sources' ``store``
        and ``annotation.output.store``) made absolute against ``base``, the recipe's folder.

        Absolute paths and URLs (``s3://bucket/x``) are kept as written. Input paths (``sources[].path``)
        stay relative: the planner reads them from the same folder.

        Example:
            >>> src = [{"name": "a", "path": "x", "convert": "text"}]
            >>> r = Recipe.model_validate(
            ...     {"name": "d", "output": {"kind": "sft"}, "sources": src, "publish": {"store": "s3://bucket/store"}}
            ... )
            >>> moved = r.with_paths_from(Path("/data/recipes"))
            >>> moved.output.dir, moved.publish.store, moved.sources[0].store
            ('/data/recipes/runs', 's3://bucket/store', '/data/recipes/data/store')
        """
        update: dict[str, Any] = {
            "output": self.output.model_copy(
                update={
                    "dir": under(base, self.output.dir),
                    "work_dir": None if self.output.work_dir is None else under(base, self.output.work_dir),
                }
            ),
            "sources": [s.model_copy(update={"store": under(base, s.store)}) for s in self.sources],
        }
        if self.publish is not None:
            update["publish"] = self.publish.model_copy(update={"store": under(base, self.publish.store)})
        if self.annotation is not None:
            out = self.annotation.output
            update["annotation"] = self.annotation.model_copy(
                update={"output": out.model_copy(update={"store": under(base, out.store)})}
            )
        return self.model_copy(update=update)

    @property
    def record_kind(self) -> Kind:
        """The kind records have while they are ingested and staged: ``feedback.input_kind`` (the prompts)
        for a feedback recipe, else ``output.kind``."""
        return self.feedback.input_kind if self.feedback is not None else self.output.kind

    @field_validator(*_LATER)
    @classmethod
    def _not_yet(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None:
            raise ValueError(
                f"the {_LATER[info.field_name]} stage is not available in this version yet; "
                "remove this section to run the recipe"
            )
        return v


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``s3://...``, ``file://...``) rather than a local path.

    Example:
        >>> is_url("s3://bucket/store"), is_url("data/store"), is_url("C:/data")
        (True, False, False)
    """
    return URL_SCHEME.match(path) is not None


def under(base: Path, path: str) -> str:
    """``path`` resolved against the folder ``base`` unless it is absolute or a URL (kept as written).

    Example:
        >>> under(Path("/r"), "runs"), under(Path("/r"), "/abs/runs"), under(Path("/r"), "s3://b/k")
        ('/r/runs', '/abs/runs', 's3://b/k')
    """
    if is_url(path):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def resolve_secrets(values: dict[str, str]) -> dict[str, str]:
    """Replace ``${VAR}`` references by the environment's values; a missing variable is an error.

    Example:
        >>> os.environ["DEMO_TOKEN"] = "s3cr3t"
        >>> resolve_secrets({"token": "${DEMO_TOKEN}", "region": "eu"})
        {'token': 's3cr3t', 'region': 'eu'}
    """
    out = {}
    for key, value in values.items():
        m = SECRET_REF.match(value)
        if m:
            if m.group(1) not in os.environ:
                raise KeyError(f"{key} refers to ${{{m.group(1)}}}, which is not set: export {m.group(1)}=...")
            out[key] = os.environ[m.group(1)]
        else:
            out[key] = value
    return out


def recipe_json_schema() -> dict[str, Any]:
    """JSON Schema of the recipe format, for editor completion (``# yaml-language-server: $schema=...``)."""
    schema = Recipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "curate recipe"
    return schema
