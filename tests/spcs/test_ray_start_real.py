"""Real Ray: a head and a worker started with exactly the commands the SPCS specs carry
(components/spcs/specs.py head_command / worker_command), on free ports, and both nodes join."""

from __future__ import annotations

import shlex

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
from tests.ray_nodes import free_ports, worker_port_base

WORKER_RANGE = 50  # ports per raylet for its workers


def node_ports(first_worker_port: int) -> SpcsRayPorts:
    """Every port a node pins, free on this machine (two raylets share it here; in SPCS each has its own)."""
    gcs, dashboard, client, metrics, om, nm, rte, grpc, listen = free_ports(9)
    return SpcsRayPorts(gcs=gcs, dashboard=dashboard, client=client, metrics=metrics, object_manager=om,
                        node_manager=nm, runtime_env_agent=rte, agent_grpc=grpc, agent_listen=listen,
                        min_worker=first_worker_port, max_worker=first_worker_port + WORKER_RANGE - 1)


def test_spec_commands_form_one_cluster(ray_nodes):
    base = worker_port_base(2 * WORKER_RANGE)
    head_ports, worker_ports = node_ports(base), node_ports(base + WORKER_RANGE)
    head = HeadSpec(family("CPU_X64_S"), "/db/s/r/ray:1", ray_cpus=1, monitoring=None, jupyter=False)
    worker = WorkerSpec(family("CPU_X64_S"), "/db/s/r/ray:1", "127.0.0.1", resources={"etl": 1},
                        ports=worker_ports)
    head_args = head_command(head_node(head), head_ports, ray_nodes.temp_dir(), node_ip="127.0.0.1")
    worker_args = worker_command(worker_node(worker), f"127.0.0.1:{head_ports.gcs}", worker_ports,
                                 ray_nodes.temp_dir(), node_ip="127.0.0.1")
    # The spec's script ends by exec-ing the same function's output (only the temp dir and node IP differ here).
    (in_spec,) = yaml.safe_load(render_worker_spec(worker))["spec"]["containers"]
    shell, flag, script = in_spec["command"]
    assert (shell, flag) == ("/bin/bash", "-c") and script.splitlines()[-1].startswith("exec ray start ")
    ray_line = shlex.split(script.splitlines()[-1])[1:]
    assert [a for a in ray_line if not a.startswith(("--temp-dir", "--address"))] == [
        a for a in worker_args if not a.startswith(("--temp-dir", "--address", "--node-ip-address"))]

    ray_nodes.start(head_args)
    address = f"http://127.0.0.1:{head_ports.dashboard}"
    ray_nodes.wait_alive(address, 1)
    ray_nodes.start(worker_args)
    nodes = ray_nodes.wait_alive(address, 2)
    by_role = {n.is_head_node: n.resources_total for n in nodes}
    assert by_role[True]["CPU"] == 1
    assert by_role[False]["CPU"] == worker_node(worker).cpus == 2 and by_role[False]["etl"] == 1
    assert by_role[False]["memory"] == worker_node(worker).memory_bytes
