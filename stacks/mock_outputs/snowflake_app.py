"""Outputs for the Native App stacks: the patch number the version resource reads back."""

from __future__ import annotations

PREFIX = "pulumi-python:dynamic/spcs_app"


def _version(name, inputs):
    return {"patch": 0}


COMPUTED = {
    f"{PREFIX}:AppVersion": _version,
}
