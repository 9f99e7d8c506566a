"""Spec rendering (golden files), instance family sizing, and the spec linter (one test per rule)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from components.spcs import spec_lint
from components.spcs.families import FAMILIES, family
from components.spcs.specs import (
    HeadSpec,
    Monitoring,
    SecretEnv,
    StageMount,
    WorkerSpec,
    head_node,
    render_custom_worker_spec,
    render_head_spec,
    render_raydp_head_spec,
    render_worker_spec,
    worker_node,
)

GOLDEN = Path(__file__).parent / "golden"
STAGES = [StageMount("artifacts", "@RAY_DB.RAY_SCHEMA.RAYDP_ARTIFACTS", "/artifacts"),
          StageMount("logs", "@RAY_DB.RAY_SCHEMA.RAYDPLOGS", "/raydplogs")]
MONITORING = Monitoring("/ray_db/ray_schema/ray_images/spcs-prometheus:t", "/ray_db/ray_schema/ray_images/spcs-grafana:t",
                        SecretEnv("RAY_DB.RAY_SCHEMA.RAY_GRAFANA_ADMIN_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"))
HEAD = HeadSpec(family("CPU_X64_M"), "/ray_db/ray_schema/ray_images/spcs-ray:t", STAGES, monitoring=MONITORING,
                env={"RAY_PLATFORM_STORAGE_URI": "@RAY_DB.RAY_SCHEMA.RAYDP_ARTIFACTS"})
DNS = "ray-dev-head.abc123.svc.spcs.internal"
GPU_WORKER = WorkerSpec(family("GPU_NV_M"), "/ray_db/ray_schema/ray_images/spcs-ray-cuda:t", DNS, STAGES)
CUSTOM_WORKER = WorkerSpec(family("HIGHMEM_X64_S"), "/ray_db/ray_schema/ray_images/etl:1", DNS, STAGES,
                           resources={"etl": 1})

CASES = {
    "head.yaml": lambda: render_head_spec(HEAD),
    "raydp_head.yaml": lambda: render_raydp_head_spec(HEAD),
    "worker_gpu.yaml": lambda: render_worker_spec(GPU_WORKER),
    "custom_worker.yaml": lambda: render_custom_worker_spec(CUSTOM_WORKER),
}


@pytest.mark.parametrize("golden", sorted(CASES))
def test_spec_matches_golden_and_passes_the_linter(golden):
    """Regenerate after an intended change: UPDATE_GOLDEN=1 python -m pytest tests/spcs"""
    text = CASES[golden]()
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / golden).write_text(text)
    assert text == (GOLDEN / golden).read_text()
    assert spec_lint.lint(text) == []


def _containers(text: str) -> dict[str, dict]:
    return {c["name"]: c for c in yaml.safe_load(text)["spec"]["containers"]}


def _endpoints(text: str) -> dict[str, dict]:
    return {e["name"]: e for e in yaml.safe_load(text)["spec"]["endpoints"]}


def test_head_public_endpoints_are_http_and_ray_ports_private_tcp():
    endpoints = _endpoints(render_head_spec(HEAD))
    public = {n for n, e in endpoints.items() if e["public"]}
    assert public == {"dashboard", "serve", "grafana", "prometheus", "jupyter"}
    assert all(endpoints[n]["protocol"] == "HTTP" for n in public)
    assert endpoints["gcs"] == {"name": "gcs", "port": 6379, "protocol": "TCP", "public": False}
    assert endpoints["ray-client"]["public"] is False
    assert endpoints["ray-workers"]["portRange"] == "11000-11999"


def test_head_volumes_shm_from_family_block_logs_stage_artifacts():
    spec = yaml.safe_load(render_head_spec(HEAD))["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    # CPU_X64_M: 28 GiB less Prometheus 1 + Grafana 0.5 + Jupyter 2 = 24.5 GiB for Ray, 30% of it as /dev/shm.
    assert volumes["dshm"] == {"name": "dshm", "source": "memory", "size": "7Gi"}
    assert volumes["ray-data"] == {"name": "ray-data", "source": "block", "size": "50Gi"}
    assert volumes["artifacts"]["source"] == "@RAY_DB.RAY_SCHEMA.RAYDP_ARTIFACTS"
    assert "--temp-dir=/ray-data/tmp" in _containers(render_head_spec(HEAD))["ray-head"]["command"]


def test_worker_reaches_the_head_by_its_dns_name():
    worker = _containers(render_worker_spec(GPU_WORKER))["ray-worker"]
    assert f"--address={DNS}:6379" in worker["command"]
    assert worker["env"]["RAY_HEAD_ADDRESS"] == f"{DNS}:6379"


def test_raydp_head_opens_the_spark_driver_ports_privately():
    endpoints = _endpoints(render_raydp_head_spec(HEAD))
    assert {endpoints[n]["port"] for n in ("spark-driver", "spark-block-manager")} == {7078, 7079}
    assert not any(endpoints[n]["public"] for n in ("spark-driver", "spark-block-manager", "spark-ui"))
    assert "spark-driver" not in _endpoints(render_head_spec(HEAD))


def test_custom_worker_needs_custom_resources():
    with pytest.raises(ValueError, match="custom worker needs at least one custom resource"):
        render_custom_worker_spec(WorkerSpec(family("CPU_X64_S"), "/a/b/c/d:1", DNS))
    assert "--resources={\"etl\":1}" in _containers(render_custom_worker_spec(CUSTOM_WORKER))["ray-custom-worker"]["command"]


@pytest.mark.parametrize("name,cpu,memory,gpus", [
    ("CPU_X64_S", 3, "13Gi", 0),
    ("HIGHMEM_X64_M", 28, "240Gi", 0),
    ("GPU_NV_S", 6, "27Gi", 1),
    ("GPU_NV_M", 44, "178Gi", 4),
    ("GPU_NV_L", 92, "1112Gi", 8),
])
def test_families_map_to_requests_and_ray_resources(name, cpu, memory, gpus):
    spec = WorkerSpec(FAMILIES[name], "/a/b/c/ray:1", DNS)
    resources = _containers(render_worker_spec(spec))["ray-worker"]["resources"]
    assert resources["requests"]["cpu"] == cpu and resources["requests"]["memory"] == memory
    assert resources["requests"].get("nvidia.com/gpu", 0) == resources["limits"].get("nvidia.com/gpu", 0) == gpus
    node = worker_node(spec)
    assert (node.cpus, node.gpus) == (cpu, gpus)
    shm = int(FAMILIES[name].memory_gib * 0.3)
    assert node.memory_gb == FAMILIES[name].memory_gib - shm


def test_head_ray_cpus_zero_keeps_tasks_off_the_head():
    node = head_node(HeadSpec(family("CPU_X64_M"), "/a/b/c/d:1", ray_cpus=0))
    assert node.cpus == 0


# ------------------------------------------------------------------------------------------ linter


def _broken(edit) -> list[str]:
    spec = copy.deepcopy(yaml.safe_load(render_head_spec(HEAD)))
    edit(spec["spec"])
    return spec_lint.lint(spec)


def test_lint_rejects_bad_names():
    problems = _broken(lambda s: s["containers"][0].update(name="Ray_Head"))
    assert problems == ["spec.containers[0].name: 'Ray_Head' is not a valid name (allowed: lowercase letters, "
                        "digits and '-', at most 63 characters)"]


def test_lint_rejects_memory_without_unit():
    problems = _broken(lambda s: s["containers"][0]["resources"]["requests"].update(memory="20"))
    assert problems == ["spec.containers[0].resources.requests.memory: '20' has no unit (allowed: a number with "
                        "Ki, Mi, Gi, Ti, K, M, G or T, e.g. 6Gi)"]


def test_lint_rejects_gpu_requests_different_from_limits():
    def edit(s):
        s["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = 1
    assert _broken(edit) == ["spec.containers[0].resources: nvidia.com/gpu requests 1 != limits None (allowed: "
                             "equal GPU requests and limits, or the container sees no GPU)"]


def test_lint_rejects_public_tcp():
    def edit(s):
        next(e for e in s["endpoints"] if e["name"] == "gcs")["public"] = True
    (problem,) = _broken(edit)
    assert problem.endswith(".public: a public endpoint speaks TCP (allowed: public endpoints with protocol HTTP "
                            "or HTTPS only; keep TCP private)")


def test_lint_rejects_port_range_on_http_or_public():
    def edit(s):
        next(e for e in s["endpoints"] if e["name"] == "ray-workers").update(protocol="HTTP")
    (problem,) = _broken(edit)
    assert problem.endswith(".portRange: used with protocol HTTP and public false (allowed: portRange only on "
                            "private TCP endpoints)")


def test_lint_rejects_more_than_eight_stage_mounts():
    def edit(s):
        for i in range(5):
            s["volumes"].append({"name": f"extra-{i}", "source": f"@DB.S.STAGE{i}"})
            s["containers"][0]["volumeMounts"].append({"name": f"extra-{i}", "mountPath": f"/extra/{i}"})
    # 2 stages on the Ray head + 2 on Jupyter + 5 more = 9
    assert _broken(edit) == ["spec.containers: 9 stage volume mounts (allowed: at most 8 per service instance)"]


def test_lint_rejects_block_volume_not_in_whole_gi():
    def edit(s):
        next(v for v in s["volumes"] if v["name"] == "ray-data")["size"] = "500Mi"
    assert _broken(edit) == ["spec.volumes[1].size: '500Mi' for a block volume (allowed: whole Gi, e.g. 50Gi)"]


def test_lint_rejects_a_mount_of_an_undeclared_volume():
    problems = _broken(lambda s: s["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"}))
    assert len(problems) == 1 and problems[0].startswith("spec.containers[0].volumeMounts[4].name: 'nope' is not a "
                                                         "declared volume")
