"""Shared help for Pulumi dynamic providers (Cloud Build images, Native App SQL resources)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def pickled_by_value(cls: type) -> Iterator[None]:
    """While Pulumi serializes the provider: dill pickles `__main__` classes and functions by value, so the
    provider process needs nothing of this repository on its import path (it may start elsewhere)."""
    owners = [cls, *(getattr(v, "__func__", v) for v in vars(cls).values() if callable(getattr(v, "__func__", v)))]
    saved = [(o, o.__module__) for o in owners if hasattr(o, "__module__")]
    for owner, _ in saved:
        owner.__module__ = "__main__"
    try:
        yield
    finally:
        for owner, module in saved:
            owner.__module__ = module
