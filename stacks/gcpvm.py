"""The `gcpvm` environment: a Ray head VM managed by Pulumi whose autoscaler launches worker VMs.

Network (VPC, firewall, Cloud NAT), service accounts, the workload image's registry access, a results
bucket, the head VM running Ray and the autoscaler on a generated cluster config, and a destroy-time
cleanup that terminates the autoscaler's workers before the head and network go.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random
import pulumi_tls as tls

from components.gcpvm import ray_token
from components.gcpvm.autoscaler_config import ClusterSpec, NodeTypeSpec
from components.gcpvm.cleanup import Target, WorkerCleanup
from components.gcpvm.head import HeadNode, HeadNodeArgs
from components.gcpvm.identity import ClusterIdentity, ClusterIdentityArgs, email
from components.gcpvm.machines import object_store_shm_bytes
from components.gcpvm.network import ClusterNetwork, ClusterNetworkArgs
from components.gcpvm.ray_tags import head_vm_name
from components.gcpvm.ray_token import RayTokenSecret, RayTokenSecretArgs
from components.gcpvm.registry import RegistryAccess, RegistryAccessArgs
from components.gcpvm.startup import HeadStartup
from components.gcpvm.storage import ResultsBucket, ResultsBucketArgs
from components.ray_node import HeadPorts, RayNode, capacity_entry
from components.versions import RAY_VERSION
from stacks.config.gcpvm import CPU_VM_IMAGE, GPU_VM_IMAGE, GcpVmConfig, Head, WorkerType
from stacks.secrets import ray_auth_token

APIS = ("compute.googleapis.com", "iam.googleapis.com", "iap.googleapis.com", "secretmanager.googleapis.com",
        "storage.googleapis.com")
ARTIFACT_REGISTRY_API = "artifactregistry.googleapis.com"  # only with an Artifact Registry image
HEAD_TYPE = "head"
PORTS = HeadPorts()


def apis_of(cfg: GcpVmConfig) -> tuple[str, ...]:
    return (*APIS, ARTIFACT_REGISTRY_API) if cfg.image.source == "private" and cfg.image.artifact_registry else APIS


def head_node(head: Head) -> RayNode:
    return RayNode(cpus=head.ray_cpus(), memory_gb=head.ray_memory_gb())


def worker_node(w: WorkerType) -> RayNode:
    return RayNode(cpus=w.ray_cpus(), memory_gb=w.ray_memory_gb(), gpus=w.gpus()[1], resources=dict(w.resources))


def capacity(cfg: GcpVmConfig) -> dict:
    """The contract's ray_capacity: the head, and each worker type up to what the autoscaler may launch."""
    out = {HEAD_TYPE: capacity_entry(head_node(cfg.head), 1, 1)}
    for w in cfg.worker_types:
        out[w.name] = capacity_entry(worker_node(w), w.min_workers, w.max_workers)
    return out


def subnetwork_path(cfg: GcpVmConfig) -> str:
    subnet = cfg.network.subnet or f"{cfg.cluster_name}-subnet"
    return f"projects/{cfg.project}/regions/{cfg.region}/subnetworks/{subnet}"


def registry_args(cfg: GcpVmConfig, members: list) -> RegistryAccessArgs:
    image, prefix = cfg.image, cfg.cluster_name
    if image.source == "public":
        return RegistryAccessArgs(project=cfg.project, prefix=prefix, mode="public")
    match = image.artifact_registry
    if match:
        return RegistryAccessArgs(
            project=cfg.project, prefix=prefix, mode="artifact-registry", host=image.registry_host,
            artifact_location=match.group(1), artifact_project=match.group(2), artifact_repository=match.group(3),
            members=members)
    return RegistryAccessArgs(
        project=cfg.project, prefix=prefix, mode="password", host=image.registry_host,
        username=image.registry_username, password=pulumi.Output.secret(cfg.registry_password.get_secret_value()),
        members=members)


def cluster_spec(cfg: GcpVmConfig, login_commands: list[str], token_secret: str | None = None) -> ClusterSpec:
    """The autoscaler's view of the cluster, from the config alone (plain values, no Outputs). `token_secret`:
    the Secret Manager secret each worker reads Ray's token from at boot (None: Ray without auth)."""
    def node_type(w: WorkerType) -> NodeTypeSpec:
        gpu_type, gpus = w.gpus()
        attached = w.accelerator_type if w.accelerator_type and not w.machine_type.startswith(("g2-", "a2-", "a3-")) \
            else None
        return NodeTypeSpec(
            name=w.name, machine_type=w.machine_type, disk_gb=w.disk_gb,
            vm_image=w.vm_image or (GPU_VM_IMAGE if gpus else CPU_VM_IMAGE), node=worker_node(w),
            min_workers=w.min_workers, max_workers=w.max_workers, attached_gpu=attached,
            attached_gpus=w.accelerator_count if attached else 0, spot=w.spot,
            image=w.image or (cfg.image.for_gpus() if gpu_type else cfg.image.ref))

    head = NodeTypeSpec(name=HEAD_TYPE, machine_type=cfg.head.machine_type, disk_gb=cfg.head.disk_gb,
                        vm_image=cfg.head.vm_image or CPU_VM_IMAGE, node=head_node(cfg.head))
    return ClusterSpec(
        cluster_name=cfg.cluster_name, project=cfg.project, region=cfg.region, zone=cfg.zone,
        subnetwork=subnetwork_path(cfg), network_tag=network_tag(cfg),
        worker_service_account=email(f"{cfg.cluster_name}-workers", cfg.project), ssh_user=cfg.ssh_user,
        image=cfg.image.ref, head=head, workers=[node_type(w) for w in cfg.worker_types],
        max_workers=cfg.total_max_workers, idle_timeout_minutes=cfg.idle_timeout_minutes,
        upscaling_speed=cfg.upscaling_speed, gcs_port=PORTS.gcs,
        initialization_commands=[*login_commands,
                                 *(ray_token.fetch_commands(token_secret, cfg.project) if token_secret else [])],
        env={"RAY_PLATFORM_STORAGE_URI": f"gs://{cfg.bucket_name}",
             **(ray_token.container_env() if token_secret else {"RAY_AUTH_MODE": "disabled"})},
        mounts=[ray_token.docker_mount()] if token_secret else [],
    )


def network_tag(cfg: GcpVmConfig) -> str:
    return f"{cfg.cluster_name}-node"


def access(cfg: GcpVmConfig) -> dict:
    """An IAP TCP tunnel to the head's dashboard: IAM-authenticated, no public IP, no open port."""
    local = f"127.0.0.1:{PORTS.dashboard}"
    where = ["--zone", cfg.zone, "--project", cfg.project]
    head = head_vm_name(cfg.cluster_name)
    return {
        "mode": "port-forward",
        "command": ["gcloud", "compute", "start-iap-tunnel", head, str(PORTS.dashboard), f"--local-host-port={local}",
                    *where],
        "local_dashboard_url": f"http://{local}",
        "ssh_command": ["gcloud", "compute", "ssh", head, "--tunnel-through-iap", *where],
    }


def build(cfg: GcpVmConfig) -> dict:
    prefix = cfg.cluster_name
    gcp_provider = gcp.Provider("gcp", project=cfg.project, region=cfg.region, zone=cfg.zone)
    tls_provider = tls.Provider("tls")
    apis = [
        gcp.projects.Service(f"api-{service.split('.')[0]}", project=cfg.project, service=service,
                             disable_on_destroy=False,  # other workloads in the project may use them
                             opts=pulumi.ResourceOptions(provider=gcp_provider))
        for service in apis_of(cfg) if cfg.enable_apis
    ]
    base = pulumi.ResourceOptions(providers={"gcp": gcp_provider, "tls": tls_provider}, depends_on=apis)
    head_tag = f"{prefix}-head"

    network = ClusterNetwork("network", ClusterNetworkArgs(
        prefix=prefix, project=cfg.project, region=cfg.region, network_tag=network_tag(cfg), head_tag=head_tag,
        subnet_cidr=cfg.network.subnet_cidr, existing_network=cfg.network.name, existing_subnet=cfg.network.subnet,
        tunnel_source_ranges=list(cfg.network.ssh_source_ranges), dashboard_port=PORTS.dashboard,
        nat=cfg.network.nat), opts=base)
    identity = ClusterIdentity("identity", ClusterIdentityArgs(
        project=cfg.project, autoscaler_account_id=f"{prefix}-autoscaler", worker_account_id=f"{prefix}-workers"),
        opts=base)
    members = [identity.autoscaler_member, identity.worker_member]
    registry = RegistryAccess("registry", registry_args(cfg, members), opts=base)
    results = ResultsBucket("results", ResultsBucketArgs(project=cfg.project, name=cfg.bucket_name,
                                                         location=cfg.region.upper(), writers=members), opts=base)

    # Ray's token: in Secret Manager, read at boot by the head and by every worker the autoscaler launches.
    token = ray_auth_token(cfg, pulumi.ResourceOptions(provider=random.Provider("random")))
    token_secret = None
    if token is not None:
        token_secret = RayTokenSecret("ray-auth-token", RayTokenSecretArgs(
            project=cfg.project, secret_id=f"{prefix}-ray-auth-token", token=token, readers=members), opts=base)
    spec = cluster_spec(cfg, registry.login_commands, token_secret=f"{prefix}-ray-auth-token" if token else None)
    startup = HeadStartup(
        cluster_yaml="", image=cfg.image.ref, node=spec.head.node, project=cfg.project,
        ssh_key_secret=f"{prefix}-autoscaler-ssh-key",
        shm_bytes=object_store_shm_bytes(cfg.head.machine_memory_gb()), ports=PORTS, registry_login=registry.login_commands,
        env=spec.env,
        ray_token_secret=f"{prefix}-ray-auth-token" if token else None)
    head = HeadNode("head", HeadNodeArgs(
        spec=spec, startup=startup, service_account_email=email(f"{prefix}-autoscaler", cfg.project),
        network_tags=[network_tag(cfg), head_tag]),
        opts=pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(
            depends_on=[network, identity, registry, results, *(token_secret.ready if token_secret else [])])))
    # Depends on the head and the network, so `pulumi destroy` deletes it (and the workers) before them.
    WorkerCleanup("worker-cleanup", Target(cfg.project, cfg.zone, cfg.cluster_name, head.name),
                  opts=pulumi.ResourceOptions(depends_on=[head, network, identity]))

    return {
        "environment": "gcpvm",
        "ray_version": RAY_VERSION,
        "ray_dashboard_url": access(cfg)["local_dashboard_url"],
        # The Ray client port is not tunnelled by default; `access.ssh_command` with `-- -L 10001:...` reaches it.
        "ray_client_address": None,
        "ray_capacity": capacity(cfg),
        "grafana_url": None,
        "prometheus_url": None,
        "jupyter_url": None,
        "storage": {"uri": results.uri, "endpoint": None},
        "access": access(cfg),
        "ray_auth_token": token,
        "head": {"name": head.name, "zone": cfg.zone, "internal_ip": head.internal_ip,
                 "cluster_dashboard_url": head.internal_ip.apply(lambda ip: f"http://{ip}:{PORTS.dashboard}")},
        "service_accounts": {"autoscaler": identity.autoscaler_email, "workers": identity.worker_email},
    }
