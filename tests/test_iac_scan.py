"""A maintained IaC scanner (checkov) over the Dockerfiles in images/ and the Kubernetes manifests the stacks
render. Findings are fixed, or skipped in the file itself with the reason beside the skip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.offline import preview

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-scan"


@pytest.fixture(scope="module")
def checkov() -> Path:
    """./bin/test makes the scanner's venv; this builds it when the test runs on its own."""
    binary = VENV / "bin" / "checkov"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r",
                        str(ROOT / "requirements-scan.txt")], check=True, timeout=900)
    return binary


def scan(checkov: Path, directory: Path, framework: str) -> list[str]:
    result = subprocess.run([str(checkov), "-d", str(directory), "--framework", framework, "-o", "json", "--quiet",
                             "--skip-download"], capture_output=True, text=True, timeout=600)
    reports = json.loads(result.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    failed = [check for report in reports for check in report.get("results", {}).get("failed_checks", [])]
    return [f"{c['check_id']} {c['check_name']} ({c['file_path']})" for c in failed]


def test_dockerfiles_have_no_unexplained_findings(checkov):
    assert scan(checkov, ROOT / "images", "dockerfile") == []


def kubernetes_manifests() -> list[dict]:
    """Every Kubernetes object the stacks create, as the manifest the API server would receive."""
    manifests = []
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        for resource in preview(path.name.split(".")[1]).resources:
            if resource.type.startswith("kubernetes:") and resource.custom and "kind" in resource.inputs:
                manifests.append(resource.inputs)
    return manifests


def test_kubernetes_manifests_have_no_unexplained_findings(checkov, tmp_path):
    manifests = kubernetes_manifests()
    for i, manifest in enumerate(manifests):
        (tmp_path / f"{i:03}-{manifest['kind'].lower()}.yaml").write_text(yaml.safe_dump(manifest))
    assert scan(checkov, tmp_path, "kubernetes") == []


def test_the_scanner_does_find_problems(checkov, tmp_path):
    """The scans above can fail: an image run as root from a latest tag is caught."""
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:latest\nRUN apt-get update\n")
    findings = scan(checkov, tmp_path, "dockerfile")
    assert any(f.startswith("CKV_DOCKER_7") for f in findings), findings
