"""Real Ray: a head and a worker started with the exact `ray start` arguments the containers run
(components/ray_node.py), and the dashboard API sees both nodes with the configured resources."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.ray_node import HeadPorts, RayNode, head_start_args, worker_start_args
from stacks.config import load
from stacks.local import _worker_node


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def sharing_one_machine(ports: list[int], worker_range: tuple[int, int]) -> list[str]:
    """Two raylets on one machine must not share their agents' ports (each container has its own)."""
    agent, agent_grpc, runtime_env = ports
    return [f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--min-worker-port={worker_range[0]}", f"--max-worker-port={worker_range[1]}"]


def ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def started(tmp_path):
    processes: list[subprocess.Popen] = []

    def start(args: list[str]) -> None:
        command = [ray_bin(), *args[1:]]  # the venv's `ray`, same arguments
        log = open(tmp_path / f"node-{len(processes)}.log", "w")
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}))

    yield start
    for process in reversed(processes):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for process in processes:
        try:
            process.wait(timeout=10)  # `ray start --block` can take 30 s to wind down; the group dies anyway
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def short_tmp():
    """Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="rp-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_head_and_worker_from_the_container_commands_form_one_cluster(started, tmp_path, short_tmp):
    from ray.util.state import list_nodes

    cfg = load({"ray-platform:workers": '[{"name": "w", "cpus": 2, "memory_gb": 1, "resources": {"tuner": 2}}]'})
    gcs, dashboard, client, head_metrics, worker_metrics, *agents = free_ports(11)
    head_args = head_start_args(RayNode(cpus=1, memory_gb=1), HeadPorts(gcs, dashboard, client, head_metrics),
                                node_ip="127.0.0.1")
    worker_args = worker_start_args(_worker_node(cfg.workers[0]), f"127.0.0.1:{gcs}", metrics_port=worker_metrics,
                                    node_ip="127.0.0.1")
    assert head_args[-1] == worker_args[-1] == "--block"  # as the containers run them
    base = 20000 + (os.getpid() % 200) * 100
    started(head_args + sharing_one_machine(agents[0:3], (base, base + 49))
            + [f"--temp-dir={short_tmp}"])
    deadline = time.time() + 90
    address = f"http://127.0.0.1:{dashboard}"
    while True:
        try:
            if list_nodes(address=address, timeout=5):
                break
        except Exception:  # noqa: BLE001 the dashboard is still starting
            pass
        assert time.time() < deadline, (tmp_path / "node-0.log").read_text()[-3000:]
        time.sleep(1)
    started(worker_args + sharing_one_machine(agents[3:6], (base + 50, base + 99)))

    while True:
        nodes = [n for n in list_nodes(address=address, timeout=5) if n.state == "ALIVE"]
        if len(nodes) == 2:
            break
        assert time.time() < deadline, (tmp_path / "node-1.log").read_text()[-3000:]
        time.sleep(1)
    by_role = {n.is_head_node: n.resources_total for n in nodes}
    assert by_role[True]["CPU"] == 1
    assert by_role[False]["CPU"] == 2 and by_role[False]["tuner"] == 2
    assert by_role[False]["memory"] == 1024**3
