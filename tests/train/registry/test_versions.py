"""Versions NAME@N: numbering, idempotent registration, concurrent registration from processes."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from train.registry import RegistryError, get_version, list_versions, register_run, version_of


def test_versions_number_in_order_and_registration_is_idempotent(root, make_run):
    a = make_run("chat", "r1")
    b = make_run("chat", "r2")
    assert [(v.version, v.run_id) for v in list_versions(root, "chat")] == [(1, "r1"), (2, "r2")]
    assert register_run(a).version == 1  # again: the same version, no third one
    assert len(list_versions(root, "chat")) == 2
    assert version_of(b).ref == "chat@2"
    v = get_version(root, "chat", 2)
    assert v.run_dir(root).resolve() == b.resolve() and v.dataset == "chat@1" and v.method == "sft" and v.who


def test_unknown_version_and_non_run_are_refused_with_what_exists(root, make_run, tmp_path):
    make_run("chat", "r1")
    with pytest.raises(RegistryError, match=r"no version chat@7 .*versions: chat@1"):
        get_version(root, "chat", 7)
    with pytest.raises(RegistryError, match="not a trained run"):
        register_run(tmp_path)


def _register(run: str) -> int:
    return register_run(Path(run)).version


def test_concurrent_registrations_get_distinct_versions(root, make_run):
    runs = [str(make_run("chat", f"r{i}", register=False)) for i in range(8)]
    ctx = mp.get_context("fork")
    with ctx.Pool(8) as pool:
        got = pool.map(_register, runs)
        again = pool.map(_register, [runs[0]] * 6)  # the same run from 6 processes: one version
    assert sorted(got) == list(range(1, 9))
    assert set(again) == {got[0]}
    versions = list_versions(root, "chat")
    assert len(versions) == 8 and len({v.run_id for v in versions}) == 8
    assert not list((root / "chat" / "registry" / "versions").glob(".*"))  # no temp files left
