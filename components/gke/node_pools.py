"""H200NodePools: manually created a3-ultragpu-8g pools, one per provisioning model (spot, DWS flex-start,
on-demand), each with the 9 extra NICs for RDMA, labelled and tainted for the compute class that ranks them.

Manual pools, as Cluster Toolkit's A3 Ultra blueprint: a compute class could create the nodes itself
(`acceleratorNetworkProfile: auto`), but then GKE's DRA networking replaces the stack's RoCE subnets and the
pods' interface annotation (docs/gke.md explains the choice). Every pool autoscales from 0, so an idle cluster
holds no GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

from components.ray_node import RayNode

MACHINE_TYPE = "a3-ultragpu-8g"
ACCELERATOR = "nvidia-h200-141gb"
GPUS_PER_NODE = 8
# The machine's shape (GCP machine type table): 224 vCPUs, 2952 GB memory, 32 local SSDs.
VCPUS_PER_NODE = 224
MEMORY_GB_PER_NODE = 2952
LOCAL_SSDS = 32
ADDITIONAL_NICS = 9  # eth1 (second gVNIC VPC) + eth2..eth9 (RDMA)
COMPUTE_CLASS_KEY = "cloud.google.com/compute-class"
PROVISIONING_LABEL = "ray-platform/provisioning"
MODELS = ("spot", "flex-start", "on-demand")
FLEX_START_MAX_RUN = "604800s"  # DWS flex-start nodes live at most 7 days
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class GpuPoolSpec:
    model: str  # spot | flex-start | on-demand
    max_nodes: int
    reservation: str | None = None  # on-demand only: a specific reservation to consume

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: {self.model!r} (allowed: {', '.join(MODELS)})")
        if self.max_nodes < 1:
            raise ValueError(f"max_nodes: {self.max_nodes} for the {self.model} pool (allowed: >= 1)")
        if self.reservation and self.model != "on-demand":
            raise ValueError(f"reservation: set on the {self.model} pool (allowed: only on the on-demand pool)")

    @property
    def pool_name(self) -> str:
        return f"h200-{self.model}"


@dataclass(frozen=True)
class H200NodePoolsArgs:
    project: str
    region: str
    zone: str
    cluster: pulumi.Input[str]  # cluster id
    node_service_account: pulumi.Input[str]  # email
    additional_node_networks: list[dict[str, pulumi.Input[str]]]  # 9, in NIC order (names, not self links)
    compute_class: str
    pools: list[GpuPoolSpec]
    gpu_driver_version: str = "DEFAULT"
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.additional_node_networks) != ADDITIONAL_NICS:
            raise ValueError(f"additional_node_networks: {len(self.additional_node_networks)} entries "
                             f"(allowed: exactly {ADDITIONAL_NICS}: gVNIC 1, then RDMA subnets 0..7)")
        if not self.pools:
            raise ValueError("pools: empty (allowed: at least one of spot, flex-start, on-demand)")
        models = [p.model for p in self.pools]
        if len(set(models)) != len(models):
            raise ValueError(f"pools: {models} repeat a provisioning model (allowed: one pool per model)")
        if self.gpu_driver_version not in ("LATEST", "DEFAULT"):
            raise ValueError(f"gpu_driver_version: {self.gpu_driver_version!r} (allowed: LATEST, DEFAULT)")


def ray_worker_node(cpus: int, memory_gb: int) -> RayNode:
    """The Ray node one worker pod on an H200 node is (one pod per node, all 8 GPUs)."""
    return RayNode(cpus=cpus, memory_gb=memory_gb, gpus=GPUS_PER_NODE)


def provisioning(spec: GpuPoolSpec) -> dict[str, Any]:
    """The node_config fields a provisioning model imposes."""
    if spec.model == "spot":
        return {"spot": True, "reservation_affinity": {"consume_reservation_type": "NO_RESERVATION"}}
    if spec.model == "flex-start":
        return {"flex_start": True, "max_run_duration": FLEX_START_MAX_RUN,
                "reservation_affinity": {"consume_reservation_type": "NO_RESERVATION"}}
    if spec.reservation:
        return {"reservation_affinity": {"consume_reservation_type": "SPECIFIC_RESERVATION",
                                         "key": "compute.googleapis.com/reservation-name",
                                         "values": [spec.reservation]}}
    return {}


class H200NodePools(pulumi.ComponentResource):
    pools: dict[str, gcp.container.NodePool]  # by provisioning model, in the compute class's order

    def __init__(self, name: str, args: H200NodePoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:H200NodePools", name, None, opts)
        self.pools = {spec.model: self._pool(name, args, spec) for spec in args.pools}
        self.register_outputs({"pools": {m: p.name for m, p in self.pools.items()}})

    def _pool(self, name: str, args: H200NodePoolsArgs, spec: GpuPoolSpec) -> gcp.container.NodePool:
        flex = spec.model == "flex-start"
        return gcp.container.NodePool(
            f"{name}-{spec.model}",
            name=spec.pool_name,
            project=args.project,
            cluster=args.cluster,
            location=args.region,
            node_locations=[args.zone],  # everything on the RoCE VPC lives in its one zone
            initial_node_count=0,
            autoscaling={"total_min_node_count": 0, "total_max_node_count": spec.max_nodes, "location_policy": "ANY"},
            # Flex-start nodes are never repaired (a repair would need new capacity); they go when their run ends.
            management={"auto_repair": not flex, "auto_upgrade": True},
            # GPU capacity for a surge node is rarely there: replace nodes one at a time instead.
            upgrade_settings={"strategy": "SURGE", "max_surge": 0, "max_unavailable": 1},
            network_config={"additional_node_network_configs": args.additional_node_networks},
            node_config={
                "machine_type": MACHINE_TYPE,
                "guest_accelerators": [{
                    "type": ACCELERATOR, "count": GPUS_PER_NODE,
                    "gpu_driver_installation_config": {"gpu_driver_version": args.gpu_driver_version},
                }],
                "gvnic": {"enabled": True},
                "ephemeral_storage_local_ssd_config": {"local_ssd_count": LOCAL_SSDS},
                # Assumption: A3 Ultra boots from Hyperdisk only (no pd-* disk types on this machine series).
                "disk_type": "hyperdisk-balanced",
                "workload_metadata_config": {"mode": "GKE_METADATA"},
                "service_account": args.node_service_account,
                "oauth_scopes": [CLOUD_PLATFORM],
                "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
                "labels": {COMPUTE_CLASS_KEY: args.compute_class, PROVISIONING_LABEL: spec.model},
                "taints": [{"key": COMPUTE_CLASS_KEY, "value": args.compute_class, "effect": "NO_SCHEDULE"}],
                **provisioning(spec),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on,
                                        ignore_changes=["initial_node_count"]),
        )
