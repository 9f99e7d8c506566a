"""A Ray cluster as Docker containers: one head, and worker groups that may live on other hosts.

On one host everything shares a bridge network and reaches the head by its alias. With several hosts,
Ray containers use host networking (one Ray node per host) and advertise the host's own address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.local.docker import env_list, http_health, published
from components.ray_node import HeadPorts, RayNode, head_start_args, worker_start_args

HEAD_ALIAS = "ray-head"
RAY_TMP = "/tmp/ray"
AGENT_PORT = 52365  # the dashboard agent on every node serves the raylet health endpoint


@dataclass(frozen=True)
class DockerPlacement:
    """Where a container runs: a host's provider, and either a bridge network or the host's own network."""

    provider: docker.Provider
    network: docker.Network | None  # None: host networking
    node_ip: str | None = None  # with host networking, the address other hosts reach this one by


@dataclass(frozen=True)
class HeadArgs:
    node: RayNode
    image: pulumi.Input[str]
    placement: DockerPlacement
    ports: HeadPorts = HeadPorts()
    publish: dict[int, int] = field(default_factory=dict)  # container port -> host port
    bind_address: str = "127.0.0.1"
    env: dict[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerArgs:
    name: str
    node: RayNode
    image: pulumi.Input[str]
    placement: DockerPlacement
    gpu_vendor: str = "none"  # "none" | "nvidia" | "amd"
    gpu_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.gpu_vendor not in ("none", "nvidia", "amd"):
            raise ValueError(f"gpu_vendor {self.gpu_vendor!r} (allowed: none, nvidia, amd)")
        if len(self.gpu_ids) != self.node.gpus:
            raise ValueError(f"worker {self.name}: {len(self.gpu_ids)} GPU ids for {self.node.gpus} GPUs")


@dataclass(frozen=True)
class DockerRayClusterArgs:
    container_prefix: str  # container names on the hosts, e.g. "ray-dev"
    head: HeadArgs
    workers: list[WorkerArgs]
    env: dict[str, pulumi.Input[str]] = field(default_factory=dict)  # for every Ray node (e.g. storage)
    shm_fraction: float = 0.35  # /dev/shm for Ray's object store, as a share of node memory


def gpu_options(vendor: str, gpu_ids: list[str]) -> dict:
    """Container arguments that hand exactly these GPUs to a container."""
    if vendor == "nvidia":
        return {"device_requests": [docker.ContainerDeviceRequestArgs(
            driver="nvidia", device_ids=list(gpu_ids), capabilities=["gpu"])]}
    if vendor == "amd":
        # ROCm sees every GPU behind /dev/kfd + /dev/dri; the visible set is narrowed by environment.
        return {
            "devices": [docker.ContainerDeviceArgs(host_path="/dev/kfd"), docker.ContainerDeviceArgs(host_path="/dev/dri")],
            "group_adds": ["video", "render"],
            "security_opts": ["seccomp=unconfined"],
            "envs_extra": {"ROCR_VISIBLE_DEVICES": ",".join(gpu_ids), "HIP_VISIBLE_DEVICES": ",".join(gpu_ids)},
        }
    return {}


class DockerRayCluster(pulumi.ComponentResource):
    head: docker.Container
    workers: list[docker.Container]
    head_tmp: docker.Volume  # the head's /tmp/ray: Prometheus service discovery and Grafana dashboards
    gcs_address: str  # how workers reach the head

    def __init__(self, name: str, args: DockerRayClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:local:DockerRayCluster", name, None, opts)
        head = args.head
        self.head_tmp = docker.Volume(
            f"{name}-head-tmp", name=f"{args.container_prefix}-head-tmp",
            opts=pulumi.ResourceOptions(parent=self, provider=head.placement.provider),
        )
        head_host = head.placement.node_ip or HEAD_ALIAS
        self.gcs_address = f"{head_host}:{head.ports.gcs}"
        dashboard_host = head.bind_address if head.placement.network is None else "0.0.0.0"
        self.head = self._container(
            f"{name}-head", f"{args.container_prefix}-head", head.image, head.placement,
            command=head_start_args(head.node, head.ports, dashboard_host=dashboard_host, node_ip=head.placement.node_ip),
            env={**args.env, **head.env},
            node=head.node, shm_fraction=args.shm_fraction,
            aliases=[HEAD_ALIAS],
            ports=published(head.publish, head.bind_address) if head.placement.network is not None else None,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.head_tmp.name, container_path=RAY_TMP)],
            healthcheck=http_health(f"http://{_loopback(dashboard_host)}:{head.ports.dashboard}/api/gcs_healthz"),
        )
        self.workers = []
        for w in args.workers:
            gpu = gpu_options(w.gpu_vendor, w.gpu_ids)
            self.workers.append(self._container(
                f"{name}-{w.name}", f"{args.container_prefix}-{w.name}", w.image, w.placement,
                command=worker_start_args(w.node, self.gcs_address, node_ip=w.placement.node_ip),
                env={**args.env, **gpu.pop("envs_extra", {})},
                node=w.node, shm_fraction=args.shm_fraction,
                healthcheck=http_health(f"http://127.0.0.1:{AGENT_PORT}/api/local_raylet_healthz"),
                depends_on=[self.head],
                **gpu,
            ))
        self.register_outputs({"head": self.head.name, "workers": [c.name for c in self.workers]})

    def _container(self, resource_name: str, container_name: str, image, placement: DockerPlacement, *,
                   command: list[str], env: dict, node: RayNode, shm_fraction: float,
                   aliases: list[str] | None = None, depends_on: list | None = None, **kwargs) -> docker.Container:
        network = {}
        if placement.network is None:
            network["network_mode"] = "host"
        else:
            network["networks_advanced"] = [
                docker.ContainerNetworksAdvancedArgs(name=placement.network.name, aliases=aliases)]
        return docker.Container(
            resource_name,
            name=container_name,
            image=image,
            command=command,
            envs=env_list(env),
            shm_size=int(node.memory_gb * 1024 * shm_fraction),
            restart="unless-stopped",  # a worker whose head went away exits and rejoins when it is back
            labels=[docker.ContainerLabelArgs(label="ray-platform.node", value="head" if aliases else "worker")],
            **network,
            **{k: v for k, v in kwargs.items() if v is not None},
            opts=pulumi.ResourceOptions(parent=self, provider=placement.provider, depends_on=depends_on),
        )


def _loopback(host: str) -> str:
    return "127.0.0.1" if host == "0.0.0.0" else host
