"""The `dev` stack in a real Docker Engine: how long until it is usable, and how much memory Ray takes.

Starts a private dockerd (as the real-engine test does), builds the stand-in base images, deploys `dev` with the
real program (tests/local_real), then prints seconds from "resources created" to "all Ray nodes alive" and to
"first job SUCCEEDED" (hello world through `python -m jobs submit`), and the peak memory of each Ray container
(the cgroup's high-water mark). Figures only; nothing here asserts. Needs root, docker.io and debootstrap.

    python benchmarks/local_real.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.local_real import engine as engine_module  # noqa: E402
from tests.local_real.deploy import deploy  # noqa: E402
from tests.local_real.standins import build_standins  # noqa: E402
from tests.local_real.test_dev_stack import alive_nodes, expected_node_count, jobs_cli  # noqa: E402


def peak_memory(deployment, name: str) -> tuple[int, str]:
    """The container's peak memory in bytes, and where the figure comes from."""
    stats = deployment.mocks.api.call("GET", f"/containers/{name}/stats", query={"stream": "false"})
    memory = stats.get("memory_stats", {})
    if memory.get("max_usage"):  # cgroup v1: memory.max_usage_in_bytes
        return int(memory["max_usage"]), "cgroup peak"
    return int(memory.get("usage", 0)), "current usage (cgroup v2 reports no peak)"


def main() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = time.monotonic()
    engine = engine_module.start()
    try:
        print(f"engine: dockerd {' '.join(engine.flags)} ({time.monotonic() - started:.1f} s)", flush=True)
        mark = time.monotonic()
        build_standins(engine, log=lambda m: print(f"  {m}", flush=True))
        print(f"stand-in images: {time.monotonic() - mark:.0f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="rp-bench-") as work:
            mark = time.monotonic()
            deployment = deploy(engine, Path(work), log=lambda m: None)
            created = deployment.created_at
            print(f"dev stack created (project images built by the program included): {created - mark:.0f} s")
            expected = expected_node_count(deployment.outputs)
            while len(alive_nodes_or_none(deployment)) < expected:
                time.sleep(0.5)
            nodes_alive = time.monotonic()
            result = jobs_cli(deployment, "submit", "--working-dir", str(REPO_ROOT / "jobs" / "examples"), "--",
                              "python", "hello_world.py")
            job_done = time.monotonic()
            print(f"resources created -> all {expected} Ray nodes alive: {nodes_alive - created:.1f} s")
            if result.returncode == 0:
                print(f"resources created -> first job SUCCEEDED:     {job_done - created:.1f} s")
            else:
                print(f"first job FAILED (exit {result.returncode}): {result.stderr[-500:]}")
            total = 0
            for name in deployment.container_names("head") + deployment.container_names("worker"):
                peak, source = peak_memory(deployment, name)
                total += peak
                print(f"peak memory {name}: {peak / 2**20:.0f} MiB ({source})")
            print(f"peak memory, Ray containers together: {total / 2**20:.0f} MiB")
            deployment.destroy()
    finally:
        engine.stop()
    print(f"whole benchmark: {time.monotonic() - started:.0f} s")


def alive_nodes_or_none(deployment) -> list:
    try:
        return alive_nodes(deployment)
    except Exception:  # noqa: BLE001 the dashboard is still starting
        return []


if __name__ == "__main__":
    try:
        main()
    except (engine_module.EngineUnavailable, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"error: {exc}") from None
