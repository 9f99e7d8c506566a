"""The examples in jobs/examples, submitted through `python -m jobs` to the real local cluster."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from jobs_testing import EXAMPLES, WORKER, Cluster

from tests.modules import load_module


def load_example(name: str):
    """Import an example module by path (they import each other as top-level modules, as in a working_dir)."""
    import sys

    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return load_module(f"example_{name}", EXAMPLES / f"{name}.py")


def test_autotune_sweep_finds_and_stores_the_best_parameters(cluster: Cluster) -> None:
    name = f"sweep-{uuid.uuid4().hex[:6]}"
    result = cluster.jobs(
        "submit", "--entrypoint-num-cpus", "1", "--working-dir", str(EXAMPLES), "--",
        "python", "autotune.py", "--config", "sweep.json", "--name", name, "sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    results_dir = cluster.storage / "autotune" / name
    best = json.loads((results_dir / "best.json").read_text())
    trials = json.loads((results_dir / "trials.json").read_text())
    autotune = load_example("autotune")
    grid = json.loads((EXAMPLES / "sweep.json").read_text())
    expected_trials = 1
    for spec in grid.values():
        expected_trials *= len(autotune.grid_values(spec))
    assert best["trials"] == len(trials) == expected_trials
    # The reported best is the cheapest trial, and its cost is what the objective says for its parameters.
    assert best["best_cost"] == min(trial["cost"] for trial in trials)
    assert best["best_cost"] == autotune.flow_cost(best["best_config"])
    assert f"best parameters: {json.dumps(best['best_config'], sort_keys=True)}" in result.stdout


def test_training_resumes_from_checkpoint_after_a_worker_node_is_lost(cluster: Cluster) -> None:
    name = f"resume-{uuid.uuid4().hex[:6]}"
    job_id = f"train-{name}"
    epochs = 6
    fast_polling = {"env_vars": {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}}  # Train's controller: default 2 s
    submitted = cluster.jobs(
        "submit", "--no-wait", "--submission-id", job_id, "--working-dir", str(EXAMPLES),
        "--runtime-env-json", json.dumps(fast_polling), "--",
        "python", "train.py", "--epochs", str(epochs), "--epoch-seconds", "0.1", "--workers", "2",
        "--worker-resources", '{"CPU": 1, "worker": 1}', "--max-failures", "3", "--name", name,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr

    # Wait until Ray Train has registered a checkpoint (a file in the run dir is not enough: the controller
    # registers reported checkpoints when it next polls the workers), then lose a worker node hard.
    run_dir = cluster.storage / "train" / name
    deadline = time.monotonic() + 120
    while not registered_checkpoints(run_dir):
        assert time.monotonic() < deadline, cluster.jobs("logs", job_id).stdout
        time.sleep(0.3)
    victim = cluster.local.nodes[-1]
    assert victim.spec.node_type == "worker"
    cluster.local.kill_node(victim)
    cluster.local.add_worker(WORKER)  # the replacement machine, so the group can be whole again

    followed = cluster.jobs("logs", job_id, "--follow", timeout=300)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["last_epoch"] == epochs - 1
    assert len(summary["resumed_from_epochs"]) >= 1, followed.stdout[-6000:]
    resumed = summary["resumed_from_epochs"][0]
    assert 0 <= resumed < epochs - 1
    assert f"resumed from checkpoint at epoch {resumed}" in followed.stdout


def registered_checkpoints(run_dir: Path) -> list:
    """Checkpoints Ray Train's controller has registered for a run (its snapshot file; Ray is pinned)."""
    from ray.train.v2._internal.constants import CHECKPOINT_MANAGER_SNAPSHOT_FILENAME

    try:
        snapshot = json.loads((run_dir / CHECKPOINT_MANAGER_SNAPSHOT_FILENAME).read_text())
    except (OSError, ValueError):
        return []
    return snapshot.get("checkpoint_results") or []


def test_spark_on_ray_example_runs_where_raydp_is_installed(cluster: Cluster) -> None:
    if importlib.util.find_spec("raydp") is None or shutil.which("java") is None:
        # requirements-dev.txt pins raydp and .ci/run installs a JRE: in CI this test must run.
        (pytest.fail if os.environ.get("CI") else pytest.skip)("raydp or java missing (pip install raydp==1.6.5; a JRE)")
    name = f"spark-{uuid.uuid4().hex[:6]}"
    result = cluster.jobs(
        "submit", "--working-dir", str(EXAMPLES), "--", "python", "spark_on_ray.py",
        "--executors", "1", "--executor-memory", "500m", "--rows", "1000", "--name", name, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows_per_bucket = 1000 // 10  # the example counts ids by id % 10
    assert f"bucket counts: {[(bucket, rows_per_bucket) for bucket in range(10)]}" in result.stdout
    assert list((cluster.storage / "spark" / name).glob("*.parquet"))
