"""GkeCluster: a private GKE Standard cluster ready for multi-networking and Ray.

Dataplane V2, multi-networking, Workload Identity, GCS FUSE CSI, managed Prometheus with DCGM, Binary
Authorization evaluation, the default pool replaced by a CPU system pool (Ray head, system pods), a
least-privilege node service account, and an explicit Kubernetes provider from a kubeconfig that
authenticates with `gke-gcloud-auth-plugin` (exported only as a secret).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# What GKE nodes need and nothing more (GKE's "least privileged node service account" list).
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/autoscaling.metricsWriter",
)
SYSTEM_POOL_LABEL = "ray-platform/pool"


@dataclass(frozen=True)
class Maintenance:
    start_time: str
    end_time: str
    recurrence: str


EXCLUSION_SCOPES = ("NO_MINOR_OR_NODE_UPGRADES", "NO_MINOR_UPGRADES")  # those that may last until end of support


@dataclass(frozen=True)
class UpgradeExclusion:
    """A maintenance exclusion until the minor version's end of support (as Cluster Toolkit's A3 Ultra blueprint):
    NO_MINOR_OR_NODE_UPGRADES keeps GKE from draining a running 8-GPU node to upgrade it; control-plane patches
    still apply."""

    scope: str = "NO_MINOR_OR_NODE_UPGRADES"
    start_time: str = "2026-01-01T00:00:00Z"

    def __post_init__(self) -> None:
        if self.scope not in EXCLUSION_SCOPES:
            raise ValueError(f"upgrade_exclusion.scope: {self.scope!r} (allowed: {', '.join(EXCLUSION_SCOPES)})")

    def policy(self) -> dict:
        return {"exclusion_name": self.scope.lower().replace("_", "-"), "start_time": self.start_time,
                "exclusion_options": {"scope": self.scope, "end_time_behavior": "UNTIL_END_OF_SUPPORT"}}


@dataclass(frozen=True)
class SystemPoolArgs:
    machine_type: str = "n2-standard-16"
    min_nodes: int = 1
    max_nodes: int = 3
    disk_size_gb: int = 200


@dataclass(frozen=True)
class GkeClusterArgs:
    project: str
    region: str
    zone: str
    cluster_name: str
    network: pulumi.Input[str]  # VPC id
    subnetwork: pulumi.Input[str]  # subnet id
    pods_range_name: str
    services_range_name: str
    master_cidr: str
    authorized_networks: list[tuple[str, str]]  # (cidr, display name)
    release_channel: str = "REGULAR"
    maintenance: Maintenance = Maintenance("2025-01-04T03:00:00Z", "2025-01-04T11:00:00Z", "FREQ=WEEKLY;BYDAY=SA,SU")
    upgrade_exclusion: UpgradeExclusion | None = field(default_factory=UpgradeExclusion)  # None: GKE upgrades freely
    system_pool: SystemPoolArgs = field(default_factory=SystemPoolArgs)
    min_master_version: str | None = None
    dns_endpoint: bool = False
    deletion_protection: bool = True
    ray_operator_addon: dict | None = None  # GKE's Ray add-on config (KubeRay installed by GKE), or None
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # e.g. the enabled project services

    def __post_init__(self) -> None:
        if self.release_channel not in ("RAPID", "REGULAR", "STABLE"):
            raise ValueError(f"release_channel: {self.release_channel!r} (allowed: RAPID, REGULAR, STABLE)")
        if not self.authorized_networks:
            raise ValueError("authorized_networks: empty (allowed: at least the CIDR that runs `pulumi up`)")
        for cidr, _ in self.authorized_networks:
            if ipaddress.IPv4Network(cidr).prefixlen == 0:
                raise ValueError(f"authorized_networks: {cidr!r} is the whole internet (allowed: narrower CIDRs)")
        if ipaddress.IPv4Network(self.master_cidr).prefixlen != 28:
            raise ValueError(f"master_cidr: {self.master_cidr!r} (allowed: a /28)")
        if not 1 <= self.system_pool.min_nodes <= self.system_pool.max_nodes:
            raise ValueError(f"system_pool: min {self.system_pool.min_nodes} / max {self.system_pool.max_nodes} "
                             "(allowed: 1 <= min_nodes <= max_nodes)")


def kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig that authenticates through `gke-gcloud-auth-plugin` (no token is ever written into it)."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": f"https://{endpoint}", "certificate-authority-data": ca_certificate}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "interactiveMode": "Never",
        }}}],
    }
    return yaml.safe_dump(document, sort_keys=False)


class GkeCluster(pulumi.ComponentResource):
    cluster: gcp.container.Cluster
    system_pool: gcp.container.NodePool
    node_service_account: gcp.serviceaccount.Account
    kubeconfig: pulumi.Output[str]  # secret
    provider: k8s.Provider
    workload_pool: str

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.workload_pool = f"{args.project}.svc.id.goog"
        self.node_service_account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=f"{args.cluster_name}-nodes"[:30],
            display_name=f"GKE nodes of {args.cluster_name}",
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[1].replace('.', '-')}",
                project=args.project,
                role=role,
                member=self.node_service_account.member,
                opts=child,
            )
        m = args.maintenance
        self.cluster = gcp.container.Cluster(
            name,
            name=args.cluster_name,
            project=args.project,
            location=args.region,  # regional control plane; nodes only in the RoCE zone
            node_locations=[args.zone],
            network=args.network,
            subnetwork=args.subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": args.pods_range_name,
                "services_secondary_range_name": args.services_range_name,
            },
            # Multi-networking needs Dataplane V2; its network policy enforcement replaces the NetworkPolicy addon.
            datapath_provider="ADVANCED_DATAPATH",
            enable_multi_networking=True,
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": False,  # the program itself applies Kubernetes objects from outside
                "master_ipv4_cidr_block": args.master_cidr,
                "master_global_access_config": {"enabled": True},
            },
            master_authorized_networks_config={
                "cidr_blocks": [{"cidr_block": c, "display_name": n} for c, n in args.authorized_networks],
                "gcp_public_cidrs_access_enabled": False,
            },
            control_plane_endpoints_config={"dns_endpoint_config": {"allow_external_traffic": args.dns_endpoint}},
            workload_identity_config={"workload_pool": self.workload_pool},
            addons_config={
                "gcs_fuse_csi_driver_config": {"enabled": True},
                "gce_persistent_disk_csi_driver_config": {"enabled": True},
                "http_load_balancing": {"disabled": False},
                **({"ray_operator_configs": [args.ray_operator_addon]} if args.ray_operator_addon else {}),
            },
            monitoring_config={
                "enable_components": ["SYSTEM_COMPONENTS", "DCGM"],
                "managed_prometheus": {"enabled": True},
            },
            binary_authorization={"evaluation_mode": "PROJECT_SINGLETON_POLICY_ENFORCE"},
            release_channel={"channel": args.release_channel},
            min_master_version=args.min_master_version,
            maintenance_policy={
                "recurring_window": {"start_time": m.start_time, "end_time": m.end_time, "recurrence": m.recurrence},
                **({"maintenance_exclusions": [args.upgrade_exclusion.policy()]} if args.upgrade_exclusion else {}),
            },
            remove_default_node_pool=True,
            initial_node_count=1,
            # The short-lived default pool must not run as the project's default compute service account.
            node_config={"service_account": self.node_service_account.email, "oauth_scopes": [CLOUD_PLATFORM]},
            enable_shielded_nodes=True,
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on, ignore_changes=["node_config"]),
        )
        sp = args.system_pool
        self.system_pool = gcp.container.NodePool(
            f"{name}-system",
            name="system",
            project=args.project,
            cluster=self.cluster.id,
            location=args.region,
            node_locations=[args.zone],
            initial_node_count=sp.min_nodes,
            autoscaling={"total_min_node_count": sp.min_nodes, "total_max_node_count": sp.max_nodes,
                         "location_policy": "BALANCED"},
            management={"auto_repair": True, "auto_upgrade": True},
            node_config={
                "machine_type": sp.machine_type,
                "disk_size_gb": sp.disk_size_gb,
                "service_account": self.node_service_account.email,
                "oauth_scopes": [CLOUD_PLATFORM],
                "workload_metadata_config": {"mode": "GKE_METADATA"},
                "gvnic": {"enabled": True},
                "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
                "labels": {SYSTEM_POOL_LABEL: "system"},
            },
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["initial_node_count"]),
        )
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate,
        ).apply(lambda v: kubeconfig(*v)))
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_pool]),
        )
        self.register_outputs({"cluster_name": self.cluster.name, "endpoint": self.cluster.endpoint,
                               "node_service_account": self.node_service_account.email})
