"""`python -m stacks.preflight STACK`: can every Docker host of a `local` stack run it? Checked before anything is created.

bin/deploy runs this after the offline check and before `pulumi up` (never under the preview's mocks: it asks
the real hosts). Per host: the engine answers `docker info`; its CPUs and memory cover the Ray nodes placed
there; NVIDIA workers find an `nvidia` runtime or NVIDIA CDI devices and each configured GPU id; AMD workers
find /dev/kfd and /dev/dri. Every problem is one line naming the host or worker group, what is missing and
how to get it; exit status 1 when there is any. Other environments have nothing to check here.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stacks.config import load
from stacks.config.local import DockerHost, LocalConfig, WorkerGroup
from stacks.errors import STACK_ERRORS, error_line
from stacks.offline import read_stack_config

GIB = 1024**3
TIMEOUT_S = 30
# Where a unix:// host's device files are: this machine's root (tests point it at a fake tree).
DEVICE_ROOT = Path("/")
NVIDIA_TOOLKIT = (
    "install the NVIDIA Container Toolkit and register it with Docker: `sudo nvidia-ctk runtime configure "
    "--runtime=docker && sudo systemctl restart docker` "
    "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html)"
)
ROCM_DRIVER = (
    "install the AMD GPU driver (amdgpu-install --usecase=rocm) and load it with `sudo modprobe amdgpu` "
    "(https://rocm.docs.amd.com/projects/install-on-linux/en/latest/)"
)


@dataclass
class Demand:
    """What the stack places on one host: Ray nodes' logical CPUs and memory, and the worker groups."""

    cpus: int = 0
    memory_gb: float = 0
    parts: list[str] = field(default_factory=list)
    groups: list[WorkerGroup] = field(default_factory=list)


def demands(cfg: LocalConfig) -> dict[str, Demand]:
    out = {h.name: Demand() for h in cfg.hosts}
    head = out[cfg.head_host.name]
    head.cpus, head.memory_gb = cfg.head.cpus, cfg.head.memory_gb
    head.parts.append(f"head {cfg.head.cpus} CPU/{cfg.head.memory_gb:g} GiB")
    for w in cfg.workers:
        d = out[w.host or cfg.head_host.name]
        d.cpus += w.replicas * w.cpus
        d.memory_gb += w.replicas * w.memory_gb
        d.parts.append(f"workers '{w.name}' {w.replicas} x {w.cpus} CPU/{w.memory_gb:g} GiB")
        d.groups.append(w)
    return out


def run_on(host: DockerHost, argv: list[str]) -> subprocess.CompletedProcess:
    """A command on the host: here for a unix:// engine, over ssh (with the stack's ssh_opts) for ssh://."""
    if host.is_remote:
        argv = ["ssh", *host.ssh_opts, host.ssh_target, shlex.join(argv)]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"no answer within {TIMEOUT_S} s")


def docker_info(host: DockerHost) -> tuple[dict | None, str]:
    """`docker info` as JSON, or None and why not."""
    argv = ["docker", "info", "--format", "{{json .}}"]
    result = run_on(host, argv if host.is_remote else ["docker", "-H", host.url, *argv[1:]])
    try:
        info = json.loads(result.stdout) if result.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    errors = info.get("ServerErrors") or []
    if result.returncode == 0 and not errors and "NCPU" in info:
        return info, ""
    reason = (errors or [line for line in result.stderr.splitlines() if line.strip()] or [f"exit {result.returncode}"])
    return None, reason[-1].strip()


def exists(host: DockerHost, path: str) -> bool:
    if host.is_remote:
        return run_on(host, ["test", "-e", path]).returncode == 0
    return (DEVICE_ROOT / path.lstrip("/")).exists()


def nvidia_gpus(host: DockerHost, info: dict) -> tuple[set[str], str]:
    """The host's NVIDIA GPU ids (indexes and UUIDs) from CDI devices and nvidia-smi, and why none if so."""
    # Docker Engine API SystemInfo.DiscoveredDevices: CDI devices as {"Source": "cdi", "ID": "nvidia.com/gpu=0"}.
    found = {d["ID"].partition("=")[2] for d in info.get("DiscoveredDevices") or []
             if d.get("Source") == "cdi" and d.get("ID", "").startswith("nvidia.com/gpu=")} - {"all"}
    smi = run_on(host, ["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"])
    if smi.returncode == 0:
        found |= {part.strip() for line in smi.stdout.splitlines() for part in line.split(",") if part.strip()}
    why = (smi.stderr.strip().splitlines() or [f"exit {smi.returncode}"])[-1] if smi.returncode else ""
    return found, why


def check_host(cfg: LocalConfig, host: DockerHost, demand: Demand) -> list[str]:
    where = f"host '{host.name}' ({host.url})"
    info, why = docker_info(host)
    if info is None:
        how = (f"check that `ssh {shlex.join([*host.ssh_opts, host.ssh_target or ''])} docker info` works there"
               if host.is_remote else
               "start it (Linux: `sudo systemctl start docker` and add yourself to the docker group; macOS/Windows: "
               "start Docker Desktop)")
        return [f"{where}: the Docker engine does not answer `docker info` ({why}); {how}"]
    problems = []
    # Ray is told these CPUs and bytes exist (--num-cpus, --memory); an engine with fewer overcommits or OOM-kills.
    if demand.cpus > info["NCPU"]:
        problems.append(
            f"{where}: the stack asks for {demand.cpus} CPUs here ({', '.join(demand.parts)}) but the Docker engine "
            f"has {info['NCPU']}; lower cpus or replicas in the stack's Pulumi.STACK.yaml, or give Docker more CPUs "
            "(Docker Desktop: Settings > Resources)")
    memory = info.get("MemTotal", 0) / GIB
    if demand.memory_gb > memory:
        problems.append(
            f"{where}: the stack asks for {demand.memory_gb:g} GiB of memory here ({', '.join(demand.parts)}) but the "
            f"Docker engine has {memory:.1f} GiB; lower memory_gb or replicas in the stack's Pulumi.STACK.yaml, or give "
            "Docker more memory (Docker Desktop: Settings > Resources)")
    for w in demand.groups:
        group = f"workers '{w.name}' on {where}"
        if w.gpu_vendor == "nvidia":
            # Docker serves `--gpus`/device requests through the toolkit's `nvidia` runtime or its CDI spec:
            # https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html
            cdi = any(d.get("Source") == "cdi" and d.get("ID", "").startswith("nvidia.com/gpu=")
                      for d in info.get("DiscoveredDevices") or [])
            if "nvidia" not in (info.get("Runtimes") or {}) and not cdi:
                problems.append(f"{group}: Docker has no `nvidia` runtime and no NVIDIA CDI devices; {NVIDIA_TOOLKIT}")
                continue
            present, why = nvidia_gpus(host, info)
            if not present:
                problems.append(
                    f"{group}: cannot list the host's GPUs to check gpu_ids (no NVIDIA CDI devices in `docker info`, "
                    f"nvidia-smi: {why}); install the NVIDIA driver so that `nvidia-smi` works")
                continue
            missing = [gpu for gpu in w.gpu_ids if gpu not in present]
            if missing:
                problems.append(
                    f"{group}: GPU {', '.join(missing)} not on the host (it has: {', '.join(sorted(present))}); set "
                    "gpu_ids to GPUs `nvidia-smi -L` lists, or check the driver sees every GPU")
        elif w.gpu_vendor == "amd":
            # ROCm containers need the host's /dev/kfd and /dev/dri:
            # https://rocm.docs.amd.com/projects/install-on-linux/en/latest/how-to/docker.html
            missing = [p for p in ("/dev/kfd", "/dev/dri") if not exists(host, p)]
            if missing:
                problems.append(f"{group}: {' and '.join(missing)} missing (the ROCm driver's devices); {ROCM_DRIVER}")
    return problems


def check(cfg: LocalConfig) -> list[str]:
    need = demands(cfg)
    return [p for host in cfg.hosts for p in check_host(cfg, host, need[host.name])]


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m stacks.preflight STACK", file=sys.stderr)
        return 2
    stack = args[0]
    try:
        cfg = load(*read_stack_config(stack))
    except STACK_ERRORS as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    if not isinstance(cfg, LocalConfig):
        return 0
    problems = check(cfg)
    if problems:
        count = len(problems)
        print(f"error: the Docker hosts cannot run stack '{stack}' yet ({count} problem{'s' if count != 1 else ''}); "
              "nothing was created:", file=sys.stderr)
        print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
