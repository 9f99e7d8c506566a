"""`python -m stacks.preview gke`: the JSON snapshot of the `gke` stack, its errors and its graph, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stacks.preview", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)


def test_gke_json_keeps_the_kubeconfig_secret():
    """(The JSON snapshot of every stack is checked in tests/test_preview.py.)"""
    result = run_cli("gke", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["environment"] == "gke" and document["outputs"]["kubeconfig"] == "[secret]"


def test_a_bad_gke_config_is_one_clear_error_without_traceback():
    result = run_cli("gke", "--set", "zone=us-east4-b", "--set", "gpu_pools={\"spot\": {\"max_nodes\": 0}}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: invalid stack configuration (2 problems):",
        "  ray-platform:zone: 'us-east4-b' is not in region 'europe-west1' (allowed: a zone of europe-west1 that has "
        "the <zone>-vpc-roce network profile: gcloud compute network-profiles list)",
        "  ray-platform:gpu_pools.spot.max_nodes: 0 for an enabled pool (allowed: 1 to 64, or enabled: false)",
    ]


def test_the_graph_shows_the_components():
    result = run_cli("gke", "--graph")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for component in ("RdmaNetwork", "GkeCluster", "H200NodePools", "ClusterNetworking", "CloudBuild",
                      "BinaryAuthorization", "TrainingData", "ArtifactRegistry"):
        assert f"<small>{component}</small>" in text, component
