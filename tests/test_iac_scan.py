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


# Kubernetes findings we accept, each for the objects named and with the reason (the scanner cannot see these).
# Ray pods are the RayCluster's pod templates; everything not listed here must pass every check.
INSTALLER = "daemonset/nccl-rdma-installer"
RAY_PODS = {"pod/ray-head", "pod/ray-h200", "pod/ray-cpu"}
KUBERNETES_SKIPS = {
    "CKV_K8S_8": ("liveness: KubeRay adds Ray's own probes to head and worker containers when it builds the pods; "
                  "the NCCL installer is an init container plus pause", {INSTALLER, *RAY_PODS}),
    "CKV_K8S_9": ("readiness: as CKV_K8S_8", {INSTALLER, *RAY_PODS}),
    "CKV_K8S_11": ("CPU limits: only add throttling to the installer's pause and the head's Grafana and query "
                   "frontend; every Ray container has them", {INSTALLER, "pod/ray-head"}),
    "CKV_K8S_12": ("memory requests: the NCCL installer's init container runs once and exits", {INSTALLER}),
    "CKV_K8S_13": ("memory limits: as CKV_K8S_12", {INSTALLER}),
    "CKV_K8S_15": ("pull policy: the installer and Ray images are pinned (digest or versioned tag), so IfNotPresent "
                   "pulls what Always would", {INSTALLER, "pod/ray-head"}),
    "CKV_K8S_16": ("privileged: Google's NCCL RDMA installer copies the gIB plugin onto the host", {INSTALLER}),
    "CKV_K8S_17": ("host PID: Google's NCCL RDMA installer sets hostPID (gpudirect-rdma/nccl-rdma-installer.yaml)",
                   {INSTALLER}),
    "CKV_K8S_19": ("host network: the NCCL installer runs on the host like Google's own manifest", {INSTALLER}),
    "CKV_K8S_20": ("privilege escalation: the installer's init container is privileged (CKV_K8S_16)", {INSTALLER}),
    "CKV_K8S_22": ("read-only root: Ray writes /tmp/ray and runtime environments into the container; the installer "
                   "writes the host's directories", {INSTALLER, *RAY_PODS}),
    "CKV_K8S_28": ("NET_RAW: a privileged container holds every capability whatever it drops (CKV_K8S_16)",
                   {INSTALLER}),
    "CKV_K8S_37": ("capabilities: as CKV_K8S_28", {INSTALLER}),
    "CKV_K8S_38": ("service account token: the head's in-tree autoscaler talks to the Kubernetes API; workers and "
                   "the installer mount none", {"pod/ray-head"}),
    "CKV_K8S_40": ("high UID: Ray's images run as their user 'ray', uid 1000", RAY_PODS),
    "CKV_K8S_43": ("digest: the NCCL installer, Grafana and the query frontend are tags until their digests are set "
                   "(docs/first-deployment/gke.md); Ray images are by digest", {INSTALLER, "pod/ray-head"}),
    "CKV2_K8S_6": ("NetworkPolicy: Dataplane V2 enforces them, but the multi-network Ray pods need rules written for "
                   "their RDMA interfaces first (follow-up)", {INSTALLER, *RAY_PODS}),
}


def kubernetes_manifests() -> list[dict]:
    """Every Kubernetes object the stacks create, as the manifest the API server would receive; a RayCluster's
    pod templates also as Pods, since scanners do not read inside custom resources."""
    manifests = []
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        for resource in preview(path.name.split(".")[1]).resources:
            if resource.type.startswith("kubernetes:") and resource.custom and "kind" in resource.inputs:
                manifests.append(resource.inputs)
                if resource.inputs["kind"] == "RayCluster":
                    manifests += ray_pods(resource.inputs)
    return manifests


def ray_pods(ray_cluster: dict) -> list[dict]:
    spec, metadata = ray_cluster["spec"], ray_cluster["metadata"]
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    return [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {**group["template"].get("metadata", {}), "name": f"{metadata['name']}-{name}",
                          "namespace": metadata.get("namespace", "default")},
             "spec": group["template"]["spec"]} for name, group in groups]


def test_kubernetes_manifests_have_no_unexplained_findings(checkov, tmp_path):
    manifests = kubernetes_manifests()
    assert any(m["kind"] == "Pod" for m in manifests)  # the Ray pods are scanned
    names = {}
    for i, manifest in enumerate(manifests):
        (tmp_path / f"{i:03}.yaml").write_text(yaml.safe_dump(manifest))
        names[f"/{i:03}.yaml"] = f"{manifest['kind'].lower()}/{manifest['metadata']['name']}"
    found = {(f.split()[0], names[f.rsplit("(", 1)[1].rstrip(")")]) for f in scan(checkov, tmp_path, "kubernetes")}
    accepted = {(check, name) for check, (_, objects) in KUBERNETES_SKIPS.items() for name in objects}
    assert sorted(found - accepted) == []
    assert sorted(accepted - found) == [], "accepted findings that no longer occur: remove them"


def test_the_scanner_does_find_problems(checkov, tmp_path):
    """The scans above can fail: an image run as root from a latest tag is caught."""
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:latest\nRUN apt-get update\n")
    findings = scan(checkov, tmp_path, "dockerfile")
    assert any(f.startswith("CKV_DOCKER_7") for f in findings), findings
