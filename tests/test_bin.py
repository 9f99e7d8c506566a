"""./bin/deploy stops early, saying what is missing and how to get it, before touching anything."""

from __future__ import annotations

import hashlib
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
    for script in ("bin/deploy", "bin/test", "bin/preview", "bin/venv", ".ci/run"):
        assert os.access(ROOT / script, os.X_OK), script


GIB = 1024**3


def requirements_digest() -> str:
    """The stamp bin/venv leaves in .venv once requirements.txt is installed."""
    return hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()[:16]


def project(tmp_path: Path, docker_info: dict, tools: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """A copy of the project whose .venv is this test venv (pip is a no-op: nothing is installed), with fake
    `docker` (answering `docker info` with docker_info) and other tools on a PATH of their own."""
    proj = tmp_path / "project"
    (proj / "bin").mkdir(parents=True)
    for script in ("deploy", "preview", "venv"):
        shutil.copy(ROOT / "bin" / script, proj / "bin" / script)
    for name in ("stacks", "components", "requirements.txt", "Pulumi.yaml", *(p.name for p in ROOT.glob("Pulumi.*.yaml"))):
        (proj / name).symlink_to(ROOT / name)
    (proj / ".venv" / "bin").mkdir(parents=True)
    (proj / ".venv" / "bin" / "python").write_text(
        f'#!/bin/bash\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    (proj / ".venv" / "bin" / "python").chmod(0o755)
    (proj / ".venv" / f".requirements-{requirements_digest()}").touch()  # bin/venv: ready, nothing to install
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    for name in ("bash", "ls", "sed", "tr", "grep", "dirname", "cat", "mkdir", "sha256sum", "cut", "rm", "touch"):
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
    assert "Total per hour: 0.00 USD at minimum scale" in result.stdout  # what it costs, before `pulumi up`


def checkout_with_venv(tmp_path: Path) -> Path:
    """A checkout (links to this one's files, stack files replaceable) whose .venv is this test venv, marked
    ready so that bin/venv installs nothing."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for entry in ROOT.iterdir():
        if entry.name == "stacks":  # copied: the preview finds Pulumi.*.yaml next to its own package
            shutil.copytree(entry, repo / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
        elif not entry.name.startswith((".venv", ".git", ".pulumi-state")):
            (repo / entry.name).symlink_to(entry)
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(f'#!/bin/bash\nexec "{sys.executable}" "$@"\n')
    (venv_bin / "python").chmod(0o755)
    (repo / ".venv" / f".requirements-{requirements_digest()}").touch()
    return repo


def deploy_in(repo: Path, tmp_path: Path, *args: str, tools: dict[str, str]) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir(exist_ok=True)
    for name in ("bash", "ls", "sed", "tr", "grep", "dirname", "cat", "sha256sum", "cut", "rm", "touch", "mkdir"):
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(shutil.which(name))
    (bin_dir / "python3").unlink(missing_ok=True)
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    for name, script in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{script}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(repo / "bin" / "deploy"), *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)


def test_documentation_placeholders_stop_the_deploy_before_pulumi_up(tmp_path):
    repo = checkout_with_venv(tmp_path)
    calls = tmp_path / "pulumi-calls"
    tools = {"pulumi": f'echo "$@" >> {calls}', "gcloud": "exit 0", "gke-gcloud-auth-plugin": "exit 0",
             "kubectl": "exit 0"}
    result = deploy_in(repo, tmp_path, "gke", tools=tools)
    assert result.returncode == 2, result.stderr
    assert "error: documentation placeholders to replace before deploying (edit Pulumi.gke.yaml):" in result.stderr
    assert "line 7: ray-platform:project: 'my-gcp-project-id' is a documentation placeholder" in result.stderr
    assert "ray-platform:authorized_networks[0].cidr: '203.0.113.7/32'" in result.stderr
    assert not calls.exists()  # neither `pulumi stack select` nor `pulumi up` ran


def test_spcs_consumer_needs_no_docker_engine(tmp_path):
    """The environment is `spcs_consumer` (it installs the provider's app, builds no image), not `spcs`."""
    repo = checkout_with_venv(tmp_path)
    result = deploy_in(repo, tmp_path, "spcs-consumer", tools={"pulumi": "exit 0"})
    assert "docker" not in result.stderr.lower()
    assert "ray-platform:organization_name: 'MYORG' is a documentation placeholder" in result.stderr
    result = deploy_in(repo, tmp_path, "spcs-app", tools={"pulumi": "exit 0"})
    assert "error: docker is not installed (needed by the spcs_app environment)" in result.stderr


def test_a_misindented_stack_file_is_one_error_line_in_deploy(tmp_path):
    repo = checkout_with_venv(tmp_path)
    (repo / "Pulumi.dev.yaml").unlink()
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("  ray-platform:bind_address", " ray-platform:bind_address")
    (repo / "Pulumi.dev.yaml").write_text(text)
    result = deploy_in(repo, tmp_path, "dev", tools={"pulumi": "exit 0", "docker": "exit 0"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Pulumi.dev.yaml line" in result.stderr and "not valid YAML" in result.stderr
