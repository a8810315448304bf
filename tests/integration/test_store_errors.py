"""Expected store failures exit 2 with a message, never a traceback, and the previous version stays intact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from curate.store import Store

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _project(tmp_path: Path, store: str) -> Path:
    (tmp_path / "a.jsonl").write_text("".join(f'{{"text": "document number {i}"}}\n' for i in range(50)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: errs\noutput: {kind: text, dir: runs}\n"
        "sources:\n  - {name: a, path: a.jsonl, convert: text}\n"
        f"publish: {{store: {store}}}\n"
    )
    return recipe


def test_a_store_path_that_is_a_file_fails_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a folder")
    listed = cli("datasets", "list", "--store", "store", cwd=tmp_path)
    assert listed.returncode == 2 and "is a file, not a folder" in listed.stderr, listed.stderr
    assert "Traceback" not in listed.stderr
    run = cli("run", _project(tmp_path, "store").name, "--local", cwd=tmp_path)
    assert run.returncode == 2 and "publish.store" in run.stderr and "is a file" in run.stderr, run.stderr
    assert not (tmp_path / "runs").exists()  # refused at plan time: no work done


def test_exporting_onto_an_existing_file_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "store").publish(
        "t", pl.DataFrame({"id": ["a"], "text": ["x"], "split": ["train"]}), {"kind": "text"}
    )
    (tmp_path / "out.jsonl").write_text("keep me")
    res = cli(
        "datasets", "export", "t@1", "--format", "trl_jsonl", "--out", "out.jsonl", "--store", "store", cwd=tmp_path
    )
    assert res.returncode == 2 and "is an existing file" in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "out.jsonl").read_text() == "keep me"


CHECK = """
import sys
from curate.store import Store
print("VERSIONS", Store(sys.argv[1]).versions("errs"))
"""


@pytest.mark.parametrize("failure", ["full", "read-only"])
def test_full_or_read_only_store_exits_2_and_keeps_the_previous_version(tmp_path: Path, failure: str) -> None:
    """A real tmpfs, size-limited or remounted read-only, in a private mount namespace (``unshare``)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs unshare -rm (user + mount namespaces) to mount a private tmpfs")
    recipe = _project(tmp_path, "mnt/store")
    assert cli("run", recipe.name, "--local", cwd=tmp_path).returncode == 0
    shutil.move(tmp_path / "mnt" / "store", tmp_path / "seed")
    (tmp_path / "a.jsonl").write_text("".join(f'{{"text": "{os.urandom(300).hex()}"}}\n' for i in range(3000)))
    py = sys.executable
    then = "mount -o remount,ro mnt" if failure == "read-only" else "true"
    script = (
        f"mount -t tmpfs -o size=1m tmpfs mnt && cp -r seed mnt/store && {then} && "
        f"{py} -m curate.cli run {recipe.name} --local; echo RC=$?; {py} -c '{CHECK}' mnt/store"
    )
    res = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "RC=2" in res.stdout, (res.stdout, res.stderr[-2000:])
    assert "VERSIONS [1]" in res.stdout, res.stdout
    word = "no space left" if failure == "full" else "read-only file system"
    assert "store error" in res.stderr and word in res.stderr, res.stderr[-2000:]
    assert "panicked" not in res.stderr and "Traceback" not in res.stderr
