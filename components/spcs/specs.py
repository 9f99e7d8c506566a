"""SPCS service specifications (YAML) for the Ray head, workers, custom workers and the RayDP head.

Pure functions of typed inputs (no Pulumi import): the `spcs` stack renders them with the head's DNS name
once known, and the Native App's setup script renders the same text. The `ray start` lines come from
components/ray_node.py, plus the fixed ports SPCS needs because every port another node dials must be a
declared endpoint. Each Ray container runs `ray start` last (exec, --block) behind small background loops
that copy Ray's logs (and the head's notebooks) to stage volumes; Jupyter runs inside the head container so
that notebooks are Ray drivers in the cluster (RayDP's Spark driver breaks through Ray Client).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field

import yaml

from components.ray_auth import AUTH_MODE_ENV
from components.ray_node import HeadPorts, RayNode, head_start_args, worker_start_args
from components.spcs.families import InstanceFamily

SHM_FRACTION = 0.3  # share of a Ray container's memory given to /dev/shm (Ray's object store lives there)
RAY_DATA = "/ray-data"  # block volume: Ray's temp dir and logs (stage volumes cannot be appended to)
RAY_TEMP_DIR = f"{RAY_DATA}/tmp"
RAY_LOGS = f"{RAY_TEMP_DIR}/session_latest/logs"
SPARK_EVENTS = f"{RAY_DATA}/spark-events"  # spark.eventLog.dir in images/spcs-raydp/spark-defaults.conf
NOTEBOOKS = f"{RAY_DATA}/notebooks"  # Jupyter's root: a block volume, since Jupyter saves by write-then-rename
COPY_EVERY_S = 300  # how often logs and notebooks are copied to their stages
# Spark executors (RayDP), torch.distributed and NCCL listen on random ports in Linux's ephemeral range;
# Snowflake's Ray samples declare it on every Ray service (../shared/reference/spcs.md, "Ports between Ray nodes").
EPHEMERAL_PORTS = (32768, 60999)
LOGS_VOLUME_GIB = 50
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
JUPYTER_PORT = 8888
SERVE_PORT = 8000
# Spark driver ports in RayDP mode (executors are Ray actors on other nodes and dial back); baked into
# images/spcs-raydp/spark-defaults.conf with the same numbers.
SPARK_DRIVER_PORT = 7078
SPARK_BLOCK_MANAGER_PORT = 7079
SPARK_UI_PORT = 4040


@dataclass(frozen=True)
class Sidecar:
    """A helper beside Ray in the head's service instance, with the share of the node it requests
    (Prometheus and Grafana as containers; Jupyter as a process inside the Ray head container)."""

    name: str
    cpu: float
    memory_gib: float


PROMETHEUS = Sidecar("prometheus", 0.5, 1)
GRAFANA = Sidecar("grafana", 0.25, 0.5)
JUPYTER = Sidecar("jupyter", 0.5, 2)


@dataclass(frozen=True)
class SpcsRayPorts:
    """Every port Ray listens on, fixed (Ray picks most of them at random by default)."""

    gcs: int = 6379
    dashboard: int = 8265
    client: int = 10001
    metrics: int = 8080
    object_manager: int = 8076
    node_manager: int = 8077
    runtime_env_agent: int = 8078
    agent_grpc: int = 8079
    agent_listen: int = 8081  # Ray's default 52365 lies in the ephemeral range, declared as one range below
    min_worker: int = 11000
    max_worker: int = 11999

    def tcp(self) -> dict[str, int]:
        """Single ports other nodes dial, by endpoint name."""
        return {"gcs": self.gcs, "object-manager": self.object_manager, "node-manager": self.node_manager,
                "runtime-env-agent": self.runtime_env_agent, "agent-grpc": self.agent_grpc,
                "agent-http": self.agent_listen, "metrics": self.metrics}


@dataclass(frozen=True)
class StageMount:
    """A Snowflake stage mounted into the Ray containers, e.g. `@DB.SCHEMA.RAYDP_ARTIFACTS` at /artifacts."""

    volume: str
    stage: str
    mount_path: str

    def volume_spec(self) -> dict:
        """Stage Mount v2: `source: stage` + stageConfig; the raw `source: "@stage"` form is deprecated and
        rejected for new services (https://docs.snowflake.com/en/release-notes/bcr-bundles/2026_08/bcr-2449)."""
        return {"name": self.volume, "source": "stage", "stageConfig": {"name": self.stage}}


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable filled from a Snowflake generic-string SECRET object (never in the spec text)."""

    object_name: str  # fully qualified, e.g. DB.SCHEMA.RAY_GRAFANA_PASSWORD; a reference's name where `reference`
    env_var: str
    # A Native App reads a consumer's SECRET through a reference: `snowflakeSecret.objectReference` names it
    # (https://docs.snowflake.com/en/developer-guide/snowpark-container-services/specification-reference).
    reference: bool = False

    def source(self) -> dict[str, str]:
        return {"objectReference" if self.reference else "objectName": self.object_name}


def ray_auth(token: SecretEnv | None) -> tuple[dict[str, str], list[dict]]:
    """Environment and Snowflake secrets of a Ray container: token mode with RAY_AUTH_TOKEN from the SECRET object
    (never in the spec text), or auth said to be off (unset, Ray turns it on wherever a token file exists)."""
    if token is None:
        return {AUTH_MODE_ENV: "disabled"}, []
    return {AUTH_MODE_ENV: "token"}, [{"snowflakeSecret": token.source(),
                                         "secretKeyRef": "secret_string", "envVarName": token.env_var}]


@dataclass(frozen=True)
class Monitoring:
    prometheus_image: str
    grafana_image: str
    grafana_password: SecretEnv


@dataclass(frozen=True)
class HeadSpec:
    family: InstanceFamily
    image: str  # `/db/schema/repo/name:tag`
    stages: list[StageMount] = field(default_factory=list)
    ray_cpus: int | None = None  # logical CPUs the head offers to tasks; None: the Ray container's share
    monitoring: Monitoring | None = None
    jupyter: bool = True
    env: dict[str, str] = field(default_factory=dict)
    ports: SpcsRayPorts = SpcsRayPorts()
    logs_volume_gib: int = LOGS_VOLUME_GIB
    ray_token: SecretEnv | None = None  # Ray's token (env RAY_AUTH_TOKEN); None: Ray without auth
    logs_mount: str | None = "/raydplogs"  # a stage mount path Ray's logs are copied to; None: not copied
    notebooks_mount: str | None = "/artifacts"  # a stage mount path notebooks are copied to (under notebooks/)


@dataclass(frozen=True)
class WorkerSpec:
    family: InstanceFamily
    image: str
    head_host: str  # the head service's DNS name
    stages: list[StageMount] = field(default_factory=list)
    resources: dict[str, float] = field(default_factory=dict)  # Ray custom resources per node
    env: dict[str, str] = field(default_factory=dict)
    ports: SpcsRayPorts = SpcsRayPorts()
    logs_mount: str | None = "/raydplogs"
    ray_token: SecretEnv | None = None


# ------------------------------------------------------------------------------------------- sizing


def sidecars(monitoring: bool, jupyter: bool) -> list[Sidecar]:
    return ([PROMETHEUS, GRAFANA] if monitoring else []) + ([JUPYTER] if jupyter else [])


@dataclass(frozen=True)
class RayShare:
    """What Ray gets on one node: the node's requestable share minus its helpers, /dev/shm out of the memory."""

    cpu: float
    memory_gib: float
    shm_gib: int
    gpus: int

    @property
    def ray_memory_gb(self) -> float:
        """Memory Ray schedules tasks against (the object store lives in /dev/shm beside it)."""
        return self.memory_gib - self.shm_gib


def ray_share(family: InstanceFamily, helpers: list[Sidecar] = ()) -> RayShare:
    cpu = round(family.requestable_cpu - sum(s.cpu for s in helpers), 3)
    memory = round(family.requestable_memory_gib - sum(s.memory_gib for s in helpers), 3)
    return RayShare(cpu, memory, max(1, math.floor(memory * SHM_FRACTION)), family.gpus)


def head_node(spec: HeadSpec) -> RayNode:
    share = ray_share(spec.family, sidecars(spec.monitoring is not None, spec.jupyter))
    cpus = math.floor(share.cpu) if spec.ray_cpus is None else spec.ray_cpus
    return RayNode(cpus=cpus, memory_gb=share.ray_memory_gb, gpus=share.gpus)


def worker_node(spec: WorkerSpec) -> RayNode:
    share = ray_share(spec.family)
    return RayNode(cpus=math.floor(share.cpu), memory_gb=share.ray_memory_gb, gpus=share.gpus,
                   resources=dict(spec.resources))


# ----------------------------------------------------------------------------------------- commands


def node_port_args(ports: SpcsRayPorts, temp_dir: str) -> list[str]:
    """The ports and temp dir a node pins down so that they match the spec's declared endpoints."""
    return [
        f"--object-manager-port={ports.object_manager}",
        f"--node-manager-port={ports.node_manager}",
        f"--runtime-env-agent-port={ports.runtime_env_agent}",
        f"--dashboard-agent-grpc-port={ports.agent_grpc}",
        f"--dashboard-agent-listen-port={ports.agent_listen}",
        f"--min-worker-port={ports.min_worker}",
        f"--max-worker-port={ports.max_worker}",
        f"--temp-dir={temp_dir}",
    ]


def head_command(node: RayNode, ports: SpcsRayPorts = SpcsRayPorts(), temp_dir: str = RAY_TEMP_DIR,
                 node_ip: str | None = None) -> list[str]:
    """The head container's command: ray_node's head arguments, fixed ports, --block last."""
    head_ports = HeadPorts(gcs=ports.gcs, dashboard=ports.dashboard, client=ports.client, metrics=ports.metrics)
    args = head_start_args(node, head_ports, node_ip=node_ip, block=False)
    return [*args, *node_port_args(ports, temp_dir), "--block"]


def worker_command(node: RayNode, head_address: str, ports: SpcsRayPorts = SpcsRayPorts(),
                   temp_dir: str = RAY_TEMP_DIR, node_ip: str | None = None) -> list[str]:
    """A worker container's command; with --block it exits when the head goes, and SPCS restarts it."""
    args = worker_start_args(node, head_address, metrics_port=ports.metrics, node_ip=node_ip, block=False)
    return [*args, *node_port_args(ports, temp_dir), "--block"]


def copy_to_stage(source: str, target: str) -> str:
    """Copy what changed under `source` into `target` on a stage volume. Stage volumes take no appends,
    renames or in-place edits, so each changed file is removed and written anew (--remove-destination)."""
    return (f"mkdir -p {target} && cp -r -u --remove-destination {source}/. {target}/ 2>/dev/null || true")


def every(seconds: int, command: str) -> str:
    return f"(while sleep {seconds}; do {command}; done) &"


TEMPLATE_VAR = re.compile(r"\{\{ *\w+ *\}\}")  # a spec template variable, e.g. {{ head_host }}


def _shell_word(arg: str) -> str:
    """shlex.quote, except that template variables count as safe: Snowflake fills them in (with a DNS name)
    before the shell sees the script, so a template renders exactly like the spec it becomes."""
    plain = TEMPLATE_VAR.sub("x", arg)
    return arg if shlex.quote(plain) == plain else shlex.quote(arg)


def container_command(ray_args: list[str], background: list[str], shell_args: tuple[str, ...] = ()) -> list[str]:
    """bash runs the background helpers, then becomes `ray start --block`: the container lives as long as Ray.
    `shell_args` go in as written (e.g. `--resources="$VAR"`, expanded by the shell)."""
    line = " ".join([*map(_shell_word, ray_args), *shell_args])
    return ["/bin/bash", "-c", "\n".join([*background, "exec " + line])]


def log_copies(logs_mount: str | None, node: str, spark: bool = False) -> list[str]:
    """Ray's logs (and Spark's event logs) copied to the logs stage under <node>/<host>, every few minutes."""
    if logs_mount is None:
        return []
    target = f"{logs_mount}/{node}/$(hostname)"
    copies = [copy_to_stage(RAY_LOGS, f"{target}/ray")]
    if spark:
        copies.append(copy_to_stage(SPARK_EVENTS, f"{target}/spark-events"))
    prepare = [f"mkdir -p {SPARK_EVENTS}"] if spark else []  # Spark refuses a missing event log dir
    return [*prepare, every(COPY_EVERY_S, " ; ".join(copies))]


def jupyter_lines(notebooks_mount: str | None) -> list[str]:
    """JupyterLab in the head container: notebooks are Ray drivers (RAY_ADDRESS=auto finds this node's GCS),
    kept on the block volume, restored from and copied to the stage."""
    lines = [f"mkdir -p {NOTEBOOKS}"]
    if notebooks_mount is not None:
        saved = f"{notebooks_mount}/notebooks"
        lines += [f"cp -r -n {saved}/. {NOTEBOOKS}/ 2>/dev/null || true",
                  every(COPY_EVERY_S, copy_to_stage(NOTEBOOKS, saved))]
    # No token: the public endpoint is behind Snowflake authentication already.
    lines.append(f"RAY_ADDRESS=auto jupyter lab --ip=0.0.0.0 --port={JUPYTER_PORT} --no-browser "
                 f"--ServerApp.token= --ServerApp.root_dir={NOTEBOOKS} > {RAY_DATA}/jupyter.log 2>&1 &")
    return lines


# ----------------------------------------------------------------------------------------- pieces


def quantity_cpu(cpu: float) -> int | float:
    return int(cpu) if float(cpu).is_integer() else round(cpu, 3)


def quantity_memory(gib: float) -> str:
    return f"{int(gib)}Gi" if float(gib).is_integer() else f"{int(gib * 1024)}Mi"


def resources(cpu: float, memory_gib: float, gpus: int = 0) -> dict:
    """Requests and limits; GPUs equal in both, or the container sees none."""
    requests: dict = {"cpu": quantity_cpu(cpu), "memory": quantity_memory(memory_gib)}
    limits: dict = {"memory": quantity_memory(memory_gib)}
    if gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = gpus
    return {"requests": requests, "limits": limits}


def _env(values: dict[str, str]) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(values.items())}


def _ray_volumes(share: RayShare, stages: list[StageMount], data_source: dict) -> tuple[list[dict], list[dict]]:
    """Volumes and mounts every Ray container has: /dev/shm, Ray's data dir, the stages."""
    volumes = [{"name": "dshm", "source": "memory", "size": quantity_memory(share.shm_gib)},
               {"name": "ray-data", **data_source}]
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "ray-data", "mountPath": RAY_DATA}]
    for stage in stages:
        volumes.append(stage.volume_spec())
        mounts.append({"name": stage.volume, "mountPath": stage.mount_path})
    return volumes, mounts


def _tcp_endpoints(ports: SpcsRayPorts) -> list[dict]:
    """Ray's node-to-node ports: private TCP, the worker ports and the ephemeral range as ranges."""
    out = [{"name": name, "port": port, "protocol": "TCP", "public": False} for name, port in ports.tcp().items()]
    out.append({"name": "ray-workers", "portRange": f"{ports.min_worker}-{ports.max_worker}", "protocol": "TCP",
                "public": False})
    out.append({"name": "ephemeral", "portRange": "{}-{}".format(*EPHEMERAL_PORTS), "protocol": "TCP",
                "public": False})
    return out


def _http(name: str, port: int) -> dict:
    """A public endpoint: reachable through Snowflake's ingress, which authenticates every request."""
    return {"name": name, "port": port, "protocol": "HTTP", "public": True}


class _NoAliases(yaml.SafeDumper):
    """Plain YAML: no &anchors / *aliases for repeated mounts (a spec reader should not need them)."""

    def ignore_aliases(self, data) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Multi-line strings (container scripts) as literal blocks, one script line per YAML line."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_NoAliases.add_representer(str, _str)


def _dump(spec: dict) -> str:
    return yaml.dump({"spec": spec}, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=1000)


# ------------------------------------------------------------------------------------------- specs


def _head(spec: HeadSpec, extra_env: dict[str, str], extra_endpoints: list[dict], spark: bool = False) -> str:
    helpers = sidecars(spec.monitoring is not None, spec.jupyter)
    share = ray_share(spec.family, helpers)
    volumes, mounts = _ray_volumes(share, spec.stages, {"source": "block", "size": f"{spec.logs_volume_gib}Gi"})
    ports = spec.ports
    auth_env, auth_secrets = ray_auth(spec.ray_token)
    env = {"RAY_PLATFORM_NODE": "head", **spec.env, **extra_env, **auth_env}
    if spec.monitoring:
        env |= {"RAY_PROMETHEUS_HOST": f"http://localhost:{PROMETHEUS_PORT}",
                "RAY_GRAFANA_HOST": f"http://localhost:{GRAFANA_PORT}"}
    background = log_copies(spec.logs_mount, "head", spark)
    # Jupyter's share of the node is requested by the Ray head container it runs in (Ray does not count it).
    cpu, memory = share.cpu, share.memory_gib
    if spec.jupyter:
        background += jupyter_lines(spec.notebooks_mount)
        cpu, memory = cpu + JUPYTER.cpu, memory + JUPYTER.memory_gib
    containers = [{
        "name": "ray-head",
        "image": spec.image,
        "command": container_command(head_command(head_node(spec), ports), background),
        "env": _env(env),
        **({"secrets": auth_secrets} if auth_secrets else {}),
        "readinessProbe": {"port": ports.dashboard, "path": "/api/gcs_healthz"},
        "volumeMounts": mounts,
        "resources": resources(cpu, memory, share.gpus),
    }]
    endpoints = [_http("dashboard", ports.dashboard), _http("serve", SERVE_PORT)]
    if spec.monitoring:
        m = spec.monitoring
        data = [{"name": "ray-data", "mountPath": RAY_DATA}]  # Ray's service discovery file and dashboards
        containers.append({
            "name": "prometheus", "image": m.prometheus_image,
            "readinessProbe": {"port": PROMETHEUS_PORT, "path": "/-/ready"},
            "volumeMounts": data, "resources": resources(PROMETHEUS.cpu, PROMETHEUS.memory_gib)})
        containers.append({
            "name": "grafana", "image": m.grafana_image,
            "env": {"GF_SECURITY_ADMIN_USER": "admin"},
            "secrets": [{"snowflakeSecret": {"objectName": m.grafana_password.object_name},
                         "secretKeyRef": "secret_string", "envVarName": m.grafana_password.env_var}],
            "readinessProbe": {"port": GRAFANA_PORT, "path": "/api/health"},
            "volumeMounts": data, "resources": resources(GRAFANA.cpu, GRAFANA.memory_gib)})
        endpoints += [_http("grafana", GRAFANA_PORT), _http("prometheus", PROMETHEUS_PORT)]
    if spec.jupyter:
        endpoints.append(_http("jupyter", JUPYTER_PORT))
    endpoints += [{"name": "ray-client", "port": ports.client, "protocol": "TCP", "public": False}]
    endpoints += _tcp_endpoints(ports) + extra_endpoints
    return _dump({"containers": containers, "endpoints": endpoints, "volumes": volumes})


def render_head_spec(spec: HeadSpec) -> str:
    """The Ray head: dashboard/Jobs API, Serve, Grafana, Prometheus, Jupyter public; Ray's ports private."""
    return _head(spec, {}, [])


def render_raydp_head_spec(spec: HeadSpec) -> str:
    """The head as the Spark driver (RayDP): driver and block manager ports open to the workers, the Spark UI
    public, Spark's event logs copied to the logs stage."""
    env = {"RAYDP_SPARK_DRIVER_PORT": str(SPARK_DRIVER_PORT),
           "RAYDP_SPARK_BLOCK_MANAGER_PORT": str(SPARK_BLOCK_MANAGER_PORT)}
    endpoints = [{"name": "spark-driver", "port": SPARK_DRIVER_PORT, "protocol": "TCP", "public": False},
                 {"name": "spark-block-manager", "port": SPARK_BLOCK_MANAGER_PORT, "protocol": "TCP", "public": False},
                 _http("spark-ui", SPARK_UI_PORT)]  # the UI of the Spark session a driver on the head runs
    return _head(spec, env, endpoints, spark=True)


def _worker(spec: WorkerSpec, name: str, extra_env: dict[str, str], shell_args: tuple[str, ...] = ()) -> str:
    share = ray_share(spec.family)
    volumes, mounts = _ray_volumes(share, spec.stages, {"source": "local"})
    ports = spec.ports
    auth_env, auth_secrets = ray_auth(spec.ray_token)
    container = {
        "name": name,
        "image": spec.image,
        "command": container_command(worker_command(worker_node(spec), f"{spec.head_host}:{ports.gcs}", ports),
                                     log_copies(spec.logs_mount, name), shell_args),
        "env": _env({"RAY_PLATFORM_NODE": name, "RAY_HEAD_ADDRESS": f"{spec.head_host}:{ports.gcs}",
                     **spec.env, **extra_env, **auth_env}),
        **({"secrets": auth_secrets} if auth_secrets else {}),
        "readinessProbe": {"port": ports.agent_listen, "path": "/api/local_raylet_healthz"},
        "volumeMounts": mounts,
        "resources": resources(share.cpu, share.memory_gib, share.gpus),
    }
    return _dump({"containers": [container], "endpoints": _tcp_endpoints(ports), "volumes": volumes})


def render_worker_spec(spec: WorkerSpec) -> str:
    """A Ray worker joining the head at its service DNS name; one worker per node takes all its GPUs."""
    return _worker(spec, "ray-worker", {})


def render_custom_worker_spec(spec: WorkerSpec) -> str:
    """A worker for specialised tasks: its own image and custom Ray resources that steer work onto it."""
    if not spec.resources:
        raise ValueError("a custom worker needs at least one custom resource (allowed: e.g. {'etl': 1})")
    return _worker(spec, "ray-custom-worker", {"RAY_PLATFORM_CUSTOM_RESOURCES": ",".join(sorted(spec.resources))})


RESOURCES_ENV = "RAY_PLATFORM_RESOURCES"


def render_custom_worker_template(spec: WorkerSpec, resources_var: str) -> str:
    """The Native App's custom worker: `spec.image` and `resources_var` are spec template variables (e.g.
    `{{ image }}`, `{{ resources }}`) the start procedure fills per group; the resources JSON reaches
    `ray start` through an environment variable, so the shell never has to quote it."""
    if spec.resources:
        raise ValueError("a custom worker template takes its resources from the template (allowed: resources={})")
    return _worker(spec, "ray-custom-worker", {RESOURCES_ENV: resources_var},
                   (f'--resources="${{{RESOURCES_ENV}}}"',))
