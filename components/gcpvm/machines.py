"""What a GCE machine type offers (vCPUs, memory, built-in GPUs) and which GPUs may be attached to it.

The Ray autoscaler on GCP does not detect a node type's resources, so the cluster config must state them;
they come from here, and the stack config checks machine types against accelerators with the same table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Memory (GB) per vCPU of the predefined shapes; N1 is the odd family out.
MEMORY_PER_VCPU = {
    "n1": {"standard": 3.75, "highmem": 6.5, "highcpu": 0.9},
    "default": {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0},
}
GENERIC = re.compile(r"^(n1|n2|n2d|n4|e2|c2|c2d|c3|c3d|c4|t2d)-(standard|highmem|highcpu)-(\d+)$")

# The vCPU counts each predefined family-kind comes in (anything else, e.g. n2-standard-999, does not exist):
# https://cloud.google.com/compute/docs/general-purpose-machines and .../compute-optimized-machines
_STEPS = (2, 4, 8, 16, 32, 48, 64, 80, 96)
VCPUS: dict[str, dict[str, tuple[int, ...]]] = {
    "n1": {"standard": (1, 2, 4, 8, 16, 32, 64, 96), "highmem": (2, 4, 8, 16, 32, 64, 96),
           "highcpu": (2, 4, 8, 16, 32, 64, 96)},
    "n2": {"standard": (*_STEPS, 128), "highmem": (*_STEPS, 128), "highcpu": _STEPS},
    "n2d": {"standard": (*_STEPS, 128, 224), "highmem": _STEPS, "highcpu": (*_STEPS, 128, 224)},
    "n4": {kind: _STEPS[:-1] for kind in ("standard", "highmem", "highcpu")},
    "e2": {"standard": (2, 4, 8, 16, 32), "highmem": (2, 4, 8, 16), "highcpu": (2, 4, 8, 16, 32)},
    "c2": {"standard": (4, 8, 16, 30, 60)},
    "c2d": {kind: (2, 4, 8, 16, 32, 56, 112) for kind in ("standard", "highmem", "highcpu")},
    "c3": {kind: (4, 8, 22, 44, 88, 176) for kind in ("standard", "highmem", "highcpu")},
    "c3d": {kind: (4, 8, 16, 30, 60, 90, 180, 360) for kind in ("standard", "highmem", "highcpu")},
    "c4": {kind: (2, 4, 8, 16, 24, 32, 48, 96, 144, 192, 288) for kind in ("standard", "highmem", "highcpu")},
    "t2d": {"standard": (1, 2, 4, 8, 16, 32, 48, 60)},
}

# Accelerator-optimized families: the GPUs come with the machine type (vCPUs, memory GB, GPU type, GPU count).
BUILT_IN: dict[str, tuple[int, float, str, int]] = {
    **{f"g2-standard-{n}": (n, 4.0 * n, "nvidia-l4", gpus)
       for n, gpus in {4: 1, 8: 1, 12: 1, 16: 1, 24: 2, 32: 1, 48: 4, 96: 8}.items()},
    "a2-highgpu-1g": (12, 85, "nvidia-tesla-a100", 1),
    "a2-highgpu-2g": (24, 170, "nvidia-tesla-a100", 2),
    "a2-highgpu-4g": (48, 340, "nvidia-tesla-a100", 4),
    "a2-highgpu-8g": (96, 680, "nvidia-tesla-a100", 8),
    "a2-ultragpu-1g": (12, 170, "nvidia-a100-80gb", 1),
    "a2-ultragpu-2g": (24, 340, "nvidia-a100-80gb", 2),
    "a2-ultragpu-4g": (48, 680, "nvidia-a100-80gb", 4),
    "a2-ultragpu-8g": (96, 1360, "nvidia-a100-80gb", 8),
    "a3-highgpu-8g": (208, 1872, "nvidia-h100-80gb", 8),
}

# Ray sizes a worker container's /dev/shm to hold its object store: 30 % of the memory, plus 10 %, at most
# 200 GB (ray/autoscaler/_private/command_runner.py, DockerCommandRunner._auto_configure_shm; the share and the
# cap are ray_constants.DEFAULT_OBJECT_STORE_MEMORY_PROPORTION / DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES).
OBJECT_STORE_SHARE = 0.3
OBJECT_STORE_MAX_BYTES = 200 * 10**9


def object_store_shm_bytes(memory_gb: float) -> int:
    """The /dev/shm size Ray would give a container on a machine with this much memory (GiB)."""
    return math.ceil(min(memory_gb * 1024**3 * OBJECT_STORE_SHARE * 1.1, OBJECT_STORE_MAX_BYTES))


# GPUs that can be attached to N1 machines, and the counts GCE allows.
ATTACHABLE: dict[str, tuple[int, ...]] = {
    "nvidia-tesla-t4": (1, 2, 4),
    "nvidia-tesla-v100": (1, 2, 4, 8),
    "nvidia-tesla-p4": (1, 2, 4),
    "nvidia-tesla-p100": (1, 2, 4),
}


@dataclass(frozen=True)
class MachineShape:
    vcpus: int
    memory_gb: float
    gpu_type: str | None = None
    gpus: int = 0  # built-in GPUs only; attached ones are configured separately


def shape(machine_type: str) -> MachineShape | None:
    """The machine type's shape, or None for a type this table does not know (give cpus and memory_gb)."""
    if machine_type in BUILT_IN:
        vcpus, memory, gpu_type, gpus = BUILT_IN[machine_type]
        return MachineShape(vcpus, memory, gpu_type, gpus)
    match = GENERIC.match(machine_type)
    if not match:
        return None
    family, kind, count = match.group(1), match.group(2), int(match.group(3))
    per_vcpu = MEMORY_PER_VCPU.get(family, MEMORY_PER_VCPU["default"])[kind]
    return MachineShape(count, per_vcpu * count)


def predefined_problem(machine_type: str) -> str | None:
    """Why a name shaped like a predefined machine type (n2-standard-N) names none, or None."""
    match = GENERIC.match(machine_type)
    if not match:
        return None
    family, kind, count = match.group(1), match.group(2), int(match.group(3))
    counts = VCPUS[family].get(kind)
    if counts is None:
        kinds = ", ".join(f"{family}-{k}-N" for k in VCPUS[family])
        return f"{machine_type!r} is not a machine type (allowed: {kinds})"
    if count not in counts:
        return (f"{machine_type!r} is not a machine type (allowed: {family}-{kind}-N with N one of "
                f"{', '.join(map(str, counts))})")
    return None


def machine_type(value: str) -> str:
    """A field validator: reject a predefined-looking name that GCE does not have."""
    problem = predefined_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def accelerator_problem(machine_type: str, accelerator_type: str | None, count: int) -> str | None:
    """Why this machine type cannot carry these GPUs, or None when it can."""
    built_in = BUILT_IN.get(machine_type)
    if built_in is not None:
        if accelerator_type is None and count == 0:
            return None
        if (accelerator_type, count) == (built_in[2], built_in[3]):
            return None
        return (f"{machine_type} comes with {built_in[3]} {built_in[2]} "
                f"(allowed: no accelerator_type/accelerator_count, or exactly those)")
    if accelerator_type is None:
        return None if count == 0 else f"accelerator_count {count} without accelerator_type (allowed: both or neither)"
    if not machine_type.startswith("n1-"):
        return (f"{accelerator_type} cannot be attached to {machine_type} (allowed: an n1-* machine type, or a "
                f"machine type with built-in GPUs: g2-standard-*, a2-*, a3-*)")
    if accelerator_type not in ATTACHABLE:
        return f"{accelerator_type!r} is not a GPU for n1 machines (allowed: {', '.join(ATTACHABLE)})"
    if count not in ATTACHABLE[accelerator_type]:
        allowed = ", ".join(str(c) for c in ATTACHABLE[accelerator_type])
        return f"{count} x {accelerator_type} (allowed counts: {allowed})"
    return None


def gpus_of(machine_type: str, accelerator_type: str | None, count: int) -> tuple[str | None, int]:
    """The GPU type and count a node of this machine type has (built-in or attached)."""
    built_in = BUILT_IN.get(machine_type)
    if built_in is not None:
        return built_in[2], built_in[3]
    return accelerator_type, count
