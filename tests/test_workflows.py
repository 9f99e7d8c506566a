"""The GitHub workflows: they parse, every action is pinned, every script and stack they name exists,
and the offline preview comment they post is built right."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as True
    return document


def steps(document: dict) -> list[dict]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows_for_tests_previews_and_deploys():
    assert {p.stem for p in WORKFLOWS} == {"tests", "offline-preview", "offline-preview-comment", "cloud-preview",
                                           "deploy"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_parses_and_pins_every_action(path):
    document = load(path)
    assert document["on"] and document["jobs"]
    for step in steps(document):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", step["uses"]), step["uses"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_script_module_and_stack_a_workflow_names_exists(path):
    document = load(path)
    for step in steps(document):
        run = step.get("run", "")
        for script in re.findall(r"(?:^|\s)((?:\./)?(?:bin|scripts|\.ci)/[\w./-]+)", run):
            assert (ROOT / script).exists(), f"{path.name}: {script} does not exist"
        for module in re.findall(r"python -m ([\w.]+)", run):
            if module not in ("venv", "pip"):
                assert importlib.util.find_spec(module) is not None, f"{path.name}: no module {module}"
        for requirements in re.findall(r"-r ([\w./-]+)", run):
            assert (ROOT / requirements).exists(), f"{path.name}: {requirements} does not exist"
    for job in document["jobs"].values():
        for stack in job.get("strategy", {}).get("matrix", {}).get("stack", []):
            assert (ROOT / f"Pulumi.{stack}.yaml").exists(), f"{path.name}: no stack {stack}"


def test_cloud_preview_uses_pulumi_actions_with_comments_backend_and_policies():
    document = load(ROOT / ".github/workflows/cloud-preview.yml")
    pulumi_step = next(s for s in steps(document) if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi_step["uses"] == "pulumi/actions@v7"
    assert pulumi_step["with"]["command"] == "preview" and pulumi_step["with"]["comment-on-pr"] is True
    assert pulumi_step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert pulumi_step["with"]["policyPacks"] == "policy"
    # Without secrets every step after the check is skipped, so forks pass cleanly.
    assert all("steps.check.outputs.enabled == 'true'" in s.get("if", "") for s in steps(document)[1:])


def test_offline_preview_needs_no_secrets_and_the_comment_job_runs_no_pr_code():
    preview = (ROOT / ".github/workflows/offline-preview.yml").read_text()
    assert "secrets." not in preview
    comment = load(ROOT / ".github/workflows/offline-preview-comment.yml")
    assert "workflow_run" in comment["on"]
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in steps(comment))


def test_deploys_wait_for_an_environment_approval():
    job = load(ROOT / ".github/workflows/deploy.yml")["jobs"]["up"]
    assert job["environment"] == "deploy-${{ matrix.stack }}"
    assert "vars.DEPLOY_ON_MERGE == 'true'" in job["if"]


def test_preview_comment_shows_each_stacks_diff(tmp_path, dev):
    base = tmp_path / "base"
    base.mkdir()
    changed = dev.to_json()
    changed["resources"] = [r for r in changed["resources"] if r["name"] != "ray-cpu-1"]
    (base / "dev.json").write_text(json.dumps(changed))
    out = tmp_path / "comment.md"
    subprocess.run([sys.executable, "scripts/preview_comment.py", str(base), str(out)], cwd=ROOT, check=True,
                   timeout=300)
    text = out.read_text()
    assert text.startswith("<!-- ray-platform-offline-preview -->")
    assert "<code>dev</code>: 1 to create, 0 to change, 0 to remove" in text
    assert "+ docker:index/container:Container::ray-cpu-1" in text
