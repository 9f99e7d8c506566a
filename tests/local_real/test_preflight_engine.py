"""The host preflight (stacks/preflight.py) against the session's real dockerd: `docker info` as an engine answers it."""

from __future__ import annotations

import json

import pytest

from stacks import preflight
from stacks.config import load
from stacks.offline import read_stack_config

pytestmark = pytest.mark.real_docker


def on_engine(engine, stack: str, **overrides) -> object:
    """The stack's own config with its Docker host pointed at the test engine."""
    values, secrets = read_stack_config(stack)
    values["ray-platform:hosts"] = json.dumps([{"name": "real", "url": engine.host}])
    values.update({f"ray-platform:{k}": json.dumps(v) for k, v in overrides.items()})
    return load(values, secrets)


def test_the_dev_stack_passes_on_the_real_engine(engine):
    assert preflight.check(on_engine(engine, "dev")) == []


def test_an_oversized_stack_is_told_what_the_real_engine_has(engine):
    info = json.loads(engine.docker("info", "--format", "{{json .}}"))
    cpus, memory = info["NCPU"], info["MemTotal"] / preflight.GIB
    problems = preflight.check(on_engine(engine, "dev", head={"cpus": 0, "memory_gb": 1},
                                         workers=[{"name": "big", "cpus": cpus + 1, "memory_gb": memory * 2}]))
    assert len(problems) == 2
    assert problems[0].startswith(f"host 'real' ({engine.host}): the stack asks for {cpus + 1} CPUs here")
    assert f"but the Docker engine has {cpus};" in problems[0]
    assert f"but the Docker engine has {memory:.1f} GiB;" in problems[1]


def test_gpu_workers_on_an_engine_without_the_nvidia_toolkit(engine):
    info = json.loads(engine.docker("info", "--format", "{{json .}}"))
    if "nvidia" in (info.get("Runtimes") or {}) or info.get("DiscoveredDevices"):
        pytest.skip("this engine has the NVIDIA toolkit: nothing to refuse")
    problems = preflight.check(on_engine(engine, "gpu-nvidia", head={"cpus": 0, "memory_gb": 1},
                                         workers=[{"name": "gpu", "cpus": 1, "memory_gb": 1, "gpu_vendor": "nvidia",
                                                   "gpus_per_worker": 1, "gpu_ids": ["0"]}]))
    assert problems == [f"workers 'gpu' on host 'real' ({engine.host}): Docker has no `nvidia` runtime and no NVIDIA "
                        f"CDI devices; {preflight.NVIDIA_TOOLKIT}"]
