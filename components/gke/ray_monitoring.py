"""Monitoring for the Ray cluster: Google Managed Prometheus scrapes the head and the workers (PodMonitoring),
GKE's managed DCGM exporter covers the GPUs (the cluster's monitoring_config), and Grafana with Ray's own
dashboards plus a Prometheus query frontend to Managed Prometheus run beside the Ray head, so one
`kubectl port-forward` reaches the dashboard, Grafana and Prometheus alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.gke.ray_cluster import container_security
from components.monitoring_config import RAY_DASHBOARDS_DIR, grafana_dashboards, grafana_datasources
from components.ray_node import METRICS_PORT

API_VERSION = "monitoring.googleapis.com/v1"
GRAFANA_PORT = 3000
GRAFANA_UID = 472  # the grafana/grafana-oss image's user
GRAFANA_SECRET_VOLUME, GRAFANA_SECRET_DIR = "grafana-admin", "/etc/grafana/secrets"
PROMETHEUS_PORT = 9090
GRAFANA_PASSWORD_KEY = "admin-password"
METRICS_VIEWER = "roles/monitoring.viewer"  # what the query frontend needs to read Managed Prometheus
PASSWORD_LENGTH = 24
HEAD_METRIC_PORTS = ("metrics", "as-metrics", "dash-metrics")  # Ray, its autoscaler, its dashboard


def pod_monitoring(name: str, namespace: str, labels: dict[str, str], ports: tuple[str, ...],
                   interval: str) -> dict[str, Any]:
    """Managed Prometheus scrapes the named container ports of the pods matching `labels`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitoring",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "endpoints": [{"port": port, "interval": interval} for port in ports],
            # Ray's dashboards group by these; keep the Kubernetes pod and the Ray group on every series.
            "targetLabels": {"fromPod": [{"from": "ray.io/cluster", "to": "ray_io_cluster"},
                                         {"from": "ray.io/group", "to": "ray_io_group"}]},
        },
    }


def ray_pod_monitorings(cluster_name: str, namespace: str, interval: str) -> list[dict[str, Any]]:
    head = {"ray.io/cluster": cluster_name, "ray.io/node-type": "head"}
    workers = {"ray.io/cluster": cluster_name, "ray.io/node-type": "worker"}
    return [pod_monitoring(f"{cluster_name}-head", namespace, head, HEAD_METRIC_PORTS, interval),
            pod_monitoring(f"{cluster_name}-workers", namespace, workers, ("metrics",), interval)]


def grafana_config(name: str, namespace: str) -> dict[str, Any]:
    """Grafana's provisioning: Managed Prometheus (through the frontend beside it) and Ray's dashboards, which
    the Ray head writes for its own version into the /tmp/ray volume the two containers share."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"datasources.yaml": grafana_datasources(f"http://localhost:{PROMETHEUS_PORT}"),
                     "dashboards.yaml": grafana_dashboards(RAY_DASHBOARDS_DIR)}}


def grafana_volumes(config_map: str, password_secret: str) -> list[dict[str, Any]]:
    """What the Grafana sidecar mounts: its provisioning, and the admin password as a file."""
    return [{"name": "grafana-provisioning", "configMap": {"name": config_map}},
            {"name": GRAFANA_SECRET_VOLUME, "secret": {"secretName": password_secret}}]


def grafana_sidecar(image: str) -> dict[str, Any]:
    env = {
        "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
        # Read-only viewers need no login: Grafana is only reachable through an authenticated port-forward.
        "GF_AUTH_ANONYMOUS_ENABLED": "true",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
        "GF_SECURITY_ALLOW_EMBEDDING": "true",  # the Ray dashboard embeds Grafana panels
        "GF_USERS_ALLOW_SIGN_UP": "false",
    }
    return {
        "name": "grafana",
        "image": image,
        "ports": [{"name": "grafana", "containerPort": GRAFANA_PORT}],
        # Grafana reads `<VARIABLE>__FILE` from that file: the password never sits in the environment.
        "env": [{"name": k, "value": v} for k, v in env.items()] + [{
            "name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": f"{GRAFANA_SECRET_DIR}/{GRAFANA_PASSWORD_KEY}"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        # Grafana's image runs as uid 472 and writes /var/lib/grafana (so no read-only root file system).
        "securityContext": container_security(runAsUser=GRAFANA_UID),
        "volumeMounts": [
            {"name": "ray-tmp", "mountPath": "/tmp/ray", "readOnly": True},
            {"name": GRAFANA_SECRET_VOLUME, "mountPath": GRAFANA_SECRET_DIR, "readOnly": True},
            {"name": "grafana-provisioning", "mountPath": "/etc/grafana/provisioning/datasources/ray.yaml",
             "subPath": "datasources.yaml"},
            {"name": "grafana-provisioning", "mountPath": "/etc/grafana/provisioning/dashboards/ray.yaml",
             "subPath": "dashboards.yaml"},
        ],
    }


def prometheus_frontend_sidecar(image: str, project: str) -> dict[str, Any]:
    """GMP's query frontend: a Prometheus-compatible API over Managed Prometheus, authenticated by the pod's
    Workload Identity (it needs monitoring.viewer), unauthenticated on its port: so only port-forward reaches it."""
    return {
        "name": "prometheus-frontend",
        "image": image,
        "args": [f"--web.listen-address=:{PROMETHEUS_PORT}", f"--query.project-id={project}"],
        "ports": [{"name": "prometheus", "containerPort": PROMETHEUS_PORT}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        # As prometheus-engine's examples/frontend.yaml runs it: the pod's non-root user, a read-only root.
        "securityContext": container_security(readOnlyRootFilesystem=True),
    }


def head_env() -> dict[str, str]:
    """What the Ray dashboard needs to find Grafana and Prometheus: the server side beside it, the browser side
    through the port-forward (the same port on 127.0.0.1)."""
    return {"RAY_GRAFANA_HOST": f"http://localhost:{GRAFANA_PORT}",
            "RAY_GRAFANA_IFRAME_HOST": f"http://127.0.0.1:{GRAFANA_PORT}",
            "RAY_PROMETHEUS_HOST": f"http://localhost:{PROMETHEUS_PORT}",
            "RAY_PROMETHEUS_NAME": "Prometheus"}


# --------------------------------------------------------------------------------------------- component


@dataclass(frozen=True)
class RayMonitoringArgs:
    provider: k8s.Provider
    project: str
    namespace: str
    cluster_name: str
    workload_service_account: pulumi.Input[str]  # the Ray pods' Google service account (email)
    scrape_interval: str = "30s"
    grafana: bool = True
    grafana_image: str = "grafana/grafana-oss:12.2.1"
    prometheus_frontend_image: str = "gke.gcr.io/prometheus-engine/frontend:v0.15.3-gke.0"
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # the namespace

    def __post_init__(self) -> None:
        if not self.scrape_interval[:-1].isdigit() or self.scrape_interval[-1] not in "sm":
            raise ValueError(f"scrape_interval: {self.scrape_interval!r} (allowed: e.g. 30s or 1m)")


class RayMonitoring(pulumi.ComponentResource):
    head_sidecars: list[dict[str, Any]]  # containers for the Ray head pod
    head_volumes: list[dict[str, Any]]
    head_env: dict[str, str]
    ready: list[pulumi.Resource]  # what the RayCluster waits for (the ConfigMap and Secret its head mounts)
    ports: dict[str, int]  # sidecar ports the head Service should forward

    def __init__(self, name: str, args: RayMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:RayMonitoring", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
        for manifest in ray_pod_monitorings(args.cluster_name, args.namespace, args.scrape_interval):
            k8s.apiextensions.CustomResource(
                f"{name}-{manifest['metadata']['name']}", api_version=manifest["apiVersion"], kind=manifest["kind"],
                metadata=manifest["metadata"], spec=manifest["spec"], opts=on_cluster)
        self.head_sidecars, self.head_volumes, self.head_env, self.ready, self.ports = [], [], {}, [], {}
        if args.grafana:
            self._grafana(name, args, on_cluster)
        self.register_outputs({"grafana": args.grafana, "metrics_port": METRICS_PORT})

    def _grafana(self, name: str, args: RayMonitoringArgs, on_cluster: pulumi.ResourceOptions) -> None:
        viewer = gcp.projects.IAMMember(
            f"{name}-metrics-viewer", project=args.project, role=METRICS_VIEWER,
            member=pulumi.Output.concat("serviceAccount:", args.workload_service_account),
            opts=pulumi.ResourceOptions(parent=self))
        password = random.RandomPassword(f"{name}-grafana-admin", length=PASSWORD_LENGTH, special=False,
                                         opts=pulumi.ResourceOptions(parent=self))
        secret_name, config_name = f"{args.cluster_name}-grafana-admin", f"{args.cluster_name}-grafana"
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin", metadata={"name": secret_name, "namespace": args.namespace}, type="Opaque",
            string_data={GRAFANA_PASSWORD_KEY: password.result}, opts=on_cluster)
        cm = grafana_config(config_name, args.namespace)
        config = k8s.core.v1.ConfigMap(f"{name}-grafana", metadata=cm["metadata"], data=cm["data"], opts=on_cluster)
        self.head_sidecars = [grafana_sidecar(args.grafana_image),
                              prometheus_frontend_sidecar(args.prometheus_frontend_image, args.project)]
        self.head_volumes = grafana_volumes(config_name, secret_name)
        self.head_env = head_env()
        self.ready = [viewer, secret, config]
        self.ports = {"grafana": GRAFANA_PORT, "prometheus": PROMETHEUS_PORT}
        self.grafana_admin_password = password.result
