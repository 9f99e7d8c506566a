"""The `gke` environment: a private GKE cluster with H200 (a3-ultragpu-8g) pools on RDMA, and a Ray cluster on it.

`foundation` (part 1) enables the APIs, builds the three VPCs, the cluster and its pools, the multi-networking
objects, NCCL installer and compute class, the training bucket and Workload Identity, the registries, the
Cloud Build pool and image builds (in parallel with the cluster), and Binary Authorization after the first
build. `build` (part 2) adds the KubeRay operator, monitoring, the RayCluster and its port-forward access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.gke.binary_authorization import BinaryAuthorization, BinaryAuthorizationArgs
from components.gke.cloud_build import CloudBuild, CloudBuildArgs, ImageSpec
from components.gke.cluster import (
    SYSTEM_POOL_LABEL,
    GkeCluster,
    GkeClusterArgs,
    Maintenance,
    SystemPoolArgs,
    UpgradeExclusion,
)
from components.gke.cluster_objects import (
    GVNIC_NETWORK,
    RDMA_NETWORKS,
    ClusterNetworking,
    ClusterNetworkingArgs,
    ExtraNetwork,
    RayNamespace,
    RayNamespaceArgs,
)
from components.gke.kuberay import KubeRayOperator, KubeRayOperatorArgs, ray_addon_config
from components.gke.network import RdmaNetwork, RdmaNetworkArgs
from components.gke.node_pools import GpuPoolSpec, H200NodePools, H200NodePoolsArgs, ray_worker_node
from components.gke.ray_access import ForwardedPort, IngressArgs, RayAccess, RayAccessArgs, port_forward_command
from components.gke.ray_cluster import (
    FuseCache,
    KubeRayCluster,
    KubeRayClusterArgs,
    RayClusterSpec,
    WorkerGroup,
    head_ray_node,
)
from components.gke.ray_monitoring import GRAFANA_PORT, PROMETHEUS_PORT, RayMonitoring, RayMonitoringArgs
from components.gke.registry import ArtifactRegistry, ArtifactRegistryArgs
from components.gke.services import ProjectServices, ProjectServicesArgs
from components.gke.training_data import TrainingData, TrainingDataArgs
from components.ray_node import HeadPorts, RayNode, capacity_entry
from components.versions import PYTHON_VERSION, RAY_VERSION
from stacks.config.gke import GkeConfig
from stacks.secrets import ray_auth_token

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
GPU_GROUP, CPU_GROUP = "h200", "cpu"  # the RayCluster's worker groups, and ray_capacity's node types
HEAD_GROUP = "headgroup"  # the name Ray's KubeRay autoscaler gives the head's node type (autoscaling_config.py)
# Ray's own GPU image on Docker Hub, pulled through the docker virtual repository (its Docker Hub remote).
RAY_GPU_IMAGE = f"rayproject/ray:{RAY_VERSION}-py{PYTHON_VERSION.replace('.', '')}-gpu"


@dataclass
class GkeFoundation:
    """What part 2 (KubeRay, the RayCluster) builds on: typed handles, no config reading needed."""

    gcp_provider: gcp.Provider
    k8s_provider: k8s.Provider
    kubeconfig: pulumi.Output[str]  # secret
    cluster: GkeCluster
    network: RdmaNetwork
    network_names: list[str]  # gvnic-1, rdma-0..7: the pods' networking.gke.io/interfaces
    compute_class: str
    networking: ClusterNetworking  # Networks, NCCL installer, compute class: what RDMA pods need first
    gpu_pools: H200NodePools
    bucket_name: pulumi.Output[str]
    workload_service_account: pulumi.Output[str]  # Google service account email (Workload Identity)
    ray_namespace: RayNamespace
    image_refs: dict[str, pulumi.Output[str]]  # ray-base, ray-server by digest


def worker_groups(cfg: GkeConfig) -> list[WorkerGroup]:
    """The RayCluster's worker groups: H200 (one pod per node, all 8 GPUs) and, if enabled, CPU."""
    gpu = cfg.ray.gpu_workers
    groups = [WorkerGroup(GPU_GROUP, ray_worker_node(cfg.gpu_pools.ray_worker.cpus, cfg.gpu_pools.ray_worker.memory_gb),
                          gpu.min_replicas, cfg.gpu_max_replicas, gpu=True, shm_gb=gpu.shm_gb)]
    cpu = cfg.ray.cpu_workers
    if cpu.enabled:
        groups.append(WorkerGroup(CPU_GROUP, RayNode(cpus=cpu.cpus, memory_gb=cpu.memory_gb), cpu.min_replicas,
                                  cpu.max_replicas))
    return groups


def capacity(cfg: GkeConfig) -> dict:
    """ray_capacity as Ray's KubeRay autoscaler derives it from the RayCluster (tests/gke/test_gke_autoscaler.py):
    the head group (one node, no CPUs for tasks), then what one pod of each worker group offers, min to max."""
    head = head_ray_node(RayNode(cpus=cfg.ray.head.cpus, memory_gb=cfg.ray.head.memory_gb))
    return {HEAD_GROUP: capacity_entry(head, 1, 1),
            **{g.name: capacity_entry(g.node, g.min_replicas, g.max_replicas) for g in worker_groups(cfg)}}


def forwarded_ports(cfg: GkeConfig) -> list[ForwardedPort]:
    """What `kubectl port-forward` opens on 127.0.0.1: the dashboard first, the Ray client, Grafana, Prometheus."""
    ports = HeadPorts()
    out = [ForwardedPort("dashboard", ports.dashboard), ForwardedPort("client", ports.client)]
    if cfg.monitoring.grafana:
        out += [ForwardedPort("grafana", GRAFANA_PORT), ForwardedPort("prometheus", PROMETHEUS_PORT)]
    return out


def kube_context(cfg: GkeConfig) -> str:
    """The context `gcloud container clusters get-credentials` writes: the command never uses another cluster."""
    return f"gke_{cfg.project}_{cfg.region}_{cfg.name_prefix}"


def access(cfg: GkeConfig) -> dict:
    """A private cluster's safe default: kubectl port-forward to the head service, on 127.0.0.1 only."""
    ports = forwarded_ports(cfg)
    return {
        "mode": "port-forward",
        "command": port_forward_command(cfg.ray.namespace, f"{cfg.ray.cluster_name}-head", ports, kube_context(cfg)),
        "local_dashboard_url": f"http://127.0.0.1:{ports[0].port}",
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
        upgrade_exclusion=UpgradeExclusion(c.upgrade_exclusion.scope, c.upgrade_exclusion.start_time)
        if c.upgrade_exclusion else None,
        system_pool=SystemPoolArgs(c.system_pool.machine_type, c.system_pool.min_nodes, c.system_pool.max_nodes,
                                   c.system_pool.disk_size_gb),
        min_master_version=c.min_master_version, dns_endpoint=c.dns_endpoint,
        deletion_protection=c.deletion_protection, depends_on=apis("container", "iam", "monitoring", "logging"),
        # GKE's Ray add-on is a field of the cluster itself (kuberay.install: addon).
        ray_operator_addon=ray_addon_config() if cfg.kuberay.install == "addon" else None,
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
        secrets=list(cfg.training_data.secrets), hierarchical_namespace=cfg.training_data.hierarchical_namespace,
        versioning=cfg.training_data.versioning, depends_on=apis("storage", "iam", "secretmanager"),
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
        gcp_provider=provider, k8s_provider=cluster.provider, kubeconfig=cluster.kubeconfig, cluster=cluster,
        network=network,
        network_names=networking.network_names, compute_class=networking.compute_class_name, networking=networking,
        gpu_pools=pools,
        bucket_name=data.bucket.name, workload_service_account=data.service_account.email, ray_namespace=ray_ns,
        image_refs=build.image_refs,
    )


def ray(cfg: GkeConfig, f: GkeFoundation, token: pulumi.Output[str] | None) -> RayAccess:
    """Part 2: the KubeRay operator, then monitoring, the RayCluster and the head Service that access uses."""
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": f.k8s_provider, "gcp": f.gcp_provider})
    system_pool = {SYSTEM_POOL_LABEL: "system"}
    operator = KubeRayOperator("kuberay", KubeRayOperatorArgs(
        install=cfg.kuberay.install, provider=f.k8s_provider, cluster=f.cluster.cluster,
        namespace=cfg.kuberay.namespace, node_selector=system_pool,
    ), opts=on_cluster)
    m = cfg.monitoring
    monitoring = RayMonitoring("monitoring", RayMonitoringArgs(
        provider=f.k8s_provider, project=cfg.project, namespace=cfg.ray.namespace, cluster_name=cfg.ray.cluster_name,
        workload_service_account=f.workload_service_account, scrape_interval=m.scrape_interval, grafana=m.grafana,
        grafana_image=m.grafana_image, prometheus_frontend_image=m.prometheus_frontend_image,
        depends_on=[f.ray_namespace],
    ), opts=on_cluster)
    r, fuse = cfg.ray, cfg.training_data.gcs_fuse
    spec = RayClusterSpec(
        name=r.cluster_name, namespace=r.namespace, ray_version=RAY_VERSION,
        image=r.image or f.image_refs["ray-server"], service_account=r.service_account,
        head=RayNode(cpus=r.head.cpus, memory_gb=r.head.memory_gb), head_node_selector=system_pool,
        groups=worker_groups(cfg), compute_class=f.compute_class, network_names=f.network_names,
        bucket=f.bucket_name, gpu_fuse=FuseCache(fuse.file_cache_gb, fuse.cache_file_for_range_read,
                                                 fuse.parallel_downloads),
        idle_timeout_s=r.idle_timeout_s, redis_address=r.gcs_fault_tolerance.redis_address,
        head_sidecars=monitoring.head_sidecars, head_volumes=monitoring.head_volumes, head_env=monitoring.head_env,
    )
    password = cfg.ray_redis_password
    ray_cluster = KubeRayCluster("ray-cluster", KubeRayClusterArgs(
        provider=f.k8s_provider, spec=spec,
        redis_password=pulumi.Output.secret(password.get_secret_value()) if password else None,
        auth_token=token,
        # The CRD and its controller, the RDMA Networks and compute class, the service account, Grafana's config.
        depends_on=[*operator.ready, f.networking, f.gpu_pools, f.ray_namespace, *monitoring.ready],
    ), opts=on_cluster)
    ing = cfg.ingress
    return RayAccess("ray-access", RayAccessArgs(
        provider=f.k8s_provider, namespace=r.namespace, cluster_name=r.cluster_name, ports=forwarded_ports(cfg),
        context=kube_context(cfg),
        ingress=IngressArgs(iap=ing.iap, oauth_secret=ing.iap_oauth_secret, tls_secret=ing.tls_secret,
                            iap_members=list(ing.iap_members), project=cfg.project) if ing.enabled else None,
        depends_on=[ray_cluster],
    ), opts=on_cluster)


def build(cfg: GkeConfig) -> dict:
    f = foundation(cfg)
    token = ray_auth_token(cfg)
    reach = ray(cfg, f, token)
    urls = reach.urls
    return {
        "environment": "gke",
        "ray_version": RAY_VERSION,
        # Local URLs: they answer while `access.command` runs (the jobs client runs it for each command).
        "ray_dashboard_url": urls["dashboard"],
        "ray_client_address": urls["client"].replace("http://", "ray://"),
        "ray_capacity": capacity(cfg),
        "grafana_url": urls.get("grafana"),
        "prometheus_url": urls.get("prometheus"),
        "jupyter_url": None,
        "storage": {"uri": f.bucket_name.apply(lambda b: f"gs://{b}"), "endpoint": None},
        "access": access(cfg),
        "ray_auth_token": token,
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
        "ray_cluster": {"name": cfg.ray.cluster_name, "namespace": cfg.ray.namespace,
                        "head_service": reach.service_name, "kuberay": cfg.kuberay.install,
                        "ray_image": cfg.ray.image or f.image_refs["ray-server"]},
    }
