"""Starting real Ray nodes in tests from the exact `ray start` arguments a deployment runs.

Each node is `ray start ... --block` in its own process group, so teardown stops only what the test
started (never `ray stop`, which would kill every Ray process on the machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_port_base(span: int) -> int:
    """The first of `span` ports for Ray workers, below the kernel's ephemeral range, where free_ports() (and
    every other process's outgoing connections) pick theirs: a worker range there could collide."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    slots = max(1, (low - 10000) // span - 1)
    return 10000 + (os.getpid() % slots) * span  # varies by process, so parallel runs rarely share it


class RayNodes:
    """Starts nodes, waits for them to join, and stops them all at teardown."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.processes: list[tuple[subprocess.Popen, Path]] = []
        self.temp_dirs: list[str] = []

    def temp_dir(self) -> str:
        """Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep."""
        self.temp_dirs.append(tempfile.mkdtemp(prefix="rn-", dir="/tmp"))
        return self.temp_dirs[-1]

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start one node; `env` is what the deployment adds to its environment (Ray's auth variables)."""
        assert args[:2] == ["ray", "start"], args
        log = self.logs / f"node-{len(self.processes)}.log"
        binary = str(Path(sys.executable).with_name("ray"))  # the venv's `ray`, same arguments
        with open(log, "w") as out:
            process = subprocess.Popen([binary, *args[1:]], stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})
        self.processes.append((process, log))
        return process

    def wait_alive(self, dashboard_url: str, count: int, timeout_s: float = 120,
                   headers: dict[str, str] | None = None) -> list:
        """The ALIVE nodes, once `count` of them are; fails with the last node's log otherwise.
        `headers`: what the dashboard needs to answer (Ray's token, where the cluster runs with auth)."""
        from ray.util.state import StateApiClient
        from ray.util.state.common import ListApiOptions, StateResource

        headers = {"Content-Type": "application/json", **(headers or {})}
        deadline = time.time() + timeout_s
        while True:
            try:
                client = StateApiClient(dashboard_url, headers=dict(headers))
                listed = client.list(StateResource.NODES, ListApiOptions(timeout=5), raise_on_missing_output=False)
                nodes = [n for n in listed if n.state == "ALIVE"]
            except Exception:  # noqa: BLE001 the dashboard is still starting
                nodes = []
            if len(nodes) >= count:
                return nodes
            assert time.time() < deadline, self.processes[-1][1].read_text()[-3000:]
            time.sleep(1)

    def stop(self) -> None:
        for process, _ in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process, _ in self.processes:
            try:
                process.wait(timeout=10)  # `ray start --block` can take 30 s to wind down; the group dies anyway
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for path in self.temp_dirs:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ray_nodes(tmp_path: Path) -> Iterator[RayNodes]:
    nodes = RayNodes(tmp_path)
    yield nodes
    nodes.stop()
