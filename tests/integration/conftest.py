"""Fixtures for the integration tests: the real local Argilla server (issue 6), a lifecycle project.

The server runs once per test session *per xdist worker* (each worker gets its own temporary home
and a free port, so two workers never clash); tests using it are marked
``xdist_group("argilla")`` so that, with ``--dist loadgroup`` (the Makefile's), they share one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_VENV = Path(os.environ.get("CURATE_ARGILLA_VENV") or ROOT / ".argilla-server-venv")


@dataclass(frozen=True)
class LocalArgilla:
    """A running local server: its home (credentials inside), URL and the env to reach it."""

    home: Path
    venv: Path
    url: str

    def env(self) -> dict[str, str]:
        """Environment for a `curate` subprocess that should use this server."""
        env = {k: v for k, v in os.environ.items() if k not in ("ARGILLA_API_URL", "ARGILLA_API_KEY")}
        env.update(CURATE_ARGILLA_HOME=str(self.home), CURATE_ARGILLA_VENV=str(self.venv))
        return env


@pytest.fixture(scope="session")
def argilla_venv() -> Path:
    """The argilla-server venv built by `make argilla-server` (skips the test when missing)."""
    from curate.annotate.server import ArgillaHome

    if not ArgillaHome(ROOT / ".no-home", venv=SERVER_VENV).venv_ready():
        pytest.skip(f"argilla-server venv missing at {SERVER_VENV}: run `make argilla-server` (make test does)")
    return SERVER_VENV


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArgilla]:
    """Start the real argilla-server (temporary home, free port) for the session; stop it after."""
    from curate.annotate.server import ArgillaHome

    home = ArgillaHome(tmp_path_factory.mktemp("argilla-home"), venv=SERVER_VENV)
    if not home.venv_ready():
        pytest.skip(f"argilla-server venv missing at {SERVER_VENV}: run `make argilla-server` (make test does)")
    saved = {k: os.environ.pop(k) for k in ("ARGILLA_API_URL", "ARGILLA_API_KEY") if k in os.environ}
    os.environ["CURATE_ARGILLA_HOME"] = str(home.path)
    os.environ["CURATE_ARGILLA_VENV"] = str(SERVER_VENV)
    try:
        status = home.up(port=0, timeout=180)
        yield LocalArgilla(home=home.path, venv=SERVER_VENV, url=status["url"])
    finally:
        home.down()
        os.environ.pop("CURATE_ARGILLA_HOME", None)
        os.environ.pop("CURATE_ARGILLA_VENV", None)
        os.environ.update(saved)


# --- a small lifecycle project on the tiny model (tests/integration/test_lifecycle.py, test_serve.py)

GOOD_DPO = "adapter: {type: lora, r: 4, alpha: 8, target_modules: [q_proj, v_proj]}\n" + (
    "training: {max_steps: 2, batch_size: 2, learning_rate: 5.0e-5, max_length: 64}\n"
)
# every weight moves with a learning rate of 5: the model's loss on held-out answers explodes
DESTRUCTIVE_DPO = "adapter: {type: none}\ntraining: {max_steps: 6, batch_size: 2, learning_rate: 5.0, max_length: 64}\n"


def write_prompts(path: Path, topic: str, n: int) -> None:
    """Raw prompt rows (JSONL with a text field) about ``topic``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"text": f"Give two reasons why {topic} number {i} matters, in one short sentence."} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_project(root: Path, model: Path, train: str = GOOD_DPO) -> Path:
    """A lifecycle project in ``root``: raw prompts, data/label/train recipes, the lifecycle recipe."""
    (root / "recipes" / "train").mkdir(parents=True, exist_ok=True)
    (root / "recipes" / "data.yaml").write_text(
        """name: prompts
output: {kind: text, dir: ../runs}
sources:
  - {name: raw, path: "../raw/*.jsonl", convert: text}
stages:
  - {type: exact_dedup}
publish: {store: ../store, splits: {eval: 0.0}}
""",
        encoding="utf-8",
    )
    write_label(root, model)
    write_train(root, model, train)
    recipe = root / "recipes" / "loop.yaml"
    recipe.write_text(
        """name: loop
data: data.yaml
label: {mode: ai, recipe: label.yaml}
train:
  - {recipe: train/dpo.yaml}
eval:
  on: [label]
  metrics: [heldout_loss, logprob_win_rate]
  bootstrap: 200
gate:
  floors: {heldout_loss: {max: 50}}
  against_champion: {heldout_loss: {min_change: 0.0}}
runs_root: ../runs/train
out: ../runs
schedule: {interval: 3600}
""",
        encoding="utf-8",
    )
    return recipe


LABEL = """name: pairs
output: {{kind: preference, dir: ../runs}}
sources:
  - {{name: prompts, dataset: prompts, store: ../store, convert: text}}
feedback:
  input_kind: text
  generators:
    - {{name: tiny, model: {model}, n: 2, max_new_tokens: 6, temperature: 1.0}}
  judge: {{kind: rating, model: {model}, max_new_tokens: 2, aspects: {{helpfulness: "fully helpful"}}}}
  {route}
{annotation}publish: {{store: ../store, splits: {{eval: {eval}}}}}
"""


def write_label(root: Path, model: Path, route: str = "", annotation: str = "", eval_fraction: float = 0.3) -> None:
    """The AI labelling recipe (``route``/``annotation``: lines that send prompts to Argilla)."""
    pairs = route or "pairs: {strategy: best_worst, min_margin: 0.0, ties: drop}"
    text = LABEL.format(model=model, route=pairs, annotation=annotation, eval=eval_fraction)
    (root / "recipes" / "label.yaml").write_text(text, encoding="utf-8")


def write_train(root: Path, model: Path, train: str) -> None:
    (root / "recipes" / "train" / "dpo.yaml").write_text(
        f"name: loop-dpo\nmodel: {{base: {model}}}\ndataset: {{ref: pairs@latest, split: train}}\nmethod: dpo\n{train}",
        encoding="utf-8",
    )


@dataclass
class LifecycleProject:
    """A lifecycle project on the tiny model: raw prompts in ``root/raw``, recipes in ``root/recipes``."""

    root: Path
    model: Path
    recipe: Path

    def prompts(self, name: str, topic: str, n: int) -> Path:
        path = self.root / "raw" / name
        write_prompts(path, topic, n)
        return path

    def train(self, text: str) -> None:
        write_train(self.root, self.model, text)

    def label(self, route: str = "", annotation: str = "", eval_fraction: float = 0.3) -> None:
        write_label(self.root, self.model, route, annotation, eval_fraction)


@pytest.fixture
def lifecycle_project(tmp_path: Path, tiny_lm: Path) -> LifecycleProject:
    """:class:`LifecycleProject` in ``tmp_path`` with 16 prompts and the good DPO recipe."""
    write_prompts(tmp_path / "raw" / "a.jsonl", "sleep", 16)
    return LifecycleProject(tmp_path, tiny_lm, write_project(tmp_path, tiny_lm))
