"""Push -> annotate as two users -> pull, against the real local argilla-server (no mocks)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from curate.annotate.client import Connection
from curate.annotate.progress import AnnotationTimeout, progress, wait_until_complete
from curate.annotate.server import ArgillaHome
from curate.annotate.users import add_user, api_key_of
from curate.store import Store
from schemas.ids import with_ids
from schemas.kinds import Kind, polars_schema

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _msg(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def preference_rows(n: int, tag: str) -> pl.DataFrame:
    """n preference records; the first has an AI judge with scores (so it gets suggestions)."""
    df = pl.DataFrame(
        {
            "prompt": [_msg("user", f"{tag} question {i}?") for i in range(n)],
            "chosen": [_msg("assistant", f"Good answer {i} for {tag}.") for i in range(n)],
            "rejected": [_msg("assistant", f"Bad answer {i}.") for i in range(n)],
            "score_chosen": [0.9] + [None] * (n - 1),
            "score_rejected": [0.2] + [None] * (n - 1),
            "margin": [0.7] + [None] * (n - 1),
            "judge": [{"kind": "ai", "model": "judge-x", "annotators": []}]
            + [{"kind": "dataset", "model": None, "annotators": []}] * (n - 1),
            "source": [{"name": "unit", "uri": "mem://x", "sha256": None, "row": i} for i in range(n)],
        }
    )
    df = with_ids(
        df.cast({k: v for k, v in polars_schema(Kind.PREFERENCE).items() if k in df.columns}), Kind.PREFERENCE
    )
    return df.select(list(polars_schema(Kind.PREFERENCE))).with_columns(pl.lit("train").alias("split"))


def _good_first(fields: dict[str, Any]) -> list[str]:
    """The ranking that puts the 'Good answer' response first."""
    return ["response_1", "response_2"] if fields["response_1"].startswith("Good") else ["response_2", "response_1"]


def _ranked(order: list[str]) -> list[dict[str, Any]]:
    return [{"value": v, "rank": i} for i, v in enumerate(order, 1)]


def test_push_annotate_pull_is_correct_and_idempotent(argilla_server: Any, tmp_path: Path) -> None:
    import argilla as rg

    env = argilla_server.env()
    store = tmp_path / "store"
    Store(store).publish("prefs", preference_rows(6, "prefs"), {"kind": "preference"})

    first = cli(
        "annotate",
        "push",
        "--from",
        "prefs@1",
        "--store",
        str(store),
        "--min-submitted",
        "2",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    pushed = json.loads(first.stdout)
    assert (pushed["records"], pushed["created"], pushed["dataset_created"]) == (6, 6, True)

    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    conn = Connection(argilla_server.url, creds.api_key, "local")
    owner = conn.client()
    ids = {}
    for name in ("ann", "bob"):
        added = cli("argilla", "users", "add", name, "--json", env=env, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        info = json.loads(added.stdout)
        assert info["created"] and len(info["password"]) >= 12
        ids[name] = owner.users(name).id

    # AI scores became suggestions on the first record only
    ds = owner.datasets("prefs", workspace="argilla")
    records = list(ds.records(with_suggestions=True))
    assert sum(1 for r in records if len(r.suggestions)) == 1
    assert {r.metadata["dataset_version"] for r in records} == {"prefs@1"}

    # the SDK turns a plain ranking list into [{"value": ...}] without ranks: the real server refuses it
    plain = records[0]
    plain.responses.add(rg.Response("ranking", _good_first(plain.fields), user_id=ids["ann"], status="submitted"))
    with pytest.raises(rg._exceptions.UnprocessableEntityError, match="not valid ranks"):
        ds.records.log([plain])
    records = list(ds.records(with_suggestions=True))

    # two annotators answer through the SDK (ranks given explicitly): ann prefers the good answer
    # everywhere; bob agrees on four, disagrees on one and discards the last (records in prompt order)
    records.sort(key=lambda r: r.fields["prompt"][0].content)
    for i, r in enumerate(records):
        good = _ranked(_good_first(r.fields))
        r.responses.add(rg.Response("ranking", good, user_id=ids["ann"], status="submitted"))
        if i == 5:
            r.responses.add(rg.Response("ranking", None, user_id=ids["bob"], status="discarded"))
        else:
            bob = good if i != 4 else _ranked(_good_first(r.fields)[::-1])
            r.responses.add(rg.Response("ranking", bob, user_id=ids["bob"], status="submitted"))
    ds.records.log(records)

    state = progress(conn, "prefs")
    assert (state["total"], state["completed"], state["pending"]) == (6, 5, 1)  # min_submitted 2
    assert state["users"]["ann"]["submitted"] == 6
    assert (state["users"]["bob"]["submitted"], state["users"]["bob"]["discarded"]) == (5, 1)
    status = cli("annotate", "status", "--dataset", "prefs", "--json", env=env, cwd=tmp_path)
    assert json.loads(status.stdout)[0]["completed"] == 5
    assert wait_until_complete(lambda: progress(conn, "prefs"), min_completed=5, poll_s=0.1)["completed"] == 5
    with pytest.raises(AnnotationTimeout):
        wait_until_complete(lambda: progress(conn, "prefs"), min_completed=6, timeout_s=0.5, poll_s=0.2)

    pulled = cli(
        "annotate", "pull", "--dataset", "prefs", "--store", str(store), "--kto", "--json", env=env, cwd=tmp_path
    )
    assert pulled.returncode == 0, pulled.stderr
    result = json.loads(pulled.stdout)
    snap = result["annotation"]
    assert snap["outcomes"] == {"pair": 5, "tie": 1, "no_majority": 0, "discarded": 0, "pending": 0}
    assert snap["responses"] == 12 and snap["annotators"]["bob"] == {"submitted": 5, "discarded": 1, "draft": 0}
    # agreement on the preferred position: 4 of 5 shared records agree; kappa from the same labels by hand
    ann_pos = [_good_first(r.fields)[0] for r in records[:5]]
    bob_pos = [*ann_pos[:4], _good_first(records[4].fields)[1]]
    po = sum(a == b for a, b in zip(ann_pos, bob_pos, strict=True)) / 5
    pe = sum((ann_pos.count(v) / 5) * (bob_pos.count(v) / 5) for v in {"response_1", "response_2"})
    assert snap["agreement"]["cohen_kappa"] == pytest.approx((po - pe) / (1 - pe), abs=1e-4)
    assert snap["agreement"]["krippendorff_alpha"] is not None

    pref = result["published"]["preference"]
    assert (pref["ref"], pref["created"], pref["rows"]) == ("prefs-annotated@1", True, 5)
    assert result["published"]["kto"]["rows"] == 10
    st = Store(store)
    out = st.read("prefs-annotated@1")
    assert all(c.startswith("Good") for c in out["chosen"].list.first().struct.field("content").to_list())
    assert all(r.startswith("Bad") for r in out["rejected"].list.first().struct.field("content").to_list())
    assert set(out["judge"].struct.field("kind")) == {"human"}
    assert sorted(
        out.filter(pl.col("prompt").list.first().struct.field("content") == "prefs question 0?")["judge"]
        .struct.field("annotators")
        .item()
    ) == ["ann", "bob"]
    manifest = st.manifest("prefs-annotated@1")
    assert manifest["annotation"]["outcomes"]["pair"] == 5
    assert (store / "prefs-annotated" / "cards" / "v1" / "README.md").exists()
    shown = cli("datasets", "show", "prefs-annotated@1", "--store", str(store), env=env, cwd=tmp_path)
    assert shown.returncode == 0 and "annotate pull prefs" in shown.stdout
    text = json.dumps(manifest)
    assert creds.api_key not in text and creds.password not in text  # no secrets in manifests

    # re-push: nothing new, responses kept; re-pull: same content, no new version
    again = json.loads(
        cli("annotate", "push", "--from", "prefs@1", "--store", str(store), "--json", env=env, cwd=tmp_path).stdout
    )
    assert (again["created"], again["updated"]) == (0, 6)
    repull = json.loads(
        cli("annotate", "pull", "--dataset", "prefs", "--store", str(store), "--json", env=env, cwd=tmp_path).stdout
    )
    assert repull["annotation"]["responses"] == 12
    assert (repull["published"]["preference"]["version"], repull["published"]["preference"]["created"]) == (1, False)

    # a restart loses nothing, and a browser session (signed with the stable secret) survives it
    token = httpx.post(
        f"{argilla_server.url}/api/v1/token", data={"username": creds.username, "password": creds.password}
    ).json()["access_token"]
    home = ArgillaHome(argilla_server.home, venv=argilla_server.venv)
    home.down()
    assert not list((argilla_server.home / "tmp").iterdir())  # the UI copy is gone
    url = home.up(port=int(argilla_server.url.rsplit(":", 1)[1]), timeout=180)["url"]
    assert url == argilla_server.url
    me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == creds.username
    after = json.loads(
        cli("annotate", "pull", "--dataset", "prefs", "--store", str(store), "--json", env=env, cwd=tmp_path).stdout
    )
    assert after["annotation"]["responses"] == 12 and after["published"]["preference"]["created"] is False


def test_server_validation_is_real(argilla_server: Any, tmp_path: Path) -> None:
    from curate.annotate.push import push
    from schemas.annotation import AnnotationSpec

    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    conn = Connection(argilla_server.url, creds.api_key, "local")
    push(conn, preference_rows(2, "val").drop("split"), "validation", AnnotationSpec())
    add_user(conn, "val-annotator", password="password-123")
    key = api_key_of(conn, "val-annotator")
    owner = conn.client()
    ds = owner.datasets("validation", workspace="argilla")
    record = owner.api.http_client.get(f"/api/v1/datasets/{ds.id}/records").json()["items"][0]
    url = f"{argilla_server.url}/api/v1/records/{record['id']}/responses"
    headers = {"X-Argilla-Api-Key": key}

    no_ranks = {"ranking": {"value": [{"value": "response_1"}, {"value": "response_2"}]}}  # ranks missing
    r = httpx.post(url, headers=headers, json={"values": no_ranks, "status": "submitted"})
    assert r.status_code == 422 and "not valid ranks" in r.text, r.text
    plain = {"ranking": {"value": ["response_1", "response_2"]}}  # argilla-server 2.8.0 answers 500 here
    r = httpx.post(url, headers=headers, json={"values": plain, "status": "submitted"})
    assert r.status_code >= 400, r.text
    partial = {"rationale": {"value": "no ranking given"}}  # the required ranking is missing: refused
    r = httpx.post(url, headers=headers, json={"values": partial, "status": "submitted"})
    assert r.status_code == 422 and "ranking" in r.text
    good = {"ranking": {"value": [{"value": "response_1", "rank": 1}, {"value": "response_2", "rank": 2}]}}
    r = httpx.post(url, headers=headers, json={"values": good, "status": "submitted"})
    assert r.status_code == 201, r.text
    assert progress(conn, "validation")["users"]["val-annotator"]["submitted"] == 1


def test_search_engine_answers_from_the_database(argilla_server: Any) -> None:
    """The UI's searches (text, metadata filters, response status, sort) go through our search engine."""
    from curate.annotate.push import push
    from schemas.annotation import AnnotationSpec

    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    conn = Connection(argilla_server.url, creds.api_key, "local")
    push(conn, preference_rows(5, "search").drop("split"), "search", AnnotationSpec(), dataset_ref="search@1")
    ds = conn.client().datasets("search", workspace="argilla")
    http = conn.client().api.http_client
    url = f"/api/v1/me/datasets/{ds.id}/records/search"

    def search(body: dict[str, Any]) -> dict[str, Any]:
        r = http.post(url, json=body, params={"limit": 50})
        assert r.status_code == 200, r.text
        return r.json()

    assert search({"query": {"text": {"q": "question 3"}}})["total"] == 1
    assert search({"query": {"text": {"q": "GOOD answer"}}})["total"] == 5
    assert search({"query": {"text": {"q": "nothing-like-this"}}})["total"] == 0
    meta = {"type": "terms", "scope": {"entity": "metadata", "metadata_property": "source"}, "values": ["unit"]}
    assert search({"filters": {"and": [meta]}})["total"] == 5
    pending = {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]}
    assert search({"filters": {"and": [pending]}})["total"] == 5
    rng = {"type": "range", "scope": {"entity": "metadata", "metadata_property": "prompt_chars"}, "ge": 0, "le": 10}
    assert search({"filters": {"and": [rng]}})["total"] == 0
    sort = [{"scope": {"entity": "record", "property": "inserted_at"}, "order": "desc"}]
    assert len(search({"sort": sort})["items"]) == 5
    by_length = [{"scope": {"entity": "metadata", "metadata_property": "prompt_chars"}, "order": "desc"}]
    assert len(search({"sort": by_length})["items"]) == 5
    suggested = {
        "type": "terms",
        "scope": {"entity": "suggestion", "question": "preferred", "property": "value"},
        "values": ["response_1", "response_2"],
    }
    assert search({"filters": {"and": [suggested]}})["total"] == 1  # only the AI-judged record has one
    scored = {
        "type": "terms",
        "scope": {"entity": "suggestion", "question": "preferred", "property": "agent"},
        "values": ["judge-x"],
    }
    assert search({"filters": {"and": [scored]}})["total"] == 1
    score_range = {
        "type": "range",
        "scope": {"entity": "suggestion", "question": "ranking", "property": "score"},
        "ge": 0.0,
        "le": 1.0,
    }
    assert search({"filters": {"and": [score_range]}})["total"] == 0  # suggestions carry no score

    import argilla as rg

    client = conn.client()
    record = next(iter(ds.records))
    ranks = [{"value": "response_1", "rank": 1}, {"value": "response_2", "rank": 2}]
    record.responses.add(rg.Response("ranking", ranks, user_id=client.me.id, status="submitted"))
    record.responses.add(rg.Response("preferred", "response_1", user_id=client.me.id, status="submitted"))
    ds.records.log([record])
    submitted = {**pending, "values": ["submitted"]}
    assert search({"filters": {"and": [submitted]}})["total"] == 1
    assert search({"filters": {"and": [pending]}})["total"] == 4
    label = {"type": "terms", "scope": {"entity": "response", "question": "preferred"}, "values": ["response_1"]}
    assert search({"filters": {"and": [label]}})["total"] == 1
    by_response = [{"scope": {"entity": "response", "property": "status"}, "order": "asc"}]
    assert len(search({"sort": by_response})["items"]) == 5
    metrics = http.get(f"/api/v1/me/datasets/{ds.id}/metadata-properties")
    assert metrics.status_code == 200


def test_recipe_stages_push_and_pull(argilla_server: Any, tmp_path: Path) -> None:
    """The shipped recipe: `curate run` publishes, `annotate push/pull --recipe` use its annotation section."""
    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "data" / "raw", tmp_path / "data" / "raw")
    (tmp_path / "recipes").mkdir()
    shutil.copy(root / "recipes" / "annotate.yaml", tmp_path / "recipes" / "annotate.yaml")
    env = argilla_server.env()
    run = cli("run", "recipes/annotate.yaml", "--json", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["published"]["rows_per_split"]
    pushed = cli("annotate", "push", "--recipe", "recipes/annotate.yaml", "--json", env=env, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["records"] == sum(rows.values())
    assert json.loads(pushed.stdout)["dataset"] == "annotate-prefs"
    pulled = cli("annotate", "pull", "--recipe", "recipes/annotate.yaml", "--json", env=env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    out = json.loads(pulled.stdout)
    assert out["annotation"]["outcomes"]["pending"] == sum(rows.values())  # nobody annotated yet
    assert out["published"]["preference"] == {
        "dataset": "annotate-prefs-human",
        "created": False,
        "rows": 0,
        "reason": "no decided records yet",
    }
    missing = cli("annotate", "pull", "--dataset", "no-such-dataset", "--json", env=env, cwd=tmp_path)
    assert missing.returncode == 2 and "no Argilla dataset 'no-such-dataset'" in missing.stderr


def test_existing_server_via_environment(argilla_server: Any, tmp_path: Path) -> None:
    """ARGILLA_API_URL/ARGILLA_API_KEY win over the local home (here: an empty one, no local server)."""
    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    env = argilla_server.env()
    env.update(CURATE_ARGILLA_HOME=str(tmp_path / "empty"), ARGILLA_API_URL=argilla_server.url)
    env["ARGILLA_API_KEY"] = creds.api_key
    status = cli("annotate", "status", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert isinstance(json.loads(status.stdout), list)
    del env["ARGILLA_API_URL"], env["ARGILLA_API_KEY"]
    local = cli("annotate", "status", env=env, cwd=tmp_path)
    assert local.returncode == 2 and "curate argilla up" in local.stderr
