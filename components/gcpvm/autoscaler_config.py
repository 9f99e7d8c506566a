"""The Ray autoscaler's cluster config for a GCP VM cluster, as a pure function of plain values.

The head VM (managed by Pulumi, not by `ray up`) runs `ray start --head --autoscaling-config=...` with this
document, so it must be complete as written: Ray's GCP bootstrap (service accounts, SSH keys, subnets) never
runs on it. Every worker's node_config therefore names its subnet, service account, SSH key and labels.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from components.ray_node import METRICS_PORT, RayNode

CONTAINER_NAME = "ray_container"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
HEAD_ADDRESS = "$RAY_HEAD_IP"  # substituted by the autoscaler with the head's internal IP
KEY_PATH = "/etc/ray-platform/ssh_key.pem"  # where the head's container finds the workers' SSH key
CONFIG_PATH = "/etc/ray-platform/cluster.yaml"
OPEN_FILES = 65536  # Ray's own recommendation for `ulimit -n`
# https://cloud.google.com/compute/docs/oslogin/set-up-oslogin: instance metadata overrides the project's setting
# (not the organization policy compute.requireOsLogin; see docs/first-deployment/gcpvm.md).
OS_LOGIN_OFF = {"key": "enable-oslogin", "value": "FALSE"}
# GPU VMs install the NVIDIA driver at first boot (`install-nvidia-driver`), after SSH is up: wait for it before
# `docker run --gpus all`, bounded, as Ray's GCP GPU docker example does (example-gpu-docker.yaml,
# initialization_commands). A driver that never comes up fails the node's setup instead of hanging it.
DRIVER_WAIT_S = 900
NVIDIA_DRIVER_WAIT = f"timeout {DRIVER_WAIT_S} bash -c 'until nvidia-smi > /dev/null 2>&1; do sleep 5; done'"


@dataclass(frozen=True)
class NodeTypeSpec:
    """One node type: the VM the autoscaler creates and the Ray resources it declares."""

    name: str
    machine_type: str
    disk_gb: int
    vm_image: str
    node: RayNode
    min_workers: int = 0
    max_workers: int = 0
    attached_gpu: str | None = None  # an accelerator attached to an n1 machine (built-in GPUs are implied)
    attached_gpus: int = 0
    spot: bool = False
    image: str | None = None  # the Ray container image for this type, when it differs from the cluster's
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_workers > self.max_workers:
            raise ValueError(f"node type {self.name!r}: min_workers {self.min_workers} > max_workers {self.max_workers}")


@dataclass(frozen=True)
class ClusterSpec:
    cluster_name: str
    project: str
    region: str
    zone: str
    subnetwork: str  # projects/P/regions/R/subnetworks/S
    network_tag: str  # firewall rules select cluster VMs by this tag
    worker_service_account: str
    ssh_user: str
    image: str
    head: NodeTypeSpec
    workers: list[NodeTypeSpec]
    max_workers: int
    idle_timeout_minutes: float = 5
    upscaling_speed: float = 1.0
    gcs_port: int = 6379
    initialization_commands: list[str] = field(default_factory=list)  # on each worker VM, before Docker runs
    env: dict[str, str] = field(default_factory=dict)  # in every Ray container
    mounts: list[str] = field(default_factory=list)  # `host:container:ro` volumes of every Ray container

    def __post_init__(self) -> None:
        names = [w.name for w in self.workers]
        if len(set(names)) != len(names) or self.head.name in names:
            raise ValueError(f"node type names must be unique, head included: {[self.head.name, *names]}")


def _shell(args: list[str]) -> str:
    """A command line for a shell, leaving the autoscaler's $RAY_HEAD_IP to be expanded."""
    return " ".join(a if HEAD_ADDRESS in a else shlex.quote(a) for a in args)


def node_config(spec: ClusterSpec, node_type: NodeTypeSpec, ssh_public_key: str) -> dict[str, Any]:
    """The Compute API instance body (the parts the autoscaler does not add itself)."""
    gpus = node_type.node.gpus
    metadata = [{"key": "ssh-keys", "value": f"{spec.ssh_user}:{ssh_public_key.strip()} {spec.ssh_user}"},
                # Only this key logs in; project-wide keys of people do not reach the workers.
                {"key": "block-project-ssh-keys", "value": "true"},
                # Where OS Login is on (project metadata), `ssh-keys` is ignored and the autoscaler cannot log in.
                OS_LOGIN_OFF]
    if gpus:
        metadata.append({"key": "install-nvidia-driver", "value": "True"})
    config: dict[str, Any] = {
        "machineType": node_type.machine_type,
        "disks": [{
            "boot": True, "autoDelete": True, "type": "PERSISTENT",
            "initializeParams": {"diskSizeGb": node_type.disk_gb, "sourceImage": node_type.vm_image},
        }],
        # No accessConfigs: no public IP; images come through Cloud NAT.
        "networkInterfaces": [{"subnetwork": spec.subnetwork}],
        "serviceAccounts": [{"email": spec.worker_service_account, "scopes": [CLOUD_PLATFORM_SCOPE]}],
        "metadata": {"items": metadata},
        "tags": {"items": [spec.network_tag]},
        "labels": dict(node_type.labels),
    }
    if node_type.attached_gpu:
        config["guestAccelerators"] = [{
            "acceleratorType": f"projects/{spec.project}/zones/{spec.zone}/acceleratorTypes/{node_type.attached_gpu}",
            "acceleratorCount": node_type.attached_gpus,
        }]
    scheduling: dict[str, Any] = {}
    if gpus or node_type.spot:
        scheduling = {"onHostMaintenance": "TERMINATE", "automaticRestart": False}  # GPUs cannot live-migrate
    if node_type.spot:
        scheduling.update(provisioningModel="SPOT", instanceTerminationAction="DELETE")
    if scheduling:
        config["scheduling"] = scheduling
    return config


def _node_type(spec: ClusterSpec, node_type: NodeTypeSpec, ssh_public_key: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resources": {k: int(v) for k, v in node_type.node.ray_resources().items()},
        "min_workers": node_type.min_workers,
        "max_workers": node_type.max_workers,
        "node_config": node_config(spec, node_type, ssh_public_key),
    }
    docker: dict[str, Any] = {}
    if node_type.image and node_type.image != spec.image:
        docker["worker_image"] = node_type.image
    if node_type.node.gpus:
        docker["worker_run_options"] = ["--gpus all"]
        # A node type's own list replaces the cluster's, so it repeats the registry login.
        entry["initialization_commands"] = [NVIDIA_DRIVER_WAIT, *spec.initialization_commands]
    if docker:
        entry["docker"] = docker
    return entry


def cluster_config(spec: ClusterSpec, ssh_public_key: str) -> dict[str, Any]:
    """The whole autoscaler config. Every list Ray would otherwise fill from its GCP defaults is given, so
    nothing (such as the defaults' `pip install` of a nightly wheel) runs that we did not write."""
    run_options = [f"--ulimit nofile={OPEN_FILES}:{OPEN_FILES}"]
    run_options += [f"--env={k}={v}" for k, v in sorted(spec.env.items())]
    run_options += [f"--volume={m}" for m in spec.mounts]
    return {
        "cluster_name": spec.cluster_name,
        "max_workers": spec.max_workers,
        "upscaling_speed": spec.upscaling_speed,
        "idle_timeout_minutes": spec.idle_timeout_minutes,
        "provider": {
            "type": "gcp",
            "region": spec.region,
            "availability_zone": spec.zone,
            "project_id": spec.project,
            "use_internal_ips": True,  # workers have no public IPs; the head reaches them inside the VPC
            "cache_stopped_nodes": False,  # scale-down deletes VMs: a stopped VM would still cost its disk
        },
        "auth": {"ssh_user": spec.ssh_user, "ssh_private_key": KEY_PATH},
        "docker": {
            "image": spec.image,
            "container_name": CONTAINER_NAME,
            "pull_before_run": True,
            "run_options": run_options,
        },
        "available_node_types": {
            spec.head.name: _node_type(spec, spec.head, ssh_public_key),
            **{w.name: _node_type(spec, w, ssh_public_key) for w in spec.workers},
        },
        "head_node_type": spec.head.name,
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": list(spec.initialization_commands),
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        # The head is started by its VM's startup script, not by the autoscaler; kept empty so nothing restarts it.
        "head_start_ray_commands": [],
        "worker_start_ray_commands": ["ray stop", worker_start_command_for_all(spec)],
    }


def worker_start_command_for_all(spec: ClusterSpec) -> str:
    """One start command for every worker type: the autoscaler exports the type's resources to `ray start`
    (RAY_OVERRIDE_RESOURCES), so the command only needs the head's address and the shared flags."""
    args = ["ray", "start", f"--address={HEAD_ADDRESS}:{spec.gcs_port}", f"--metrics-export-port={METRICS_PORT}",
            "--disable-usage-stats"]
    return f"ulimit -n {OPEN_FILES}; {_shell(args)}"


def cluster_yaml(spec: ClusterSpec, ssh_public_key: str) -> str:
    return yaml.safe_dump(cluster_config(spec, ssh_public_key), sort_keys=False, width=1000)
