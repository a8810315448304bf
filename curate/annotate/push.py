"""Push preference records to Argilla for human annotation.

A record shows the prompt (a chat field) and 2..N candidate responses (``response_1`` ...), in an
order shuffled per record (deterministically, by a hash of the record id and the response) so
annotators cannot learn that the first one is the dataset's ``chosen``. Questions follow
:class:`schemas.annotation.AnnotationSpec`: ``ranking`` (rank all responses), ``preferred``
(label: a response or ``tie``), ``rating_N`` (1-5), ``rationale`` (free text). Metadata for
filtering: ``source``, ``dataset_version``, ``judge``, ``prompt_chars``, ``response_chars``. When
the data has AI judgements or model scores, ranking and label suggestions are pre-filled.

The Argilla record id (``external_id``) is derived from the content (prompt + the set of
responses), so pushing the same data twice creates nothing new, and existing responses are kept.

Example:
    >>> import polars as pl
    >>> msg = lambda role, text: [{"role": role, "content": text}]
    >>> df = pl.DataFrame({"prompt": [msg("user", "Hi?")], "chosen": [msg("assistant", "Hello!")],
    ...                    "rejected": [msg("assistant", "Go away.")]})
    >>> c = candidates(df)
    >>> c["record_id"].str.len_chars().item(), sorted(c["responses"].item())
    (32, ['Go away.', 'Hello!'])
    >>> candidates(df)["record_id"].item() == c["record_id"].item()   # stable
    True
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers .chash)

from curate.annotate.client import Connection
from schemas.annotation import AnnotationSpec
from schemas.ids import nfc

BATCH = 500
_SEP, _MSG, _ROLE = "\x1d", "\x1e", "\x1f"


class PushError(ValueError):
    """The data or the existing Argilla dataset cannot take this push; the message says how to fix it."""


def _text(messages: pl.Expr) -> pl.Expr:
    """A completion's text: its messages' contents joined by blank lines."""
    return messages.list.eval(pl.element().struct.field("content")).list.join("\n\n")


def record_ids(prompt: pl.Expr, responses: pl.Expr) -> pl.Expr:
    """The content id of an annotation record: SHA-256 of the prompt and the *set* of responses."""
    encoded_prompt = prompt.list.eval(
        pl.element().struct.field("role").fill_null("")
        + _ROLE
        + pl.element().struct.field("content").fill_null("").str.strip_chars()
    ).list.join(_MSG)
    encoded = pl.concat_str(
        [
            pl.lit("annotation"),
            encoded_prompt,
            responses.list.eval(pl.element().str.strip_chars()).list.sort().list.join(_MSG),
        ],
        separator=_SEP,
    )
    return encoded


def candidates(df: pl.DataFrame, dataset_ref: str | None = None, max_responses: int = 8) -> pl.DataFrame:
    """Annotation candidates from preference records (``prompt``/``chosen``/``rejected``) or from a
    frame with ``prompt`` and ``responses`` (list of strings, optional ``scores``).

    Returns one row per record: ``record_id``, ``prompt`` (messages), ``responses`` (display order),
    ``suggested_ranks`` (list or null), ``agent``, ``source``, ``dataset_version``, ``judge``,
    ``row_id``, ``prompt_chars``, ``response_chars``.
    """
    cols = set(df.columns)
    if "responses" in cols:
        # routed AI feedback carries its judge: its scores are that judge's suggestion
        judge = pl.col("judge").struct.field("kind") if "judge" in cols else pl.lit(None, pl.String)
        model = pl.col("judge").struct.field("model") if "judge" in cols else pl.lit(None, pl.String)
        base = df.select(
            "prompt",
            pl.col("responses").cast(pl.List(pl.String)),
            (
                pl.col("scores").cast(pl.List(pl.Float64)) if "scores" in cols else pl.lit(None, pl.List(pl.Float64))
            ).alias("scores"),
            judge.alias("judge"),
            pl.when(judge == "ai").then(pl.coalesce(model, pl.lit("ai-judge"))).otherwise(None).alias("agent"),
            *_common(df),
        )
    elif {"prompt", "chosen", "rejected"} <= cols:
        judge = pl.col("judge").struct.field("kind") if "judge" in cols else pl.lit(None, pl.String)
        model = pl.col("judge").struct.field("model") if "judge" in cols else pl.lit(None, pl.String)
        sc = pl.col("score_chosen") if "score_chosen" in cols else pl.lit(None, pl.Float64)
        sr = pl.col("score_rejected") if "score_rejected" in cols else pl.lit(None, pl.Float64)
        has_scores = sc.is_not_null() & sr.is_not_null()
        scores = (
            pl.when(has_scores)
            .then(pl.concat_list(sc.cast(pl.Float64), sr.cast(pl.Float64)))
            .when(judge == "ai")
            .then(pl.concat_list(pl.lit(1.0), pl.lit(0.0)))
            .otherwise(None)
        )
        base = df.select(
            "prompt",
            pl.concat_list(_text(pl.col("chosen")), _text(pl.col("rejected"))).alias("responses"),
            scores.alias("scores"),
            judge.alias("judge"),
            pl.when(judge == "ai")
            .then(pl.coalesce(model, pl.lit("ai-judge")))
            .when(has_scores)
            .then(pl.lit("model-scores"))
            .otherwise(None)
            .alias("agent"),
            *_common(df),
        )
    else:
        raise PushError(
            f"cannot annotate records with columns {sorted(cols)}: push preference records (prompt, chosen, "
            "rejected) or a frame with prompt and responses"
        )
    n = base["responses"].list.len()
    if base.height and (n.min() < 2 or n.max() > max_responses):  # type: ignore[operator]
        raise PushError(f"every record needs 2 to {max_responses} responses (found {n.min()} to {n.max()})")
    if base.height and n.min() != n.max():
        raise PushError(
            f"records have between {n.min()} and {n.max()} responses; a dataset ranks a fixed number: push each "
            "size to its own Argilla dataset (--dataset NAME)"
        )
    canon = base.select(record_ids(pl.col("prompt"), pl.col("responses"))).to_series()
    ids = nfc(canon).to_frame("c").select(pl.col("c").chash.sha2_256().str.slice(0, 32)).to_series()
    base = base.with_columns(ids.alias("record_id"))
    base = _shuffle(base).with_columns(pl.lit(dataset_ref, pl.String).alias("dataset_version"))
    suggested = pl.col("scores").list.eval((-pl.element()).rank("min").cast(pl.Int64))
    return base.with_columns(
        suggested.alias("suggested_ranks"),
        pl.col("prompt")
        .list.eval(pl.element().struct.field("content").str.len_chars())
        .list.sum()
        .alias("prompt_chars"),
        pl.col("responses").list.eval(pl.element().str.len_chars()).list.max().alias("response_chars"),
    ).unique("record_id", keep="first", maintain_order=True)


def _shuffle(base: pl.DataFrame) -> pl.DataFrame:
    """Each record's responses (and scores) in a stable pseudo-random order: sorted by a hash of
    (record id, response), so the same record always shows the same order and ``chosen`` is not
    always first."""
    n = pl.col("responses").list.len()
    scores = pl.coalesce(pl.col("scores"), pl.col("responses").list.eval(pl.lit(None, pl.Float64)))
    long = (
        base.select(
            pl.int_range(pl.len()).alias("__r"), "record_id", "responses", scores.alias("scores"), n.alias("__n")
        )
        .explode("responses", "scores")
        .with_columns((pl.col("record_id") + _SEP + pl.col("responses")).chash.sha2_256().alias("__k"))
        .sort("__r", "__k")
        .group_by("__r", maintain_order=True)
        .agg("responses", "scores")
    )
    had_scores = base["scores"].is_not_null()
    return base.with_columns(
        long["responses"].alias("responses"),
        pl.when(had_scores).then(long["scores"]).otherwise(None).alias("scores"),
    )


def _common(df: pl.DataFrame) -> list[pl.Expr]:
    cols = set(df.columns)
    source = pl.col("source").struct.field("name") if "source" in cols else pl.lit(None, pl.String)
    row_id = pl.col("id") if "id" in cols else pl.lit(None, pl.String)
    return [source.alias("source"), row_id.alias("row_id")]


def settings_for(spec: AnnotationSpec, n: int) -> Any:
    """The ``argilla.Settings`` of an annotation dataset with ``n`` candidate responses."""
    import argilla as rg

    labels = {f"response_{i}": f"Response {i}" for i in range(1, n + 1)}
    required = set(spec.required or [])
    questions: list[Any] = []
    for q in spec.questions:
        if q == "ranking":
            questions.append(
                rg.RankingQuestion(
                    name="ranking", title="Rank the responses (1 = best)", values=labels, required="ranking" in required
                )
            )
        elif q == "label":
            questions.append(
                rg.LabelQuestion(
                    name="preferred",
                    title="Which response is better?",
                    labels={**labels, "tie": "Tie"},
                    required="label" in required,
                )
            )
        elif q == "ratings":
            questions += [
                rg.RatingQuestion(
                    name=f"rating_{i}",
                    title=f"Rate response {i} (1-5)",
                    values=[1, 2, 3, 4, 5],
                    required="ratings" in required,
                )
                for i in range(1, n + 1)
            ]
        elif q == "rationale":
            questions.append(
                rg.TextQuestion(name="rationale", title="Why? (optional)", required="rationale" in required)
            )
    return rg.Settings(
        guidelines=spec.guidelines,
        fields=[
            rg.ChatField(name="prompt", title="Prompt", required=True),
            *[rg.TextField(name=f"response_{i}", title=f"Response {i}", use_markdown=True) for i in range(1, n + 1)],
        ],
        questions=questions,
        metadata=[
            rg.TermsMetadataProperty(name="source", title="Source"),
            rg.TermsMetadataProperty(name="dataset_version", title="Dataset version"),
            rg.TermsMetadataProperty(name="judge", title="Judged by"),
            rg.IntegerMetadataProperty(name="prompt_chars", title="Prompt length (chars)"),
            rg.IntegerMetadataProperty(name="response_chars", title="Longest response (chars)"),
        ],
        distribution=rg.TaskDistribution(min_submitted=spec.min_submitted),
        allow_extra_metadata=True,
    )


def ensure_dataset(client: Any, name: str, spec: AnnotationSpec, n: int) -> tuple[Any, bool]:
    """Get the Argilla dataset ``name`` (checking it fits) or create it; returns (dataset, created).

    An existing dataset gets the spec's guidelines and distribution (both may change between rounds).
    """
    import argilla as rg

    workspace = spec.workspace
    if workspace is None:
        mine = client.me.workspaces if hasattr(client.me, "workspaces") else []
        workspace = mine[0].name if mine else None
        if workspace is None:
            workspaces = list(client.workspaces)
            if not workspaces:
                raise PushError("no Argilla workspace: create one in the UI or set annotation.workspace")
            workspace = workspaces[0].name
    with warnings.catch_warnings():  # the SDK warns when the dataset does not exist yet: expected here
        warnings.simplefilter("ignore", UserWarning)
        existing = client.datasets(name=name, workspace=workspace)
    if existing is None:
        ds = rg.Dataset(name=name, workspace=workspace, settings=settings_for(spec, n), client=client)
        return ds.create(), True
    fields = {f.name for f in existing.settings.fields}
    wanted = {"prompt", *[f"response_{i}" for i in range(1, n + 1)]}
    if not wanted <= fields or f"response_{n + 1}" in fields:
        raise PushError(
            f"Argilla dataset {name!r} has fields {sorted(fields)}, which do not fit records with {n} responses: "
            "push to another dataset (--dataset NAME) or delete it in the UI"
        )
    changed = False
    if existing.settings.guidelines != spec.guidelines:
        existing.settings.guidelines = spec.guidelines
        changed = True
    if existing.settings.distribution.min_submitted != spec.min_submitted:
        existing.settings.distribution = rg.TaskDistribution(min_submitted=spec.min_submitted)
        changed = True
    if changed:
        existing.update()
    return existing, False


@dataclass(frozen=True)
class PushResult:
    dataset: str
    workspace: str
    url: str
    records: int
    created: int
    updated: int
    seconds: float
    dataset_created: bool

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["records_per_s"] = round(self.records / self.seconds, 1) if self.seconds else None
        return out


def push(
    conn: Connection,
    df: pl.DataFrame,
    name: str,
    spec: AnnotationSpec,
    dataset_ref: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PushResult:
    """Create or update the Argilla dataset ``name`` with ``df``'s records (see the module docstring).

    Args:
        conn: the server (:func:`curate.annotate.client.resolve`).
        df: preference records, or prompt + responses.
        name: Argilla dataset name.
        spec: questions, guidelines, distribution, suggestions.
        dataset_ref: ``name@version`` of the source, stored as metadata.
        progress: called with (records sent, total) after each batch.
    """
    start = time.perf_counter()
    cand = candidates(df, dataset_ref, spec.max_responses)
    if cand.height == 0:
        raise PushError("no records to push (the dataset version or run output is empty)")
    n = int(cand["responses"].list.len().max())  # type: ignore[arg-type]
    client = conn.client()
    ds, ds_created = ensure_dataset(client, name, spec, n)
    http = client.api.http_client
    questions = {q["name"]: q["id"] for q in http.get(f"/api/v1/datasets/{ds.id}/questions").json()["items"]}
    # the bulk endpoint's response drops its updated ids: count created records from the totals instead
    before = _total(http, ds.id)
    rows = cand.select(
        "record_id",
        "prompt",
        "responses",
        "suggested_ranks",
        "agent",
        "source",
        "dataset_version",
        "judge",
        "row_id",
        "prompt_chars",
        "response_chars",
    )
    for offset in range(0, rows.height, BATCH):
        items = [_item(r, n, questions, spec.suggestions) for r in rows.slice(offset, BATCH).iter_rows(named=True)]
        resp = http.put(f"/api/v1/datasets/{ds.id}/records/bulk", json={"items": items})
        if resp.status_code >= 400:
            raise PushError(f"Argilla refused the records ({resp.status_code}): {resp.text[:500]}")
        if progress:
            progress(min(offset + BATCH, rows.height), rows.height)
    created = _total(http, ds.id) - before
    updated = rows.height - created
    return PushResult(
        dataset=name,
        workspace=ds.workspace.name,
        url=f"{conn.url}/dataset/{ds.id}/annotation-mode",
        records=rows.height,
        created=created,
        updated=updated,
        seconds=round(time.perf_counter() - start, 3),
        dataset_created=ds_created,
    )


def _total(http: Any, dataset_id: Any) -> int:
    resp = http.get(f"/api/v1/datasets/{dataset_id}/progress")
    resp.raise_for_status()
    return int(resp.json().get("total", 0))


_AGENT_BAD = re.compile(r"[^a-zA-Z0-9\-_:./\s]")


def agent_name(name: str | None) -> str | None:
    """A suggestion's agent as Argilla accepts it (letters, digits, ``-_:./`` and spaces; 200 chars).

    >>> agent_name("/models/judge#v2 prompt:ab12")
    '/models/judge-v2 prompt:ab12'
    """
    if name is None:
        return None
    clean = _AGENT_BAD.sub("-", name)[-200:]
    return clean if re.search(r"[a-zA-Z0-9]", clean) else "ai-judge"


def _item(r: dict[str, Any], n: int, questions: dict[str, str], suggestions: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"prompt": [{"role": m["role"], "content": m["content"]} for m in r["prompt"]]}
    for i, text in enumerate(r["responses"], 1):
        fields[f"response_{i}"] = text
    metadata = {
        k: r[k]
        for k in ("source", "dataset_version", "judge", "prompt_chars", "response_chars", "row_id")
        if r[k] is not None
    }
    item: dict[str, Any] = {"external_id": r["record_id"], "fields": fields, "metadata": metadata}
    ranks = r["suggested_ranks"]
    if suggestions and ranks is not None:
        sugg = []
        agent = agent_name(r["agent"])
        if "ranking" in questions:
            value = [{"value": f"response_{i}", "rank": int(rank)} for i, rank in enumerate(ranks, 1)]
            sugg.append({"question_id": questions["ranking"], "value": value, "agent": agent, "type": "model"})
        if "preferred" in questions:
            best = [i for i, rank in enumerate(ranks, 1) if rank == 1]
            label = f"response_{best[0]}" if len(best) == 1 else "tie"
            sugg.append({"question_id": questions["preferred"], "value": label, "agent": agent, "type": "model"})
        item["suggestions"] = sugg
    return item
