"""Pull human responses from Argilla and build preference pairs (and KTO rows) from them.

Reads every record with its responses, aggregates the annotators per record
(:mod:`curate.annotate.aggregate`), computes agreement (:mod:`curate.annotate.agreement`) and
returns frames in the data contract (``schemas.kinds``): preference rows with
``judge = {kind: human, annotators: [...]}`` and KTO rows (best response true, worst false).
:func:`publish_annotations` commits them as the next dataset version with the annotation
snapshot (counts, rule, agreement, per-annotator counts, no secrets) in the manifest.

Example:
    >>> # conn = resolve(); pulled = pull(conn, "support-prefs", AnnotationSpec())
    >>> # publish_annotations(pulled, "support-prefs-annotated", AnnotationSpec())
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from curate.annotate.aggregate import RESPONSES_SCHEMA, Aggregated, aggregate
from curate.annotate.agreement import agreement_report
from curate.annotate.client import Connection
from schemas.annotation import AnnotationSpec
from schemas.ids import with_ids
from schemas.kinds import JUDGE, MESSAGES, SOURCE, Kind, polars_schema

PAGE = 1000


class PullError(ValueError):
    """The Argilla dataset cannot be pulled (missing, wrong shape); the message says what to do."""


@dataclass
class Pulled:
    """What a pull produced: ``preference`` and ``kto`` frames (contract columns, no split yet),
    the per-record ``decisions``, the raw ``responses`` table and the ``snapshot`` for the manifest."""

    preference: pl.DataFrame
    kto: pl.DataFrame
    decisions: pl.DataFrame
    responses: pl.DataFrame
    snapshot: dict[str, Any]


def _find_dataset(client: Any, name: str, workspace: str | None) -> Any:
    if workspace is not None:
        with warnings.catch_warnings():  # a missing dataset is reported below, with the known ones
            warnings.simplefilter("ignore", UserWarning)
            ds = client.datasets(name=name, workspace=workspace)
    else:
        ds = next((d for d in client.datasets if d.name == name), None)
    if ds is None:
        known = ", ".join(sorted(d.name for d in client.datasets)) or "none"
        raise PullError(f"no Argilla dataset {name!r} (datasets: {known}); push one with `curate annotate push`")
    return ds


def fetch_records(http: Any, dataset_id: Any, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Every record of the dataset with responses and suggestions (raw API dicts), in pages."""
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        resp = http.get(
            f"/api/v1/datasets/{dataset_id}/records",
            params={"offset": offset, "limit": PAGE, "include": ["responses", "suggestions"]},
        )
        resp.raise_for_status()
        items = resp.json()["items"]
        out.extend(items)
        offset += len(items)
        if progress:
            progress(offset)
        if len(items) < PAGE:
            return out


def _usernames(http: Any) -> dict[str, str]:
    resp = http.get("/api/v1/users")
    if resp.status_code != 200:  # only owners may list users: fall back to ids
        return {}
    return {u["id"]: u["username"] for u in resp.json()["items"]}


def tables(
    raw: list[dict[str, Any]], users: dict[str, str], questions: dict[str, str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Raw records -> (records, responses) frames.

    ``questions`` maps question ids to names (suggestions carry ids). ``records``: record_id,
    argilla_id, prompt, responses (display order), source, dataset_version, suggested (index of the
    suggested best, or null). ``responses``: see :data:`curate.annotate.aggregate.RESPONSES_SCHEMA`
    plus ``rationale``.
    """
    rec_rows, resp_rows = [], []
    for r in raw:
        fields = r.get("fields") or {}
        names = sorted((k for k in fields if k.startswith("response_")), key=lambda k: int(k.split("_")[1]))
        meta = r.get("metadata") or {}
        rid = r.get("external_id") or r["id"]
        suggested = None
        for s in r.get("suggestions") or []:
            qname = questions.get(s.get("question_id"), "")
            if qname == "ranking" and isinstance(s.get("value"), list):
                firsts = [v["value"] for v in s["value"] if v.get("rank") == 1]
                if len(firsts) == 1:
                    suggested = names.index(firsts[0]) if firsts[0] in names else None
            elif qname == "preferred" and suggested is None and s.get("value") in names:
                suggested = names.index(s["value"])
        rec_rows.append(
            {
                "record_id": rid,
                "argilla_id": r["id"],
                "prompt": [{"role": m.get("role"), "content": m.get("content")} for m in fields.get("prompt") or []],
                "responses": [fields.get(k) or "" for k in names],
                "source": meta.get("source"),
                "dataset_version": meta.get("dataset_version"),
                "suggested": suggested,
            }
        )
        for resp in r.get("responses") or []:
            values = resp.get("values") or {}
            ranking = (values.get("ranking") or {}).get("value")
            ranks = None
            if isinstance(ranking, list) and ranking:
                by_name = {v["value"]: v["rank"] for v in ranking}
                ranks = [by_name.get(k) for k in names] if all(k in by_name for k in names) else None
            label = (values.get("preferred") or {}).get("value")
            preferred = -1 if label == "tie" else (names.index(label) if label in names else None)
            ratings = [(values.get(f"rating_{i}") or {}).get("value") for i in range(1, len(names) + 1)]
            resp_rows.append(
                {
                    "record_id": rid,
                    "annotator": users.get(resp["user_id"], resp["user_id"]),
                    "status": resp.get("status"),
                    "ranks": ranks,
                    "preferred": preferred,
                    "ratings": [float(x) for x in ratings] if all(x is not None for x in ratings) else None,
                    "rationale": (values.get("rationale") or {}).get("value"),
                }
            )
    records = pl.DataFrame(
        rec_rows,
        schema={
            "record_id": pl.String,
            "argilla_id": pl.String,
            "prompt": MESSAGES,
            "responses": pl.List(pl.String),
            "source": pl.String,
            "dataset_version": pl.String,
            "suggested": pl.Int64,
        },
    )
    responses = pl.DataFrame(resp_rows, schema={**RESPONSES_SCHEMA, "rationale": pl.String})
    return records, responses


def _message(role: str, text: pl.Expr) -> pl.Expr:
    return pl.concat_list([pl.struct(pl.lit(role).alias("role"), text.alias("content"))]).cast(MESSAGES)


def build_preference(records: pl.DataFrame, agg: Aggregated, origin: str) -> pl.DataFrame:
    """Preference rows (contract columns) from the aggregated pairs."""
    df = agg.pairs.join(records.select("record_id", "prompt", "responses", "source"), "record_id")
    src = pl.struct(
        pl.coalesce(pl.col("source"), pl.lit("argilla")).alias("name"),
        (pl.lit(origin + "/") + pl.col("record_id")).alias("uri"),
        pl.lit(None, pl.String).alias("sha256"),
        pl.lit(None, pl.Int64).alias("row"),
    ).cast(SOURCE)
    judge = pl.struct(
        pl.lit("human").alias("kind"), pl.lit(None, pl.String).alias("model"), pl.col("annotators").alias("annotators")
    ).cast(JUDGE)
    out = df.select(
        "prompt",
        _message("assistant", pl.col("responses").list.get(pl.col("chosen"))).alias("chosen"),
        _message("assistant", pl.col("responses").list.get(pl.col("rejected"))).alias("rejected"),
        pl.col("score_chosen").cast(pl.Float64),
        pl.col("score_rejected").cast(pl.Float64),
        pl.col("margin").cast(pl.Float64),
        judge.alias("judge"),
        src.alias("source"),
    )
    out = with_ids(out, Kind.PREFERENCE).unique("id", keep="first").sort("id")
    return out.select(list(polars_schema(Kind.PREFERENCE)))


def build_kto(preference: pl.DataFrame) -> pl.DataFrame:
    """KTO rows: each pair's chosen response labelled true, its rejected one false (deduplicated)."""
    good = preference.select("prompt", pl.col("chosen").alias("completion"), pl.lit(True).alias("label"), "source")
    bad = preference.select("prompt", pl.col("rejected").alias("completion"), pl.lit(False).alias("label"), "source")
    out = with_ids(pl.concat([good, bad]), Kind.KTO).unique("id", keep="first").sort("id")
    return out.select(list(polars_schema(Kind.KTO)))


def annotator_counts(responses: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Responses per annotator and status: ``{user: {submitted, discarded, draft}}``."""
    if responses.height == 0:
        return {}
    counts = responses.group_by("annotator", "status").len().sort("annotator", "status")
    out: dict[str, dict[str, int]] = {}
    for user, status, n in counts.iter_rows():
        out.setdefault(user, {"submitted": 0, "discarded": 0, "draft": 0})[status] = int(n)
    return out


def agreement_of(agg: Aggregated) -> dict[str, Any]:
    """Agreement on each annotator's preferred response (``tie`` when they ranked several first)."""
    votes = agg.votes
    if votes.height == 0:
        return agreement_report(pl.DataFrame(schema={"unit": pl.String, "annotator": pl.String, "value": pl.String}))
    choices = votes.group_by("record_id", "annotator").agg(
        pl.col("candidate").filter(pl.col("top")).first().cast(pl.String).fill_null("tie").alias("value")
    )
    choices = choices.rename({"record_id": "unit"})
    rated = votes.filter(pl.col("rating").is_not_null()).select(
        pl.concat_str("record_id", pl.lit(":"), pl.col("candidate").cast(pl.String)).alias("unit"),
        "annotator",
        pl.col("rating").alias("value"),
    )
    return agreement_report(choices, rated if rated.height else None)


def pull(
    conn: Connection,
    name: str,
    spec: AnnotationSpec,
    workspace: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Pulled:
    """Read the Argilla dataset ``name``, aggregate its responses, build preference and KTO rows."""
    client = conn.client()
    ds = _find_dataset(client, name, workspace or spec.workspace)
    http = client.api.http_client
    questions = {q["id"]: q["name"] for q in http.get(f"/api/v1/datasets/{ds.id}/questions").json()["items"]}
    if not {"ranking", "preferred"} & set(questions.values()) and not any(
        q.startswith("rating_") for q in questions.values()
    ):
        raise PullError(
            f"Argilla dataset {name!r} has no ranking, preferred or rating_N question: was it pushed by curate?"
        )
    raw = fetch_records(http, ds.id, progress)
    records, responses = tables(raw, _usernames(http), questions)
    agg = aggregate(
        responses.drop("rationale"),
        records["record_id"].to_list(),
        spec.aggregate,
        records.select("record_id", "suggested").drop_nulls(),
    )
    origin = f"argilla://{ds.workspace.name}/{name}"
    preference = build_preference(records, agg, origin)
    kto = build_kto(preference)
    digest = hashlib.sha256(responses.sort("record_id", "annotator").write_json().encode()).hexdigest()
    snapshot = {
        "argilla": {"url": conn.url, "workspace": ds.workspace.name, "dataset": name, "dataset_id": str(ds.id)},
        "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": records.height,
        "responses": responses.height,
        "responses_sha256": digest,
        "outcomes": agg.counts(),
        "pairs": preference.height,
        "kto_rows": kto.height,
        "aggregate": spec.aggregate.model_dump(mode="json"),
        "agreement": agreement_of(agg),
        "annotators": annotator_counts(responses),
        "source_versions": sorted(v for v in records["dataset_version"].unique().to_list() if v),
    }
    return Pulled(preference=preference, kto=kto, decisions=agg.decisions, responses=responses, snapshot=snapshot)


def publish_annotations(
    pulled: Pulled, dataset: str, spec: AnnotationSpec, store_root: str | None = None
) -> dict[str, Any]:
    """Publish the pulled preference rows (and KTO rows with ``output.kto``) as next versions.

    Returns ``{"preference": {ref, version, created, rows}, "kto": {...}}``; unchanged content
    publishes nothing (``created: false``).
    """
    from curate.store import Store
    from curate.store.publish import frame_batches, publish_records
    from schemas.recipe import SplitSpec

    store = Store(store_root or spec.output.store)
    out: dict[str, Any] = {}
    targets = [("preference", Kind.PREFERENCE, pulled.preference, dataset)]
    if spec.output.kto:
        targets.append(("kto", Kind.KTO, pulled.kto, spec.output.kto_dataset or f"{dataset}-kto"))
    for key, kind, df, name in targets:
        if df.height == 0:
            out[key] = {"dataset": name, "created": False, "rows": 0, "reason": "no decided records yet"}
            continue
        spec_text = json.dumps(spec.model_dump(mode="json"), indent=2, sort_keys=True)
        manifest = {
            "kind": kind.value,
            "recipe": {  # what made this version: the annotation spec (the aggregation rule in particular)
                "name": f"annotate pull {pulled.snapshot['argilla']['dataset']}",
                "sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
                "text": spec_text,
            },
            "inputs": [
                {
                    "source": "argilla",
                    "uri": f"argilla://{pulled.snapshot['argilla']['workspace']}/{pulled.snapshot['argilla']['dataset']}",
                    "sha256": pulled.snapshot["responses_sha256"],
                    "format": "argilla",
                    "rows": pulled.snapshot["records"],
                }
            ],
            "stages": [],
            "splits": SplitSpec().model_dump(mode="json"),
            "accounting": None,
            "annotation": pulled.snapshot,
            "orchestrator_run_id": None,
            "code_version": _code_version(),
        }
        # the same publish as a run's: splits, split-leak check, repair of an earlier crash, card
        res = publish_records(
            frame_batches(df), kind, store, name, SplitSpec(), lambda leaks, m=manifest: {**m, "split_leaks": leaks}
        )
        out[key] = {
            "dataset": name,
            "ref": res["ref"],
            "version": res["version"],
            "created": res["created"],
            "rows": df.height,
            "store": str(store.root),
        }
    return out


def _code_version() -> dict[str, Any]:
    from schemas.provenance import code_version

    return code_version().model_dump()
