"""Ray's token on gcpvm: kept in Secret Manager, read at boot by each VM's own service account into a file that only
the container user can read, and handed to Ray as RAY_AUTH_TOKEN_PATH. Never in metadata, a startup script or the
autoscaler config (those are readable by anyone who can list the VMs); only in Pulumi state, as a secret.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.ray_auth import node_env_from_file

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
TOKEN_DIR = "/etc/ray-platform"
TOKEN_PATH = f"{TOKEN_DIR}/ray_auth_token"  # the same path on the host and in the container (mounted read-only)
CONTAINER_UID = 1000  # the `ray` user of Ray's images (and of images/ray-gcpvm)
RETRY_SECONDS = 10


def fetch_commands(secret_id: str, project: str) -> list[str]:
    """Host commands (root through sudo, as the autoscaler's SSH user or the startup script) that write the token
    file from Secret Manager with the VM's service account, retrying until IAM has propagated."""
    q = shlex.quote
    fetch = (f"umask 077 && gcloud secrets versions access latest --secret={q(secret_id)} --project={q(project)} "
             f"> {q(TOKEN_PATH)}.new")
    return [
        f"sudo install -d -m 0755 {q(TOKEN_DIR)}",
        f"until sudo sh -c {q(fetch)}; do sleep {RETRY_SECONDS}; done",
        f"sudo chown {CONTAINER_UID} {q(TOKEN_PATH)}.new && sudo chmod 0400 {q(TOKEN_PATH)}.new "
        f"&& sudo mv {q(TOKEN_PATH)}.new {q(TOKEN_PATH)}",
    ]


def container_env() -> dict[str, str]:
    """What every Ray container gets: token mode, and the mounted file (not the token) in its environment."""
    return node_env_from_file(TOKEN_PATH)


def docker_mount() -> str:
    return f"{TOKEN_PATH}:{TOKEN_PATH}:ro"


@dataclass(frozen=True)
class RayTokenSecretArgs:
    project: str
    secret_id: str
    token: pulumi.Input[str]  # secret
    readers: list[pulumi.Input[str]] = field(default_factory=list)  # IAM members: the head's and the workers' accounts


class RayTokenSecret(pulumi.ComponentResource):
    """The Secret Manager secret holding Ray's token, and who may read it."""

    ready: list[pulumi.Resource]  # the version and its readers: VMs that read it at boot wait for these

    def __init__(self, name: str, args: RayTokenSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gcpvm:RayTokenSecret", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secret = gcp.secretmanager.Secret(
            name, secret_id=args.secret_id, project=args.project,
            replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
            opts=child)
        version = gcp.secretmanager.SecretVersion(name, secret=secret.id, secret_data=pulumi.Output.secret(args.token),
                                                  opts=child)
        readers = [gcp.secretmanager.SecretIamMember(f"{name}-reader-{i}", project=args.project,
                                                     secret_id=secret.secret_id, role=SECRET_ACCESSOR, member=member,
                                                     opts=child)
                   for i, member in enumerate(args.readers)]
        self.ready = [version, *readers]
        self.register_outputs({"secret_id": secret.secret_id})
