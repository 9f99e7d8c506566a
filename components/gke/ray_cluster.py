"""The RayCluster (KubeRay `ray.io/v1`) on H200 over RDMA, as a pure manifest function plus its component.

Head on the CPU system pool (no tasks on it), an H200 worker group selecting the compute class with all eight
RDMA NICs, the NVIDIA and gIB host libraries, the NCCL environment sourced before `ray start`, a memory-backed
/dev/shm and the training bucket through GCS FUSE; a CPU worker group; the in-tree autoscaler; optional GCS
fault tolerance in an external Redis. The manifest is validated in tests against KubeRay 1.7.0's CRD.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.ray_node import METRICS_PORT, HeadPorts, RayNode

API_VERSION = "ray.io/v1"
COMPUTE_CLASS_KEY = "cloud.google.com/compute-class"
GPU_RESOURCE = "nvidia.com/gpu"
# Host paths the NCCL RDMA installer fills (reference: gke-h200-rdma.md) and where pods see them.
HOST_MOUNTS = {"nvidia": ("/home/kubernetes/bin/nvidia", "/usr/local/nvidia"),
               "gib": ("/home/kubernetes/bin/gib", "/usr/local/gib")}
LD_LIBRARY_PATH = "/usr/local/nvidia/lib64"
NCCL_ENV_SCRIPT = "/usr/local/gib/scripts/set_nccl_env.sh"
GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
DATA_MOUNT = "/data"  # the training bucket inside every Ray pod
FUSE_STORAGE_HEADROOM_GB = 100  # beside the file cache, in the FUSE sidecar's ephemeral storage: staged writes
RAY_TMP = "/tmp/ray"  # shared with the head's sidecars (Grafana reads Ray's generated dashboards there)
# Extra head metrics: the autoscaler's and the dashboard's own exporters (Ray's defaults).
AUTOSCALER_METRICS_PORT = 44217
DASHBOARD_METRICS_PORT = 44227
REDIS_PASSWORD_KEY = "password"
# NICs in pod order: eth0 the pod network, eth1 the second gVNIC VPC, eth2..eth9 the RDMA subnets.
DEFAULT_INTERFACE = "eth0"
# Ray's images run as user `ray`, uid 1000 in group `users` (gid 100) (rayproject/ray's base-deps Dockerfile).
# Numeric here: runAsNonRoot cannot check the image's user by name.
RAY_UID, RAY_GID = 1000, 100
def pod_security() -> dict[str, Any]:
    """Every Ray pod: not root, Kubernetes' default seccomp profile. Ray and NCCL need neither root nor
    capabilities: the image already ran as `ray`, GPUs come from the device plugin, RDMA through GKE's NICs."""
    return {"runAsNonRoot": True, "runAsUser": RAY_UID, "runAsGroup": RAY_GID, "fsGroup": RAY_GID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security(**extra: Any) -> dict[str, Any]:
    """Every container: no capabilities, no setuid escalation (so the image's sudo stops working, on purpose)."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, **extra}


@dataclass(frozen=True)
class WorkerGroup:
    """One KubeRay worker group: one Ray node per pod."""

    name: str
    node: RayNode
    min_replicas: int
    max_replicas: int
    gpu: bool = False  # H200: compute class, RDMA NICs, host libraries, NCCL env, /dev/shm
    shm_gb: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"worker group {self.name!r}: min {self.min_replicas} / max {self.max_replicas} "
                             "(allowed: 0 <= min_replicas <= max_replicas)")
        if self.gpu and (self.node.gpus < 1 or self.shm_gb < 1):
            raise ValueError(f"worker group {self.name!r}: a GPU group needs gpus >= 1 and shm_gb >= 1")


@dataclass(frozen=True)
class FuseCache:
    """The GCS FUSE file cache of the H200 workers (volume attributes of the CSI driver), on local SSD."""

    file_cache_gb: int  # 0: none
    range_read: bool = True
    parallel_downloads: bool = False


@dataclass(frozen=True)
class RayClusterSpec:
    """Everything the manifest needs; values may be Pulumi Inputs (image digest, bucket name)."""

    name: str
    namespace: str
    ray_version: str
    image: Any
    service_account: str
    head: RayNode
    head_node_selector: dict[str, str]
    groups: list[WorkerGroup]
    compute_class: str
    network_names: list[str]  # gvnic-1, rdma-0..7: the Network objects of the cluster
    bucket: Any
    gpu_fuse: FuseCache | None = None  # the H200 workers' file cache; other pods mount the bucket uncached
    idle_timeout_s: int = 600
    redis_address: str | None = None
    redis_password_secret: str | None = None  # a Secret in the namespace holding key `password`
    auth_secret: str | None = None  # a Secret holding Ray's token (key `auth_token`); None: Ray without auth
    head_sidecars: list[dict[str, Any]] = field(default_factory=list)  # e.g. Grafana, the Prometheus frontend
    head_volumes: list[dict[str, Any]] = field(default_factory=list)
    head_env: dict[str, str] = field(default_factory=dict)
    ports: HeadPorts = HeadPorts()


def interfaces(network_names: list[str]) -> list[dict[str, str]]:
    """`networking.gke.io/interfaces`: eth0 on the pod network, then one NIC per extra Network, in order."""
    return [{"interfaceName": DEFAULT_INTERFACE, "network": "default"}] + [
        {"interfaceName": f"eth{i}", "network": name} for i, name in enumerate(network_names, start=1)]


def ray_start_params(node: RayNode, **extra: str) -> dict[str, str]:
    """rayStartParams (strings, as KubeRay wants) declaring exactly what ray_capacity reports for the node."""
    params = {"num-cpus": str(node.cpus), "memory": str(node.memory_bytes),
              "metrics-export-port": str(METRICS_PORT)}
    if node.gpus:
        params["num-gpus"] = str(node.gpus)
    if node.resources:
        params["resources"] = json.dumps(node.resources, sort_keys=True, separators=(",", ":"))
    return {**params, **extra}


def _resources(node: RayNode, memory_gb: float) -> dict[str, Any]:
    amounts = {"cpu": str(node.cpus), "memory": f"{int(memory_gb)}Gi"}
    if node.gpus:
        amounts[GPU_RESOURCE] = str(node.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _data_volume(bucket: Any, cache: FuseCache | None = None) -> dict[str, Any]:
    # Files owned by Ray's user, so the non-root Ray processes can write checkpoints.
    options = ["implicit-dirs", f"uid={RAY_UID}", f"gid={RAY_GID}"]
    attributes = {"bucketName": bucket}
    if cache and cache.file_cache_gb:
        # The GCS FUSE CSI driver's volume attributes (gcs-fuse-csi-driver docs/troubleshooting.md, "File cache").
        attributes |= {"fileCacheCapacity": f"{cache.file_cache_gb}Gi",
                       "fileCacheForRangeRead": str(cache.range_read).lower()}
        if cache.parallel_downloads:
            options.append("file-cache:enable-parallel-downloads:true")
    return {"name": "training-data", "csi": {"driver": GCSFUSE_DRIVER,
                                             "volumeAttributes": {**attributes, "mountOptions": ",".join(options)}}}


def _fuse_annotations(cache: FuseCache | None) -> dict[str, str]:
    """The cache sits in the FUSE sidecar's emptyDir: its ephemeral-storage limit must exceed the cache."""
    if not (cache and cache.file_cache_gb):
        return {}
    return {"gke-gcsfuse/ephemeral-storage-limit": f"{cache.file_cache_gb + FUSE_STORAGE_HEADROOM_GB}Gi"}


def _pod_metadata(extra: dict[str, str] | None = None) -> dict[str, Any]:
    # The GCS FUSE sidecar is injected only into pods that ask for it.
    return {"annotations": {"gke-gcsfuse/volumes": "true", **(extra or {})}}


def head_template(spec: RayClusterSpec) -> dict[str, Any]:
    p = spec.ports
    container = {
        "name": "ray-head",
        "image": spec.image,
        "ports": [
            {"name": "gcs-server", "containerPort": p.gcs},
            {"name": "dashboard", "containerPort": p.dashboard},
            {"name": "client", "containerPort": p.client},
            {"name": "metrics", "containerPort": p.metrics},
            {"name": "as-metrics", "containerPort": AUTOSCALER_METRICS_PORT},
            {"name": "dash-metrics", "containerPort": DASHBOARD_METRICS_PORT},
        ],
        "env": [{"name": k, "value": v} for k, v in spec.head_env.items()],
        "resources": _resources(spec.head, spec.head.memory_gb),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "ray-tmp", "mountPath": RAY_TMP},
                         {"name": "training-data", "mountPath": DATA_MOUNT}],
    }
    return {
        "metadata": _pod_metadata(),
        "spec": {
            "serviceAccountName": spec.service_account,
            "securityContext": pod_security(),
            "nodeSelector": dict(spec.head_node_selector),
            "containers": [container, *spec.head_sidecars],
            "volumes": [{"name": "ray-tmp", "emptyDir": {}}, _data_volume(spec.bucket), *spec.head_volumes],
        },
    }


def _gpu_pod(spec: RayClusterSpec, group: WorkerGroup, container: dict[str, Any]) -> dict[str, Any]:
    """What an H200 worker adds: all NICs, the compute class, the host libraries, NCCL env and /dev/shm."""
    # KubeRay runs a container command in the same shell just before `ray start`: the raylet inherits the NCCL env.
    container["command"] = [f"source {NCCL_ENV_SCRIPT}"]
    container["env"] = [{"name": "LD_LIBRARY_PATH", "value": LD_LIBRARY_PATH}]
    container["volumeMounts"] += [{"name": name, "mountPath": mount} for name, (_, mount) in HOST_MOUNTS.items()]
    container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    annotations = {"networking.gke.io/default-interface": DEFAULT_INTERFACE,
                   "networking.gke.io/interfaces": json.dumps(interfaces(spec.network_names))}
    return {
        "metadata": _pod_metadata({**annotations, **_fuse_annotations(spec.gpu_fuse)}),
        "spec": {
            "serviceAccountName": spec.service_account,
            "automountServiceAccountToken": False,  # see worker_group
            "securityContext": pod_security(),
            "nodeSelector": {COMPUTE_CLASS_KEY: spec.compute_class},
            "tolerations": [
                {"key": COMPUTE_CLASS_KEY, "operator": "Equal", "value": spec.compute_class, "effect": "NoSchedule"},
                {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
            ],
            "containers": [container],
            "volumes": [
                *[{"name": name, "hostPath": {"path": host}} for name, (host, _) in HOST_MOUNTS.items()],
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{group.shm_gb}Gi"}},
                _data_volume(spec.bucket, spec.gpu_fuse),
            ],
        },
    }


def worker_group(spec: RayClusterSpec, group: WorkerGroup) -> dict[str, Any]:
    """A worker group. Workers never call the Kubernetes API (only the head's autoscaler does), so they get no
    API token; Workload Identity answers from the metadata server and GCS FUSE asks the CSI driver for its own."""
    container = {
        "name": "ray-worker",
        "image": spec.image,
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "resources": _resources(group.node, group.node.memory_gb),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "training-data", "mountPath": DATA_MOUNT}],
    }
    if group.gpu:
        template = _gpu_pod(spec, group, container)
    else:
        template = {"metadata": _pod_metadata(), "spec": {
            "serviceAccountName": spec.service_account, "automountServiceAccountToken": False,
            "securityContext": pod_security(), "nodeSelector": dict(spec.head_node_selector),
            "containers": [container], "volumes": [_data_volume(spec.bucket)]}}
    return {
        "groupName": group.name,
        "replicas": group.min_replicas,
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        "rayStartParams": ray_start_params(group.node),
        "template": template,
    }


def head_ray_node(head: RayNode) -> RayNode:
    """The Ray node the head is: no CPUs for tasks (they go to workers), its pod's memory."""
    return RayNode(cpus=0, memory_gb=head.memory_gb)


def ray_cluster(spec: RayClusterSpec) -> dict[str, Any]:
    """The RayCluster manifest."""
    head_params = ray_start_params(head_ray_node(spec.head), **{"dashboard-host": "0.0.0.0"})
    manifest: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "RayCluster",
        "metadata": {"name": spec.name, "namespace": spec.namespace},
        "spec": {
            "rayVersion": spec.ray_version,
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {
                "idleTimeoutSeconds": spec.idle_timeout_s,
                "upscalingMode": "Default",
                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                              "limits": {"cpu": "500m", "memory": "512Mi"}},
            },
            "headGroupSpec": {"serviceType": "ClusterIP", "rayStartParams": head_params,
                              "template": head_template(spec)},
            "workerGroupSpecs": [worker_group(spec, g) for g in spec.groups],
        },
    }
    # KubeRay >= 1.5 (1.7.0: common/pod.go SetContainerTokenAuthEnvVars) gives the Ray container, init containers
    # and the autoscaler RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from secretName's key `auth_token`; with secretName
    # set it generates no Secret of its own (raycluster_controller.go reconcileAuthSecret). Disabled is said
    # explicitly, so the manifest shows the choice.
    manifest["spec"]["authOptions"] = (
        {"mode": "token", "secretName": spec.auth_secret} if spec.auth_secret else {"mode": "disabled"})
    if spec.redis_address:
        options: dict[str, Any] = {"redisAddress": spec.redis_address}
        if spec.redis_password_secret:
            options["redisPassword"] = {"valueFrom": {"secretKeyRef": {
                "name": spec.redis_password_secret, "key": REDIS_PASSWORD_KEY}}}
        manifest["spec"]["gcsFaultToleranceOptions"] = options
    return manifest


AUTH_TOKEN_KEY = "auth_token"  # KubeRay's RAY_AUTH_TOKEN_SECRET_KEY (ray-operator/controllers/ray/utils/constant.go)


def auth_secret(name: str, namespace: str, token: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", "stringData": {AUTH_TOKEN_KEY: token}}


def redis_secret(name: str, namespace: str, password: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", "stringData": {REDIS_PASSWORD_KEY: password}}


# --------------------------------------------------------------------------------------------- component


@dataclass(frozen=True)
class KubeRayClusterArgs:
    provider: k8s.Provider
    spec: RayClusterSpec
    redis_password: pulumi.Input[str] | None = None  # secret
    auth_token: pulumi.Input[str] | None = None  # secret: Ray's token; None runs Ray without auth
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # operator, networking, namespace, monitoring

    def __post_init__(self) -> None:
        if not any(g.gpu for g in self.spec.groups):
            raise ValueError("groups: no GPU group (allowed: at least the H200 group)")
        names = [g.name for g in self.spec.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"groups: {names} repeat a name (allowed: unique group names)")
        if self.redis_password is not None and not self.spec.redis_address:
            raise ValueError("redis_password: set without spec.redis_address (allowed: both or neither)")


class KubeRayCluster(pulumi.ComponentResource):
    cluster: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KubeRayClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:RayCluster", name, None, opts)
        spec, waits = args.spec, list(args.depends_on)
        if args.redis_password is not None:
            secret = redis_secret(f"{spec.name}-redis", spec.namespace, pulumi.Output.secret(args.redis_password))
            waits.append(k8s.core.v1.Secret(
                f"{name}-redis-password", metadata=secret["metadata"], type=secret["type"],
                string_data=secret["stringData"],
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)))
            spec = RayClusterSpec(**{**spec.__dict__, "redis_password_secret": f"{spec.name}-redis"})
        if args.auth_token is not None:
            secret = auth_secret(f"{spec.name}-ray-auth", spec.namespace, pulumi.Output.secret(args.auth_token))
            waits.append(k8s.core.v1.Secret(
                f"{name}-ray-auth-token", metadata=secret["metadata"], type=secret["type"],
                string_data=secret["stringData"],
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)))
            spec = RayClusterSpec(**{**spec.__dict__, "auth_secret": f"{spec.name}-ray-auth"})
        manifest = ray_cluster(spec)
        self.cluster = k8s.apiextensions.CustomResource(
            name, api_version=manifest["apiVersion"], kind=manifest["kind"], metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=waits))
        self.register_outputs({"name": spec.name, "namespace": spec.namespace})
