"""The head VM: Docker, the Ray head container and the autoscaler, started by its startup script.

The SSH key the autoscaler uses to reach workers is generated here; its private half goes only into a
Secret Manager version (a Pulumi secret) that the head's service account may read; the public half goes
into every worker's metadata through the autoscaler config.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pulumi
import pulumi_gcp as gcp
import pulumi_tls as tls

from components.gcpvm.autoscaler_config import CLOUD_PLATFORM_SCOPE, ClusterSpec, cluster_yaml
from components.gcpvm.ray_tags import head_labels, head_vm_name
from components.gcpvm.startup import HeadStartup, startup_script

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


@dataclass(frozen=True)
class HeadNodeArgs:
    spec: ClusterSpec  # the autoscaler config, less the SSH public key generated here
    startup: HeadStartup  # cluster_yaml left empty: filled in once the key exists
    service_account_email: str
    network_tags: list[str]
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.spec.network_tag not in self.network_tags:
            raise ValueError(f"the head must carry the cluster's network tag {self.spec.network_tag!r}")


class HeadNode(pulumi.ComponentResource):
    instance: gcp.compute.Instance
    name: str
    internal_ip: pulumi.Output[str]
    startup_script: pulumi.Output[str]

    def __init__(self, name: str, args: HeadNodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gcpvm:HeadNode", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec, head = args.spec, args.spec.head
        key = tls.PrivateKey(f"{name}-ssh-key", algorithm="ED25519", opts=child)
        secret = gcp.secretmanager.Secret(
            f"{name}-ssh-key", secret_id=args.startup.ssh_key_secret, project=spec.project,
            replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
            opts=child)
        version = gcp.secretmanager.SecretVersion(
            f"{name}-ssh-key", secret=secret.id, secret_data=pulumi.Output.secret(key.private_key_openssh), opts=child)
        reader = gcp.secretmanager.SecretIamMember(
            f"{name}-ssh-key-reader", project=spec.project, secret_id=secret.secret_id, role=SECRET_ACCESSOR,
            member=f"serviceAccount:{args.service_account_email}", opts=child)

        # The public key is not secret; un-secret it explicitly so the startup script is not hidden in previews.
        public_key = pulumi.Output.unsecret(key.public_key_openssh)
        self.startup_script = public_key.apply(
            lambda k: startup_script(replace(args.startup, cluster_yaml=cluster_yaml(spec, k))))
        self.name = head_vm_name(spec.cluster_name)
        self.instance = gcp.compute.Instance(
            f"{name}-vm", name=self.name, project=spec.project, zone=spec.zone, machine_type=head.machine_type,
            boot_disk=gcp.compute.InstanceBootDiskArgs(
                auto_delete=True,
                initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(image=head.vm_image,
                                                                                  size=head.disk_gb)),
            # No access_configs: no public IP. People come in through IAP; the VM goes out through Cloud NAT.
            network_interfaces=[gcp.compute.InstanceNetworkInterfaceArgs(subnetwork=spec.subnetwork)],
            service_account=gcp.compute.InstanceServiceAccountArgs(email=args.service_account_email,
                                                                   scopes=[CLOUD_PLATFORM_SCOPE]),
            metadata_startup_script=self.startup_script,
            tags=list(args.network_tags),
            labels={**args.labels, **head_labels(spec.cluster_name, head.name)},
            allow_stopping_for_update=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[version, reader]),
        )
        self.internal_ip = self.instance.network_interfaces.apply(lambda nics: nics[0].network_ip)
        self.register_outputs({"name": self.name, "internal_ip": self.internal_ip})
