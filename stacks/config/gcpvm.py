"""The `gcpvm` environment's configuration: a GCP project and zone, the network, the head VM, the worker
types the Ray autoscaler launches, the workload image (public or private registry) and the results bucket."""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from components.gcpvm import machines
from components.versions import RAY_VERSION
from stacks.config import ImageReference, RayAuth, Strict, dns_label, duplicates

IAP_RANGE = "35.235.240.0/20"  # Google's IAP TCP forwarding range: SSH and tunnels arrive from here only
# Ray's memory resource is this share of the machine; the rest is the object store (Ray's default 30%).
RAY_MEMORY_FRACTION = 0.7
HEAD_MIN_VCPUS = 2  # GCS, dashboard and autoscaler need a core of their own besides the work
MAX_WORKER_TYPES = 64
CPU_VM_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cpu"
GPU_VM_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11-py310"
PUBLIC_CPU_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311-cpu"
PUBLIC_GPU_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311-gpu"
ARTIFACT_REGISTRY = re.compile(r"^([a-z0-9-]+)-docker\.pkg\.dev/([a-z][a-z0-9-]{4,28}[a-z0-9])/([a-z0-9._-]+)/\S+$")
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
# Cluster names end up in service account ids (`<name>-autoscaler`, at most 30 characters).
CLUSTER_NAME_MAX = 18
DISK_GB_MIN = 50  # the Deep Learning VM images need a 50 GB boot disk
DISK_GB_MAX = 65536


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR range (allowed: e.g. 10.10.0.0/20)") from None
    return value


class Network(Strict):
    """A new VPC and subnet, or an existing network and subnet by name."""

    name: str | None = None  # existing VPC network; unset: the stack creates one
    subnet: str | None = None  # existing subnet in `region` (required with name)
    subnet_cidr: str = "10.10.0.0/20"
    # Who may reach the VMs' SSH port (and the IAP tunnel to the dashboard). Only Google's IAP range by default.
    ssh_source_ranges: list[str] = Field(default_factory=lambda: [IAP_RANGE], min_length=1)
    nat: bool = True  # Cloud NAT so VMs without public IPs can pull images

    @field_validator("subnet_cidr")
    @classmethod
    def _subnet_cidr(cls, value: str) -> str:
        return _cidr(value)

    @field_validator("ssh_source_ranges")
    @classmethod
    def _ranges(cls, value: list[str]) -> list[str]:
        for item in value:
            _cidr(item)
            if ipaddress.ip_network(item).prefixlen == 0:
                raise ValueError(f"{item!r} opens SSH to the whole internet (allowed: narrower ranges, e.g. "
                                 f"{IAP_RANGE} for IAP)")
        return value


class Node(Strict):
    """Ray resources of a VM; unset values come from the machine type."""

    machine_type: str = "n2-standard-8"
    disk_gb: int = Field(default=100, ge=DISK_GB_MIN, le=DISK_GB_MAX)
    # Ray's logical CPUs and memory (GB) on this VM; default: all vCPUs and RAY_MEMORY_FRACTION of the memory.
    cpus: int | None = Field(default=None, ge=0, le=1024)
    memory_gb: float | None = Field(default=None, gt=0, le=16384)
    vm_image: str | None = None  # boot image; default: a Deep Learning VM image with Docker (and GPU drivers)

    _machine_type = field_validator("machine_type")(machines.machine_type)

    def shape(self) -> machines.MachineShape | None:
        return machines.shape(self.machine_type)

    def machine_memory_gb(self) -> float:
        """The VM's memory: from the machine type, or (a type this stack does not know) Ray's share of it."""
        found = self.shape()
        return found.memory_gb if found else self.ray_memory_gb() / RAY_MEMORY_FRACTION

    def ray_cpus(self) -> int:
        found = self.shape()
        return self.cpus if self.cpus is not None else (found.vcpus if found else 0)

    def ray_memory_gb(self) -> float:
        found = self.shape()
        if self.memory_gb is not None:
            return self.memory_gb
        return round(found.memory_gb * RAY_MEMORY_FRACTION, 2) if found else 0.0

    def _shape_problems(self, key: str) -> list[str]:
        found = self.shape()
        if found is None:
            if self.cpus is None or self.memory_gb is None:
                return [f"{key}.machine_type: {self.machine_type!r} is not a machine type this stack knows the size "
                        f"of (allowed: n1/n2/n2d/n4/e2/c2/c2d/c3/c3d/c4/t2d-standard|highmem|highcpu-N, g2-standard-N, "
                        f"a2-*, a3-highgpu-8g, or set {key}.cpus and {key}.memory_gb)"]
            return []
        problems = []
        if self.cpus is not None and self.cpus > found.vcpus:
            problems.append(f"{key}.cpus: {self.cpus} on {self.machine_type} with {found.vcpus} vCPUs "
                            f"(allowed: at most {found.vcpus})")
        limit = round(found.memory_gb * RAY_MEMORY_FRACTION, 2)
        if self.memory_gb is not None and self.memory_gb > limit:
            problems.append(
                f"{key}.memory_gb: {self.memory_gb:g} GB of Ray memory on {self.machine_type} ({found.memory_gb:g} GB) "
                f"(allowed: at most {limit:g} GB, {RAY_MEMORY_FRACTION:.0%} of the machine; the rest is the object "
                "store and Ray's own processes)")
        return problems


class Head(Node):
    machine_type: str = "n2-standard-8"


class WorkerType(Node):
    """A Ray node type the autoscaler launches between min_workers and max_workers of."""

    name: str
    min_workers: int = Field(default=0, ge=0, le=1000)
    max_workers: int = Field(default=2, ge=0, le=1000)
    accelerator_type: str | None = None  # GPUs attached to n1-* machines (built-in ones need not be named)
    accelerator_count: int = Field(default=0, ge=0, le=16)
    spot: bool = False
    resources: dict[str, int] = Field(default_factory=dict)  # custom Ray resources per node
    image: ImageReference | None = None  # overrides image.ref / image.gpu_ref for this type

    _name = field_validator("name")(dns_label)

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, int]) -> dict[str, int]:
        reserved = {"CPU", "GPU", "memory", "object_store_memory"} & value.keys()
        if reserved:
            raise ValueError(f"{sorted(reserved)} come from machine_type/cpus/memory_gb "
                             "(allowed: custom resource names only)")
        return value

    def gpus(self) -> tuple[str | None, int]:
        return machines.gpus_of(self.machine_type, self.accelerator_type, self.accelerator_count)


class Image(Strict):
    """The Ray workload image: `public` (any registry VMs pull anonymously, e.g. Docker Hub) or `private`
    (Artifact Registry, pulled with the VMs' service accounts, or another registry with a username and the
    `registry_password` secret)."""

    source: Literal["public", "private"] = "public"
    ref: ImageReference = PUBLIC_CPU_IMAGE
    gpu_ref: ImageReference | None = None  # for GPU worker types; default: Ray's GPU image (public) or `ref`
    registry_username: str | None = None  # private registries other than Artifact Registry

    @property
    def artifact_registry(self) -> re.Match | None:
        return ARTIFACT_REGISTRY.match(self.ref)

    @property
    def registry_host(self) -> str:
        first = self.ref.split("/", 1)[0]
        return first if ("." in first or ":" in first) and "/" in self.ref else "docker.io"

    def for_gpus(self) -> str:
        if self.gpu_ref:
            return self.gpu_ref
        return PUBLIC_GPU_IMAGE if self.ref == PUBLIC_CPU_IMAGE else self.ref


class GcpVmConfig(RayAuth):
    environment: Literal["gcpvm"] = "gcpvm"
    project: str
    region: str = "us-west1"
    zone: str = "us-west1-b"
    # Labels every VM (`ray-cluster-name`): the autoscaler and the destroy-time cleanup find workers by it.
    cluster_name: str = "ray"
    network: Network = Network()
    head: Head = Head()
    worker_types: list[WorkerType] = Field(default_factory=lambda: [WorkerType(name="cpu")],
                                           max_length=MAX_WORKER_TYPES)
    max_workers: int | None = Field(default=None, ge=0, le=10000)  # the whole cluster; default: sum per type
    idle_timeout_minutes: float = Field(default=5, gt=0, le=1440)
    upscaling_speed: float = Field(default=1.0, gt=0, le=100)
    image: Image = Image()
    results_bucket: str | None = None  # default: <project>-<cluster_name>-results
    enable_apis: bool = True  # enable the Google APIs the stack uses (never disabled on destroy)
    ssh_user: str = "ray"  # the user the autoscaler logs into workers as
    registry_password: SecretStr | None = None

    SECRET_KEYS: ClassVar[tuple[str, ...]] = ("registry_password",)

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not PROJECT_ID.match(value):
            raise ValueError(f"{value!r} is not a GCP project id (allowed: 6-30 lowercase letters, digits and '-', "
                             "starting with a letter)")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION.match(value):
            raise ValueError(f"{value!r} is not a GCP region (allowed: e.g. us-west1, europe-west4)")
        return value

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        dns_label(value)
        if len(value) > CLUSTER_NAME_MAX:
            raise ValueError(f"{value!r} is too long (allowed: at most {CLUSTER_NAME_MAX} characters, as it prefixes "
                             "service account ids)")
        return value

    @field_validator("ssh_user")
    @classmethod
    def _ssh_user(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", value) or value == "root":
            raise ValueError(f"{value!r} is not a login name (allowed: a lowercase Unix user name, not root)")
        return value

    @field_validator("results_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not re.match(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", value) or "goog" in value):
            raise ValueError(f"{value!r} is not a GCS bucket name (allowed: 3-63 lowercase letters, digits, '-' and "
                             "'_', starting and ending with a letter or digit, without 'goog')")
        return value

    @property
    def bucket_name(self) -> str:
        return self.results_bucket or f"{self.project}-{self.cluster_name}-results"

    @property
    def total_max_workers(self) -> int:
        return self.max_workers if self.max_workers is not None else sum(w.max_workers for w in self.worker_types)

    def cross_checks(self) -> list[str]:
        """Rules that span several keys; each problem names the key to change."""
        problems: list[str] = []
        if not re.match(rf"^{re.escape(self.region)}-[a-z]$", self.zone):
            problems.append(f"zone: {self.zone!r} is not in region {self.region!r} (allowed: {self.region}-a, "
                            f"{self.region}-b, ...)")
        problems += self._network_problems()
        problems += self._head_problems()
        problems += duplicates("worker_types", [w.name for w in self.worker_types])
        if "head" in {w.name for w in self.worker_types}:
            problems.append("worker_types: name 'head' is the head's node type (allowed: any other name)")
        for i, w in enumerate(self.worker_types):
            key = f"worker_types[{i}]"
            if w.min_workers > w.max_workers:
                problems.append(f"{key}.min_workers: {w.min_workers} is above max_workers {w.max_workers} "
                                f"(allowed: 0 to {w.max_workers})")
            problem = machines.accelerator_problem(w.machine_type, w.accelerator_type, w.accelerator_count)
            if problem:
                problems.append(f"{key}.accelerator_type: {problem}")
            problems += w._shape_problems(key)
        if self.max_workers is not None:
            floor = sum(w.min_workers for w in self.worker_types)
            if self.max_workers < floor:
                problems.append(f"max_workers: {self.max_workers} is below the sum of min_workers {floor} "
                                f"(allowed: >= {floor})")
        problems += self._image_problems()
        if self.bucket_name != self.results_bucket and len(self.bucket_name) > 63:
            problems.append(f"results_bucket: the default name {self.bucket_name!r} is too long "
                            "(allowed: set results_bucket to a name of at most 63 characters)")
        return problems

    def _network_problems(self) -> list[str]:
        if (self.network.name is None) != (self.network.subnet is None):
            return ["network.subnet: an existing network needs both network.name and network.subnet "
                    "(allowed: both, or neither to create them)"]
        return []

    def _head_problems(self) -> list[str]:
        problems = self.head._shape_problems("head")
        found = self.head.shape()
        if found is not None and found.vcpus < HEAD_MIN_VCPUS:
            problems.append(f"head.machine_type: {self.head.machine_type} has {found.vcpus} vCPU (allowed: at least "
                            f"{HEAD_MIN_VCPUS}: the GCS, dashboard and autoscaler run beside the work)")
        return problems

    def _image_problems(self) -> list[str]:
        image, problems = self.image, []
        if image.source == "public":
            if image.registry_username or self.registry_password:
                problems.append("image.source: 'public' with registry credentials (allowed: source 'private' for a "
                                "registry that needs a login, or no registry_username/registry_password)")
            return problems
        if image.ref == PUBLIC_CPU_IMAGE:
            problems.append("image.ref: missing with image.source 'private' (allowed: your image, e.g. "
                            f"{self.region}-docker.pkg.dev/{self.project}/ray/ray-gcpvm:{RAY_VERSION})")
            return problems
        refs = [image.ref] + ([image.gpu_ref] if image.gpu_ref else [])
        if image.artifact_registry:
            if image.registry_username or self.registry_password:
                problems.append("image.registry_username: Artifact Registry images are pulled with the VMs' service "
                                "accounts (allowed: no registry_username/registry_password)")
            other = [r for r in refs if not ARTIFACT_REGISTRY.match(r)]
            if other:
                problems.append(f"image.gpu_ref: {other[0]!r} is not in Artifact Registry like image.ref (allowed: "
                                "both in one registry)")
        elif not (image.registry_username and self.registry_password):
            problems.append(f"image.registry_username: a private image outside Artifact Registry ({image.ref!r}) needs "
                            "image.registry_username and the secret registry_password (allowed: both, or an "
                            "Artifact Registry image LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG)")
        return problems
