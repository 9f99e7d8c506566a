"""Helpers for the gcpvm tests: the example config map, varied key by key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stacks.offline import read_stack_config  # noqa: E402


def gcpvm_config(**changes: Any) -> dict[str, str]:
    """Pulumi.gcpvm.yaml's config map with keys replaced (values as Python, encoded like the CLI does)."""
    config, _ = read_stack_config("gcpvm")
    for key, value in changes.items():
        config[f"ray-platform:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return config
