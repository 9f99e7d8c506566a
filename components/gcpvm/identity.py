"""Service accounts: the autoscaler's (on the head) and the workers', each with the least it needs.

The autoscaler creates, lists, labels and deletes worker VMs (`compute.instanceAdmin.v1`) and attaches the
worker account to them (`iam.serviceAccountUser` on that one account only, not the project). Workers get
logging and metrics only here; registry, bucket and secret access is granted on those resources themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

AUTOSCALER_PROJECT_ROLES = ("roles/compute.instanceAdmin.v1", "roles/logging.logWriter",
                            "roles/monitoring.metricWriter")
WORKER_PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
FORBIDDEN_ROLES = ("roles/owner", "roles/editor", "roles/compute.admin", "roles/iam.serviceAccountAdmin")


@dataclass(frozen=True)
class ClusterIdentityArgs:
    project: str
    autoscaler_account_id: str  # the seed's ray-autoscaler-sa-v1, one per cluster here
    worker_account_id: str
    autoscaler_roles: tuple[str, ...] = AUTOSCALER_PROJECT_ROLES
    worker_roles: tuple[str, ...] = WORKER_PROJECT_ROLES

    def __post_init__(self) -> None:
        for account in (self.autoscaler_account_id, self.worker_account_id):
            if not 6 <= len(account) <= 30:
                raise ValueError(f"service account id {account!r} must be 6 to 30 characters")
        broad = sorted(set(FORBIDDEN_ROLES) & set(self.autoscaler_roles + self.worker_roles))
        if broad:
            raise ValueError(f"roles {broad} are broader than a Ray cluster needs")


def email(account_id: str, project: str) -> str:
    return f"{account_id}@{project}.iam.gserviceaccount.com"


class ClusterIdentity(pulumi.ComponentResource):
    autoscaler_email: pulumi.Output[str]
    worker_email: pulumi.Output[str]
    autoscaler_member: pulumi.Output[str]
    worker_member: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gcpvm:ClusterIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        autoscaler = gcp.serviceaccount.Account(
            f"{name}-autoscaler", account_id=args.autoscaler_account_id, project=args.project,
            display_name="Ray autoscaler (head VM)", opts=child)
        worker = gcp.serviceaccount.Account(
            f"{name}-worker", account_id=args.worker_account_id, project=args.project,
            display_name="Ray workers", opts=child)
        self.autoscaler_email, self.worker_email = autoscaler.email, worker.email
        self.autoscaler_member = pulumi.Output.concat("serviceAccount:", autoscaler.email)
        self.worker_member = pulumi.Output.concat("serviceAccount:", worker.email)
        for role in args.autoscaler_roles:
            gcp.projects.IAMMember(f"{name}-autoscaler-{role.split('/')[-1]}", project=args.project, role=role,
                                   member=self.autoscaler_member, opts=child)
        for role in args.worker_roles:
            gcp.projects.IAMMember(f"{name}-worker-{role.split('/')[-1]}", project=args.project, role=role,
                                   member=self.worker_member, opts=child)
        # Launching a VM that runs as the worker account requires acting as it: granted on that account only.
        self.act_as_worker = gcp.serviceaccount.IAMMember(
            f"{name}-autoscaler-acts-as-worker", service_account_id=worker.name, role="roles/iam.serviceAccountUser",
            member=self.autoscaler_member, opts=child)
        self.register_outputs({"autoscaler_email": self.autoscaler_email, "worker_email": self.worker_email})
