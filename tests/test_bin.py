"""./bin/deploy stops early, saying what is missing and how to get it, before touching anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deploy(tmp_path: Path, *args: str, tools: dict[str, str]) -> subprocess.CompletedProcess:
    """Run bin/deploy with a PATH holding only python3, bash basics and the given fake tools."""
    bin_dir = tmp_path / f"bin{len(list(tmp_path.glob('bin*')))}"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    for name in ("bash", "ls", "sed", "tr", "grep", "dirname", "cat"):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    for name, script in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{script}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(ROOT / "bin" / "deploy"), *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)


def test_missing_pulumi_cli_is_named_with_how_to_install(tmp_path):
    result = deploy(tmp_path, "dev", tools={})
    assert result.returncode == 1
    assert result.stderr.startswith("error: the Pulumi CLI is not installed. Install it with")
    assert "get.pulumi.com" in result.stderr
    assert not (ROOT / ".pulumi-state" / "unexpected").exists()


def test_missing_docker_engine_is_named_with_how_to_start_it(tmp_path):
    result = deploy(tmp_path, "dev", tools={"pulumi": "exit 0", "docker": "exit 1"})
    assert result.returncode == 1
    assert "error: the Docker engine is not running or not reachable" in result.stderr


def test_missing_docker_client_is_named(tmp_path):
    result = deploy(tmp_path, "dev", tools={"pulumi": "exit 0"})
    assert result.returncode == 1 and "error: docker is not installed (needed by the local environment)" in result.stderr


def test_gke_needs_gcloud_credentials_and_the_auth_plugin(tmp_path):
    result = deploy(tmp_path, "gke", tools={"pulumi": "exit 0"})
    assert "error: gcloud is not installed (needed by the gke environment)" in result.stderr
    result = deploy(tmp_path, "gke", tools={"pulumi": "exit 0", "gcloud": "exit 1"})
    assert "no Google Cloud application-default credentials. Run: gcloud auth application-default login" in result.stderr
    result = deploy(tmp_path, "gke", tools={"pulumi": "exit 0", "gcloud": "exit 0"})
    assert "error: gke-gcloud-auth-plugin is not installed" in result.stderr


def test_unknown_stack_lists_the_known_ones(tmp_path):
    result = deploy(tmp_path, "prod", tools={"pulumi": "exit 0"})
    assert result.returncode == 1
    assert "error: no stack 'prod': Pulumi.prod.yaml does not exist (stacks: dev" in result.stderr


def test_scripts_are_executable():
    for script in ("bin/deploy", "bin/test", ".ci/run"):
        assert os.access(ROOT / script, os.X_OK), script


GIB = 1024**3


def project(tmp_path: Path, docker_info: dict, tools: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """A copy of the project whose .venv is this test venv (pip is a no-op: nothing is installed), with fake
    `docker` (answering `docker info` with docker_info) and other tools on a PATH of their own."""
    proj = tmp_path / "project"
    (proj / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "deploy", proj / "bin" / "deploy")
    for name in ("stacks", "components", "requirements.txt", "Pulumi.yaml", *(p.name for p in ROOT.glob("Pulumi.*.yaml"))):
        (proj / name).symlink_to(ROOT / name)
    (proj / ".venv" / "bin").mkdir(parents=True)
    (proj / ".venv" / "bin" / "python").write_text(
        f'#!/bin/bash\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    (proj / ".venv" / "bin" / "python").chmod(0o755)
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    for name in ("bash", "ls", "sed", "tr", "grep", "dirname", "cat", "mkdir"):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    (tmp_path / "info.json").write_text(json.dumps(docker_info))
    fakes = {"docker": f'cat {tmp_path / "info.json"}', **(tools or {})}
    for name, script in fakes.items():
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> {tmp_path / "calls.log"}\n{script}\n')
        (bin_dir / name).chmod(0o755)
    return proj, {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def test_deploy_runs_the_host_preflight_and_creates_nothing_when_it_fails(tmp_path):
    proj, env = project(tmp_path, {"NCPU": 1, "MemTotal": 16 * GIB}, {"pulumi": "exit 0"})
    result = subprocess.run(["bash", "bin/deploy", "dev"], cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0] == ("error: the Docker hosts cannot run stack 'dev' yet (1 problem); "
                                             "nothing was created:")
    assert "the stack asks for 2 CPUs here" in result.stderr
    assert not any(line.startswith("pulumi") for line in (tmp_path / "calls.log").read_text().splitlines())


def test_deploy_runs_pulumi_up_on_a_host_that_passes(tmp_path):
    proj, env = project(tmp_path, {"NCPU": 4, "MemTotal": 8 * GIB}, {"pulumi": "exit 0"})
    result = subprocess.run(["bash", "bin/deploy", "dev", "--yes"], cwd=proj, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert "docker -H unix:///var/run/docker.sock info --format {{json .}}" in calls
    assert calls[-1] == "pulumi up --stack dev --yes"
