"""Spec rendering (golden files), instance family sizing, and the spec linter (one test per rule)."""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from components.spcs import spec_lint
from components.spcs.families import FAMILIES, family
from components.spcs.specs import (
    JUPYTER,
    HeadSpec,
    Monitoring,
    SecretEnv,
    StageMount,
    WorkerSpec,
    copy_to_stage,
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
TOKEN = SecretEnv("RAY_DB.RAY_SCHEMA.RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN")
HEAD = HeadSpec(family("CPU_X64_M"), "/ray_db/ray_schema/ray_images/spcs-ray:t", STAGES, monitoring=MONITORING,
                env={"RAY_PLATFORM_STORAGE_URI": "@RAY_DB.RAY_SCHEMA.RAYDP_ARTIFACTS"}, ray_token=TOKEN)
DNS = "ray-dev-head.abc123.svc.spcs.internal"
GPU_WORKER = WorkerSpec(family("GPU_NV_M"), "/ray_db/ray_schema/ray_images/spcs-ray-cuda:t", DNS, STAGES,
                        ray_token=TOKEN)
CUSTOM_WORKER = WorkerSpec(family("HIGHMEM_X64_S"), "/ray_db/ray_schema/ray_images/etl:1", DNS, STAGES,
                           resources={"etl": 1})  # no token: shows auth said to be off

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
    # CPU_X64_M: 80% of 28 GiB = 22.4, less Prometheus 1 + Grafana 0.5 + Jupyter 2 = 18.9 GiB for Ray, 30% as /dev/shm.
    assert volumes["dshm"] == {"name": "dshm", "source": "memory", "size": "5Gi"}
    assert volumes["ray-data"] == {"name": "ray-data", "source": "block", "size": "50Gi"}
    assert volumes["artifacts"] == {"name": "artifacts", "source": "stage",
                                    "stageConfig": {"name": "@RAY_DB.RAY_SCHEMA.RAYDP_ARTIFACTS"}}
    assert "--temp-dir=/ray-data/tmp" in _containers(render_head_spec(HEAD))["ray-head"]["command"][2]


def test_worker_reaches_the_head_by_its_dns_name():
    worker = _containers(render_worker_spec(GPU_WORKER))["ray-worker"]
    assert f"--address={DNS}:6379" in worker["command"][2]
    assert worker["env"]["RAY_HEAD_ADDRESS"] == f"{DNS}:6379"


def test_raydp_head_opens_the_spark_driver_ports_privately():
    endpoints = _endpoints(render_raydp_head_spec(HEAD))
    assert {endpoints[n]["port"] for n in ("spark-driver", "spark-block-manager")} == {7078, 7079}
    assert not any(endpoints[n]["public"] for n in ("spark-driver", "spark-block-manager"))
    assert endpoints["spark-ui"] == {"name": "spark-ui", "port": 4040, "protocol": "HTTP", "public": True}
    assert "spark-driver" not in _endpoints(render_head_spec(HEAD))
    script = _containers(render_raydp_head_spec(HEAD))["ray-head"]["command"][2]
    assert "/ray-data/spark-events/. /raydplogs/head/$(hostname)/spark-events/" in script


def test_custom_worker_needs_custom_resources():
    with pytest.raises(ValueError, match="custom worker needs at least one custom resource"):
        render_custom_worker_spec(WorkerSpec(family("CPU_X64_S"), "/a/b/c/d:1", DNS))
    script = _containers(render_custom_worker_spec(CUSTOM_WORKER))["ray-custom-worker"]["command"][2]
    assert "--resources={\"etl\":1}" in shlex.split(script.splitlines()[-1])


@pytest.mark.parametrize("name,cpu,memory,ray_cpus,gpus", [
    ("CPU_X64_S", 2.4, "10649Mi", 2, 0),  # 80% of 3 vCPU and 13 GiB
    ("HIGHMEM_X64_M", 22.4, "192Gi", 22, 0),
    ("GPU_NV_S", 4.8, "22118Mi", 4, 1),
    ("GPU_NV_M", 35.2, "145817Mi", 35, 4),
    ("GPU_NV_L", 73.6, "910950Mi", 73, 8),
])
def test_families_map_to_requests_with_headroom_and_ray_resources(name, cpu, memory, ray_cpus, gpus):
    """Requests leave 20% of the node to Snowflake's components; Ray offers exactly what is requested."""
    spec = WorkerSpec(FAMILIES[name], "/a/b/c/ray:1", DNS)
    resources = _containers(render_worker_spec(spec))["ray-worker"]["resources"]
    assert resources["requests"]["cpu"] == cpu and resources["requests"]["memory"] == memory
    assert resources["limits"]["memory"] == memory
    assert resources["requests"].get("nvidia.com/gpu", 0) == resources["limits"].get("nvidia.com/gpu", 0) == gpus
    node = worker_node(spec)
    assert (node.cpus, node.gpus) == (ray_cpus, gpus)
    requested = FAMILIES[name].memory_gib * 0.8
    assert node.memory_gb == pytest.approx(requested - int(requested * 0.3))


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
                            "only; keep TCP private)")


def test_lint_rejects_https_endpoints():
    def edit(s):
        next(e for e in s["endpoints"] if e["name"] == "dashboard")["protocol"] = "HTTPS"
    problems = _broken(edit)
    assert problems[0] == "spec.endpoints[0].protocol: 'HTTPS' (allowed: HTTP, TCP)"


def test_lint_rejects_port_range_on_http_or_public():
    def edit(s):
        next(e for e in s["endpoints"] if e["name"] == "ray-workers").update(protocol="HTTP")
    (problem,) = _broken(edit)
    assert problem.endswith(".portRange: used with protocol HTTP and public false (allowed: portRange only on "
                            "private TCP endpoints)")


def test_lint_rejects_more_than_eight_stage_mounts():
    def edit(s):
        for i in range(7):
            s["volumes"].append({"name": f"extra-{i}", "source": "stage", "stageConfig": {"name": f"@DB.S.STAGE{i}"}})
            s["containers"][0]["volumeMounts"].append({"name": f"extra-{i}", "mountPath": f"/extra/{i}"})
    # 2 stages on the Ray head + 7 more = 9
    assert _broken(edit) == ["spec.containers: 9 stage volume mounts (allowed: at most 8 per service instance)"]


def test_lint_rejects_the_deprecated_stage_mount_v1():
    def edit(s):
        next(v for v in s["volumes"] if v["name"] == "artifacts").update(source="@DB.S.ARTIFACTS", stageConfig=None)
    assert _broken(edit) == ["spec.volumes[2].source: '@DB.S.ARTIFACTS' is the deprecated stage mount v1 (allowed: "
                             "source: stage with stageConfig: {name: '@DB.S.ARTIFACTS'})"]


def test_lint_rejects_a_ray_service_without_the_ephemeral_port_range():
    def edit(s):
        s["endpoints"] = [e for e in s["endpoints"] if e["name"] != "ephemeral"]
    assert _broken(edit) == ["spec.endpoints: no private TCP portRange covers 32768-60999 for a Ray service (allowed: "
                             "{name: ephemeral, portRange: 32768-60999, protocol: TCP, public: false})"]
    for text in (render_head_spec(HEAD), render_worker_spec(GPU_WORKER), render_custom_worker_spec(CUSTOM_WORKER)):
        assert _endpoints(text)["ephemeral"] == {"name": "ephemeral", "portRange": "32768-60999", "protocol": "TCP",
                                                 "public": False}


def test_lint_rejects_requests_over_what_a_node_leaves_after_snowflakes_components():
    """100% of a family's vCPU or memory makes CREATE SERVICE fail; every rendered spec fits its family."""
    def full_node(s):
        s["containers"][0]["resources"]["requests"].update(cpu=6, memory="28Gi")
    spec = copy.deepcopy(yaml.safe_load(render_head_spec(HEAD)))
    full_node(spec["spec"])
    assert spec_lint.lint(spec, family("CPU_X64_M")) == [
        "spec.containers: request 6.75 vCPU together on CPU_X64_M (allowed: at most 4.8, 80% of its 6; Snowflake's "
        "components use the rest)",
        "spec.containers: request 29.5 GiB together on CPU_X64_M (allowed: at most 22.4 GiB, 80% of its 28; "
        "Snowflake's components use the rest)"]
    assert spec_lint.lint(render_head_spec(HEAD), family("CPU_X64_M")) == []
    assert spec_lint.lint(render_head_spec(HEAD), family("CPU_X64_S")) != []  # sized for M, too big for S
    for name, f in FAMILIES.items():
        assert spec_lint.lint(render_worker_spec(WorkerSpec(f, "/a/b/c/ray:1", DNS)), f) == [], name


def test_jupyter_runs_in_the_head_container_as_an_in_cluster_driver_on_the_block_volume():
    containers = _containers(render_head_spec(HEAD))
    assert set(containers) == {"ray-head", "prometheus", "grafana"}
    script = containers["ray-head"]["command"][2]
    (jupyter,) = [line for line in script.splitlines() if "jupyter lab" in line]
    assert jupyter.startswith("RAY_ADDRESS=auto jupyter lab ") and "--ServerApp.root_dir=/ray-data/notebooks" in jupyter
    assert "cp -r -n /artifacts/notebooks/. /ray-data/notebooks/" in script  # restored from the stage at start
    assert "/ray-data/notebooks/. /artifacts/notebooks/" in script  # and copied back every few minutes
    requests = containers["ray-head"]["resources"]["requests"]
    # Jupyter's share is requested by the container it runs in, and not offered to Ray.
    assert head_node(HEAD).cpus == 3 and requests["cpu"] == pytest.approx(3.55 + JUPYTER.cpu)


def test_copy_to_stage_writes_changed_files_anew_and_leaves_the_rest(tmp_path):
    """The command the containers run, run for real: new and changed files are copied, by remove-and-write."""
    source, target = tmp_path / "logs", tmp_path / "stage" / "head" / "h1"
    (source / "sub").mkdir(parents=True)
    (source / "raylet.out").write_text("one\n")
    (source / "sub" / "worker.err").write_text("err\n")
    command = copy_to_stage(str(source), str(target))
    subprocess.run(["/bin/bash", "-c", command], check=True)
    assert (target / "raylet.out").read_text() == "one\n" and (target / "sub" / "worker.err").read_text() == "err\n"
    before = (target / "sub" / "worker.err").stat().st_ino
    os.utime(source / "raylet.out", (0, 4_000_000_000))  # appended since the last copy
    (source / "raylet.out").write_text("one\ntwo\n")
    os.utime(source / "raylet.out", (4_000_000_000, 4_000_000_000))
    os.link(target / "raylet.out", tmp_path / "old-copy")  # still the old file if cp writes a new one
    subprocess.run(["/bin/bash", "-c", command], check=True)
    assert (target / "raylet.out").read_text() == "one\ntwo\n"
    assert (tmp_path / "old-copy").read_text() == "one\n"  # removed and written anew, not rewritten in place
    assert (target / "sub" / "worker.err").stat().st_ino == before  # unchanged: not copied again


def test_lint_rejects_block_volume_not_in_whole_gi():
    def edit(s):
        next(v for v in s["volumes"] if v["name"] == "ray-data")["size"] = "500Mi"
    assert _broken(edit) == ["spec.volumes[1].size: '500Mi' for a block volume (allowed: whole Gi, e.g. 50Gi)"]


def test_lint_rejects_a_mount_of_an_undeclared_volume():
    problems = _broken(lambda s: s["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"}))
    assert len(problems) == 1 and problems[0].startswith("spec.containers[0].volumeMounts[4].name: 'nope' is not a "
                                                         "declared volume")


def test_the_custom_worker_template_hands_ray_its_resources_through_the_environment():
    """The shell expands the JSON from the spec's env into one argument, exactly as `ray start` parses it."""
    from components.spcs.specs import render_custom_worker_template

    text = render_custom_worker_template(WorkerSpec(family("CPU_X64_M"), "{{ image }}", "{{ head_host }}"),
                                         "{{ resources }}")
    filled = text.replace("{{ head_host }}", DNS).replace("{{ resources }}", '{"etl": 1, "big_mem": 0.5}')
    (container,) = yaml.safe_load(filled)["spec"]["containers"]
    line = container["command"][2].splitlines()[-1].replace("exec ray start", "printf '%s\\n'", 1)
    argv = subprocess.run(["/bin/bash", "-c", line], env={**container["env"], "PATH": os.environ["PATH"]},
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert '--resources={"etl": 1, "big_mem": 0.5}' in argv and f"--address={DNS}:6379" in argv
    with pytest.raises(ValueError, match="takes its resources from the template"):
        render_custom_worker_template(CUSTOM_WORKER, "{{ resources }}")
