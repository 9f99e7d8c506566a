"""How the VMs pull the Ray image: anonymously (public), with their service accounts (Artifact Registry),
or with a username and a password kept in Secret Manager (another private registry).

Returns the host commands that log Docker in; the password is read on the VM from Secret Manager, so it is
in no metadata, no startup script and no autoscaler config, only in Pulumi state as a secret.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

READER = "roles/artifactregistry.reader"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


@dataclass(frozen=True)
class RegistryAccessArgs:
    project: str
    prefix: str
    mode: str  # "public" | "artifact-registry" | "password"
    host: str | None = None  # e.g. us-west1-docker.pkg.dev, registry.example.com
    artifact_location: str | None = None
    artifact_project: str | None = None
    artifact_repository: str | None = None
    username: str | None = None
    password: pulumi.Input[str] | None = None
    members: list[pulumi.Input[str]] = field(default_factory=list)  # who pulls: the head's and workers' accounts

    def __post_init__(self) -> None:
        needed = {"public": (), "artifact-registry": ("host", "artifact_location", "artifact_project",
                                                      "artifact_repository"),
                  "password": ("host", "username", "password")}
        if self.mode not in needed:
            raise ValueError(f"mode {self.mode!r} (allowed: {', '.join(needed)})")
        missing = [k for k in needed[self.mode] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"registry mode {self.mode!r} needs {missing}")


def login_commands(mode: str, project: str, host: str | None = None, username: str | None = None,
                   secret_id: str | None = None) -> list[str]:
    """Host commands that let `docker pull` reach the registry (gcloud is on the Deep Learning VM images)."""
    q = shlex.quote
    if mode == "artifact-registry":
        return [f"gcloud auth configure-docker {q(host)} --quiet"]
    if mode == "password":
        return [f"gcloud secrets versions access latest --secret={q(secret_id)} --project={q(project)} | "
                f"docker login {q(host)} --username {q(username)} --password-stdin"]
    return []


class RegistryAccess(pulumi.ComponentResource):
    login_commands: list[str]

    def __init__(self, name: str, args: RegistryAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gcpvm:RegistryAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secret_id = None
        if args.mode == "artifact-registry":
            for i, member in enumerate(args.members):
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-reader-{i}", project=args.artifact_project, location=args.artifact_location,
                    repository=args.artifact_repository, role=READER, member=member, opts=child)
        elif args.mode == "password":
            secret_id = f"{args.prefix}-registry-password"
            secret = gcp.secretmanager.Secret(
                f"{name}-password", secret_id=secret_id, project=args.project,
                replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
                opts=child)
            gcp.secretmanager.SecretVersion(f"{name}-password", secret=secret.id,
                                            secret_data=pulumi.Output.secret(args.password), opts=child)
            for i, member in enumerate(args.members):
                gcp.secretmanager.SecretIamMember(f"{name}-accessor-{i}", project=args.project,
                                                  secret_id=secret.secret_id, role=SECRET_ACCESSOR, member=member,
                                                  opts=child)
        self.login_commands = login_commands(args.mode, args.project, args.host, args.username, secret_id)
        self.register_outputs({"mode": args.mode})
