"""Typed, validated stack configuration: one pydantic model per environment, every default in one place.

`load(raw, secret_keys)` takes the Pulumi config map (`{"ray-platform:workers": "[...]"}`) and returns the
model for the environment named by `ray-platform:environment` (default `local`), or raises `ConfigError`
listing every problem at once as `key: problem (allowed: ...)`. Nothing here touches the Pulumi runtime,
so the same check runs in `pulumi up`, in the offline preview and in tests.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from components.versions import RAY_VERSION
from stacks.contract import ENVIRONMENTS
from stacks.errors import ConfigError

NAMESPACE = "ray-platform"
DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
GIB = 1024**3


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (allowed: an IPv4 or IPv6 address, e.g. 127.0.0.1)") from None
    return value


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (allowed: lowercase letters, digits and '-', starting with a letter, "
            "at most 32 characters)"
        )
    return value


# ---------------------------------------------------------------------------------------------- local


class DockerHost(Strict):
    """A Docker engine the stack deploys to, reached through its own explicit provider."""

    name: str = "local"
    url: str = "unix:///var/run/docker.sock"
    # The address the other hosts reach this one by; required as soon as there is more than one host.
    address: str | None = None
    ssh_opts: list[str] = Field(default_factory=list)

    _name = field_validator("name")(_dns_label)

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
        return value if value is None else _ip(value)

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
    gpu_ids: list[str] = Field(default_factory=list)
    resources: dict[str, float] = Field(default_factory=dict)  # extra Ray custom resources per worker
    image: str | None = None  # overrides the image chosen by gpu_vendor

    _name = field_validator("name")(_dns_label)

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
    ray_cpu: str | None = None
    ray_cuda: str | None = None
    ray_rocm: str | None = None
    jupyter: str | None = None

    def pulled(self, kind: str) -> str | None:
        """The reference to pull for an image kind, Ray's official image where one exists."""
        official = {
            "ray_cpu": f"rayproject/ray:{RAY_VERSION}-py311-cpu",
            "ray_cuda": f"rayproject/ray:{RAY_VERSION}-py311-gpu",
        }
        return getattr(self, kind) or official.get(kind)


class LocalConfig(Strict):
    environment: Literal["local"] = "local"
    hosts: list[DockerHost] = Field(default_factory=lambda: [DockerHost()], min_length=1)
    # Published ports bind here. Anything but loopback exposes Ray (which has no authentication) to a network.
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
        return _ip(value)

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

    def cross_checks(self) -> list[str]:
        """Rules that span several keys; each problem names the key to change."""
        problems: list[str] = []
        problems += _duplicates("hosts", [h.name for h in self.hosts])
        problems += _duplicates("workers", [w.name for w in self.workers])
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


def _duplicates(key: str, names: list[str]) -> list[str]:
    seen = {n for n in names if names.count(n) > 1}
    return [f"{key}: name {n!r} is used more than once (allowed: unique names)" for n in sorted(seen)]


MODELS: dict[str, type[Strict]] = {"local": LocalConfig}


# ---------------------------------------------------------------------------------------------- loading


def parse_raw(config: dict[str, Any]) -> dict[str, Any]:
    """Our namespace's keys, without the namespace, with structured values decoded from JSON."""
    values: dict[str, Any] = {}
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError([f"{full_key}: not valid JSON ({exc.msg}) (allowed: a YAML/JSON value)"]) from exc
        values[key] = value
    return values


def load(config: dict[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> Strict:
    """Validate a whole Pulumi config map; raise ConfigError with every problem found."""
    values = parse_raw(config)
    environment = values.get("environment", "local")
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            [f"{NAMESPACE}:environment: {environment!r} is not an environment (allowed: {', '.join(ENVIRONMENTS)})"]
        )
    if environment not in MODELS:
        raise ConfigError(
            [f"{NAMESPACE}:environment: {environment!r} is not available in this version "
             f"(allowed: {', '.join(MODELS)})"]
        )
    model = MODELS[environment]
    problems = [
        f"{NAMESPACE}:{key}: must be set as a secret (allowed: `pulumi config set --secret {key} ...`)"
        for key in getattr(model, "SECRET_KEYS", ())
        if key in values and f"{NAMESPACE}:{key}" not in secret_keys
    ]
    try:
        cfg = model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(problems + [_describe(model, e) for e in exc.errors()]) from None
    problems += [f"{NAMESPACE}:{p}" for p in cfg.cross_checks()]
    if problems:
        raise ConfigError(problems)
    return cfg


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return f"{NAMESPACE}:{out}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of loc (for listing the keys it allows)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) else None
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _describe(model: type[BaseModel], error: dict[str, Any]) -> str:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    key = _key(loc)
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner else "see README"
        return f"{key}: unknown key (allowed: {allowed})"
    if kind == "literal_error":
        return f"{key}: {value!r} is not allowed (allowed: {error['ctx']['expected']})"
    if kind == "missing":
        return f"{key}: required but missing"
    bounds = {"greater_than_equal": ">= {ge}", "less_than_equal": "<= {le}", "greater_than": "> {gt}",
              "less_than": "< {lt}", "too_short": "at least {min_length} items",
              "too_long": "at most {max_length} items", "string_too_short": "at least {min_length} characters",
              "string_too_long": "at most {max_length} characters"}
    if kind in bounds:
        return f"{key}: {value!r} is out of range (allowed: {bounds[kind].format(**error['ctx'])})"
    types = {"int_parsing": "an integer", "int_from_float": "an integer", "float_parsing": "a number",
             "bool_parsing": "true or false", "string_type": "a string", "list_type": "a list",
             "dict_type": "a mapping", "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys"}
    if kind in types:
        return f"{key}: {value!r} has the wrong type (allowed: {types[kind]})"
    message = error["msg"].removeprefix("Value error, ")
    if "(allowed:" in message:
        return f"{key}: {message}"
    return f"{key}: {message} (got {value!r})"


__all__ = ["ConfigError", "LocalConfig", "GIB", "load", "NAMESPACE"]
