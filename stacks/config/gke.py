"""The `gke` environment's configuration: project and zone, networks, the private cluster, H200 pools per
provisioning model, the compute class, training data, registries, Cloud Build and Binary Authorization;
then (part 2) the KubeRay operator, the RayCluster's groups, dashboard access and monitoring.

Every default lives here; `cross_checks()` holds the rules that span keys (CIDR overlaps, version floors).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from components.gcpvm import machines
from components.gke.cluster_objects import NCCL_PLUGIN_IMAGE
from stacks.config import ImageReference, RayAuth, Strict, dns_label, duplicates

PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
GKE_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+)(?:-gke\.(\d+))?)?$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")

# Version floors from the GKE docs (reference: gke-h200-rdma.md).
COMPUTE_CLASS_FLOOR = "1.30.3-gke.1451000"  # cloud.google.com/kubernetes-engine/docs/concepts/about-custom-compute-classes
FLEX_START_FLOOR = "1.32.2-gke.1652000"  # cloud.google.com/kubernetes-engine/docs/how-to/dws-flex-start-training
H200_FLOOR = "1.31.4-gke.1183000"  # A3 Ultra: cloud.google.com/kubernetes-engine/docs/how-to/gpu-bandwidth-gpudirect-rdma
RDMA_SUBNETS = 8  # one per CX-7 NIC of an a3-ultragpu-8g node
# Widest authorized network accepted: anything wider is "the internet" for an API server.
WIDEST_AUTHORIZED_PREFIX = 8
NCCL_PLUGIN_VERSION = re.compile(r"^v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$")
HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
IAM_MEMBER = re.compile(r"^(user|group|serviceAccount|domain):[^\s]+$")
# The KubeRay chart's operator image (the Helm route): what Binary Authorization must allow when it enforces.
KUBERAY_OPERATOR_IMAGE = "quay.io/kuberay/operator:v1.7.0"


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """`1.32.2-gke.1652000` -> (1, 32, 2, 1652000); missing parts count as 0."""
    match = GKE_VERSION.match(version)
    if not match:
        raise ValueError(version)
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def _network(value: str) -> str:
    try:
        ipaddress.IPv4Network(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IPv4 network (allowed: a CIDR such as 10.0.0.0/20, host bits zero)"
        ) from None
    return value


class Networks(Strict):
    """Address ranges. None may overlap; the RDMA range is split into eight equal subnets, one per NIC."""

    nodes_cidr: str = "10.0.0.0/20"  # primary gVNIC VPC subnet (eth0)
    pods_cidr: str = "10.4.0.0/14"  # its secondary range for pods
    services_cidr: str = "10.8.0.0/20"  # its secondary range for services
    gvnic_1_cidr: str = "10.16.0.0/20"  # the second gVNIC VPC's subnet (eth1)
    rdma_cidr: str = "10.32.0.0/16"  # RoCE VPC: eight subnets (eth2..eth9)
    master_cidr: str = "172.16.0.0/28"  # the control plane's private range (GKE requires a /28)
    private_services_cidr: str = "10.48.0.0/20"  # Private Services Access, used by the Cloud Build pool
    # Proxy-only subnet for an internal Application Load Balancer (the KubeRay part's internal Ingress); null: none.
    proxy_only_cidr: str | None = "10.64.0.0/23"

    _cidrs = field_validator(
        "nodes_cidr", "pods_cidr", "services_cidr", "gvnic_1_cidr", "rdma_cidr", "master_cidr",
        "private_services_cidr",
    )(_network)

    @field_validator("proxy_only_cidr")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        return value if value is None else _network(value)

    def rdma_subnets(self) -> list[str]:
        """The RDMA range split into eight equal subnets, in NIC order."""
        network = ipaddress.IPv4Network(self.rdma_cidr)
        return [str(n) for n in network.subnets(new_prefix=network.prefixlen + 3)]

    def problems(self) -> list[str]:
        out: list[str] = []
        named = {k: ipaddress.IPv4Network(v) for k, v in self.model_dump().items() if v is not None}
        keys = list(named)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if named[a].overlaps(named[b]):
                    out.append(f"networks.{b}: {named[b]} overlaps networks.{a} {named[a]} (allowed: disjoint ranges)")
        if named["master_cidr"].prefixlen != 28:
            out.append(f"networks.master_cidr: {self.master_cidr!r} is not a /28 (allowed: a /28, as GKE requires)")
        if named["rdma_cidr"].prefixlen > 24:
            out.append(f"networks.rdma_cidr: {self.rdma_cidr!r} is too small for eight subnets "
                       "(allowed: /24 or wider)")
        if named["private_services_cidr"].prefixlen > 24:
            out.append(f"networks.private_services_cidr: {self.private_services_cidr!r} is too small "
                       "(allowed: /24 or wider, as Private Services Access requires)")
        for key, net in named.items():
            if not net.is_private:
                out.append(f"networks.{key}: {net} is not a private range (allowed: RFC 1918 ranges such as 10.0.0.0/8)")
        return out


def _rfc3339(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 time (allowed: e.g. 2025-01-04T03:00:00Z)") from None
    return value


class AuthorizedNetwork(Strict):
    """A CIDR allowed to reach the Kubernetes API server (the machine running `pulumi up` must be in one)."""

    cidr: str
    name: str = "deployer"

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        _network(value)
        if ipaddress.IPv4Network(value).prefixlen < WIDEST_AUTHORIZED_PREFIX:
            raise ValueError(
                f"{value!r} opens the API server to too much of the internet "
                f"(allowed: /{WIDEST_AUTHORIZED_PREFIX} or narrower, e.g. your egress IP as a /32)"
            )
        return value


class Maintenance(Strict):
    """A recurring maintenance window (RFC 3339 times, an RFC 5545 RRULE)."""

    start_time: str = "2025-01-04T03:00:00Z"
    end_time: str = "2025-01-04T11:00:00Z"
    recurrence: str = "FREQ=WEEKLY;BYDAY=SA,SU"

    _times = field_validator("start_time", "end_time")(_rfc3339)

    @field_validator("recurrence")
    @classmethod
    def _rrule(cls, value: str) -> str:
        if not value.startswith("FREQ="):
            raise ValueError(f"{value!r} is not an RRULE (allowed: e.g. FREQ=WEEKLY;BYDAY=SA,SU)")
        return value


class UpgradeExclusion(Strict):
    """A maintenance exclusion until the cluster's minor version reaches its end of support. The default scope
    keeps GKE from upgrading (draining) nodes, the 8-GPU workers included, and from changing the minor version."""

    scope: Literal["NO_MINOR_OR_NODE_UPGRADES", "NO_MINOR_UPGRADES"] = "NO_MINOR_OR_NODE_UPGRADES"
    start_time: str = "2026-01-01T00:00:00Z"  # fixed, so every `pulumi up` sends the same exclusion

    _time = field_validator("start_time")(_rfc3339)


class SystemPool(Strict):
    """CPU nodes for the Ray head and system pods (KubeRay, DNS, metrics)."""

    machine_type: str = "n2-standard-16"
    min_nodes: int = Field(default=1, ge=1, le=100)
    max_nodes: int = Field(default=3, ge=1, le=100)
    disk_size_gb: int = Field(default=200, ge=50, le=4096)

    _machine_type = field_validator("machine_type")(machines.machine_type)


class Cluster(Strict):
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    # The version the control plane starts at; a minor such as "1.35" pins the minor while upgrade_exclusion
    # holds it. null: the release channel's default, which is above every floor on every channel today.
    min_master_version: str | None = None
    maintenance: Maintenance = Maintenance()
    # null: GKE upgrades nodes and minor versions on its own schedule (in the maintenance window).
    upgrade_exclusion: UpgradeExclusion | None = UpgradeExclusion()
    system_pool: SystemPool = SystemPool()
    # Also accept kubectl through the control plane's DNS endpoint (IAM-authenticated, from anywhere).
    dns_endpoint: bool = False
    deletion_protection: bool = True

    @field_validator("min_master_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not GKE_VERSION.match(value):
            raise ValueError(f"{value!r} is not a GKE version (allowed: e.g. 1.33 or 1.32.2-gke.1652000)")
        return value


class GpuPool(Strict):
    enabled: bool = True
    max_nodes: int = Field(default=2, ge=0, le=64)


class OnDemandPool(GpuPool):
    """The last priority: regular capacity when neither spot nor flex-start has any (the origin document's fallback)."""

    max_nodes: int = Field(default=1, ge=0, le=64)
    # A specific reservation to consume (its name); null: on-demand capacity (and any open reservation).
    reservation: str | None = None


class RayWorkerShape(Strict):
    """What one Ray worker pod takes of an a3-ultragpu-8g node (224 vCPUs, 2952 GB): room is left for the
    kubelet's reservation and the DaemonSets. The KubeRay part sizes its worker pods from this."""

    cpus: int = Field(default=200, ge=1, le=224)
    memory_gb: int = Field(default=2600, ge=1, le=2952)


class GpuPools(Strict):
    """One manual a3-ultragpu-8g pool per provisioning model; the compute class tries them in this order."""

    spot: GpuPool = GpuPool()
    flex_start: GpuPool = GpuPool()
    on_demand: OnDemandPool = OnDemandPool()
    # DEFAULT: the driver GKE qualifies for the node version (what Cluster Toolkit and GKE's RDMA guide use);
    # LATEST floats with GKE releases, so two nodes of one pool can end up on different drivers.
    gpu_driver_version: Literal["LATEST", "DEFAULT"] = "DEFAULT"
    ray_worker: RayWorkerShape = RayWorkerShape()


class ComputeClass(Strict):
    name: str = "h200-ccc"
    # What the autoscaler does when no pool can grow: wait (DoNotScaleUp) or use any pool.
    when_unsatisfiable: Literal["DoNotScaleUp", "ScaleUpAnyway"] = "DoNotScaleUp"

    _name = field_validator("name")(dns_label)


class GcsFuse(Strict):
    """How the H200 workers mount the bucket (the GCS FUSE CSI driver's file cache, on the node's local SSD)."""

    # The cache lives in the FUSE sidecar's emptyDir, on the 32 local SSDs (12000 GiB) an a3-ultragpu-8g node gives
    # ephemeral storage: half of them by default, the rest for images, Ray's spill files and FUSE's staged writes.
    file_cache_gb: int = Field(default=6000, ge=0, le=10000)  # 0: no file cache
    # Cache whole files on a first partial read too (random access into large shards, as GKE's training guide).
    cache_file_for_range_read: bool = True
    # Parallel downloads speed up reading single large files (checkpoints); Cluster Toolkit keeps them off for
    # training data, whose many reads already run in parallel.
    parallel_downloads: bool = False


class TrainingData(Strict):
    bucket: str | None = None  # default: <project>-ray-training
    access: Literal["read-write", "read-only"] = "read-write"
    # Secret Manager secret ids the Ray workloads may read (secretAccessor on each, nothing else).
    secrets: list[str] = Field(default_factory=list)
    # Folders with atomic renames, as Cluster Toolkit's A3 Ultra training bucket; fixed when the bucket is created.
    hierarchical_namespace: bool = True
    # Object Versioning: not with a hierarchical namespace (GCS: storage/docs/hns-overview, limitations).
    versioning: bool = False
    gcs_fuse: GcsFuse = GcsFuse()

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not BUCKET.match(value):
            raise ValueError(
                f"{value!r} is not a GCS bucket name (allowed: 3-63 lowercase letters, digits, '-' and '_', "
                "starting and ending with a letter or digit)"
            )
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for secret in value:
            if not re.match(r"^[A-Za-z0-9_-]{1,255}$", secret):
                raise ValueError(f"{secret!r} is not a secret id (allowed: letters, digits, '-' and '_')")
        return value


class RayHead(Strict):
    """The Ray head pod on the CPU system pool: it schedules no tasks (num-cpus 0), it runs the GCS,
    the dashboard, the autoscaler and the job drivers."""

    cpus: int = Field(default=4, ge=1, le=64)
    memory_gb: int = Field(default=16, ge=4, le=512)


class GpuWorkers(Strict):
    """The H200 worker group: one pod per a3-ultragpu-8g node (all 8 GPUs, the shape of gpu_pools.ray_worker)."""

    min_replicas: int = Field(default=0, ge=0, le=192)
    # null: every node the enabled pools can hold (the sum of their max_nodes).
    max_replicas: int | None = Field(default=None, ge=1, le=192)
    # Memory-backed /dev/shm: NCCL and the object store's spill-free transfers use it (counts against the pod memory).
    shm_gb: int = Field(default=256, ge=1, le=2048)


class CpuWorkers(Strict):
    """A CPU worker group on the system pool, for data loading and drivers' side work."""

    enabled: bool = True
    cpus: int = Field(default=4, ge=1, le=64)
    memory_gb: int = Field(default=16, ge=1, le=512)
    min_replicas: int = Field(default=0, ge=0, le=100)
    max_replicas: int = Field(default=4, ge=1, le=100)


class GcsFaultTolerance(Strict):
    """GCS fault tolerance: the head's state kept in an external Redis (e.g. Memorystore) so a restarted head
    keeps its jobs, actors and workers. The password is the top-level secret key `ray_redis_password`."""

    redis_address: str | None = None  # host:port; null: off

    @field_validator("redis_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not HOST_PORT.match(value):
            raise ValueError(f"{value!r} is not host:port (allowed: e.g. 10.0.0.3:6379)")
        return value


class Ray(Strict):
    """The Ray cluster (KubeRay RayCluster): its namespace and Kubernetes service account (Workload Identity),
    image, head, worker groups, autoscaling and fault tolerance."""

    namespace: str = "ray"
    service_account: str = "ray-worker"
    cluster_name: str = "ray"  # the RayCluster; its pods carry the label ray.io/cluster=<cluster_name>
    # null: the stack's own ray-server build, by digest (what Binary Authorization attests).
    image: ImageReference | None = None
    head: RayHead = RayHead()
    gpu_workers: GpuWorkers = GpuWorkers()
    cpu_workers: CpuWorkers = CpuWorkers()
    idle_timeout_s: int = Field(default=600, ge=30, le=86400)  # the autoscaler removes a worker idle this long
    gcs_fault_tolerance: GcsFaultTolerance = GcsFaultTolerance()

    _names = field_validator("namespace", "service_account", "cluster_name")(dns_label)


class KubeRay(Strict):
    """The KubeRay operator: the kuberay-operator Helm chart (pinned to 1.7.0, the RayCluster schema the tests
    validate against) or GKE's managed Ray add-on (its version follows GKE's). Never both."""

    install: Literal["helm", "addon"] = "helm"
    namespace: str = "kuberay-system"  # helm only

    _namespace = field_validator("namespace")(dns_label)


class Ingress(Strict):
    """Optional dashboard access on the VPC: an internal Application Load Balancer (gce-internal), never public.
    With IAP on, every request is authenticated by Google (IAP needs HTTPS: a TLS secret in the Ray namespace)."""

    enabled: bool = False
    iap: bool = True
    # Kubernetes secret (namespace ray.namespace) with client_id and client_secret; null: Google-managed OAuth client.
    iap_oauth_secret: str | None = None
    iap_members: list[str] = Field(default_factory=list)  # e.g. user:alice@example.com, group:ml@example.com
    tls_secret: str | None = None  # Kubernetes TLS secret (namespace ray.namespace) for HTTPS

    @field_validator("iap_members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        for member in value:
            if not IAM_MEMBER.match(member) or member.startswith(("allUsers", "allAuthenticatedUsers")):
                raise ValueError(f"{member!r} is not an IAM member (allowed: user:, group:, serviceAccount:, domain:)")
        return value


class Monitoring(Strict):
    """Google Managed Prometheus scrapes Ray (PodMonitoring); DCGM GPU metrics come from GKE's managed DCGM.
    Grafana (Ray's dashboards) and a Prometheus query frontend run beside the Ray head, reached like the dashboard."""

    grafana: bool = True
    scrape_interval: str = "30s"
    grafana_image: ImageReference = "grafana/grafana-oss:12.2.1"
    # Assumption: the current GMP query frontend tag (GoogleCloudPlatform/prometheus-engine releases).
    prometheus_frontend_image: ImageReference = "gke.gcr.io/prometheus-engine/frontend:v0.15.3-gke.0"

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if not re.match(r"^\d+(s|m)$", value):
            raise ValueError(f"{value!r} is not a scrape interval (allowed: e.g. 30s or 1m)")
        return value


class ArtifactRegistry(Strict):
    keep_recent_versions: int = Field(default=10, ge=1, le=1000)
    delete_untagged_after_days: int = Field(default=14, ge=1, le=3650)


class CloudBuild(Strict):
    machine_type: str = "e2-highcpu-32"  # Ray GPU images are large: a big build VM keeps builds short
    disk_size_gb: int = Field(default=200, ge=100, le=4000)
    # The pool needs the internet for apt and Docker Hub layers not yet cached (peered pools cannot use Cloud NAT).
    public_egress: bool = True
    timeout_minutes: int = Field(default=60, ge=10, le=1440)


class BinaryAuthorization(Strict):
    # enforce is the production setting (docs/gke.md); dryrun only logs what enforce would block.
    mode: Literal["dryrun", "enforce"] = "dryrun"
    # Images allowed without an attestation. Empty by default: images pinned by digest need no entry (Google's
    # GKE system images, such as the NCCL installer's pause container, are exempt already).
    allowlist: list[str] = Field(default_factory=list)


class GkeConfig(RayAuth):
    environment: Literal["gke"] = "gke"
    project: str
    region: str
    zone: str  # the RoCE zone: the GPU pools, the RDMA VPC profile and its subnets all live here
    name_prefix: str = "ray"
    authorized_networks: list[AuthorizedNetwork] = Field(min_length=1)
    networks: Networks = Networks()
    cluster: Cluster = Cluster()
    gpu_pools: GpuPools = GpuPools()
    compute_class: ComputeClass = ComputeClass()
    training_data: TrainingData = TrainingData()
    ray: Ray = Ray()
    kuberay: KubeRay = KubeRay()
    ingress: Ingress = Ingress()
    monitoring: Monitoring = Monitoring()
    artifact_registry: ArtifactRegistry = ArtifactRegistry()
    cloud_build: CloudBuild = CloudBuild()
    binary_authorization: BinaryAuthorization = BinaryAuthorization()
    # Tag of Google's NCCL gIB plugin installer, optionally with its digest (`v1.1.1@sha256:...`), which
    # binary_authorization.mode enforce needs unless the allow-list matches the image.
    nccl_plugin_version: str = "v1.1.1"
    # The external Redis's password (ray.gcs_fault_tolerance): `pulumi config set --secret ray_redis_password ...`.
    ray_redis_password: SecretStr | None = None

    SECRET_KEYS: ClassVar[tuple[str, ...]] = ("ray_redis_password",)

    _prefix = field_validator("name_prefix")(dns_label)

    @field_validator("nccl_plugin_version")
    @classmethod
    def _nccl_version(cls, value: str) -> str:
        if not NCCL_PLUGIN_VERSION.match(value):
            raise ValueError(f"{value!r} is not an installer version (allowed: a tag such as v1.1.1, "
                             "optionally @sha256:<64 hex digits>)")
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not PROJECT_ID.match(value):
            raise ValueError(
                f"{value!r} is not a project id (allowed: 6-30 lowercase letters, digits and '-', "
                "starting with a letter)"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION.match(value):
            raise ValueError(f"{value!r} is not a region (allowed: e.g. us-central1)")
        return value

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not ZONE.match(value):
            raise ValueError(f"{value!r} is not a zone (allowed: e.g. us-central1-b)")
        return value

    @property
    def bucket_name(self) -> str:
        return self.training_data.bucket or f"{self.project}-ray-training"

    @property
    def roce_network_profile(self) -> str:
        # Assumption from the reference: one RoCE profile per zone that offers A3 Ultra, named <zone>-vpc-roce.
        return f"projects/{self.project}/global/networkProfiles/{self.zone}-vpc-roce"

    def enabled_pools(self) -> list[tuple[str, GpuPool]]:
        """(provisioning model, pool) in the compute class's order: spot, flex-start, on-demand."""
        pools = [("spot", self.gpu_pools.spot), ("flex-start", self.gpu_pools.flex_start),
                 ("on-demand", self.gpu_pools.on_demand)]
        return [(model, pool) for model, pool in pools if pool.enabled]

    def cross_checks(self) -> list[str]:
        problems: list[str] = []
        if self.ray_auth == "token" and self.kuberay.install == "addon":
            # RayCluster authOptions needs KubeRay >= 1.5; the add-on's KubeRay follows GKE's version, and a CRD
            # without the field prunes it silently: Ray would run without auth while the stack says otherwise.
            problems.append("kuberay.install: 'addon' cannot promise Ray token auth (RayCluster authOptions needs "
                            "KubeRay >= 1.5, the add-on's version is GKE's) (allowed: helm, or ray_auth: disabled)")
        zone_region = ZONE.match(self.zone).group(1)
        if zone_region != self.region:
            problems.append(
                f"zone: {self.zone!r} is not in region {self.region!r} (allowed: a zone of {self.region} that has "
                "the <zone>-vpc-roce network profile: gcloud compute network-profiles list)"
            )
        problems += self.networks.problems()
        problems += duplicates("authorized_networks", [n.cidr for n in self.authorized_networks])
        problems += self._pool_problems()
        problems += self._version_problems()
        problems += self._ray_problems()
        problems += self._image_problems()
        system = self.cluster.system_pool
        if system.min_nodes > system.max_nodes:
            problems.append(f"cluster.system_pool.min_nodes: {system.min_nodes} is above max_nodes {system.max_nodes} "
                            "(allowed: min_nodes <= max_nodes)")
        return problems

    def _pool_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.enabled_pools():
            problems.append("gpu_pools: every pool is disabled (allowed: at least one of spot, flex_start, "
                            "on_demand enabled)")
        for key, pool in (("spot", self.gpu_pools.spot), ("flex_start", self.gpu_pools.flex_start),
                          ("on_demand", self.gpu_pools.on_demand)):
            if pool.enabled and pool.max_nodes < 1:
                problems.append(f"gpu_pools.{key}.max_nodes: 0 for an enabled pool (allowed: 1 to 64, or enabled: false)")
        if self.gpu_pools.on_demand.reservation and not self.gpu_pools.on_demand.enabled:
            problems.append("gpu_pools.on_demand.reservation: set but the on-demand pool is disabled "
                            "(allowed: enabled: true with a reservation, or no reservation)")
        return problems

    def _version_problems(self) -> list[str]:
        version = self.cluster.min_master_version
        if version is None:
            return []
        floors = [(COMPUTE_CLASS_FLOOR, "compute classes"), (H200_FLOOR, "H200 (a3-ultragpu-8g) nodes")]
        if self.gpu_pools.flex_start.enabled:
            floors.append((FLEX_START_FLOOR, "DWS flex-start"))
        return [
            f"cluster.min_master_version: {version!r} is below {floor} which {what} need (allowed: {floor} or newer)"
            for floor, what in floors if version_tuple(version) < version_tuple(floor)
        ]

    @property
    def gpu_max_replicas(self) -> int:
        """H200 worker pods at most: one per node the enabled pools can hold, unless configured lower."""
        nodes = sum(pool.max_nodes for _, pool in self.enabled_pools())
        return self.ray.gpu_workers.max_replicas or nodes

    def deployed_images(self) -> dict[str, str]:
        """Config key -> image for every image the stack deploys by name (the Ray image is by digest unless set)."""
        images = {"ray.image": self.ray.image} if self.ray.image else {}
        images["nccl_plugin_version"] = f"{NCCL_PLUGIN_IMAGE}:{self.nccl_plugin_version}"
        if self.kuberay.install == "helm":
            images["kuberay.install"] = KUBERAY_OPERATOR_IMAGE
        if self.monitoring.grafana:
            images["monitoring.grafana_image"] = self.monitoring.grafana_image
            images["monitoring.prometheus_frontend_image"] = self.monitoring.prometheus_frontend_image
        return images

    def _ray_problems(self) -> list[str]:
        problems: list[str] = []
        gpu = self.ray.gpu_workers
        nodes = sum(pool.max_nodes for _, pool in self.enabled_pools())
        if gpu.max_replicas is not None and gpu.max_replicas > nodes:
            problems.append(f"ray.gpu_workers.max_replicas: {gpu.max_replicas} is more than the {nodes} nodes the "
                            f"enabled gpu_pools hold (allowed: 1 to {nodes}, or null)")
        if gpu.min_replicas > self.gpu_max_replicas:
            problems.append(f"ray.gpu_workers.min_replicas: {gpu.min_replicas} is above max_replicas "
                            f"{self.gpu_max_replicas} (allowed: min_replicas <= max_replicas)")
        if gpu.shm_gb >= self.gpu_pools.ray_worker.memory_gb:
            problems.append(f"ray.gpu_workers.shm_gb: {gpu.shm_gb} is not below the worker's memory_gb "
                            f"{self.gpu_pools.ray_worker.memory_gb} (allowed: less than gpu_pools.ray_worker.memory_gb)")
        cpu = self.ray.cpu_workers
        if cpu.enabled and cpu.min_replicas > cpu.max_replicas:
            problems.append(f"ray.cpu_workers.min_replicas: {cpu.min_replicas} is above max_replicas "
                            f"{cpu.max_replicas} (allowed: min_replicas <= max_replicas)")
        redis = self.ray.gcs_fault_tolerance.redis_address
        if self.ray_redis_password is not None and redis is None:
            problems.append("ray_redis_password: set but ray.gcs_fault_tolerance.redis_address is null "
                            "(allowed: a redis_address with it, or no password)")
        data = self.training_data
        if data.hierarchical_namespace and data.versioning:
            problems.append("training_data.versioning: true while training_data.hierarchical_namespace is true "
                            "(allowed: one of them: buckets with a hierarchical namespace cannot use Object Versioning)")
        ingress = self.ingress
        if ingress.enabled and self.networks.proxy_only_cidr is None:
            problems.append("ingress.enabled: true needs a proxy-only subnet for the internal load balancer "
                            "(allowed: set networks.proxy_only_cidr, or ingress.enabled: false)")
        if ingress.enabled and ingress.iap and ingress.tls_secret is None:
            problems.append("ingress.tls_secret: null while ingress.iap is on (allowed: the name of a TLS secret in "
                            f"namespace {self.ray.namespace}: IAP only serves HTTPS)")
        if ingress.iap_members and not (ingress.enabled and ingress.iap):
            problems.append("ingress.iap_members: set but IAP is off (allowed: ingress.enabled and ingress.iap true, "
                            "or no members)")
        return problems

    def _image_problems(self) -> list[str]:
        """Binary Authorization blocks unattested images when it enforces: those not by digest must be allowed."""
        if self.binary_authorization.mode != "enforce":
            return []
        allowed = [allow_pattern(p) for p in self.binary_authorization.allowlist]
        hints = {"kuberay.install": ", or kuberay.install: addon",
                 "nccl_plugin_version": f" ({self.nccl_plugin_version}@sha256:<digest>)"}
        return [f"{key}: {image!r} is referenced by tag while binary_authorization.mode is enforce (allowed: "
                "name@sha256:<digest>" + (hints[key] if key == "nccl_plugin_version" else "")
                + ", a binary_authorization.allowlist pattern that matches it"
                + (hints[key] if key == "kuberay.install" else "") + ")"
                for key, image in self.deployed_images().items()
                if "@sha256:" not in image and not any(p.match(image) for p in allowed)]


def allow_pattern(pattern: str) -> re.Pattern:
    """Binary Authorization's allow-list glob: `*` within one path segment, `**` across segments."""
    parts = [re.escape(p).replace(r"\*", "[^/]*") for p in pattern.split("**")]
    return re.compile("^" + ".*".join(parts) + "$")
