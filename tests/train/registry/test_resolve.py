"""resolve(): every reference form to its run folder, and errors that list what exists."""

from __future__ import annotations

import pytest

from train.registry import RegistryError, move_alias, resolve


def test_every_reference_form(root, make_run):
    r1, r2 = make_run("chat", "r1"), make_run("chat", "r2")
    move_alias(root, "chat", "champion", 1)
    assert resolve("chat@1", root) == r1.resolve()
    assert resolve("chat@champion", root) == r1.resolve()
    assert resolve("chat@latest", root) == r2.resolve()
    assert resolve("chat", root) == r2.resolve()  # the `latest` link write_lineage keeps
    assert resolve("chat/r1", root) == r1.resolve()
    assert resolve(str(r1), root) == r1.resolve()
    assert resolve(str(root / "chat" / "latest"), root) == r2.resolve()


def test_unregistered_name_latest_falls_back_to_its_latest_run(root, make_run):
    run = make_run("old", "r1", register=False)
    assert resolve("old@latest", root) == run.resolve()


def test_errors_list_what_exists(root, make_run):
    make_run("chat", "r1")
    move_alias(root, "chat", "champion", 1)
    with pytest.raises(KeyError, match=r"no alias chat@challenger .*versions: chat@1; aliases: chat@champion -> 1"):
        resolve("chat@challenger", root)
    with pytest.raises(RegistryError, match=r"no trained model named 'nope' .*known: chat"):
        resolve("nope@champion", root)
    with pytest.raises(RegistryError, match=r"no trained model 'nope' .*known: chat"):
        resolve("nope", root)
    with pytest.raises(RegistryError, match=r"no run 'chat/r9' .*runs of chat: r1"):
        resolve("chat/r9", root)
    with pytest.raises(RegistryError, match=r"no version chat@4 .*versions: chat@1"):
        resolve("chat@4", root)
