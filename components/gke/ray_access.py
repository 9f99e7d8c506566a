"""How people reach the Ray head: a ClusterIP Service that `kubectl port-forward` opens (the private default),
and optionally an internal Ingress (gce-internal, on the VPC only) with a BackendConfig that turns on IAP.

Nothing here is public: the Service has no external address, the Ingress is internal, and the Ray dashboard,
which has no authentication of its own, is only ever behind Kubernetes RBAC (port-forward) or IAP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

INTERNAL_INGRESS_CLASS = "gce-internal"
HEALTH_PATH = "/api/gcs_healthz"  # the dashboard's own health endpoint (what KubeRay's probes use too)
IAP_ROLE = "roles/iap.httpsResourceAccessor"
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class ForwardedPort:
    name: str
    port: int


def head_labels(cluster_name: str) -> dict[str, str]:
    """The labels KubeRay puts on the head pod of RayCluster `cluster_name`."""
    return {"ray.io/cluster": cluster_name, "ray.io/node-type": "head"}


def head_service(name: str, namespace: str, cluster_name: str, ports: list[ForwardedPort],
                 backend_config: str | None = None, ingress_port: int | None = None) -> dict[str, Any]:
    """A ClusterIP Service on the head pod: dashboard, Ray client, and the monitoring sidecars' ports."""
    annotations = {}
    if backend_config:
        annotations = {"cloud.google.com/neg": json.dumps({"ingress": True}),
                       "cloud.google.com/backend-config": json.dumps({"ports": {str(ingress_port): backend_config}})}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {
            "type": "ClusterIP",
            "selector": head_labels(cluster_name),
            "ports": [{"name": p.name, "port": p.port, "targetPort": p.port, "protocol": "TCP"} for p in ports],
        },
    }


def port_forward_command(namespace: str, service: str, ports: list[ForwardedPort],
                         context: str | None = None) -> list[str]:
    """`kubectl port-forward` of every head port to the same port on 127.0.0.1 (loopback only)."""
    command = ["kubectl", "port-forward"]
    if context:
        command += ["--context", context]
    command += ["--namespace", namespace, "--address", LOCALHOST, f"svc/{service}"]
    return command + [f"{p.port}:{p.port}" for p in ports]


def local_url(port: int) -> str:
    return f"http://{LOCALHOST}:{port}"


def backend_config(name: str, namespace: str, port: int, iap: bool, oauth_secret: str | None) -> dict[str, Any]:
    """Health check on the dashboard, and IAP in front of it (the Google-managed OAuth client when no secret)."""
    spec: dict[str, Any] = {"healthCheck": {"type": "HTTP", "port": port, "requestPath": HEALTH_PATH}}
    if iap:
        spec["iap"] = {"enabled": True}
        if oauth_secret:
            spec["iap"]["oauthclientCredentials"] = {"secretName": oauth_secret}
    return {"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def internal_ingress(name: str, namespace: str, service: str, port: int, tls_secret: str | None) -> dict[str, Any]:
    """An internal Application Load Balancer (VPC only; it needs the proxy-only subnet) to the dashboard."""
    annotations = {"kubernetes.io/ingress.class": INTERNAL_INGRESS_CLASS}
    spec: dict[str, Any] = {"defaultBackend": {"service": {"name": service, "port": {"number": port}}}}
    if tls_secret:
        annotations["kubernetes.io/ingress.allow-http"] = "false"
        spec["tls"] = [{"secretName": tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations}, "spec": spec}


# --------------------------------------------------------------------------------------------- component


@dataclass(frozen=True)
class IngressArgs:
    iap: bool = True
    oauth_secret: str | None = None
    tls_secret: str | None = None
    iap_members: list[str] = field(default_factory=list)
    project: str | None = None  # for the IAP grants

    def __post_init__(self) -> None:
        if self.iap and not self.tls_secret:
            raise ValueError("tls_secret: none while IAP is on (allowed: a TLS secret name: IAP only serves HTTPS)")
        if self.iap_members and not (self.iap and self.project):
            raise ValueError("iap_members: set without IAP and a project (allowed: iap=True with project)")
        public = [m for m in self.iap_members if m in ("allUsers", "allAuthenticatedUsers")]
        if public:
            raise ValueError(f"iap_members: {public} (allowed: named users, groups, service accounts, domains)")


@dataclass(frozen=True)
class RayAccessArgs:
    provider: k8s.Provider
    namespace: str
    cluster_name: str
    ports: list[ForwardedPort]  # the dashboard first
    context: str | None = None  # kubectl context (gcloud's gke_<project>_<region>_<cluster>)
    ingress: IngressArgs | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.ports or self.ports[0].name != "dashboard":
            raise ValueError(f"ports: {[p.name for p in self.ports]} (allowed: the dashboard port first)")


class RayAccess(pulumi.ComponentResource):
    service_name: str
    command: list[str]
    urls: dict[str, str]  # port name -> http://127.0.0.1:<port> while the command runs

    def __init__(self, name: str, args: RayAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:RayAccess", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
        self.service_name = f"{args.cluster_name}-head"
        dashboard = args.ports[0].port
        backend = f"{args.cluster_name}-dashboard" if args.ingress else None
        service = head_service(self.service_name, args.namespace, args.cluster_name, args.ports, backend, dashboard)
        svc = k8s.core.v1.Service(f"{name}-head", metadata=service["metadata"], spec=service["spec"], opts=on_cluster)
        if args.ingress:
            self._ingress(name, args, backend, dashboard, svc)
        self.command = port_forward_command(args.namespace, self.service_name, args.ports, args.context)
        self.urls = {p.name: local_url(p.port) for p in args.ports}
        self.register_outputs({"service": self.service_name, "command": self.command})

    def _ingress(self, name: str, args: RayAccessArgs, backend: str, port: int, svc: k8s.core.v1.Service) -> None:
        ing = args.ingress
        bc = backend_config(backend, args.namespace, port, ing.iap, ing.oauth_secret)
        config = k8s.apiextensions.CustomResource(
            f"{name}-backend-config", api_version=bc["apiVersion"], kind=bc["kind"], metadata=bc["metadata"],
            spec=bc["spec"], opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                                         depends_on=args.depends_on))
        manifest = internal_ingress(f"{args.cluster_name}-dashboard", args.namespace, self.service_name, port,
                                    ing.tls_secret)
        k8s.networking.v1.Ingress(f"{name}-ingress", metadata=manifest["metadata"], spec=manifest["spec"],
                                  opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                                              depends_on=[svc, config]))
        for member in ing.iap_members:
            gcp.iap.WebIamMember(f"{name}-iap-{member.split(':', 1)[1].replace('@', '-at-')}", project=ing.project,
                                 role=IAP_ROLE, member=member, opts=pulumi.ResourceOptions(parent=self))
