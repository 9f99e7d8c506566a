"""Kubernetes objects that make the cluster ready for Ray on RDMA, applied with the cluster's explicit provider.

`ClusterNetworking`: a GKENetworkParamSet + Network for `gvnic-1` and `rdma-0..7`, the NCCL RDMA installer
DaemonSet, and the ComputeClass ranking spot, then flex-start, then on-demand pools.
`RayNamespace`: the namespace and Kubernetes service account the Ray pods will run as (Workload Identity).
The manifests are pure functions, validated in tests against the real CRD schemas and kubernetes-validate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.gke.ray_cluster import container_security

NETWORKING_GROUP = "networking.gke.io"
NCCL_PLUGIN_IMAGE = "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib"
# Google's pause image by digest, exactly as GKE's own installer manifests name it (container-engine-accelerators
# gpudirect-rdma/nccl-rdma-installer.yaml): a GKE system image, exempt from Binary Authorization, no NAT needed.
PAUSE_IMAGE = "gke.gcr.io/pause:3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830"
PAUSE_UID = 65535  # the pause image's user; it writes nothing
# Installer volumes: host path, and where the init container sees it (as in Google's manifest).
INSTALLER_MOUNTS = {
    "library-dir-host": ("/home/kubernetes/bin/nvidia/lib64", "/usr/local/home/kubernetes/bin/nvidia/lib64"),
    "gib": ("/home/kubernetes/bin/gib", "/usr/local/home/kubernetes/bin/gib"),
}
H200_ACCELERATOR = "nvidia-h200-141gb"
GVNIC_NETWORK = "gvnic-1"
RDMA_NETWORKS = tuple(f"rdma-{i}" for i in range(8))
WHEN_UNSATISFIABLE = ("DoNotScaleUp", "ScaleUpAnyway")
WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"


# ---------------------------------------------------------------------------------------------- manifests


def param_set(name: str, vpc: Any, subnet: Any, device_mode: str) -> dict[str, Any]:
    """GKE-specific parameters of one extra node network: its VPC and subnet (NAMES), how pods use the NIC."""
    return {
        "apiVersion": f"{NETWORKING_GROUP}/v1",
        "kind": "GKENetworkParamSet",
        "metadata": {"name": name},
        "spec": {"vpc": vpc, "vpcSubnet": subnet, "deviceMode": device_mode},
    }


def network(name: str) -> dict[str, Any]:
    """The Kubernetes Network pods name in `networking.gke.io/interfaces`; its parameters are the ParamSet."""
    return {
        "apiVersion": f"{NETWORKING_GROUP}/v1",
        "kind": "Network",
        "metadata": {"name": name},
        "spec": {"type": "Device",
                 "parametersRef": {"group": NETWORKING_GROUP, "kind": "GKENetworkParamSet", "name": name}},
    }


def compute_class(name: str, pools: list[Any], when_unsatisfiable: str) -> dict[str, Any]:
    """One priority per manual pool, in order; a `nodepools` rule stands alone (the CRD's CEL rule)."""
    if when_unsatisfiable not in WHEN_UNSATISFIABLE:
        raise ValueError(f"when_unsatisfiable: {when_unsatisfiable!r} (allowed: {', '.join(WHEN_UNSATISFIABLE)})")
    if not pools:
        raise ValueError("pools: empty (allowed: at least one node pool)")
    return {
        "apiVersion": "cloud.google.com/v1",
        "kind": "ComputeClass",
        "metadata": {"name": name},
        "spec": {
            "priorities": [{"nodepools": [pool]} for pool in pools],
            # Manual pools only: they carry the stack's RDMA networks (docs/gke.md, "manual pools").
            "nodePoolAutoCreation": {"enabled": False},
            # Set explicitly: its default changed between GKE versions.
            "whenUnsatisfiable": when_unsatisfiable,
            # No active migration back to spot: it would evict running Ray workers mid-training.
            "activeMigration": {"optimizeRulePriority": False},
        },
    }


def nccl_installer(version: str) -> dict[str, Any]:
    """The NCCL RDMA (gIB) plugin installer on every H200 node: a privileged init container copies the gIB
    plugin and its NCCL environment script to the host, then a pause container keeps the pod. As Google's
    gpudirect-rdma/nccl-rdma-installer.yaml (container-engine-accelerators, 2026-05): no `--install-nccl`, so no
    host NCCL lands first on LD_LIBRARY_PATH to shadow the one the framework ships; hostPID like theirs."""
    labels = {"k8s-app": "nccl-rdma-installer"}
    script = "\n".join([
        "set -ex",
        "/scripts/container_entry.sh install",
        f"cp -r /var/lib/gib/lib64/. {INSTALLER_MOUNTS['library-dir-host'][1]}",
        f"cp -r /var/lib/gib/. {INSTALLER_MOUNTS['gib'][1]}",
    ])
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nccl-rdma-installer", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [{
                            "key": "cloud.google.com/gke-accelerator", "operator": "In",
                            "values": [H200_ACCELERATOR]}]}]}}},
                    "tolerations": [{"operator": "Exists"}],  # GPU and compute-class taints alike
                    "hostNetwork": True,
                    "hostPID": True,
                    # It never calls the Kubernetes API; seccomp binds the pause container (privileged ones run
                    # unconfined whatever the profile).
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "volumes": [{"name": name, "hostPath": {"path": host, "type": "DirectoryOrCreate"}}
                                for name, (host, _) in INSTALLER_MOUNTS.items()],
                    "initContainers": [{
                        "name": "nccl-rdma-installer",
                        "image": f"{NCCL_PLUGIN_IMAGE}:{version}",
                        "command": ["/bin/sh", "-c", script],
                        "securityContext": {"privileged": True},
                        "resources": {"requests": {"cpu": "150m"}},
                        "volumeMounts": [{"name": name, "mountPath": mount}
                                         for name, (_, mount) in INSTALLER_MOUNTS.items()],
                    }],
                    # Only the init container needs privilege; the pause container gets none.
                    "containers": [{"name": "pause", "image": PAUSE_IMAGE,
                                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                                    "securityContext": container_security(
                                        readOnlyRootFilesystem=True, runAsNonRoot=True, runAsUser=PAUSE_UID)}],
                },
            },
        },
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service_account(name: str, ns: str, gcp_service_account: Any) -> dict[str, Any]:
    """The Kubernetes service account Ray pods run as, bound to a Google service account (Workload Identity)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns,
                     "annotations": {WORKLOAD_IDENTITY_ANNOTATION: gcp_service_account}},
    }


# --------------------------------------------------------------------------------------------- components


@dataclass(frozen=True)
class ExtraNetwork:
    name: str  # the Kubernetes Network name: gvnic-1, rdma-0..7
    vpc: pulumi.Input[str]  # VPC NAME
    subnet: pulumi.Input[str]  # subnet NAME
    device_mode: str  # NetDevice | RDMA


@dataclass(frozen=True)
class ClusterNetworkingArgs:
    provider: k8s.Provider
    networks: list[ExtraNetwork]  # gvnic-1, then rdma-0..7
    compute_class: str
    pools: list[pulumi.Input[str]]  # node pool names in priority order
    when_unsatisfiable: str = "DoNotScaleUp"
    nccl_plugin_version: str = "v1.1.1"

    def __post_init__(self) -> None:
        names = [n.name for n in self.networks]
        if names != [GVNIC_NETWORK, *RDMA_NETWORKS]:
            raise ValueError(f"networks: {names} (allowed: exactly {GVNIC_NETWORK}, then rdma-0..rdma-7, in order)")
        modes = {n.name: n.device_mode for n in self.networks}
        if modes[GVNIC_NETWORK] != "NetDevice" or any(modes[r] != "RDMA" for r in RDMA_NETWORKS):
            raise ValueError("networks: device_mode must be NetDevice for gvnic-1 and RDMA for rdma-* "
                             f"(got {modes})")
        if self.when_unsatisfiable not in WHEN_UNSATISFIABLE:
            raise ValueError(f"when_unsatisfiable: {self.when_unsatisfiable!r} "
                             f"(allowed: {', '.join(WHEN_UNSATISFIABLE)})")
        if not self.pools:
            raise ValueError("pools: empty (allowed: at least one node pool)")


def _custom(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name, api_version=manifest["apiVersion"], kind=manifest["kind"], metadata=manifest["metadata"],
        spec=manifest["spec"], opts=opts,
    )


class ClusterNetworking(pulumi.ComponentResource):
    network_names: list[str]  # what RDMA pods name in networking.gke.io/interfaces
    compute_class_name: str

    def __init__(self, name: str, args: ClusterNetworkingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:ClusterNetworking", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        for net in args.networks:
            params = _custom(f"{name}-{net.name}-params", param_set(net.name, net.vpc, net.subnet, net.device_mode),
                             on_cluster)
            _custom(f"{name}-{net.name}", network(net.name),
                    pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[params]))
        installer = nccl_installer(args.nccl_plugin_version)
        self.nccl_installer = k8s.apps.v1.DaemonSet(
            f"{name}-nccl-rdma-installer", metadata=installer["metadata"], spec=installer["spec"], opts=on_cluster)
        self.compute_class = _custom(
            f"{name}-compute-class", compute_class(args.compute_class, args.pools, args.when_unsatisfiable), on_cluster)
        self.network_names = [n.name for n in args.networks]
        self.compute_class_name = args.compute_class
        self.register_outputs({"networks": self.network_names, "compute_class": args.compute_class})


@dataclass(frozen=True)
class RayNamespaceArgs:
    provider: k8s.Provider
    namespace: str
    service_account: str
    gcp_service_account: pulumi.Input[str]  # email


class RayNamespace(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount

    def __init__(self, name: str, args: RayNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:RayNamespace", name, None, opts)
        ns = namespace(args.namespace)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=ns["metadata"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        sa = service_account(args.service_account, args.namespace, args.gcp_service_account)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=sa["metadata"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.namespace]))
        self.register_outputs({"namespace": args.namespace, "service_account": args.service_account})
