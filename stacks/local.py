"""The `local` environment: Ray on one or more Docker hosts (a laptop, or a GPU box over ssh://).

Head and workers as containers, Prometheus + Grafana, MinIO for checkpoints, Jupyter. Published ports bind
to `bind_address` (loopback by default). With several hosts, Ray containers use host networking.
"""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_docker as docker

from components.local.images import DockerImages, DockerImagesArgs
from components.local.monitoring import Monitoring, MonitoringArgs
from components.local.notebook import Notebook, NotebookArgs
from components.local.object_store import ObjectStore, ObjectStoreArgs
from components.local.ray_cluster import (
    HEAD_ALIAS,
    DockerPlacement,
    DockerRayCluster,
    DockerRayClusterArgs,
    HeadArgs,
    WorkerArgs,
)
from components.ray_auth import node_env
from components.ray_node import HeadPorts, RayNode, capacity_entry
from components.versions import RAY_VERSION
from stacks.config.local import LocalConfig, WorkerGroup
from stacks.secrets import configured_or_generated, ray_auth_token

IMAGE_KIND = {"none": "ray_cpu", "nvidia": "ray_cuda", "amd": "ray_rocm"}


def _worker_node(w: WorkerGroup) -> RayNode:
    return RayNode(cpus=w.cpus, memory_gb=w.memory_gb, gpus=w.gpus_per_worker, resources=dict(w.resources))


def capacity(cfg: LocalConfig) -> dict:
    """The contract's ray_capacity: a fixed-size cluster, so min and max are the replica counts."""
    out = {"head": capacity_entry(RayNode(cpus=cfg.head.cpus, memory_gb=cfg.head.memory_gb), 1, 1)}
    for w in cfg.workers:
        out[w.name] = capacity_entry(_worker_node(w), w.replicas, w.replicas)
    return out


def build(cfg: LocalConfig) -> dict:
    prefix = f"ray-{pulumi.get_stack()}"
    bind = cfg.bind_address
    head_host = cfg.head_host
    providers = {
        h.name: docker.Provider(f"docker-host-{h.name}", host=h.url, ssh_opts=h.ssh_opts or None) for h in cfg.hosts
    }
    head_provider = providers[head_host.name]
    network = docker.Network(
        "ray", name=prefix, driver="bridge", opts=pulumi.ResourceOptions(provider=head_provider)
    )

    # Images: each host builds (or pulls) what its containers run.
    kinds: dict[str, set[str]] = {head_host.name: {"ray_cpu"} | ({"jupyter"} if cfg.jupyter else set())}
    for w in cfg.workers:
        if not w.image:
            kinds.setdefault(w.host or head_host.name, set()).add(IMAGE_KIND[w.gpu_vendor])
    images = {
        host: DockerImages(
            f"images-{host}",
            DockerImagesArgs(
                kinds=sorted(k), source=cfg.images.source,
                pull_refs={kind: cfg.images.pulled(kind) for kind in k if cfg.images.pulled(kind)},
            ),
            opts=pulumi.ResourceOptions(providers={"docker": providers[host]}),
        )
        for host, k in sorted(kinds.items())
    }

    # Where a Ray node runs: a bridge network on one host; host networking across several.
    def placement(host_name: str) -> DockerPlacement:
        host = cfg.host(host_name)
        if cfg.multi_host:
            return DockerPlacement(providers[host.name], None, node_ip=host.address)
        return DockerPlacement(providers[host.name], network)

    def service_url(alias: str, container_port: int, host_port: int) -> str:
        """A service on the head host as Ray containers reach it."""
        return f"http://{alias}:{container_port}" if not cfg.multi_host else f"http://{bind}:{host_port}"

    ports = cfg.ports
    minio_password = configured_or_generated("minio-root-password", cfg.minio_root_password)
    ObjectStore(
        "checkpoints",
        ObjectStoreArgs(
            container_prefix=prefix, provider=head_provider, network=network, bucket=cfg.checkpoint_bucket,
            root_user=cfg.minio_root_user, root_password=minio_password,
            api_port=ports.minio, console_port=ports.minio_console, bind_address=bind,
        ),
    )
    storage_env = {
        "RAY_PLATFORM_STORAGE_URI": f"s3://{cfg.checkpoint_bucket}",
        "AWS_ENDPOINT_URL": service_url("minio", 9000, ports.minio),
        "AWS_ACCESS_KEY_ID": cfg.minio_root_user,
        "AWS_SECRET_ACCESS_KEY": minio_password,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    # Every Ray process, and every client inside the cluster (Jupyter), gets the stack's one token.
    token = ray_auth_token(cfg)
    auth_env = node_env(token)
    head_env: dict = {}
    if cfg.monitoring:
        head_env = {
            "RAY_PROMETHEUS_HOST": service_url("prometheus", 9090, ports.prometheus),
            "RAY_GRAFANA_HOST": service_url("grafana", 3000, ports.grafana),
            "RAY_GRAFANA_IFRAME_HOST": f"http://{_reachable(bind)}:{ports.grafana}",
        }

    head_ports = HeadPorts(gcs=ports.gcs)
    workers = [
        WorkerArgs(
            name=f"{w.name}-{i}",
            node=_worker_node(w),
            image=w.image or images[w.host or head_host.name].refs[IMAGE_KIND[w.gpu_vendor]],
            placement=placement(w.host or head_host.name),
            gpu_vendor=w.gpu_vendor,
            gpu_ids=w.gpus_of(i),
        )
        for w in cfg.workers
        for i in range(w.replicas)
    ]
    cluster = DockerRayCluster(
        "ray",
        DockerRayClusterArgs(
            container_prefix=prefix,
            head=HeadArgs(
                node=RayNode(cpus=cfg.head.cpus, memory_gb=cfg.head.memory_gb),
                image=images[head_host.name].refs["ray_cpu"],
                placement=placement(head_host.name),
                ports=head_ports,
                publish={head_ports.dashboard: ports.dashboard, head_ports.client: ports.client},
                bind_address=bind,
                env=head_env,
            ),
            workers=workers,
            env={**storage_env, **auth_env},
        ),
    )

    outputs_extra: dict = {}
    grafana_password = None
    if cfg.monitoring:
        grafana_password = configured_or_generated("grafana-admin-password", cfg.grafana_admin_password)
        Monitoring(
            "monitoring",
            MonitoringArgs(
                container_prefix=prefix, provider=head_provider, network=network,
                ray_tmp_volume=cluster.head_tmp.name, grafana_admin_password=grafana_password,
                prometheus_port=ports.prometheus, grafana_port=ports.grafana, bind_address=bind,
            ),
        )
    jupyter_token = None
    if cfg.jupyter:
        jupyter_token = configured_or_generated("jupyter-token", cfg.jupyter_token, length=32)
        Notebook(
            "notebook",
            NotebookArgs(
                container_prefix=prefix, provider=head_provider, network=network,
                image=images[head_host.name].refs["jupyter"],
                ray_address=service_url(HEAD_ALIAS, head_ports.dashboard, ports.dashboard)
                if not cfg.multi_host else f"http://{head_host.address}:{head_ports.dashboard}",
                token=jupyter_token, port=ports.jupyter, bind_address=bind,
                env={**storage_env, **auth_env},
            ),
        )

    host = _reachable(bind)

    def url(port: int, scheme: str = "http") -> str:
        return f"{scheme}://{host}:{port}"

    outputs_extra["credentials"] = pulumi.Output.secret({
        "minio_access_key": cfg.minio_root_user,
        "minio_secret_key": minio_password,
        "grafana_admin_user": "admin" if cfg.monitoring else None,
        "grafana_admin_password": grafana_password,
        "jupyter_token": jupyter_token,
    })
    return {
        "environment": "local",
        "ray_version": RAY_VERSION,
        "ray_dashboard_url": url(ports.dashboard),
        "ray_client_address": url(ports.client, "ray"),
        "ray_capacity": capacity(cfg),
        "grafana_url": url(ports.grafana) if cfg.monitoring else None,
        "prometheus_url": url(ports.prometheus) if cfg.monitoring else None,
        "jupyter_url": url(ports.jupyter) if cfg.jupyter else None,
        "storage": {
            "uri": f"s3://{cfg.checkpoint_bucket}",
            "endpoint": url(ports.minio),
            "cluster_endpoint": storage_env["AWS_ENDPOINT_URL"],
            "console_url": url(ports.minio_console),
        },
        "access": access(cfg),
        "ray_auth_token": token,
        **outputs_extra,
    }


def _reachable(bind: str) -> str:
    """The address a person on the head host uses for a port bound to `bind`."""
    return "127.0.0.1" if ipaddress.ip_address(bind).is_unspecified else bind


def access(cfg: LocalConfig) -> dict:
    """Direct on a local engine; an SSH tunnel when the head host is remote and its ports bind to loopback."""
    head = cfg.head_host
    if not (head.is_remote and ipaddress.ip_address(cfg.bind_address).is_loopback):
        return {"mode": "direct"}
    p = cfg.ports
    forwards = [p.dashboard, p.client, p.minio, p.minio_console]
    forwards += [p.prometheus, p.grafana] if cfg.monitoring else []
    forwards += [p.jupyter] if cfg.jupyter else []
    command = ["ssh", "-N", *head.ssh_opts]
    for port in forwards:
        command += ["-L", f"{port}:127.0.0.1:{port}"]
    command.append(head.ssh_target)
    return {"mode": "port-forward", "command": command, "local_dashboard_url": f"http://127.0.0.1:{p.dashboard}"}
