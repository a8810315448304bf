"""Load a lifecycle recipe with every recipe it names, and check the whole chain before anything runs.

Input: a lifecycle recipe file (:mod:`schemas.lifecycle`). Output: a :class:`Chain` with the data
recipe, the label recipe, the train recipes, the gate and the resolved folders; or a
:class:`RecipeError` listing **every** problem at once: each named recipe's own problems (with its
file and line) and the chain's: a train step whose dataset is not a kind its method trains on
(e.g. DPO on the curated SFT data instead of the labelled pairs), a label recipe that does not read
the data recipe's output, a gate criterion on a metric the evaluation does not compute.

Example:
    >>> # chain = load_chain("recipes/lifecycle/demo.yaml"); chain.kinds()
    >>> # {'data': 'text', 'label': 'preference'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.evaluation import GateSpec
from schemas.lifecycle import LifecycleRecipe
from schemas.recipe_loader import LoadedRecipe, Problem, RecipeError, line_of, load_recipe_file, parse_validated
from schemas.train_recipe_loader import LoadedTrainRecipe, load_train_recipe_file

__all__ = ["Chain", "RecipeError", "load_chain"]


@dataclass
class Chain:
    """A lifecycle recipe and everything it names, loaded and checked."""

    file: Path
    text: str
    recipe: LifecycleRecipe
    root: Any
    data: LoadedRecipe
    label: LoadedRecipe | None
    train: list[LoadedTrainRecipe] = field(default_factory=list)
    gate: GateSpec | None = None
    data_out: str | None = None  # replaces the data recipe's output.dir (`curate serve --out`)

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def folder(self) -> Path:
        return self.file.parent

    def path(self, value: str) -> Path:
        """A path of the lifecycle recipe, relative to its folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.folder / p).resolve()

    @property
    def runs_root(self) -> Path:
        return self.path(self.recipe.runs_root)

    @property
    def out(self) -> Path:
        return self.path(self.recipe.out) / "lifecycle" / self.name

    @property
    def candidate_name(self) -> str | None:
        """The registry name of the model the gate decides on: the last train step's."""
        return self.train[-1].recipe.name if self.train else None

    def data_dataset(self) -> str:
        """The dataset name the data recipe publishes."""
        return _published_name(self.data)

    def kinds(self) -> dict[str, str]:
        """Record kind of each version this chain publishes: data, and label when there is one."""
        out = {"data": self.data.recipe.output.kind.value}
        if self.recipe.label is not None:
            out["label"] = self.label.recipe.output.kind.value if self.label is not None else "preference"
        return out

    def train_dataset(self, index: int) -> str:
        """``data`` or ``label``: which published version train step ``index`` reads."""
        from train.preflight import EXPECTED_KIND

        step = self.recipe.train[index]
        if step.dataset is not None:
            return step.dataset
        kinds = self.kinds()
        wanted = EXPECTED_KIND.get(self.train[index].recipe.method, ())
        if "label" in kinds and kinds["label"] in wanted and kinds["data"] not in wanted:
            return "label"
        return "data"

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        from schemas.recipe_loader import format_loc

        return Problem(str(self.file), line_of(self.root, loc), format_loc(loc), message)


def _published_name(doc: LoadedRecipe) -> str:
    pub = doc.recipe.publish
    return (pub.dataset if pub is not None and pub.dataset else None) or doc.recipe.name


def load_chain(path: str | Path, check_files: bool = True) -> Chain:
    """Load and check the lifecycle recipe at ``path`` (see the module docstring)."""
    from schemas.recipe_loader import read_recipe_text

    file = Path(path)
    text = read_recipe_text(file)
    # the lifecycle's own problems first (raised), then those of every recipe it names (collected)
    recipe, root = parse_validated(text, str(file), LifecycleRecipe, "a lifecycle recipe", "name:, data:")
    problems: list[Problem] = []
    chain = Chain(file.resolve(), text, recipe, root, None, None)  # type: ignore[arg-type]

    def sub(loc: tuple[Any, ...], value: str, loader: Any) -> Any:
        target = chain.path(value)
        try:
            return loader(target)
        except RecipeError as e:
            problems.extend(e.problems)
        return None

    chain.data = sub(("data",), recipe.data, _load_data(check_files))
    if recipe.label is not None and recipe.label.recipe:
        chain.label = sub(("label", "recipe"), recipe.label.recipe, load_recipe_file)
    chain.train = [sub(("train", i, "recipe"), s.recipe, load_train_recipe_file) for i, s in enumerate(recipe.train)]
    if isinstance(recipe.gate, str):
        from train.registry.gate_file import load_gate_file

        chain.gate = sub(("gate",), recipe.gate, load_gate_file)
    else:
        chain.gate = recipe.gate
    if chain.data is not None and all(t is not None for t in chain.train):
        problems += _chain_problems(chain, check_files)
    if problems:
        raise RecipeError(problems)
    return chain


def _load_data(check_files: bool) -> Any:
    def load(target: Path) -> LoadedRecipe:
        from curate.engine.plan import plan

        doc = load_recipe_file(target)
        plan(doc, check_files=check_files)  # inputs, converters, store: as `curate validate` does
        return doc

    return load


def _chain_problems(chain: Chain, check_files: bool = True) -> list[Problem]:
    """The problems between the steps (each step's own were reported by its loader)."""
    from train.preflight import EXPECTED_KIND

    out: list[Problem] = []
    r = chain.recipe
    data = chain.data.recipe
    if data.publish is None:
        out.append(
            chain.problem(
                ("data",), f"{chain.data.file} has no publish: section; the loop trains on published versions"
            )
        )
    label = r.label
    if label is not None and label.mode == "human" and data.annotation is None:
        out.append(
            chain.problem(
                ("label", "mode"),
                f"label.mode human pulls labels from Argilla, but {chain.data.file} has no annotation: section",
            )
        )
    if chain.label is not None:
        lr = chain.label.recipe
        if lr.feedback is None:
            out.append(
                chain.problem(("label", "recipe"), f"{chain.label.file} has no feedback: section (AI labelling)")
            )
        elif label is not None and label.mode == "both" and not lr.feedback.routes_to_annotators:
            out.append(
                chain.problem(
                    ("label", "mode"),
                    f"label.mode both routes uncertain prompts to annotators, but {chain.label.file} sets no "
                    "feedback.route.to_annotators; set it, or use mode: ai",
                )
            )
        if lr.publish is None:
            out.append(chain.problem(("label", "recipe"), f"{chain.label.file} has no publish: section"))
        wanted = chain.data_dataset()
        reads = [s.dataset.split("@")[0] for s in lr.sources if s.dataset]
        if wanted not in reads:
            out.append(
                chain.problem(
                    ("label", "recipe"),
                    f"{chain.label.file} does not read the data recipe's output: give it a source "
                    f"`dataset: {wanted}` (the loop points it at the version just published)",
                )
            )
    kinds = chain.kinds()
    for i, t in enumerate(chain.train):
        which = chain.train_dataset(i)
        method = t.recipe.method
        if kinds.get(which) not in EXPECTED_KIND.get(method, ()):
            want = " or ".join(EXPECTED_KIND.get(method, ()))
            out.append(
                chain.problem(
                    ("train", i, "dataset"),
                    f"{t.file} trains {method} on {want} records, but the {which} step publishes "
                    f"{kinds.get(which)} records; "
                    + ("use dataset: label" if which == "data" else "use dataset: data"),
                )
            )
        if r.train[i].start == "previous" and i > 0:
            prev = chain.train[i - 1].recipe
            if prev.method == "reward":
                out.append(
                    chain.problem(
                        ("train", i, "start"),
                        f"the previous step ({prev.name}) trains a reward model; a policy must start from a causal LM",
                    )
                )
    if r.eval is not None:
        out += _eval_problems(chain, kinds, check_files)
    return out


def _eval_problems(chain: Chain, kinds: dict[str, str], check_files: bool = True) -> list[Problem]:
    from train.eval.metrics import get_metric
    from train.registry.gate import metric_family

    out: list[Problem] = []
    ev = chain.recipe.eval
    assert ev is not None
    set_kinds = [kinds[o] for o in ev.on if o in kinds]
    frozen = [o for o in ev.on if o not in kinds]
    for j, o in enumerate(ev.on):
        if o not in kinds and "@" not in o:
            out.append(
                chain.problem(("eval", "on", j), f"eval.on: {o!r} is neither data/label nor a version NAME@VERSION")
            )
    if check_files:
        out += _frozen_sets_exist(chain, frozen)
    computed: set[str] = set()
    for j, m in enumerate(ev.metrics):
        try:
            metric = get_metric(m.name)
        except Exception as e:  # an unknown name: the catalogue's message lists the known ones
            out.append(chain.problem(("eval", "metrics", j), str(e)))
            continue
        computed.add(m.name)
        if metric.kinds and not frozen and not any(k in metric.kinds for k in set_kinds):
            out.append(
                chain.problem(
                    ("eval", "metrics", j),
                    f"{m.name} scores {', '.join(sorted(metric.kinds))} records; the eval sets are "
                    f"{', '.join(set_kinds)}: add a set of that kind to eval.on or drop the metric",
                )
            )
    gate = chain.gate
    if gate is not None:
        named = [("floors", k) for k in gate.floors] + [("against_champion", k) for k in gate.against_champion]
        if gate.win_rate is not None:
            named.append(("win_rate", gate.win_rate.metric))
        for section, metric_name in named:
            if metric_family(metric_name) not in computed:
                out.append(
                    chain.problem(
                        ("gate",),
                        f"gate {section}.{metric_name}: the lifecycle's eval does not compute it; add "
                        f"{metric_family(metric_name)} to eval.metrics",
                    )
                )
    return out


def _frozen_sets_exist(chain: Chain, frozen: list[str]) -> list[Problem]:
    """A frozen eval set (NAME@VERSION) must be published already: the loop would otherwise fail at
    its evaluation step, after curating, labelling and training."""
    ev = chain.recipe.eval
    assert ev is not None
    pub = chain.data.recipe.publish
    store = str(chain.path(ev.store)) if ev.store else (str(pub.store) if pub is not None else None)
    if store is None or not frozen:
        return []
    from curate.store import RefError, Store, StoreError

    out = []
    for ref in frozen:
        if "@" not in ref:
            continue
        try:
            Store(store).resolve(ref)
        except (RefError, StoreError, OSError) as e:
            j = ev.on.index(ref)
            out.append(
                chain.problem(
                    ("eval", "on", j), f"eval set {ref}: {e}; publish it first, or name a version that exists"
                )
            )
    return out
