"""Run the real ``argilla-server`` 2.8.0 without Elasticsearch and (by default) without Redis.

This module runs INSIDE the argilla-server virtual environment (``curate argilla up`` starts it as
``<server-venv>/bin/python launcher.py serve``), so it imports only the standard library and
``argilla_server`` (plus what argilla-server itself depends on: SQLAlchemy, uvicorn). Nothing of
argilla-server is edited on disk; everything below is registered or patched at run time:

* **Search engine** ``curate_db`` (:class:`DatabaseSearchEngine`), registered with
  ``@SearchEngine.register`` and chosen by ``ARGILLA_SEARCH_ENGINE=curate_db``. Argilla keeps every
  record, response and suggestion in its own database (SQLite here); the search engine only has to
  answer *which record ids* match (handlers load the records themselves), so it answers with SQL over
  those tables. Index maintenance calls are no-ops.
* **Background jobs**: without ``ARGILLA_REDIS_URL`` the start-up Redis ping is answered by a stub
  and the rq jobs' ``.delay()`` runs the (async) job as a task on the server's own event loop
  (after the current request), instead of queueing it in Redis for a worker process.
* **UI temp dirs**: each import of ``argilla_server`` copies the 14 MB web UI into
  ``tempfile.mkdtemp()`` and never deletes it; here ``tempfile.tempdir`` points at
  ``$CURATE_ARGILLA_TMP/<pid>``, removed at exit (``curate argilla up``/``down`` also sweep folders
  of dead processes).
* SQLite runs in WAL mode, so searches do not wait on writers.
* Record webhook events are built only when a webhook listens (:func:`_patch_record_events`): the
  server otherwise spends most of a bulk upsert building events nobody receives.

Commands (environment: ``ARGILLA_HOME_PATH``, ``ARGILLA_DATABASE_URL``, ``ARGILLA_AUTH_SECRET_KEY``;
``CURATE_ARGILLA_CREDENTIALS`` for ``init``)::

    python launcher.py init                         # migrate the database, create the owner if missing
    python launcher.py serve --host 127.0.0.1 --port 6900
    python launcher.py worker                       # with ARGILLA_REDIS_URL only: runs the rq jobs
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ENGINE_NAME = "curate_db"


def _private_tmp() -> None:
    """Point ``tempfile`` at a per-process folder that is removed when the process exits."""
    root = os.environ.get("CURATE_ARGILLA_TMP")
    if not root:
        return
    folder = Path(root) / str(os.getpid())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(folder)
    atexit.register(shutil.rmtree, folder, True)


_private_tmp()
os.environ.setdefault("ARGILLA_SEARCH_ENGINE", ENGINE_NAME)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
_IN_PROCESS_JOBS = not os.environ.get("ARGILLA_REDIS_URL")
if _IN_PROCESS_JOBS:
    os.environ["ARGILLA_REDIS_URL"] = "redis://127.0.0.1:1/0"  # never connected to: see _patch_jobs

# Importing argilla_server builds the app (and copies the UI into the private temp dir above).
import argilla_server._app as argilla_app  # noqa: E402
from argilla_server.enums import (  # noqa: E402
    MetadataPropertyType,
    ResponseStatusFilter,
    SortOrder,
)
from argilla_server.models import (  # noqa: E402
    Question,
    Record,
    Response,
    Suggestion,
    Vector,
)
from argilla_server.search_engine.base import (  # noqa: E402
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from sqlalchemy import Engine, Float, Text, and_, cast, event, exists, false, func, not_, or_, select, true  # noqa: E402


def _user_rank(record_id: Any, seed: Any) -> int:
    """A record's place in one user's queue: a stable pseudo-random order that differs per user."""
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@event.listens_for(Engine, "connect")
def _sqlite_setup(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: WAL (searches never wait on writers) and the ``curate_user_rank`` SQL function."""
    if "sqlite" in type(dbapi_connection).__module__ or "sqlite" in str(type(dbapi_connection)).lower():
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function("curate_user_rank", 2, _user_rank, deterministic=True)


def _session() -> Any:
    from argilla_server.database import AsyncSessionLocal

    return AsyncSessionLocal()


def _json_text(column: Any, key: str) -> Any:
    return column[key].as_string()


def _json_number(column: Any, key: str) -> Any:
    return column[key].as_float()


class _ScopeSQL:
    """Translate argilla's filter scopes into SQL conditions on ``Record``."""

    def __init__(self, dataset_id: Any):
        self.dataset_id = dataset_id

    def _question_id(self, name: str) -> Any:
        return (
            select(Question.id).where(Question.dataset_id == self.dataset_id, Question.name == name).scalar_subquery()
        )

    def condition(self, flt: Any) -> Any:
        if isinstance(flt, AndFilter):
            return and_(true(), *[self.condition(f) for f in flt.filters])
        scope = flt.scope
        if isinstance(scope, RecordFilterScope):
            return self._match(getattr(Record, scope.property), flt, numeric=False)
        if isinstance(scope, MetadataFilterScope):
            if isinstance(flt, RangeFilter):
                return self._match(_json_number(Record.metadata_, scope.metadata_property), flt, numeric=True)
            return self._match(_json_text(Record.metadata_, scope.metadata_property), flt, numeric=False)
        if isinstance(scope, SuggestionFilterScope):
            return self._suggestion(scope, flt)
        if isinstance(scope, ResponseFilterScope):
            return self._response(scope, flt)
        raise ValueError(f"unsupported filter scope {scope!r}")

    @staticmethod
    def _match(column: Any, flt: Any, numeric: bool) -> Any:
        if isinstance(flt, TermsFilter):
            values = [str(v) for v in flt.values]
            return column.in_(values) if values else false()
        conds = []
        if flt.ge is not None:
            conds.append(column >= flt.ge)
        if flt.le is not None:
            conds.append(column <= flt.le)
        return and_(true(), *conds)

    def _suggestion(self, scope: Any, flt: Any) -> Any:
        prop = str(scope.property)
        if prop == "value":  # a whole JSON column: compare its JSON text (strings quoted, lists searched)
            text = cast(Suggestion.value, Text)
            if isinstance(flt, RangeFilter):  # JSON null is stored as the text 'null' (which casts to 0)
                cond = and_(text != "null", self._match(cast(text, Float), flt, numeric=True))
            else:
                encoded = [json.dumps(v) for v in flt.values] + [str(v) for v in flt.values]
                cond = or_(text.in_(encoded), *[text.like(f'%"{v}"%') for v in flt.values])
        elif prop == "score":
            score = cast(Suggestion.score, Text)
            cond = and_(score.is_not(None), score != "null", self._match(cast(score, Float), flt, numeric=True))
        else:
            cond = self._match(getattr(Suggestion, prop), flt, numeric=False)
        return exists().where(
            Suggestion.record_id == Record.id, Suggestion.question_id == self._question_id(scope.question), cond
        )

    def _response(self, scope: Any, flt: Any) -> Any:
        owner = [Response.user_id == scope.user.id] if scope.user is not None else []
        if scope.question:
            value = Response.values[scope.question]["value"]
            if isinstance(flt, RangeFilter):
                cond = self._match(value.as_float(), flt, numeric=True)
            else:
                cond = or_(
                    value.as_string().in_([str(v) for v in flt.values]),
                    *[cast(value, Text).like(f'%"{v}"%') for v in flt.values],
                )
            return exists().where(Response.record_id == Record.id, *owner, cond)
        if scope.property == "status" and isinstance(flt, TermsFilter):
            values = [str(v) for v in flt.values]
            conds = []
            if ResponseStatusFilter.pending.value in values:
                conds.append(not_(exists().where(Response.record_id == Record.id, *owner)))
                values = [v for v in values if v != ResponseStatusFilter.pending.value]
            if values:
                conds.append(exists().where(Response.record_id == Record.id, *owner, Response.status.in_(values)))
            return or_(false(), *conds)
        raise ValueError(f"unsupported response filter {scope!r}")

    def order(self, order: Any) -> Any:
        scope = order.scope
        if isinstance(scope, RecordFilterScope):
            col = getattr(Record, scope.property)
        elif isinstance(scope, MetadataFilterScope):
            col = Record.metadata_[scope.metadata_property].as_float()
        elif isinstance(scope, SuggestionFilterScope):
            prop = str(scope.property)
            column = Suggestion.score if prop == "score" else Suggestion.value
            inner = cast(cast(column, Text), Float)
            if prop in ("agent", "type"):
                inner = getattr(Suggestion, prop)
            col = (
                select(inner)
                .where(Suggestion.record_id == Record.id, Suggestion.question_id == self._question_id(scope.question))
                .limit(1)
                .scalar_subquery()
            )
        elif isinstance(scope, ResponseFilterScope):
            owner = [Response.user_id == scope.user.id] if scope.user is not None else []
            inner = Response.values[scope.question]["value"].as_float() if scope.question else Response.status
            agg = func.avg(inner) if scope.question else func.min(inner)
            col = select(agg).where(Response.record_id == Record.id, *owner).scalar_subquery()
        else:
            raise ValueError(f"unsupported sort scope {scope!r}")
        return col.desc() if order.order == SortOrder.desc else col.asc()


def _text_condition(dataset: Any, query: TextQuery | str | None) -> Any:
    """Every word of the query must appear (case-insensitive) in the field, or in any field.

    On SQLite, ``LIKE`` is already case-insensitive for ASCII, so no ``lower()`` is applied (it
    costs a third of the scan); other databases use ``ILIKE``.
    """
    if query is None:
        return true()
    if isinstance(query, str):
        query = TextQuery(q=query)
    words = [w.strip('"') for w in str(query.q).split() if w.strip('"')]
    if not words:
        return true()
    names = [query.field] if query.field else [f.name for f in dataset.fields if not f.is_image]
    if not names:
        return false()
    haystack = func.coalesce(_json_text(Record.fields, names[0]), "")
    for name in names[1:]:
        haystack = haystack + " " + func.coalesce(_json_text(Record.fields, name), "")
    from argilla_server.settings import settings

    if settings.database_is_sqlite:
        return and_(*[haystack.like(f"%{_escape_like(w)}%", escape="\\") for w in words])
    return and_(*[haystack.ilike(f"%{_escape_like(w)}%", escape="\\") for w in words])


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _user_order(record_ids: list[Any], user_id: Any) -> list[Any]:
    """Deterministic per-user shuffle (Elasticsearch's ``random_score`` seeded by the user id)."""
    seed = str(user_id).encode()
    return sorted(record_ids, key=lambda rid: hashlib.blake2b(seed + str(rid).encode(), digest_size=8).digest())


@SearchEngine.register(engine_name=ENGINE_NAME)
class DatabaseSearchEngine(SearchEngine):
    """A search engine answering from Argilla's own database (SQLite or PostgreSQL)."""

    @classmethod
    async def new_instance(cls) -> DatabaseSearchEngine:
        return cls()

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"engine": ENGINE_NAME, "description": "answers from the Argilla database (no index)"}

    # Records live in the database: there is no index to maintain.
    async def create_index(self, dataset: Any) -> None:
        return None

    async def delete_index(self, dataset: Any) -> None:
        return None

    async def configure_metadata_property(self, dataset: Any, metadata_property: Any) -> None:
        return None

    async def configure_index_vectors(self, vector_settings: Any) -> None:
        return None

    async def index_records(self, dataset: Any, records: Any) -> None:
        return None

    async def partial_record_update(self, record: Any, **update: Any) -> None:
        return None

    async def delete_records(self, dataset: Any, records: Any) -> None:
        return None

    async def update_record_response(self, response: Any) -> None:
        return None

    async def delete_record_response(self, response: Any) -> None:
        return None

    async def update_record_suggestion(self, suggestion: Any) -> None:
        return None

    async def delete_record_suggestion(self, suggestion: Any) -> None:
        return None

    async def get_dataset_progress(self, dataset: Any) -> dict:
        if dataset.is_draft:
            return {}
        async with _session() as db:
            rows = (
                await db.execute(
                    select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
                )
            ).all()
        counts = {str(getattr(s, "value", s)): int(n) for s, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Any, user: Any) -> dict:
        if dataset.is_draft:
            return {}
        async with _session() as db:
            rows = (
                await db.execute(
                    select(Response.status, func.count())
                    .join(Record, Record.id == Response.record_id)
                    .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                    .group_by(Response.status)
                )
            ).all()
        counts = {str(getattr(s, "value", s)): int(n) for s, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def search(
        self,
        dataset: Any,
        query: TextQuery | str | None = None,
        filter: Any = None,
        sort: list[Any] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Any = None,
    ) -> SearchResponses:
        sql = _ScopeSQL(dataset.id)
        where = [Record.dataset_id == dataset.id, _text_condition(dataset, query)]
        if filter is not None:
            where.append(sql.condition(filter))
        from argilla_server.settings import settings

        if user_id is not None and not sort and not settings.database_is_sqlite:
            async with _session() as db:  # an annotator's queue, ordered per user in Python
                every = list((await db.execute(select(Record.id).where(*where))).scalars())
            ids = _user_order(every, user_id)[offset : offset + limit]
            return SearchResponses(items=[SearchResponseItem(record_id=i) for i in ids], total=len(every))
        if user_id is not None and not sort:  # an annotator's queue: each user gets their own order
            order = [func.curate_user_rank(Record.id, str(user_id)), Record.id]
        else:
            order = [*[sql.order(o) for o in sort or []], Record.inserted_at.asc(), Record.id]
        # one scan: the page of ids, each row carrying the total number of matches
        stmt = select(Record.id, func.count().over()).where(*where).order_by(*order).offset(offset).limit(limit)
        async with _session() as db:
            rows = (await db.execute(stmt)).all()
            if rows:
                total = int(rows[0][1])
            else:
                total = (await db.execute(select(func.count()).select_from(Record).where(*where))).scalar_one()
        ids = [r[0] for r in rows]
        return SearchResponses(items=[SearchResponseItem(record_id=i, score=None) for i in ids], total=int(total))

    async def compute_metrics_for(self, metadata_property: Any) -> Any:
        name = metadata_property.name
        where = [Record.dataset_id == metadata_property.dataset_id]
        async with _session() as db:
            if metadata_property.type == MetadataPropertyType.terms:
                value = _json_text(Record.metadata_, name)
                rows = (
                    await db.execute(select(value, func.count()).where(*where, value.is_not(None)).group_by(value))
                ).all()
                values = [TermsMetrics.TermCount(term=str(t), count=int(n)) for t, n in rows]
                values.sort(key=lambda tc: (-tc.count, tc.term))
                return TermsMetrics(total=sum(v.count for v in values), values=values)
            value = _json_number(Record.metadata_, name)
            lo, hi = (await db.execute(select(func.min(value), func.max(value)).where(*where))).one()
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(min=None if lo is None else int(lo), max=None if hi is None else int(hi))
        return FloatMetadataMetrics(min=lo, max=hi)

    async def similarity_search(
        self,
        dataset: Any,
        vector_settings: Any,
        value: list[float] | None = None,
        record: Any = None,
        query: TextQuery | str | None = None,
        filter: Any = None,
        max_results: int = 100,
        order: Any = None,
        threshold: float | None = None,
    ) -> SearchResponses:
        """Exact (brute-force) cosine similarity over the dataset's stored vectors."""
        target = value or (record.vector_value_by_vector_settings(vector_settings) if record is not None else None)
        if not target:
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        sql = _ScopeSQL(dataset.id)
        where = [Record.dataset_id == dataset.id, _text_condition(dataset, query)]
        if filter is not None:
            where.append(sql.condition(filter))
        if record is not None:
            where.append(Record.id != record.id)
        async with _session() as db:
            rows = (
                await db.execute(
                    select(Vector.record_id, Vector.value)
                    .join(Record, Record.id == Vector.record_id)
                    .where(Vector.vector_settings_id == vector_settings.id, *where)
                )
            ).all()
        norm_t = sum(x * x for x in target) ** 0.5 or 1.0
        scored = []
        for rid, vec in rows:
            norm_v = sum(x * x for x in vec) ** 0.5 or 1.0
            scored.append((sum(a * b for a, b in zip(target, vec, strict=False)) / (norm_t * norm_v), rid))
        least = str(getattr(order, "value", order)) == "least_similar"
        scored.sort(key=lambda t: t[0], reverse=not least)
        if threshold is not None:
            scored = [s for s in scored if s[0] >= threshold]
        scored = scored[:max_results]
        return SearchResponses(
            items=[SearchResponseItem(record_id=rid, score=score) for score, rid in scored], total=len(scored)
        )


class _NoRedis:
    """Stands in for the Redis connection that argilla pings at start-up (jobs run in-process)."""

    def ping(self) -> bool:
        return True


class _InProcessJob:
    def __init__(self, name: str):
        self.id = f"in-process-{name}"
        self.status = "queued"

    def get_status(self) -> str:
        return self.status


_TASKS: set[Any] = set()


def _in_process_delay(func: Any) -> Any:
    def delay(*args: Any, **kwargs: Any) -> _InProcessJob:
        job = _InProcessJob(func.__name__)

        async def run() -> None:
            await asyncio.sleep(0)  # let the calling request commit first
            job.status = "started"
            try:
                await func(*args, **kwargs)
                job.status = "finished"
            except Exception as e:  # a failed job must not take the server down; it is logged
                job.status = "failed"
                print(f"[curate launcher] job {func.__name__} failed: {type(e).__name__}: {e}", file=sys.stderr)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(run())
            return job
        task = loop.create_task(run())
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)
        return job

    return delay


def _patch_jobs() -> None:
    """Without Redis: answer the start-up ping, run rq jobs as tasks on the server's event loop."""
    from argilla_server.jobs import dataset_jobs, hub_jobs, queues, webhook_jobs

    stub = _NoRedis()
    queues.REDIS_CONNECTION = stub
    argilla_app.REDIS_CONNECTION = stub
    for module in (dataset_jobs, hub_jobs, webhook_jobs):
        for name in dir(module):
            obj = getattr(module, name)
            if callable(obj) and hasattr(obj, "delay") and name.endswith("_job"):
                obj.delay = _in_process_delay(obj)


def _patch_record_events() -> None:
    """Build record webhook events only when a webhook listens for them.

    argilla-server builds every record event (a dataset query with five relationships plus a
    pydantic dump) before looking for enabled webhooks, once per record of a bulk upsert: with no
    webhook configured that is most of a push's server time. The wrapper asks first and skips the
    build when nobody listens; with webhooks configured, events are built and sent exactly as before.
    """
    import importlib

    from argilla_server.contexts import webhooks
    from argilla_server.webhooks.v1 import records as record_events

    original = record_events.notify_record_event

    async def notify_record_event(db: Any, record_event: Any, record: Any) -> list:
        listening = [w for w in await webhooks.list_enabled_webhooks(db) if record_event in w.events]
        if not listening:
            return []
        return await original(db, record_event, record)

    for name in ("bulk.records_bulk", "contexts.records", "contexts.datasets", "contexts.distribution"):
        module = importlib.import_module(f"argilla_server.{name}")
        if getattr(module, "notify_record_event_v1", None) is original:
            module.notify_record_event_v1 = notify_record_event


async def _init_owner(credentials: dict) -> bool:
    """Create the owner user (and its workspace) unless a user with that name exists."""
    from argilla_server.contexts import accounts
    from argilla_server.models import User, UserRole, Workspace

    async with _session() as db:
        if await accounts.get_user_by_username(db, credentials["username"]):
            return False
        workspace = (
            await db.execute(select(Workspace).filter_by(name=credentials["workspace"]))
        ).scalar_one_or_none() or Workspace(name=credentials["workspace"])
        await User.create(
            db,
            first_name=credentials["username"],
            username=credentials["username"],
            role=UserRole.owner,
            api_key=credentials["api_key"],
            password_hash=accounts.hash_password(credentials["password"]),
            workspaces=[workspace],
        )
    return True


def cmd_init() -> None:
    """Migrate the database to the server's schema and create the owner from the credentials file."""
    import alembic.config
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic.config.main(argv=["-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])
    path = os.environ.get("CURATE_ARGILLA_CREDENTIALS")
    if path:
        created = asyncio.run(_init_owner(json.loads(Path(path).read_text())))
        print(json.dumps({"owner_created": created}))


def cmd_serve(host: str, port: int) -> None:
    import uvicorn

    if _IN_PROCESS_JOBS:
        _patch_jobs()
    _patch_record_events()
    uvicorn.run(argilla_app.app, host=host, port=port, log_level="warning", access_log=False)


def cmd_worker() -> None:
    """With ``ARGILLA_REDIS_URL``: an rq worker for argilla's queues (``curate argilla up`` starts one)."""
    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE, REDIS_CONNECTION
    from rq import Worker

    Worker([HIGH_QUEUE, DEFAULT_QUEUE], connection=REDIS_CONNECTION).work(with_scheduler=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run argilla-server with curate's database search engine.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("init", help="migrate the database and create the owner user")
    sub.add_parser("worker", help="run an rq worker (only with ARGILLA_REDIS_URL)")
    serve = sub.add_parser("serve", help="serve the API and UI")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=6900)
    args = parser.parse_args(argv)
    if args.cmd == "init":
        cmd_init()
    elif args.cmd == "worker":
        if _IN_PROCESS_JOBS:
            parser.error("the worker needs ARGILLA_REDIS_URL (without it, jobs run inside the server)")
        cmd_worker()
    else:
        cmd_serve(args.host, args.port)


if __name__ == "__main__":
    main()
