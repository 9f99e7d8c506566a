"""The host preflight (`python -m stacks.preflight STACK`) against fake `docker`, `nvidia-smi` and `ssh` on PATH."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import preflight
from stacks.config import load

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3
LAPTOP = {"NCPU": 4, "MemTotal": 8 * GIB, "Runtimes": {"runc": {"path": "runc"}}}
GPU_BOX = {"NCPU": 64, "MemTotal": 256 * GIB, "Runtimes": {"runc": {"path": "runc"}}}
CDI = [{"Source": "cdi", "ID": f"nvidia.com/gpu={gpu}"} for gpu in ("0", "1", "all")]


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake host: `docker` prints the canned `docker info` JSON (or fails); each call is logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(preflight, "DEVICE_ROOT", tmp_path / "root")

    class Host:
        def tool(self, name: str, script: str) -> None:
            (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\n{script}\n')
            (bin_dir / name).chmod(0o755)

        def info(self, document: dict) -> None:
            (tmp_path / "info.json").write_text(json.dumps(document))
            self.tool("docker", f'echo "$(<{tmp_path / "info.json"})"')  # builtins only: PATH is just bin/

        def devices(self, *paths: str) -> None:
            for path in paths:
                (tmp_path / "root" / path.lstrip("/")).mkdir(parents=True)

        @property
        def calls(self) -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

    return Host()


def problems(stack: str, capsys) -> tuple[int, list[str]]:
    code = preflight.main([stack])
    err = capsys.readouterr().err.splitlines()
    return code, [line.strip() for line in err[1:]]


def test_dev_passes_on_a_laptop_sized_engine(host, capsys):
    host.info(LAPTOP)
    assert problems("dev", capsys) == (0, [])
    assert host.calls == ["docker -H unix:///var/run/docker.sock info --format {{json .}}"]


def test_an_engine_that_does_not_answer_is_named_with_how_to_start_it(host, capsys):
    host.tool("docker", 'echo \'{"NCPU": 0, "ServerErrors": ["Cannot connect to the Docker daemon at '
                        'unix:///var/run/docker.sock. Is the docker daemon running?"]}\'; exit 1')
    code, found = problems("dev", capsys)
    assert code == 1 and found == [
        "host 'local' (unix:///var/run/docker.sock): the Docker engine does not answer `docker info` (Cannot connect "
        "to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?); start it (Linux: "
        "`sudo systemctl start docker` and add yourself to the docker group; macOS/Windows: start Docker Desktop)"]


def test_a_missing_docker_client_is_an_engine_that_does_not_answer(host, capsys):
    code, found = problems("dev", capsys)
    assert code == 1 and "does not answer `docker info` (docker: command not found)" in found[0]


def test_too_few_cpus_and_too_little_memory_each_say_what_the_stack_asks(host, capsys):
    host.info({**LAPTOP, "NCPU": 1, "MemTotal": 4 * GIB})
    code, found = problems("dev", capsys)
    assert code == 1 and len(found) == 2
    assert found[0].startswith("host 'local' (unix:///var/run/docker.sock): the stack asks for 2 CPUs here (head 0 "
                               "CPU/2 GiB, workers 'cpu' 2 x 1 CPU/2 GiB) but the Docker engine has 1;")
    assert found[1].startswith("host 'local' (unix:///var/run/docker.sock): the stack asks for 6 GiB of memory here")
    assert "but the Docker engine has 4.0 GiB; lower memory_gb or replicas" in found[1]


def test_nvidia_workers_without_runtime_or_cdi_are_told_to_install_the_toolkit(host, capsys):
    host.info(GPU_BOX)
    code, found = problems("gpu-nvidia", capsys)
    assert code == 1 and len(found) == 1
    assert found[0].startswith("workers 'gpu' on host 'gpu-box' (unix:///var/run/docker.sock): Docker has no `nvidia` "
                               "runtime and no NVIDIA CDI devices; install the NVIDIA Container Toolkit")


def test_a_configured_gpu_the_host_lacks_is_named(host, capsys):
    host.info({**GPU_BOX, "Runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}})
    host.tool("nvidia-smi", 'echo "0, GPU-11111111-2222-3333-4444-555555555555"')
    code, found = problems("gpu-nvidia", capsys)
    assert code == 1 and len(found) == 1
    assert found[0].startswith("workers 'gpu' on host 'gpu-box' (unix:///var/run/docker.sock): GPU 1 not on the host "
                               "(it has: 0, GPU-11111111-2222-3333-4444-555555555555)")
    assert "nvidia-smi --query-gpu=index,uuid --format=csv,noheader" in host.calls[-1]


def test_gpus_that_cannot_be_listed_are_a_problem_too(host, capsys):
    host.info({**GPU_BOX, "Runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}})
    code, found = problems("gpu-nvidia", capsys)
    assert code == 1 and "cannot list the host's GPUs to check gpu_ids" in found[0]
    assert "nvidia-smi: nvidia-smi: command not found" in found[0]


def test_nvidia_box_with_cdi_devices_passes(host, capsys):
    host.info({**GPU_BOX, "DiscoveredDevices": CDI})
    assert problems("gpu-nvidia", capsys) == (0, [])


def test_amd_workers_need_kfd_and_dri(host, capsys):
    host.info(GPU_BOX)
    host.devices("/dev/dri")
    code, found = problems("gpu-amd", capsys)
    assert code == 1 and found == [
        f"workers 'gpu' on host 'gpu-box' (unix:///var/run/docker.sock): /dev/kfd missing (the ROCm driver's "
        f"devices); {preflight.ROCM_DRIVER}"]
    host.devices("/dev/kfd")
    assert problems("gpu-amd", capsys) == (0, [])


def test_remote_hosts_are_asked_over_ssh_with_the_stacks_ssh_options(host):
    host.tool("ssh", 'shift 3; eval "$1"')  # drops `-p 2222 me@box`, runs the remote command here
    host.info({**GPU_BOX, "Runtimes": {"nvidia": {}}})
    host.tool("nvidia-smi", 'echo "0, GPU-a"; echo "1, GPU-b"')
    cfg = load({"ray-platform:hosts": json.dumps([{"name": "box", "url": "ssh://me@box", "ssh_opts": ["-p", "2222"]}]),
                "ray-platform:workers": json.dumps([{"name": "g", "gpu_vendor": "nvidia", "gpus_per_worker": 2,
                                                     "gpu_ids": ["0", "GPU-c"]}])})
    assert preflight.check(cfg) == [
        "workers 'g' on host 'box' (ssh://me@box): GPU GPU-c not on the host (it has: 0, 1, GPU-a, GPU-b); set gpu_ids "
        "to GPUs `nvidia-smi -L` lists, or check the driver sees every GPU"]
    assert host.calls[0] == "ssh -p 2222 me@box docker info --format '{{json .}}'"


def test_other_environments_have_nothing_to_check(host, capsys):
    assert problems("gke", capsys) == (0, []) and host.calls == []


def test_the_command_line_prints_one_error_header_and_exits_1(tmp_path):
    result = subprocess.run([sys.executable, "-m", "stacks.preflight", "dev"], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": str(tmp_path)}, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == ("error: the Docker hosts cannot run stack 'dev' yet (1 problem); "
                                             "nothing was created:")
