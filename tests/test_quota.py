"""stacks/quota.py: regional quota at max scale, checked against a fake `gcloud compute regions describe`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import quota
from stacks.offline import preview

ROOT = Path(__file__).resolve().parent.parent


def fake_gcloud(tmp_path: Path, quotas: list[dict]) -> dict[str, str]:
    """A `gcloud` on PATH that logs its arguments and reports these quotas for any region."""
    (tmp_path / "quotas.json").write_text(json.dumps({"name": "europe-west1", "quotas": quotas}))
    script = tmp_path / "bin" / "gcloud"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\ncat {tmp_path}/quotas.json\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}"}


def run(stack: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stacks.quota", stack], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_gke_needs_h200_and_preemptible_h200_gpus_at_max_scale():
    _, region, required = quota.needs(preview("gke").to_json())
    assert region == "europe-west1"
    pools = {r["inputs"]["name"]: r["inputs"] for r in preview("gke").to_json()["resources"]
             if r["type"] == "gcp:container/nodePool:NodePool"}
    preemptible = sum(p["autoscaling"]["totalMaxNodeCount"] for p in pools.values()
                      if p["nodeConfig"].get("spot") or p["nodeConfig"].get("flexStart"))
    assert required["PREEMPTIBLE_NVIDIA_H200_GPUS"] == 8 * preemptible
    assert required["NVIDIA_H200_GPUS"] == 8 * pools["h200-on-demand"]["autoscaling"]["totalMaxNodeCount"]


def test_deploy_stops_when_the_region_has_too_little_quota(tmp_path):
    _, _, required = quota.needs(preview("gke").to_json())
    quotas = [{"metric": m, "limit": float(n), "usage": 0.0} for m, n in required.items()]
    short = next(q for q in quotas if q["metric"] == "NVIDIA_H200_GPUS")
    short["usage"] = short["limit"] - 1  # one GPU free, eight needed per node
    result = run("gke", fake_gcloud(tmp_path, quotas))
    assert result.returncode == 1
    assert f"NVIDIA_H200_GPUS: the stack needs {required['NVIDIA_H200_GPUS']} at maximum scale, 1 free" in result.stderr
    assert "PREEMPTIBLE_NVIDIA_H200_GPUS" not in result.stderr and "Traceback" not in result.stderr
    assert "compute regions describe europe-west1 --project" in (tmp_path / "calls").read_text()


@pytest.mark.parametrize("stack", ["gke", "gcpvm"])
def test_enough_quota_passes(tmp_path, stack):
    _, _, required = quota.needs(preview(stack).to_json())
    quotas = [{"metric": m, "limit": float(n), "usage": 0.0} for m, n in required.items()]
    result = run(stack, fake_gcloud(tmp_path, quotas))
    assert result.returncode == 0, result.stderr


def test_a_missing_metric_is_named():
    assert quota.shortfalls({"NVIDIA_H200_GPUS": 8}, []) == [
        "NVIDIA_H200_GPUS: the stack needs 8 at maximum scale, 0 free (no such quota in this region)"]
