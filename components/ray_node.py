"""How a Ray node starts, as pure functions: the `ray start` arguments and the capacity a node offers.

Containers, VM startup scripts and the real-Ray tests all build their command lines here, so what the
tests start is exactly what the clusters run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

GIB = 1024**3
METRICS_PORT = 8080  # each node exports Prometheus metrics here (Ray's service discovery lists it)


@dataclass(frozen=True)
class RayNode:
    """The resources one Ray node offers to the scheduler."""

    cpus: int
    memory_gb: float
    gpus: int = 0
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb * GIB)

    def ray_resources(self) -> dict[str, float]:
        """The node's resources the way Ray counts them (memory in bytes)."""
        out: dict[str, float] = {"CPU": self.cpus, "memory": self.memory_bytes}
        if self.gpus:
            out["GPU"] = self.gpus
        out.update(self.resources)
        return out


@dataclass(frozen=True)
class HeadPorts:
    gcs: int = 6379
    dashboard: int = 8265
    client: int = 10001
    metrics: int = METRICS_PORT


def _resource_args(node: RayNode, metrics_port: int) -> list[str]:
    args = [
        f"--num-cpus={node.cpus}",
        f"--num-gpus={node.gpus}",
        f"--memory={node.memory_bytes}",
        f"--metrics-export-port={metrics_port}",
        "--disable-usage-stats",
    ]
    if node.resources:
        args.append(f"--resources={json.dumps(node.resources, sort_keys=True, separators=(',', ':'))}")
    return args


def head_start_args(
    node: RayNode,
    ports: HeadPorts = HeadPorts(),
    *,
    dashboard_host: str = "0.0.0.0",
    node_ip: str | None = None,
    block: bool = True,
) -> list[str]:
    """`ray start` for a head node: GCS, dashboard (Jobs API), Ray client server, metrics."""
    args = [
        "ray", "start", "--head",
        f"--port={ports.gcs}",
        f"--dashboard-host={dashboard_host}",
        f"--dashboard-port={ports.dashboard}",
        f"--ray-client-server-port={ports.client}",
        *_resource_args(node, ports.metrics),
    ]
    if node_ip:
        args.append(f"--node-ip-address={node_ip}")
    if block:
        args.append("--block")
    return args


def worker_start_args(
    node: RayNode,
    head_address: str,
    *,
    metrics_port: int = METRICS_PORT,
    node_ip: str | None = None,
    block: bool = True,
) -> list[str]:
    """`ray start` for a worker joining the head's GCS at head_address (`host:port`).

    With --block, the command exits when the node loses its head, so a restarting container rejoins
    a restarted head."""
    args = ["ray", "start", f"--address={head_address}", *_resource_args(node, metrics_port)]
    if node_ip:
        args.append(f"--node-ip-address={node_ip}")
    if block:
        args.append("--block")
    return args


def capacity_entry(node: RayNode, min_nodes: int, max_nodes: int) -> dict:
    """One node type of the contract's `ray_capacity`."""
    return {"resources": node.ray_resources(), "min_nodes": min_nodes, "max_nodes": max_nodes}
