"""./bin/jobs runs the job client from any directory without an activated venv; bin/deploy's closing hints
work pasted into a new shell."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shell_path(directory: Path, *names: str) -> str:
    """A PATH holding only these tools (no python, no venv), like a new shell on a bare machine."""
    directory.mkdir(exist_ok=True)
    for name in ("bash", "sha256sum", "cut", "dirname", *names):
        if not (directory / name).exists():
            (directory / name).symlink_to(shutil.which(name))
    return str(directory)


def project_copy(tmp_path: Path) -> Path:
    """bin/jobs and bin/venv in a tree whose .venv is ready (the test venv's packages), code linked in."""
    project = tmp_path / "project dir"
    (project / "bin").mkdir(parents=True)
    for name in ("jobs", "venv"):
        shutil.copy2(ROOT / "bin" / name, project / "bin" / name)
    shutil.copy2(ROOT / "requirements.txt", project / "requirements.txt")
    for name in ("jobs", "stacks", "components"):
        (project / name).symlink_to(ROOT / name)
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # unresolved: Python finds pyvenv.cfg next to the link
    shutil.copy2(Path(sys.prefix) / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib")
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()[:16]
    (venv / f".requirements-{digest}").touch()
    return project


def test_bin_jobs_runs_the_client_from_another_directory_without_python_on_path(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": shell_path(tmp_path / "tools"), "HOME": str(tmp_path)}
    run = subprocess.run([str(project / "bin" / "jobs"), "list"], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr == "error: no cluster named: pass --stack STACK or --outputs FILE, or set RAY_ADDRESS\n"

    helped = subprocess.run([str(project / "bin" / "jobs"), "local-cluster", "--help"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ./bin/jobs local-cluster [-h] --outputs OUTPUTS")


def test_bin_venv_rebuilds_only_when_requirements_change(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    env = {"PATH": shell_path(tmp_path / "tools"), "HOME": str(tmp_path)}
    current = subprocess.run([str(project / "bin" / "venv")], env=env, capture_output=True, text=True, timeout=60)
    assert (current.returncode, current.stdout, current.stderr) == (0, "", "")
    (project / "requirements.txt").write_text("ray==0.0.0-changed\n")
    stale = subprocess.run([str(project / "bin" / "venv")], env=env, capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1  # no python3 on this PATH: it tried to rebuild, and says what is missing
    assert stale.stderr == "error: python3 (3.11 or newer) is not installed\n"


def deploy_hints(project: Path, env: dict[str, str], pulumi: str = "pulumi") -> list[str]:
    """The lines bin/deploy prints after `pulumi up`, run as bin/deploy runs them (set -u, in the project, with
    `$pulumi` the CLI it used: the one on PATH or the one it installed in .tools/pulumi)."""
    script = (ROOT / "bin" / "deploy").read_text()
    hints = script[script.index('"$pulumi" up --stack "$stack" "$@"\n') :].split("\n", 1)[1]
    result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + hints], cwd=project, capture_output=True,
                            text=True, env={**env, "stack": "dev", "pulumi": pulumi}, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_deploy_hints_work_pasted_into_a_new_shell(tmp_path: Path) -> None:
    project = tmp_path / "my project"  # a space: the hints must quote paths
    state = project / ".pulumi-state"
    (project / "bin").mkdir(parents=True)
    state.mkdir()
    tools = tmp_path / "tools"
    shell_path(tools, "env")
    for name, body in (("pulumi", "pulumi"), ("jobs", "bin/jobs")):  # fakes that say how they were run
        fake = (tools if name == "pulumi" else project / "bin") / name
        fake.write_text(f'#!/bin/bash\necho "{body} $* in $PWD backend=$PULUMI_BACKEND_URL '
                        'passphrase=${PULUMI_CONFIG_PASSPHRASE_FILE:-unset}"\n')
        fake.chmod(0o755)
    backend = {"PULUMI_BACKEND_URL": f"file://{state}", "PATH": os.environ["PATH"], "pulumi": str(tools / "pulumi")}
    with_file = deploy_hints(project, {**backend, "PULUMI_CONFIG_PASSPHRASE_FILE": str(state / "passphrase")})
    with_passphrase = deploy_hints(project, {**backend, "PULUMI_CONFIG_PASSPHRASE": "typed"})
    assert [line.split(":", 1)[0] for line in with_file] == ["Outputs", "Submit a job"]

    def pasted(line: str) -> str:  # a new shell: in $HOME, only PATH set
        command = line.split(":", 1)[1].strip()
        new_shell = {"PATH": str(tools), "HOME": str(tmp_path)}
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=new_shell, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert pasted(with_file[0]) == (f"pulumi stack output --stack dev in {project} backend=file://{state} "
                                    f"passphrase={state}/passphrase")  # fmt: skip
    assert pasted(with_passphrase[0]).endswith(f"backend=file://{state} passphrase=unset")
    installed = project / ".tools" / "pulumi" / "bin" / "pulumi"  # where bin/deploy installs the CLI
    installed.parent.mkdir(parents=True)
    installed.write_text((tools / "pulumi").read_text().replace('echo "pulumi', 'echo ".tools pulumi'))
    installed.chmod(0o755)
    with_installed = deploy_hints(project, {**backend, "PULUMI_CONFIG_PASSPHRASE": "typed"}, ".tools/pulumi/bin/pulumi")
    assert pasted(with_installed[0]).startswith(f".tools pulumi stack output --stack dev in {project} ")
    assert pasted(with_file[1]) == (f"bin/jobs submit --stack dev --working-dir jobs/examples -- python hello_world.py "
                                    f"in {project} backend= passphrase=unset")  # fmt: skip


def test_local_cluster_that_cannot_start_is_one_error_line(tmp_path: Path) -> None:
    project = project_copy(tmp_path)  # its .venv/bin has python but no `ray` script
    env = {"PATH": shell_path(tmp_path / "tools"), "HOME": str(tmp_path)}
    run = subprocess.run([str(project / "bin" / "jobs"), "local-cluster", "--outputs", str(tmp_path / "o.json")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr == f"error: the cluster did not start: No such file or directory: {project}/.venv/bin/ray\n"
    assert not (tmp_path / "o.json").exists()
