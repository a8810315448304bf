"""Argilla users: add annotators to a server and a workspace.

Example:
    >>> # info = add_user(resolve(), "ann", role="annotator")   # a generated password comes back once
"""

from __future__ import annotations

import secrets
import warnings
from typing import Any

from curate.annotate.client import Connection

ROLES = ("annotator", "admin", "owner")


class UserError(ValueError):
    """A user cannot be added as asked; the message says why and what to do."""


def add_user(
    conn: Connection,
    username: str,
    role: str = "annotator",
    password: str | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """Create ``username`` (or reuse it) and add it to ``workspace`` (default: the first one).

    Returns ``{username, role, workspace, created, password}``; ``password`` is the generated one
    (None when given or when the user existed), to hand to the annotator once.
    """
    import argilla as rg

    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if password is not None and len(password) < 8:
        raise UserError("password: Argilla needs at least 8 characters")
    client = conn.client()
    ws_name = workspace or next((w.name for w in client.workspaces), None)
    if ws_name is None:
        raise UserError("no workspace on the server: pass --workspace NAME to create one")
    ws = client.workspaces(ws_name)
    if ws is None:
        ws = rg.Workspace(name=ws_name, client=client).create()
    with warnings.catch_warnings():  # the SDK warns when the user does not exist yet: expected here
        warnings.simplefilter("ignore", UserWarning)
        user = client.users(username)
    generated = None
    created = user is None
    if user is None:
        generated = None if password else secrets.token_urlsafe(12)
        user = rg.User(username=username, password=password or generated, role=role, client=client).create()
    if all(u.username != username for u in ws.users):
        ws.add_user(user)
    return {"username": username, "role": user.role, "workspace": ws_name, "created": created, "password": generated}


def api_key_of(conn: Connection, username: str) -> str:
    """A user's API key (owner connections only): for scripts and tests that act as that user."""
    resp = conn.client().api.http_client.get("/api/v1/users")
    resp.raise_for_status()
    for u in resp.json()["items"]:
        if u["username"] == username:
            return u["api_key"]
    raise UserError(f"no user {username!r}; add it with `curate argilla users add {username}`")
