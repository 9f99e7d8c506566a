"""Helpers for the job tests: run `python -m jobs` as a user would, and a handle on the test cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from jobs.local_cluster import LocalCluster, NodeSpec  # noqa: E402  (needs the repository root on sys.path)

EXAMPLES = REPO_ROOT / "jobs" / "examples"
HEAD = NodeSpec("head", 2, {"head": 1})
WORKER = NodeSpec("worker", 2, {"worker": 1})
# A node type the autoscaler could add but that is not running: requests for it wait, they are not refused.
BIG_NODE_TYPE = {"big": {"resources": {"CPU": 4, "bigmem": 1}, "min_nodes": 0, "max_nodes": 1}}


def client_env(**changes: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env.update(changes)
    return env


def run_jobs(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m jobs ARGS` from the repository root, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=REPO_ROOT,
        env=env or client_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Cluster:
    local: LocalCluster
    outputs: dict[str, Any]
    outputs_file: Path
    storage: Path

    def jobs(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        """`python -m jobs COMMAND --outputs FILE ARGS...` against this cluster."""
        command, *rest = args
        return run_jobs(command, "--outputs", str(self.outputs_file), *rest, **kwargs)

    def write_outputs(self, path: Path, **changes: Any) -> Path:
        path.write_text(json.dumps({**self.outputs, **changes}))
        return path

    def client(self) -> Any:
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.local.dashboard_url)
