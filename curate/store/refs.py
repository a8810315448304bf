"""Dataset references: ``name``, ``name@latest``, ``name@3``.

Example:
    >>> parse_ref("chat@3"), parse_ref("chat"), parse_ref("chat@latest")
    (('chat', 3), ('chat', None), ('chat', None))
"""

from __future__ import annotations

import re

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<version>latest|\d+))?$")


class RefError(ValueError):
    """A reference that is malformed or names nothing in the store."""


class StoreError(ValueError):
    """A store that cannot be used as given (a file where its folder should be, read-only, full): exit 2."""


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``(name, version)``; version ``None`` means latest."""
    m = _REF.match(ref.strip())
    if not m:
        raise RefError(f"{ref!r} is not a dataset reference; write NAME, NAME@latest or NAME@VERSION (e.g. chat@3)")
    v = m.group("version")
    return m.group("name"), None if v in (None, "latest") else int(v)
