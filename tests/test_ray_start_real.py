"""Real Ray: a head and a worker started with the exact `ray start` arguments the containers run
(components/ray_node.py), and the dashboard API sees both nodes with the configured resources."""

from __future__ import annotations

from components.ray_node import HeadPorts, RayNode, head_start_args, worker_start_args
from stacks.config import load
from stacks.local import _worker_node
from tests.ray_nodes import free_ports, worker_port_base


def sharing_one_machine(ports: list[int], worker_range: tuple[int, int]) -> list[str]:
    """Two raylets on one machine must not share their agents' ports (each container has its own)."""
    agent, agent_grpc, runtime_env = ports
    return [f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--min-worker-port={worker_range[0]}", f"--max-worker-port={worker_range[1]}"]


def test_head_and_worker_from_the_container_commands_form_one_cluster(ray_nodes):
    cfg = load({"ray-platform:workers": '[{"name": "w", "cpus": 2, "memory_gb": 1, "resources": {"tuner": 2}}]'})
    gcs, dashboard, client, head_metrics, worker_metrics, *agents = free_ports(11)
    head_args = head_start_args(RayNode(cpus=1, memory_gb=1), HeadPorts(gcs, dashboard, client, head_metrics),
                                node_ip="127.0.0.1")
    worker_args = worker_start_args(_worker_node(cfg.workers[0]), f"127.0.0.1:{gcs}", metrics_port=worker_metrics,
                                    node_ip="127.0.0.1")
    assert head_args[-1] == worker_args[-1] == "--block"  # as the containers run them
    base = worker_port_base(100)
    ray_nodes.start(head_args + sharing_one_machine(agents[0:3], (base, base + 49))
                    + [f"--temp-dir={ray_nodes.temp_dir()}"])
    address = f"http://127.0.0.1:{dashboard}"
    ray_nodes.wait_alive(address, 1)
    ray_nodes.start(worker_args + sharing_one_machine(agents[3:6], (base + 50, base + 99)))

    nodes = ray_nodes.wait_alive(address, 2)
    by_role = {n.is_head_node: n.resources_total for n in nodes}
    assert by_role[True]["CPU"] == 1
    assert by_role[False]["CPU"] == 2 and by_role[False]["tuner"] == 2
    assert by_role[False]["memory"] == 1024**3
