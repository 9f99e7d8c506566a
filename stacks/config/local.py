"""The `local` environment's configuration: Docker hosts, Ray head and workers, services, secrets."""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from components.versions import RAY_VERSION
from stacks.config import GpuId, ImageReference, RayAuth, Strict, dns_label, duplicates, ip_address


class DockerHost(Strict):
    """A Docker engine the stack deploys to, reached through its own explicit provider."""

    name: str = "local"
    url: str = "unix:///var/run/docker.sock"
    # The address the other hosts reach this one by; required as soon as there is more than one host.
    address: str | None = None
    ssh_opts: list[str] = Field(default_factory=list)

    _name = field_validator("name")(dns_label)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(unix:///\S+|ssh://([^@\s]+@)?[^@\s/:]+(:\d+)?)$", value):
            raise ValueError(
                f"{value!r} is not a Docker host URL (allowed: unix:///path/to/docker.sock, ssh://user@host[:port])"
            )
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return value if value is None else ip_address(value)

    @property
    def is_remote(self) -> bool:
        return self.url.startswith("ssh://")

    @property
    def ssh_target(self) -> str | None:
        return self.url.removeprefix("ssh://") if self.is_remote else None


class WorkerGroup(Strict):
    """Identical Ray worker containers on one host; GPU workers each get their own GPUs."""

    name: str
    host: str | None = None  # default: the first host
    replicas: int = Field(default=1, ge=1, le=64)
    cpus: int = Field(default=2, ge=1, le=512)
    memory_gb: float = Field(default=4, gt=0, le=4096)
    gpu_vendor: Literal["none", "nvidia", "amd"] = "none"
    gpus_per_worker: int = Field(default=0, ge=0, le=16)
    # Host GPU ids (as nvidia-smi / rocm-smi number them), handed out gpus_per_worker at a time, in order.
    gpu_ids: list[GpuId] = Field(default_factory=list)
    resources: dict[str, float] = Field(default_factory=dict)  # extra Ray custom resources per worker
    image: ImageReference | None = None  # overrides the image chosen by gpu_vendor

    _name = field_validator("name")(dns_label)

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, float]) -> dict[str, float]:
        reserved = {"CPU", "GPU", "memory", "object_store_memory"} & value.keys()
        if reserved:
            raise ValueError(
                f"{sorted(reserved)} are set by cpus/gpus_per_worker/memory_gb "
                "(allowed: custom resource names only)"
            )
        return value

    def gpus_of(self, replica: int) -> list[str]:
        start = replica * self.gpus_per_worker
        return self.gpu_ids[start : start + self.gpus_per_worker]


class Head(Strict):
    # Logical CPUs the head offers to tasks; 0 keeps work off the head (Ray's advice for busy clusters).
    cpus: int = Field(default=2, ge=0, le=512)
    memory_gb: float = Field(default=4, gt=0, le=4096)


class Ports(Strict):
    """Host ports the services publish on `bind_address`."""

    dashboard: int = Field(default=8265, ge=1, le=65535)
    client: int = Field(default=10001, ge=1, le=65535)
    gcs: int = Field(default=6379, ge=1, le=65535)
    prometheus: int = Field(default=9090, ge=1, le=65535)
    grafana: int = Field(default=3000, ge=1, le=65535)
    minio: int = Field(default=9000, ge=1, le=65535)
    minio_console: int = Field(default=9001, ge=1, le=65535)
    jupyter: int = Field(default=8888, ge=1, le=65535)


class Images(Strict):
    """`build` builds images/ on each Docker host; `pull` uses the references given (or Ray's official ones)."""

    source: Literal["build", "pull"] = "build"
    ray_cpu: ImageReference | None = None
    ray_cuda: ImageReference | None = None
    ray_rocm: ImageReference | None = None
    jupyter: ImageReference | None = None

    def pulled(self, kind: str) -> str | None:
        """The reference to pull for an image kind, Ray's official image where one exists."""
        official = {
            "ray_cpu": f"rayproject/ray:{RAY_VERSION}-py311-cpu",
            "ray_cuda": f"rayproject/ray:{RAY_VERSION}-py311-gpu",
        }
        return getattr(self, kind) or official.get(kind)


class LocalConfig(RayAuth):
    environment: Literal["local"] = "local"
    hosts: list[DockerHost] = Field(default_factory=lambda: [DockerHost()], min_length=1)
    # Published ports bind here. Anything but loopback puts the dashboard (code execution, behind the token) on a network.
    bind_address: str = "127.0.0.1"
    head: Head = Head()
    workers: list[WorkerGroup] = Field(default_factory=lambda: [WorkerGroup(name="cpu", replicas=2)])
    ports: Ports = Ports()
    images: Images = Images()
    monitoring: bool = True
    jupyter: bool = True
    checkpoint_bucket: str = "ray-checkpoints"
    minio_root_user: str = Field(default="ray-admin", min_length=3, max_length=64)
    # Secrets: set with `pulumi config set --secret`; generated by the stack when unset.
    minio_root_password: SecretStr | None = None
    grafana_admin_password: SecretStr | None = None
    jupyter_token: SecretStr | None = None

    SECRET_KEYS: ClassVar[tuple[str, ...]] = ("minio_root_password", "grafana_admin_password", "jupyter_token")

    @field_validator("bind_address")
    @classmethod
    def _bind(cls, value: str) -> str:
        return ip_address(value)

    @field_validator("checkpoint_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", value) or ".." in value:
            raise ValueError(
                f"{value!r} is not an S3 bucket name (allowed: 3-63 lowercase letters, digits, '.' and '-', "
                "starting and ending with a letter or digit)"
            )
        return value

    @field_validator("minio_root_password")
    @classmethod
    def _minio_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("too short (allowed: at least 8 characters, as MinIO requires)")
        return value

    @property
    def head_host(self) -> DockerHost:
        return self.hosts[0]

    @property
    def multi_host(self) -> bool:
        known = {h.name for h in self.hosts}
        used = {w.host or self.head_host.name for w in self.workers} | {self.head_host.name}
        return len(used & known) > 1

    def host(self, name: str | None) -> DockerHost:
        return next(h for h in self.hosts if h.name == (name or self.head_host.name))

    def warnings(self) -> list[str]:
        """Allowed but probably not meant; the preview and `pulumi up` print each."""
        used = {w.host or self.head_host.name for w in self.workers} | {self.head_host.name}
        return [f"hosts[{i}]: host {h.name!r} runs nothing: no worker group names it and the head runs on "
                f"{self.head_host.name!r} (allowed: give a worker group `host: {h.name}`, or remove the host)"
                for i, h in enumerate(self.hosts) if h.name not in used]

    def cross_checks(self) -> list[str]:
        """Rules that span several keys; each problem names the key to change."""
        problems: list[str] = []
        problems += duplicates("hosts", [h.name for h in self.hosts])
        problems += duplicates("workers", [w.name for w in self.workers])
        host_names = [h.name for h in self.hosts]
        used_gpus: dict[tuple[str, str], str] = {}
        for i, w in enumerate(self.workers):
            key = f"workers[{i}]"
            if w.host is not None and w.host not in host_names:
                problems.append(f"{key}.host: {w.host!r} is not a configured host (allowed: {', '.join(host_names)})")
            if w.gpu_vendor == "none":
                if w.gpus_per_worker or w.gpu_ids:
                    problems.append(
                        f"{key}.gpu_vendor: 'none' but GPUs are requested (allowed: nvidia or amd with "
                        "gpus_per_worker and gpu_ids, or none with neither)"
                    )
                continue
            if w.gpus_per_worker == 0:
                problems.append(f"{key}.gpus_per_worker: 0 for a {w.gpu_vendor} group (allowed: 1 to 16)")
                continue
            wanted = w.replicas * w.gpus_per_worker
            if len(w.gpu_ids) != wanted:
                problems.append(
                    f"{key}.gpu_ids: {len(w.gpu_ids)} ids for {w.replicas} replicas x {w.gpus_per_worker} GPUs "
                    f"(allowed: exactly {wanted} ids)"
                )
            host = w.host or self.head_host.name
            for gpu in w.gpu_ids:
                owner = used_gpus.setdefault((host, gpu), w.name)
                if owner != w.name or w.gpu_ids.count(gpu) > 1:
                    problems.append(
                        f"{key}.gpu_ids: GPU {gpu} on host {host!r} is given to more than one worker "
                        "(allowed: each GPU to one worker)"
                    )
                    break
        ports = self.ports.model_dump()
        by_port: dict[int, list[str]] = {}
        for name, port in ports.items():
            by_port.setdefault(port, []).append(name)
        for port, names in sorted(by_port.items()):
            if len(names) > 1:
                problems.append(f"ports: {port} is used by {', '.join(names)} (allowed: a distinct port each)")
        if self.multi_host:
            for i, h in enumerate(self.hosts):
                if h.address is None:
                    problems.append(
                        f"hosts[{i}].address: missing; workers on several hosts must reach each other "
                        "(allowed: the host's IP address on the network the hosts share)"
                    )
            nodes: dict[str, int] = {self.head_host.name: 1}
            for w in self.workers:
                nodes[w.host or self.head_host.name] = nodes.get(w.host or self.head_host.name, 0) + w.replicas
            for host, count in sorted(nodes.items()):
                if count > 1:
                    problems.append(
                        f"workers: host {host!r} runs {count} Ray nodes, but with several hosts Ray uses host "
                        "networking (allowed: one Ray node per host, the head's host included; give a worker "
                        "more GPUs instead)"
                    )
            if ipaddress.ip_address(self.bind_address).is_loopback:
                problems.append(
                    "bind_address: 127.0.0.1 but workers run on other hosts and cannot reach a loopback head "
                    "(allowed: the head host's address, an explicit choice to expose Ray to that network)"
                )
        if self.images.source == "pull":
            needed = {"ray_cpu"} | {f"ray_{'cuda' if w.gpu_vendor == 'nvidia' else 'rocm'}"
                                     for w in self.workers if w.gpu_vendor != "none" and not w.image}
            if self.jupyter:
                needed.add("jupyter")
            for kind in sorted(needed):
                if self.images.pulled(kind) is None:
                    problems.append(
                        f"images.{kind}: missing with images.source 'pull' and no official image to fall back on "
                        "(allowed: an image reference, or images.source 'build')"
                    )
        return problems




