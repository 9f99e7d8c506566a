"""The seed's job cases through `python -m jobs` against a real local Ray cluster shaped like a gcpvm stack.

The cluster: a head and two workers on loopback with the CPUs and custom resources that this stack's
config gives its head and its worker type (the autoscaler's `min_workers` already launched), and stack
outputs whose `ray_capacity` is the one the gcpvm stack exports. Cases: 1 job; 2 jobs each with
`--entrypoint-num-cpus 2`; the sweep (twice); the over-provisioned request failing at once; working-dir
sync; stop by id.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gcpvm_testing import ROOT, gcpvm_config

from jobs import EXIT_NEVER_FITS
from jobs.local_cluster import LocalCluster, NodeSpec
from stacks.config import load
from stacks.gcpvm import capacity, head_node, worker_node

EXAMPLES = ROOT / "jobs" / "examples"
# A small gcpvm cluster: 2-vCPU head and workers, both workers up (min_workers = max_workers = 2).
SHAPE = {"head": {"machine_type": "n2-standard-2", "disk_gb": 50},
         "worker_types": [{"name": "cpu", "machine_type": "n2-standard-2", "min_workers": 2, "max_workers": 2,
                           "resources": {"tuner": 1}}]}
# Every case ships jobs/examples with --working-dir, as docs/gcpvm.md shows (the first job of a fresh cluster too).
SHIP = ["--working-dir", str(EXAMPLES)]
TUNE = ["python", "autotune.py", "--config", "autotune.json", "tune", "--samples", "1"]
SWEEP = ["python", "autotune.py", "--config", "sweep.json", "sweep"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    cfg = load(gcpvm_config(**SHAPE))
    worker_type = cfg.worker_types[0]
    head = head_node(cfg.head)
    worker = worker_node(worker_type)
    specs = (NodeSpec("head", head.cpus),
             [NodeSpec(worker_type.name, worker.cpus, dict(worker.resources))] * worker_type.min_workers)
    local = start_cluster(*specs)
    storage = tmp_path_factory.mktemp("results")
    try:
        outputs = local.outputs(str(storage))
        live = outputs["ray_capacity"]
        outputs["ray_capacity"] = capacity(cfg)  # what the gcpvm stack exports for this config
        path = tmp_path_factory.mktemp("stack") / "outputs.json"
        path.write_text(json.dumps(outputs))
        yield path, {"live": live, "stack": outputs["ray_capacity"], "storage": storage}
    finally:
        local.stop()


def start_cluster(head: NodeSpec, workers: list[NodeSpec], attempts: int = 2) -> LocalCluster:
    """Ray gives a raylet a fixed 30 s to register; on a loaded shared machine one retry is fair."""
    for attempt in range(attempts):
        try:
            return LocalCluster(head, workers).start(timeout_s=180)
        except (RuntimeError, TimeoutError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def jobs(outputs: Path, command: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs", command, "--outputs", str(outputs), *args], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def test_the_local_cluster_has_the_stacks_node_shapes(stack):
    _, info = stack
    for node_type in ("head", "cpu"):
        assert info["live"][node_type]["resources"]["CPU"] == info["stack"][node_type]["resources"]["CPU"]
    assert info["live"]["cpu"]["resources"]["tuner"] == info["stack"]["cpu"]["resources"]["tuner"] == 1
    assert info["live"]["cpu"]["max_nodes"] == info["stack"]["cpu"]["max_nodes"] == 2


def test_case_1_one_tuning_job(stack):
    outputs, info = stack
    result = jobs(outputs, "submit", *SHIP, "--", *TUNE)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    assert "best parameters:" in result.stdout
    assert list(Path(info["storage"]).glob("autotune/*/best.json"))


@pytest.mark.parametrize("case,entrypoint", [("2A", TUNE), ("2B", SWEEP)])
def test_case_2_two_jobs_with_two_cpus_each(stack, case, entrypoint):
    outputs, _ = stack
    ids = [f"case{case.lower()}-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for job_id in ids:
        submitted = jobs(outputs, "submit", "--no-wait", "--submission-id", job_id, "--entrypoint-num-cpus", "2",
                         *SHIP, "--", *entrypoint)
        assert submitted.returncode == 0, submitted.stderr
    for job_id in ids:
        followed = jobs(outputs, "logs", job_id, "--follow")
        assert followed.returncode == 0, followed.stderr
        status = jobs(outputs, "status", job_id)
        assert "SUCCEEDED" in status.stdout + status.stderr, status
        logs = jobs(outputs, "logs", job_id).stdout
        assert "best parameters:" in logs
        if case == "2B":
            assert "(4 trials)" in logs  # the sweep's full grid: 2 x 2 x 1


def test_case_3_over_provisioned_fails_at_once(stack):
    outputs, info = stack
    largest = max(t["resources"]["CPU"] for t in info["stack"].values())
    assert largest < 4  # the seed's case: no node type offers 4 CPUs
    started = time.monotonic()
    result = jobs(outputs, "submit", "--entrypoint-num-cpus", "4", *SHIP, "--", *TUNE)
    assert time.monotonic() - started < 15
    assert result.returncode == EXIT_NEVER_FITS, result.stderr
    assert "entrypoint asks for CPU=4" in result.stderr and "Traceback" not in result.stderr


def test_working_dir_is_synced(stack):
    outputs, _ = stack
    result = jobs(outputs, "submit", "--working-dir", str(EXAMPLES), "--", "python", "hello_world.py")
    assert result.returncode == 0, result.stderr
    assert "hello world from the driver" in result.stdout


def test_stop_by_id(stack):
    outputs, _ = stack
    job_id = f"stop-{uuid.uuid4().hex[:8]}"
    submitted = jobs(outputs, "submit", "--no-wait", "--submission-id", job_id, "--",
                     "python", "-c", "import time; print('started', flush=True); time.sleep(600)")
    assert submitted.returncode == 0, submitted.stderr
    deadline = time.monotonic() + 120
    while "RUNNING" not in jobs(outputs, "status", job_id).stdout + jobs(outputs, "status", job_id).stderr:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(1)
    stopped = jobs(outputs, "stop", job_id)
    assert stopped.returncode == 0, stopped.stderr
    status = jobs(outputs, "status", job_id)
    assert "STOPPED" in status.stdout + status.stderr
