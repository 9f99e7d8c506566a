"""The `spcs` environment's configuration: Snowflake login, role, objects, compute pools per node group, egress.

Instance families decide each node's CPUs, memory and GPUs (components/spcs/families.py); the head's
family must leave room for Ray beside Prometheus, Grafana and Jupyter.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from components.spcs.families import FAMILIES, MIN_POOL_NODES, family
from components.spcs.specs import ray_share, sidecars
from stacks.config import ImageReference, RayAuth, Strict, dns_label, duplicates

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
# Snowflake refuses these as owners of services; they are only used for the admin steps.
ADMIN_ROLES = ("ACCOUNTADMIN", "SECURITYADMIN", "ORGADMIN")
EGRESS_HOST = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(:\d{1,5})?$")
MIN_HEAD_CPU = 1  # the Ray head's own processes (GCS, dashboard) need one core beside the sidecars
MIN_HEAD_MEMORY_GIB = 4
WAREHOUSE_SIZES = ("XSMALL", "SMALL", "MEDIUM", "LARGE")


def identifier(value: str) -> str:
    """An unquoted Snowflake identifier, upper-cased as Snowflake stores it."""
    if not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a Snowflake identifier (allowed: letters, digits and '_', "
                         "starting with a letter or '_')")
    return value.upper()


def known_family(value: str) -> str:
    family(value)  # raises with the list of known families
    return value


def custom_resources(value: dict[str, float]) -> dict[str, float]:
    reserved = {"CPU", "GPU", "memory", "object_store_memory"} & value.keys()
    if reserved:
        raise ValueError(f"{sorted(reserved)} come from the instance family (allowed: custom resource names)")
    return value


def repository_image(value: str | None) -> str | None:
    """`name:tag` of an image in the stack's image repository."""
    if value is not None and not re.match(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$", value):
        raise ValueError(f"{value!r} is not an image in the repository (allowed: name:tag, lower case)")
    return value


def pool_problems(key: str, groups: list) -> list[str]:
    """Each node group's compute pool: MIN_POOL_NODES (cited in components/spcs/families.py) <= min_nodes <= max_nodes."""
    problems = []
    for i, w in enumerate(groups):
        if w.min_nodes < MIN_POOL_NODES:
            problems.append(f"{key}[{i}].min_nodes: {w.min_nodes} (allowed: {MIN_POOL_NODES} to {w.max_nodes}; a compute "
                            "pool's MIN_NODES must be greater than 0, and an idle pool suspends after auto_suspend_s)")
        elif w.min_nodes > w.max_nodes:
            problems.append(f"{key}[{i}].min_nodes: {w.min_nodes} > max_nodes {w.max_nodes} "
                            f"(allowed: {MIN_POOL_NODES} to {w.max_nodes})")
    return problems


class ComputeGroup(Strict):
    """One compute pool and the service that runs on it."""

    instance_family: str = "CPU_X64_M"
    min_nodes: int = Field(default=1, ge=0, le=100)  # >= MIN_POOL_NODES: checked with its reason in pool_problems
    max_nodes: int = Field(default=1, ge=1, le=100)
    auto_suspend_s: int = Field(default=3600, ge=0, le=604800)  # an idle pool suspends after this long

    _family = field_validator("instance_family")(known_family)


class Head(ComputeGroup):
    min_nodes: int = Field(default=1, ge=1, le=1)
    max_nodes: int = Field(default=1, ge=1, le=1)
    ray_cpus: int | None = Field(default=None, ge=0, le=512)  # logical CPUs the head offers (0 keeps tasks off)
    logs_volume_gib: int = Field(default=50, ge=10, le=1024)  # block volume for Ray's logs and temp dir


class WorkerGroup(ComputeGroup):
    """Ray workers, one per node; a GPU family gives each worker all of its node's GPUs."""

    name: str
    resources: dict[str, float] = Field(default_factory=dict)  # Ray custom resources per worker

    _name = field_validator("name")(dns_label)
    _resources = field_validator("resources")(custom_resources)


class CustomWorkerGroup(WorkerGroup):
    """Workers for specialised tasks: custom resources steer work onto them, optionally their own image."""

    resources: dict[str, float] = Field(min_length=1)
    image: ImageReference | None = None  # `name:tag` in the stack's image repository; default: the stack's Ray image

    _image = field_validator("image")(repository_image)


class Warehouse(Strict):
    size: Literal[WAREHOUSE_SIZES] = "XSMALL"
    auto_suspend_s: int = Field(default=60, ge=60, le=86400)


class Stages(Strict):
    artifacts: str = "RAYDP_ARTIFACTS"  # code, data, checkpoints: mounted at /artifacts
    logs: str = "RAYDPLOGS"  # finished logs and metrics copied out of the cluster: mounted at /raydplogs
    specs: str = "RAY_SPECS"  # rendered service specs kept for the record and the Native App
    apps: str = "RAY_APPS"  # the status page's Streamlit source

    _ids = field_validator("artifacts", "logs", "specs", "apps")(identifier)


class Egress(Strict):
    """Hosts the cluster may reach (package indexes, model hubs); nothing by default."""

    hosts: list[str] = Field(default_factory=list)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not EGRESS_HOST.match(host):
                raise ValueError(f"{host!r} is not a host name (allowed: host.domain[:port], e.g. pypi.org:443)")
            # A network rule's HOST_PORT port is a TCP port, 1 to 65535:
            # https://docs.snowflake.com/en/sql-reference/sql/create-network-rule
            port = int(host.rpartition(":")[2]) if ":" in host else 443
            if not 1 <= port <= 65535:
                raise ValueError(f"{host!r} has port {port} (allowed: host.domain[:port] with a port from 1 to 65535)")
        return value


class Images(Strict):
    """`build: true` builds images/ (linux/amd64) with a local Docker engine and pushes them to the repository."""

    build: bool = True
    docker_host: str = "unix:///var/run/docker.sock"
    tag: str | None = None  # with build false: the tag already pushed; default: the Ray version


class CreditPrice(Strict):
    """What one Snowflake credit costs on your contract, for `./bin/preview STACK --cost` only (nothing deployed
    reads it). Unset: prices/snowflake.yaml's on-demand Standard edition price; the price per credit depends on
    edition, cloud, region and contract (https://www.snowflake.com/en/pricing-options/)."""

    credit_price_usd: float | None = Field(default=None, gt=0, le=100)


class SpcsConfig(RayAuth, CreditPrice):
    environment: Literal["spcs"] = "spcs"
    organization_name: str
    account_name: str
    user: str
    admin_role: str = "ACCOUNTADMIN"  # creates the role and its account grants, nothing else
    role: str = "RAY_PROVIDER_ROLE"  # owns every object and service the stack creates
    grant_role_to_role: str | None = "SYSADMIN"  # the role hierarchy parent (Snowflake's advice)
    name_prefix: str = "RAY"  # account-level names (pools, warehouse, integration) are prefixed with it and the stack
    database: str = "RAY_DB"
    schema_name: str = Field(default="RAY_SCHEMA", alias="schema")
    warehouse: Warehouse = Warehouse()
    image_repository: str = "RAY_IMAGES"
    stages: Stages = Stages()
    head: Head = Head()
    workers: list[WorkerGroup] = Field(default_factory=lambda: [WorkerGroup(name="cpu", max_nodes=2)])
    custom_workers: list[CustomWorkerGroup] = Field(default_factory=list)
    egress: Egress = Egress()
    raydp: bool = False  # the head becomes the Spark driver; Ray images carry Spark + Java + raydp
    monitoring: bool = True
    jupyter: bool = True
    status_app: bool = True
    images: Images = Images()
    # Secrets: `pulumi config set --secret ray-platform:KEY ...`
    # PEM (PKCS#8) of the user's key pair; unset: the Snowflake provider reads SNOWFLAKE_PRIVATE_KEY (and
    # SNOWFLAKE_PRIVATE_KEY_PASSPHRASE) from the environment of `pulumi up`, and nothing lands in state.
    private_key: SecretStr | None = None
    private_key_passphrase: SecretStr | None = None
    # A programmatic access token for pushing images; unset: the push uses an existing `docker login` to the
    # registry (e.g. `snow spcs image-registry login`).
    registry_token: SecretStr | None = None
    grafana_admin_password: SecretStr | None = None  # generated when unset

    SECRET_KEYS: ClassVar[tuple[str, ...]] = ("private_key", "private_key_passphrase", "registry_token",
                                              "grafana_admin_password")

    _ids = field_validator("admin_role", "role", "grant_role_to_role", "name_prefix", "database", "schema_name",
                           "image_repository")(lambda v: v if v is None else identifier(v))

    @field_validator("organization_name", "account_name")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,254}$", value):
            raise ValueError(f"{value!r} is not an organization or account name "
                             "(allowed: letters, digits and '_', as in ORGNAME-ACCOUNTNAME)")
        return value.upper()

    @field_validator("private_key")
    @classmethod
    def _pem(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and "PRIVATE KEY-----" not in value.get_secret_value():
            raise ValueError("not a PEM private key (allowed: the contents of rsa_key.p8, "
                             "`pulumi config set --secret private_key < rsa_key.p8`)")
        return value

    @property
    def all_workers(self) -> list[WorkerGroup]:
        return [*self.workers, *self.custom_workers]

    def cross_checks(self) -> list[str]:
        problems: list[str] = []
        if self.role in ADMIN_ROLES:
            problems.append(f"role: {self.role!r} cannot own services (allowed: a custom role, not "
                            f"{', '.join(ADMIN_ROLES)})")
        problems += duplicates("workers", [w.name for w in self.all_workers])
        problems += pool_problems("workers", self.workers) + pool_problems("custom_workers", self.custom_workers)
        share = ray_share(family(self.head.instance_family), sidecars(self.monitoring, self.jupyter))
        if share.cpu < MIN_HEAD_CPU or share.memory_gib < MIN_HEAD_MEMORY_GIB:
            bigger = [f for f, spec in FAMILIES.items() if not spec.has_gpu and spec.vcpus >= 3]
            problems.append(
                f"head.instance_family: {self.head.instance_family} leaves {share.cpu} vCPU and "
                f"{share.memory_gib} GiB for the Ray head beside its sidecars (allowed: at least {MIN_HEAD_CPU} "
                f"vCPU and {MIN_HEAD_MEMORY_GIB} GiB: {', '.join(bigger)}, or monitoring/jupyter off)")
        if self.raydp:
            # RayDP's executors are Java Ray actors on any node (https://github.com/oap-project/raydp#spark-on-ray):
            # every node runs the RayDP image of its accelerator kind, never an image without Java and raydp.
            problems += [f"custom_workers[{i}].image: {w.image!r} with raydp true (allowed: unset, so the group runs "
                         "the RayDP image: Spark executors may land on any node and need Java and raydp)"
                         for i, w in enumerate(self.custom_workers) if w.image]
        if not self.images.build and self.images.tag is None:
            problems.append("images.tag: missing with images.build false (allowed: the tag already pushed)")
        return problems
