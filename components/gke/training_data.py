"""TrainingData: the GCS bucket for training data and checkpoints, and the least-privilege identity Ray pods use.

The bucket (uniform access, no public access, hierarchical namespace or object versioning) is protected from
`pulumi destroy`. A Google
service account gets only object access on that bucket (read-write or read-only) and secretAccessor on the
named secrets; the Ray Kubernetes service account may impersonate it through Workload Identity, nothing else may.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

BUCKET_ROLES = {"read-write": "roles/storage.objectUser", "read-only": "roles/storage.objectViewer"}
SECRET_ROLE = "roles/secretmanager.secretAccessor"
WORKLOAD_IDENTITY_ROLE = "roles/iam.workloadIdentityUser"


@dataclass(frozen=True)
class TrainingDataArgs:
    project: str
    location: str
    bucket_name: str
    access: str  # read-write | read-only
    workload_pool: str  # <project>.svc.id.goog
    namespace: str  # of the Ray pods
    kubernetes_service_account: str
    account_id: str  # the Google service account's id
    secrets: list[str] = field(default_factory=list)
    # Folders with atomic renames (fast checkpoint commits through GCS FUSE), as Cluster Toolkit's training bucket.
    hierarchical_namespace: bool = True
    versioning: bool = False
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.access not in BUCKET_ROLES:
            raise ValueError(f"access: {self.access!r} (allowed: {', '.join(BUCKET_ROLES)})")
        if not re.match(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", self.account_id):
            raise ValueError(f"account_id: {self.account_id!r} (allowed: 6-30 lowercase letters, digits and '-')")
        if self.hierarchical_namespace and self.versioning:
            raise ValueError("versioning: true with hierarchical_namespace (allowed: one of them; HNS buckets cannot "
                             "use Object Versioning)")
        if not self.workload_pool.endswith(".svc.id.goog"):
            raise ValueError(f"workload_pool: {self.workload_pool!r} (allowed: <project>.svc.id.goog)")

    @property
    def kubernetes_member(self) -> str:
        return f"serviceAccount:{self.workload_pool}[{self.namespace}/{self.kubernetes_service_account}]"


class TrainingData(pulumi.ComponentResource):
    bucket: gcp.storage.Bucket
    service_account: gcp.serviceaccount.Account  # the Workload Identity service account of the Ray pods
    uri: pulumi.Output[str]  # gs://bucket

    def __init__(self, name: str, args: TrainingDataArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:TrainingData", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Training data and checkpoints outlive the cluster: protected, and never force-destroyed with objects.
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=args.bucket_name,
            project=args.project,
            location=args.location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            # HNS is set when the bucket is created and never changes (the bucket is protected, so no replacement).
            hierarchical_namespace={"enabled": args.hierarchical_namespace},
            versioning={"enabled": args.versioning},
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True,
                                        depends_on=args.depends_on),
        )
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-ray",
            account_id=args.account_id,
            display_name="Ray workloads (Workload Identity)",
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        member = self.service_account.member
        gcp.storage.BucketIAMMember(
            f"{name}-bucket-{args.access}", bucket=self.bucket.name, role=BUCKET_ROLES[args.access], member=member,
            opts=child)
        for secret in args.secrets:
            gcp.secretmanager.SecretIamMember(
                f"{name}-secret-{secret}", project=args.project, secret_id=secret, role=SECRET_ROLE, member=member,
                opts=child)
        gcp.serviceaccount.IAMMember(
            f"{name}-workload-identity", service_account_id=self.service_account.name, role=WORKLOAD_IDENTITY_ROLE,
            member=args.kubernetes_member, opts=child)
        self.uri = self.bucket.name.apply(lambda b: f"gs://{b}")
        self.register_outputs({"bucket": self.bucket.name, "service_account": self.service_account.email})
