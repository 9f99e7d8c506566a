"""Fixtures for the `gke` stack: its offline preview, and the real CRD schemas from ../shared/schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.offline import Recording, preview

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"


@pytest.fixture(scope="session")
def gke() -> Recording:
    """The `gke` stack exactly as Pulumi.gke.yaml configures it."""
    return preview("gke")


@pytest.fixture(scope="session")
def schema():
    def load(name: str) -> dict:
        return json.loads((SCHEMAS / name).read_text())

    return load
