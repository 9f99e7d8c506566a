"""Fixtures for the `gke` stack: its offline preview, and the real CRD schemas from ../shared/schemas.

tests/gke/schemas/ is a copy of those schemas for checkouts without ../shared (a GitHub runner);
test_schema_copy_matches_shared keeps the copy identical wherever both exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.offline import Recording, preview

ROOT = Path(__file__).resolve().parents[2]
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"
VENDORED_SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCHEMAS = SHARED_SCHEMAS if SHARED_SCHEMAS.is_dir() else VENDORED_SCHEMAS


@pytest.fixture(scope="session")
def gke() -> Recording:
    """The `gke` stack exactly as Pulumi.gke.yaml configures it."""
    return preview("gke")


@pytest.fixture(scope="session")
def schema():
    def load(name: str) -> dict:
        return json.loads((SCHEMAS / name).read_text())

    return load


def strict(node):
    """An OpenAPI v3 CRD schema as plain JSON Schema: x-kubernetes-* keys dropped, and unknown fields rejected
    (the API server would silently prune them, so a typo would otherwise pass unnoticed)."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in out and "additionalProperties" not in out and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="session")
def ray_cluster_schema() -> dict:
    """KubeRay 1.7.0's RayCluster v1 schema (its Helm chart's CRD), strict."""
    import yaml

    crd = yaml.safe_load((SCHEMAS / "kuberay-v1.7.0_ray.io_rayclusters.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return schema
