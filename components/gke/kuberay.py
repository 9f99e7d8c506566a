"""KubeRay operator: the `kuberay-operator` Helm chart pinned to 1.7.0, or GKE's managed Ray add-on, never both.

The chart version is the one whose RayCluster CRD the tests validate manifests against. The add-on lives in the
cluster's `addons_config`, so the stack hands `ray_addon_config()` to GkeCluster; `KubeRayOperator.ready` is
what a RayCluster must wait for either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

CHART = "kuberay-operator"
CHART_VERSION = "1.7.0"  # pinned: ../shared/schemas/kuberay-v1.7.0_ray.io_rayclusters.yaml is this version's CRD
CHART_REPO = "https://ray-project.github.io/kuberay-helm/"
OPERATOR_IMAGE_REPOSITORY = "quay.io/kuberay/operator"
INSTALLS = ("helm", "addon")
CLUSTER_TYPE = "gcp:container/cluster:Cluster"


def helm_values(node_selector: dict[str, str]) -> dict[str, Any]:
    """The chart's values: the operator on the system pool, watching every namespace, at the pinned image."""
    return {
        "image": {"repository": OPERATOR_IMAGE_REPOSITORY, "tag": f"v{CHART_VERSION}"},
        "nodeSelector": node_selector,
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
        # The chart installs the CRDs; it must not also create a second, cluster-wide copy of itself per namespace.
        "singleNamespaceInstall": False,
    }


def ray_addon_config() -> dict[str, Any]:
    """`addons_config.ray_operator_configs` for GKE's Ray add-on. Its own metrics collection stays off: the
    stack's PodMonitoring objects scrape Ray (two collectors would double every series)."""
    return {"enabled": True, "ray_cluster_logging_config": {"enabled": True},
            "ray_cluster_monitoring_config": {"enabled": False}}


@dataclass(frozen=True)
class KubeRayOperatorArgs:
    install: str  # helm | addon
    provider: k8s.Provider
    cluster: pulumi.Resource  # the GKE cluster: with the add-on, the operator is ready when the cluster is
    namespace: str = "kuberay-system"
    node_selector: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.install not in INSTALLS:
            raise ValueError(f"install: {self.install!r} (allowed: {', '.join(INSTALLS)})")


class KubeRayOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release | None
    ready: list[pulumi.Resource]  # what a RayCluster depends on

    def __init__(self, name: str, args: KubeRayOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:KubeRayOperator", name, None, opts)
        self.release = None
        if args.install == "helm":
            self.release = k8s.helm.v3.Release(
                f"{name}-chart",
                name=CHART,
                chart=CHART,
                version=CHART_VERSION,
                repository_opts={"repo": CHART_REPO},
                namespace=args.namespace,
                create_namespace=True,
                values=helm_values(args.node_selector or {}),
                # Wait for the operator's Deployment: a RayCluster applied before it would sit unreconciled.
                skip_await=False,
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[args.cluster]),
            )
            self.ready = [self.release]
        else:
            self.ready = [args.cluster]
        self.register_outputs({"install": args.install,
                               "version": CHART_VERSION if args.install == "helm" else "gke-managed"})
