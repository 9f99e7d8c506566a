"""The `gke` environment, part 1: a private GKE cluster with H200 (a3-ultragpu-8g) pools on RDMA, ready for Ray.

One `pulumi up` enables the APIs, builds the three VPCs, the cluster and its pools, the multi-networking
objects, NCCL installer and compute class, the training bucket and Workload Identity, the registries, the
Cloud Build pool and image builds (in parallel with the cluster), and Binary Authorization after the first
build. KubeRay and the RayCluster (part 2) build on `GkeFoundation`; until then the Ray endpoints are None.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.gke.binary_authorization import BinaryAuthorization, BinaryAuthorizationArgs
from components.gke.cloud_build import CloudBuild, CloudBuildArgs, ImageSpec
from components.gke.cluster import GkeCluster, GkeClusterArgs, Maintenance, SystemPoolArgs
from components.gke.cluster_objects import (
    GVNIC_NETWORK,
    RDMA_NETWORKS,
    ClusterNetworking,
    ClusterNetworkingArgs,
    ExtraNetwork,
    RayNamespace,
    RayNamespaceArgs,
)
from components.gke.network import RdmaNetwork, RdmaNetworkArgs
from components.gke.node_pools import GpuPoolSpec, H200NodePools, H200NodePoolsArgs, ray_worker_node
from components.gke.registry import ArtifactRegistry, ArtifactRegistryArgs
from components.gke.services import ProjectServices, ProjectServicesArgs
from components.gke.training_data import TrainingData, TrainingDataArgs
from components.ray_node import HeadPorts, capacity_entry
from components.versions import PYTHON_VERSION, RAY_VERSION
from stacks.config.gke import GkeConfig

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
HEAD_SERVICE = "ray-head-svc"  # the KubeRay part names the RayCluster `ray`, so KubeRay's head service is this
LOCAL_DASHBOARD = "http://127.0.0.1:8265"
# Ray's own GPU image on Docker Hub, pulled through the docker virtual repository (its Docker Hub remote).
RAY_GPU_IMAGE = f"rayproject/ray:{RAY_VERSION}-py{PYTHON_VERSION.replace('.', '')}-gpu"


@dataclass
class GkeFoundation:
    """What part 2 (KubeRay, the RayCluster) builds on: typed handles, no config reading needed."""

    k8s_provider: k8s.Provider
    kubeconfig: pulumi.Output[str]  # secret
    cluster: GkeCluster
    network: RdmaNetwork
    network_names: list[str]  # gvnic-1, rdma-0..7: the pods' networking.gke.io/interfaces
    compute_class: str
    gpu_pools: H200NodePools
    bucket_name: pulumi.Output[str]
    workload_service_account: pulumi.Output[str]  # Google service account email (Workload Identity)
    ray_namespace: RayNamespace
    image_refs: dict[str, pulumi.Output[str]]  # ray-base, ray-server by digest


def capacity(cfg: GkeConfig) -> dict:
    """ray_capacity from the H200 pools: one Ray worker pod per node, from 0 to each pool's maximum."""
    node = ray_worker_node(cfg.gpu_pools.ray_worker.cpus, cfg.gpu_pools.ray_worker.memory_gb)
    return {f"h200-{model}": capacity_entry(node, 0, pool.max_nodes) for model, pool in cfg.enabled_pools()}


def access(cfg: GkeConfig) -> dict:
    """A private cluster's safe default: kubectl port-forward to the head service (dashboard and Ray client)."""
    ports = HeadPorts()
    return {
        "mode": "port-forward",
        "command": ["kubectl", "port-forward", "--namespace", cfg.ray.namespace, f"svc/{HEAD_SERVICE}",
                    f"{ports.dashboard}:{ports.dashboard}", f"{ports.client}:{ports.client}"],
        "local_dashboard_url": LOCAL_DASHBOARD,
    }


def foundation(cfg: GkeConfig) -> GkeFoundation:
    provider = gcp.Provider("gcp", project=cfg.project, region=cfg.region, zone=cfg.zone)
    on_gcp = pulumi.ResourceOptions(providers={"gcp": provider})
    prefix = cfg.name_prefix
    services = ProjectServices("services", ProjectServicesArgs(project=cfg.project), opts=on_gcp)
    apis = services.of
    nets = cfg.networks
    network = RdmaNetwork("network", RdmaNetworkArgs(
        project=cfg.project, region=cfg.region, zone=cfg.zone, prefix=prefix,
        roce_network_profile=cfg.roce_network_profile, nodes_cidr=nets.nodes_cidr, pods_cidr=nets.pods_cidr,
        services_cidr=nets.services_cidr, gvnic_1_cidr=nets.gvnic_1_cidr, rdma_cidrs=nets.rdma_subnets(),
        proxy_only_cidr=nets.proxy_only_cidr, depends_on=apis("compute"),
    ), opts=on_gcp)
    c = cfg.cluster
    cluster = GkeCluster("gke", GkeClusterArgs(
        project=cfg.project, region=cfg.region, zone=cfg.zone, cluster_name=prefix,
        network=network.primary.id, subnetwork=network.primary_subnet.id,
        pods_range_name=network.pods_range_name, services_range_name=network.services_range_name,
        master_cidr=nets.master_cidr,
        authorized_networks=[(n.cidr, n.name) for n in cfg.authorized_networks],
        release_channel=c.release_channel,
        maintenance=Maintenance(c.maintenance.start_time, c.maintenance.end_time, c.maintenance.recurrence),
        system_pool=SystemPoolArgs(c.system_pool.machine_type, c.system_pool.min_nodes, c.system_pool.max_nodes,
                                   c.system_pool.disk_size_gb),
        min_master_version=c.min_master_version, dns_endpoint=c.dns_endpoint,
        deletion_protection=c.deletion_protection, depends_on=apis("container", "iam", "monitoring", "logging"),
    ), opts=on_gcp)
    node_sa = cluster.node_service_account
    pools = H200NodePools("h200", H200NodePoolsArgs(
        project=cfg.project, region=cfg.region, zone=cfg.zone, cluster=cluster.cluster.id,
        node_service_account=node_sa.email, additional_node_networks=network.additional_node_networks(),
        compute_class=cfg.compute_class.name,
        pools=[GpuPoolSpec(model, pool.max_nodes, getattr(pool, "reservation", None))
               for model, pool in cfg.enabled_pools()],
        gpu_driver_version=cfg.gpu_pools.gpu_driver_version,
    ), opts=on_gcp)

    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
    extra = [ExtraNetwork(GVNIC_NETWORK, network.gvnic_1.name, network.gvnic_1_subnet.name, "NetDevice")]
    extra += [ExtraNetwork(n, network.rdma.name, s.name, "RDMA") for n, s in zip(RDMA_NETWORKS, network.rdma_subnets,
                                                                                   strict=True)]
    networking = ClusterNetworking("cluster-networking", ClusterNetworkingArgs(
        provider=cluster.provider, networks=extra, compute_class=cfg.compute_class.name,
        pools=[p.name for p in pools.pools.values()], when_unsatisfiable=cfg.compute_class.when_unsatisfiable,
        nccl_plugin_version=cfg.nccl_plugin_version,
    ), opts=on_cluster)

    data = TrainingData("training-data", TrainingDataArgs(
        project=cfg.project, location=cfg.region, bucket_name=cfg.bucket_name, access=cfg.training_data.access,
        workload_pool=cluster.workload_pool, namespace=cfg.ray.namespace,
        kubernetes_service_account=cfg.ray.service_account, account_id=f"{prefix}-workloads",
        secrets=list(cfg.training_data.secrets), depends_on=apis("storage", "iam", "secretmanager"),
    ), opts=on_gcp)
    ray_ns = RayNamespace("ray-namespace", RayNamespaceArgs(
        provider=cluster.provider, namespace=cfg.ray.namespace, service_account=cfg.ray.service_account,
        gcp_service_account=data.service_account.email,
    ), opts=on_cluster)

    registry = ArtifactRegistry("registry", ArtifactRegistryArgs(
        project=cfg.project, location=cfg.region, prefix=prefix,
        keep_recent_versions=cfg.artifact_registry.keep_recent_versions,
        delete_untagged_after_days=cfg.artifact_registry.delete_untagged_after_days,
        readers=[node_sa.member], depends_on=apis("artifactregistry"),
    ), opts=on_gcp)
    repos = registry.repositories
    ray_image = registry.docker_virtual.apply(lambda v: f"{v}/{RAY_GPU_IMAGE}")
    # Builds depend on the network and registries only: they run while the cluster is being created.
    build = CloudBuild("build", CloudBuildArgs(
        project=cfg.project, region=cfg.region, prefix=prefix, network=network.primary.id,
        private_services_cidr=nets.private_services_cidr, push_repository=repos["docker"],
        pull_repositories=[repos["docker-virtual"], repos["python-virtual"]], push_path=registry.docker_local,
        images=[
            ImageSpec("ray-base", IMAGES_DIR / "ray-base", {"_BASE_IMAGE": ray_image}),
            ImageSpec("ray-server", IMAGES_DIR / "ray-server", {"_PYTHON_INDEX_URL": registry.python_index_url},
                      base="ray-base"),
        ],
        machine_type=cfg.cloud_build.machine_type, disk_size_gb=cfg.cloud_build.disk_size_gb,
        public_egress=cfg.cloud_build.public_egress, timeout_minutes=cfg.cloud_build.timeout_minutes,
        depends_on=apis("cloudbuild", "servicenetworking", "storage", "iam"),
    ), opts=on_gcp)
    BinaryAuthorization("binary-authorization", BinaryAuthorizationArgs(
        project=cfg.project, first_build=build.images["ray-base"], mode=cfg.binary_authorization.mode,
        allowlist=list(cfg.binary_authorization.allowlist),
        depends_on=apis("binaryauthorization", "containeranalysis"),
    ), opts=on_gcp)

    return GkeFoundation(
        k8s_provider=cluster.provider, kubeconfig=cluster.kubeconfig, cluster=cluster, network=network,
        network_names=networking.network_names, compute_class=networking.compute_class_name, gpu_pools=pools,
        bucket_name=data.bucket.name, workload_service_account=data.service_account.email, ray_namespace=ray_ns,
        image_refs=build.image_refs,
    )


def build(cfg: GkeConfig) -> dict:
    f = foundation(cfg)
    return {
        "environment": "gke",
        "ray_version": RAY_VERSION,
        # The Ray cluster itself comes with the KubeRay part: no endpoints yet.
        "ray_dashboard_url": None,
        "ray_client_address": None,
        "ray_capacity": capacity(cfg),
        "grafana_url": None,
        "prometheus_url": None,
        "jupyter_url": None,
        "storage": {"uri": f.bucket_name.apply(lambda b: f"gs://{b}"), "endpoint": None},
        "access": access(cfg),
        "kubeconfig": f.kubeconfig,
        "cluster": {
            "name": f.cluster.cluster.name,
            "project": cfg.project,
            "region": cfg.region,
            "zone": cfg.zone,
            "get_credentials": ["gcloud", "container", "clusters", "get-credentials", cfg.name_prefix,
                                "--region", cfg.region, "--project", cfg.project],
        },
        "networks": {"node": [f.network.primary.name, f.network.gvnic_1.name, f.network.rdma.name],
                     "kubernetes": f.network_names},
        "compute_class": f.compute_class,
        "workload_identity": {"namespace": cfg.ray.namespace, "kubernetes_service_account": cfg.ray.service_account,
                              "gcp_service_account": f.workload_service_account},
        "images": f.image_refs,
    }
