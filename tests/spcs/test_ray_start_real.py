"""Real Ray: a head and a worker started with exactly the commands the SPCS specs carry
(components/spcs/specs.py head_command / worker_command), on free ports, and both nodes join."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from components.spcs.families import family
from components.spcs.specs import (
    HeadSpec,
    SpcsRayPorts,
    WorkerSpec,
    head_command,
    head_node,
    render_worker_spec,
    worker_command,
    worker_node,
)

WORKER_RANGE = 50  # ports per raylet for its workers


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def node_ports(first_worker_port: int) -> SpcsRayPorts:
    """Every port a node pins, free on this machine (two raylets share it here; in SPCS each has its own)."""
    gcs, dashboard, client, metrics, om, nm, rte, grpc, listen = free_ports(9)
    return SpcsRayPorts(gcs=gcs, dashboard=dashboard, client=client, metrics=metrics, object_manager=om,
                        node_manager=nm, runtime_env_agent=rte, agent_grpc=grpc, agent_listen=listen,
                        min_worker=first_worker_port, max_worker=first_worker_port + WORKER_RANGE - 1)


@pytest.fixture
def started():
    processes: list[tuple[subprocess.Popen, Path]] = []
    temp_dirs: list[str] = []

    def start(command: list[str], log: Path) -> None:
        assert command[:2] == ["ray", "start"] and command[-1] == "--block"
        binary = str(Path(sys.executable).with_name("ray"))
        with open(log, "w") as out:
            processes.append((subprocess.Popen([binary, *command[1:]], stdout=out, stderr=subprocess.STDOUT,
                                               start_new_session=True,
                                               env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}), log))

    def temp_dir() -> str:
        # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep.
        temp_dirs.append(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))
        return temp_dirs[-1]

    start.temp_dir = temp_dir
    yield start
    for process, _ in reversed(processes):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for process, _ in processes:
        try:
            process.wait(timeout=10)  # `ray start --block` can take 30 s to wind down; the group dies anyway
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    for path in temp_dirs:
        shutil.rmtree(path, ignore_errors=True)


def test_spec_commands_form_one_cluster(started, tmp_path):
    from ray.util.state import list_nodes

    base = 20000 + (os.getpid() % 150) * 2 * WORKER_RANGE + 10000
    head_ports, worker_ports = node_ports(base), node_ports(base + WORKER_RANGE)
    head = HeadSpec(family("CPU_X64_S"), "/db/s/r/ray:1", ray_cpus=1, monitoring=None, jupyter=False)
    worker = WorkerSpec(family("CPU_X64_XS"), "/db/s/r/ray:1", "127.0.0.1", resources={"etl": 1},
                        ports=worker_ports)
    head_args = head_command(head_node(head), head_ports, started.temp_dir(), node_ip="127.0.0.1")
    worker_args = worker_command(worker_node(worker), f"127.0.0.1:{head_ports.gcs}", worker_ports,
                                 started.temp_dir(), node_ip="127.0.0.1")
    # The spec's command is the same function's output (only the temp dir and node IP differ here).
    (in_spec,) = yaml.safe_load(render_worker_spec(worker))["spec"]["containers"]
    assert [a for a in in_spec["command"] if not a.startswith(("--temp-dir", "--address"))] == [
        a for a in worker_args if not a.startswith(("--temp-dir", "--address", "--node-ip-address"))]

    started(head_args, tmp_path / "head.log")
    address = f"http://127.0.0.1:{head_ports.dashboard}"
    deadline = time.time() + 120
    while True:
        try:
            if list_nodes(address=address, timeout=5):
                break
        except Exception:  # noqa: BLE001 the dashboard is still starting
            pass
        assert time.time() < deadline, (tmp_path / "head.log").read_text()[-3000:]
        time.sleep(1)
    started(worker_args, tmp_path / "worker.log")
    while True:
        nodes = [n for n in list_nodes(address=address, timeout=5) if n.state == "ALIVE"]
        if len(nodes) == 2:
            break
        assert time.time() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(1)
    by_role = {n.is_head_node: n.resources_total for n in nodes}
    assert by_role[True]["CPU"] == 1
    assert by_role[False]["CPU"] == 1 and by_role[False]["etl"] == 1
    assert by_role[False]["memory"] == worker_node(worker).memory_bytes
