"""Turn any model reference into its run folder: ``NAME@N``, ``NAME@ALIAS``, ``NAME@latest``, ``NAME``,
``NAME/RUN_ID`` or a run folder.

``NAME@latest`` is the newest registered version (a name with no versions yet: its ``latest`` run);
``NAME`` is the ``latest`` run as before the registry. An unknown reference raises
:class:`RegistryError` (a ``KeyError``) listing what exists.

Example:
    >>> import tempfile
    >>> try:
    ...     resolve("nope@champion", tempfile.mkdtemp())
    ... except KeyError as e:
    ...     print(str(e).split(";")[0])
    no trained model named 'nope' under ...
"""

from __future__ import annotations

from pathlib import Path

from train.lineage import MANIFEST, list_models
from train.registry.aliases import list_aliases, read_alias
from train.registry.layout import RegistryError
from train.registry.versions import ModelVersion, get_version, list_versions


def split_ref(ref: str) -> tuple[str, str | None]:
    """``'chat@champion'`` -> ``('chat', 'champion')``; ``'chat'`` -> ``('chat', None)``."""
    name, _, tag = ref.partition("@")
    return name, (tag or None) if "@" in ref else None


def _known(root: str | Path) -> str:
    names = sorted({m["name"] for m in list_models(root)})
    return ", ".join(names) or "none (run curate train)"


def _what_exists(root: str | Path, name: str) -> str:
    versions = ", ".join(f"{name}@{v.version}" for v in list_versions(root, name)) or "none registered"
    aliases = ", ".join(f"{name}@{a} -> {v}" for a, v in list_aliases(root, name).items()) or "none"
    return f"versions: {versions}; aliases: {aliases}"


def resolve_version(ref: str, root: str | Path = "runs/train") -> ModelVersion:
    """The registered version ``ref`` (``NAME@N``, ``NAME@ALIAS``, ``NAME@latest``) names."""
    name, tag = split_ref(ref)
    if tag is None:
        raise RegistryError(f"{ref!r} names no version: write NAME@N, NAME@ALIAS or NAME@latest")
    if not (Path(root) / name).is_dir():
        raise RegistryError(f"no trained model named {name!r} under {root}; known: {_known(root)}")
    if tag.isdigit():
        return get_version(root, name, int(tag))
    if tag == "latest":
        versions = list_versions(root, name)
        if versions:
            return versions[-1]
        raise RegistryError(f"{name} has no registered versions under {root} (curate models register RUN_DIR)")
    n = read_alias(root, name, tag)
    if n is None:
        raise RegistryError(f"no alias {name}@{tag} under {root}; {_what_exists(root, name)}")
    return get_version(root, name, n)


def resolve(ref: str, root: str | Path = "runs/train") -> Path:
    """The run folder (holding ``manifest.json``) that ``ref`` names; see the module docstring.

    Raises :class:`RegistryError` (a ``KeyError``) naming what exists when nothing matches.
    """
    ref = str(ref)
    path = Path(ref)
    if (path / MANIFEST).is_file():
        return path.resolve()
    if "@" in ref:
        name, tag = split_ref(ref)
        if tag == "latest" and not list_versions(root, name) and (Path(root) / name / "latest" / MANIFEST).is_file():
            return (Path(root) / name / "latest").resolve()
        run = resolve_version(ref, root).run_dir(root)
        if not (run / MANIFEST).is_file():
            raise RegistryError(f"{ref} points at {run}, which is gone (no {MANIFEST})")
        return run.resolve()
    for candidate in (Path(root) / ref / "latest", Path(root) / ref):
        if (candidate / MANIFEST).is_file():
            return candidate.resolve()
    name = ref.split("/", 1)[0]
    if "/" in ref and (Path(root) / name).is_dir():
        runs = sorted(p.parent.name for p in (Path(root) / name).glob(f"*/{MANIFEST}") if p.parent.name != "latest")
        raise RegistryError(f"no run {ref!r} under {root}; runs of {name}: {', '.join(runs) or 'none'}")
    raise RegistryError(f"no trained model {ref!r} under {root}; known: {_known(root)}")


def version_for(ref: str, root: str | Path = "runs/train") -> ModelVersion:
    """The registered version of whatever ``ref`` names (a ``NAME@...`` form, ``NAME/RUN_ID``, a run folder)."""
    from train.registry.versions import version_of

    if "@" in str(ref) and not (Path(ref) / MANIFEST).is_file():
        return resolve_version(ref, root)
    run = resolve(ref, root)
    v = version_of(run, run.parent.parent)
    if v is None:
        raise RegistryError(f"{run} is not a registered version (curate models register {run})")
    return v
