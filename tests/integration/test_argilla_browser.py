"""The real Argilla web UI in headless Chromium: sign in, open a pushed dataset, rank, submit, pull.

Chromium is driven over the Chrome DevTools Protocol with the ``websockets`` package (already in
the stack): no browser download, no selenium. Skips when Debian's ``chromium`` is not installed
(``make test`` installs it when run as root). The screenshot is kept in ``.artifacts/``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from curate.annotate.client import Connection
from curate.annotate.progress import progress
from curate.annotate.pull import pull
from curate.annotate.push import push
from curate.annotate.server import ArgillaHome
from schemas.annotation import AnnotationSpec

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-first-run",
    "--window-size=1400,1000",
]


class Chromium:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, exe: str):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="curate-chromium-")
        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.skip("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json").json() if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=64_000_000)
        self.ids = itertools.count(1)
        self.send("Page.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr: str) -> Any:
        r = self.send("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"].get("text"))
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.js(expr)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"waited {timeout} s for: {expr}")

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def key(self, ch: str) -> None:
        code = ord(ch)
        common = {"key": ch, "code": f"Digit{ch}", "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        self.send("Input.dispatchKeyEvent", type="keyDown", text=ch, **common)
        self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def chromium() -> Any:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; make test does it as root)")
    browser = Chromium(exe)
    yield browser
    browser.close()


def test_sign_in_rank_and_submit_in_the_web_ui(argilla_server: Any, chromium: Chromium) -> None:
    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    conn = Connection(argilla_server.url, creds.api_key, "local")
    prompt = [[{"role": "user", "content": "Which planet is closest to the sun?"}]]
    df = pl.DataFrame(
        {
            "prompt": prompt,
            "chosen": [[{"role": "assistant", "content": "Good: Mercury is the closest planet to the sun."}]],
            "rejected": [[{"role": "assistant", "content": "Bad: Jupiter, probably."}]],
        }
    )
    spec = AnnotationSpec(questions=["ranking", "rationale"])
    push(conn, df, "ui-ranking", spec)
    dataset_id = conn.client().datasets("ui-ranking", workspace="argilla").id

    b = chromium
    b.send("Page.navigate", url=f"{argilla_server.url}/sign-in")
    b.wait('document.querySelector("input[name=Username]") !== null')
    b.type_into("input[name=Username]", creds.username)
    b.type_into("input[name=Password]", creds.password)
    b.wait('!document.querySelector("button[type=submit]").disabled')
    b.js('document.querySelector("button[type=submit]").click()')
    b.wait('location.pathname !== "/sign-in"')

    b.send("Page.navigate", url=f"{argilla_server.url}/dataset/{dataset_id}/annotation-mode")
    b.wait('document.querySelector("#response_1") !== null && document.body.innerText.includes("Mercury")')
    text = b.js("document.body.innerText")
    shown = dict(re.findall(r"Response ([12])\s+(Good|Bad):", text))
    good = next(i for i, label in shown.items() if label == "Good")
    bad = "2" if good == "1" else "1"
    # the ranking widget's keyboard shortcut: the focused response goes to the rank typed
    submit_ready = '!document.querySelector("button.button--submit").disabled'
    for _ in range(10):
        for rank, response in (("1", good), ("2", bad)):
            b.js(f'document.querySelector("#response_{response}").focus()')
            b.key(rank)
            time.sleep(0.3)
        if b.js(submit_ready):
            break
    else:
        b.screenshot(ARTIFACTS / "argilla-ui-failed.png")
        pytest.fail(f"ranking through the UI did not enable Submit; see {ARTIFACTS / 'argilla-ui-failed.png'}")
    b.screenshot(ARTIFACTS / "argilla-ui-ranked.png")
    b.js('document.querySelector("button.button--submit").click()')

    deadline = time.monotonic() + 30
    while progress(conn, "ui-ranking")["users"].get(creds.username, {}).get("submitted", 0) < 1:
        assert time.monotonic() < deadline, "the UI submission never reached the server"
        time.sleep(0.3)
    b.screenshot(ARTIFACTS / "argilla-ui-submitted.png")
    print(f"screenshots: {ARTIFACTS / 'argilla-ui-ranked.png'}, {ARTIFACTS / 'argilla-ui-submitted.png'}")

    pulled = pull(conn, "ui-ranking", spec)
    assert pulled.snapshot["outcomes"]["pair"] == 1
    row = pulled.preference.row(0, named=True)
    assert row["chosen"][0]["content"].startswith("Good") and row["rejected"][0]["content"].startswith("Bad")
    assert row["judge"]["annotators"] == [creds.username]
