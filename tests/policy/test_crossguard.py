"""The same rules through CrossGuard's own classes, in the pack's own venv (pulumi-policy pins an older protobuf)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from policy.rules import RULES, Subject
from tests.policy.subjects import stack_names, stack_subjects

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-policy"


@pytest.fixture(scope="module")
def policy_python() -> Path:
    """The pack's venv; ./bin/test makes it, and this builds it when run on its own."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "policy/requirements.txt")],
                       check=True, timeout=600)
    return python


def crossguard(python: Path, subjects: list[Subject]) -> dict:
    payload = json.dumps([dataclasses.asdict(s) for s in subjects])
    result = subprocess.run([str(python), str(Path(__file__).with_name("crossguard_driver.py"))], input=payload,
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_pack_registers_every_rule_crossguard_can_judge(policy_python):
    report = crossguard(policy_python, [])
    assert report["policies"] == [rule.name for rule in RULES if rule.crossguard]
    assert "secrets-are-secret" not in report["policies"]  # CrossGuard sees secrets unwrapped


@pytest.mark.parametrize("stack", stack_names())
def test_every_stack_passes_under_crossguard(policy_python, stack):
    assert crossguard(policy_python, stack_subjects(stack))["violations"] == []


def test_violations_reach_crossguards_report(policy_python):
    exposed = Subject("docker:index/container:Container", "c", {"ports": [{"internal": 8265, "external": 8265}]})
    fw = Subject("gcp:compute/firewall:Firewall", "fw", {"sourceRanges": ["0.0.0.0/0"],
                                                          "allows": [{"protocol": "tcp", "ports": ["10001"]}]})
    binauthz = Subject("gcp:binaryauthorization/policy:Policy", "p",
                       {"defaultAdmissionRule": {"enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}})
    tagged = Subject("kubernetes:apps/v1:DaemonSet", "ds", {"spec": {"image": "nccl:latest"}}, provider="k8s")
    violations = crossguard(policy_python, [exposed, fw, binauthz, tagged])["violations"]
    assert {name for name, _ in violations} == {"docker-ports-on-loopback", "no-ray-ports-to-internet",
                                                "images-by-digest-under-binauthz"}
    assert any("ds: image 'nccl:latest' is referenced by tag" in message for _, message in violations)
