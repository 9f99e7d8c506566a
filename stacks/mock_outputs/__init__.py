"""Computed outputs the mocks return, per resource type token: what a real provider would answer.

Each module in this package defines `COMPUTED = {type_token: fn(name, inputs) -> dict}` (camelCase keys,
merged over the echoed inputs). Add a module per provider; nothing else needs to change.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

Computed = Callable[[str, dict[str, Any]], dict[str, Any]]


def digest(*parts: str, length: int = 64) -> str:
    """A stable fake hash: the same resource always gets the same id/digest, so snapshots are stable."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@functools.cache
def _table() -> dict[str, Computed]:
    table: dict[str, Computed] = {}
    for module in pkgutil.iter_modules(__path__):
        table.update(importlib.import_module(f"{__name__}.{module.name}").COMPUTED)
    return table


def computed(token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    fn = _table().get(token)
    return fn(name, inputs) if fn else {}
