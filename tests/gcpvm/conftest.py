"""Fixtures for the gcpvm stack: the example config under mocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The suite runs with --import-mode=importlib, which puts no test directory on sys.path: our helpers need it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gcpvm_testing import ROOT  # noqa: E402, F401  (also puts the repository root on sys.path)

from stacks.offline import Recording, preview  # noqa: E402


@pytest.fixture(scope="session")
def gcpvm() -> Recording:
    """The gcpvm stack exactly as Pulumi.gcpvm.yaml configures it."""
    return preview("gcpvm")
