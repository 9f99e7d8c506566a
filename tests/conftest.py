"""Shared fixtures: the project root on sys.path, and offline runs of stacks under Pulumi mocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stacks.offline import Recording, preview  # noqa: E402
from tests.ray_nodes import ray_nodes  # noqa: E402, F401 (a fixture for every real-Ray test)


@pytest.fixture(scope="session")
def dev() -> Recording:
    """The `dev` stack (the CPU-only default) exactly as Pulumi.dev.yaml configures it."""
    return preview("dev")


@pytest.fixture(scope="session")
def gpu_nvidia() -> Recording:
    """The `gpu-nvidia` stack (the seed's GPU box) exactly as Pulumi.gpu-nvidia.yaml configures it."""
    return preview("gpu-nvidia")
