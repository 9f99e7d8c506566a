"""The results bucket (the seed's `--cloud_dir gs://...`): private, uniform access, kept on destroy."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

OBJECT_ADMIN = "roles/storage.objectAdmin"


@dataclass(frozen=True)
class ResultsBucketArgs:
    project: str
    name: str
    location: str
    writers: list[pulumi.Input[str]] = field(default_factory=list)  # IAM members that read and write objects


class ResultsBucket(pulumi.ComponentResource):
    uri: str

    def __init__(self, name: str, args: ResultsBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gcpvm:ResultsBucket", name, None, opts)
        # Results outlive the cluster: protected (the policy pack's rule, which `pulumi preview --policy-pack`
        # can check) and retained, so even after `pulumi state unprotect` a destroy leaves it in GCP.
        bucket = gcp.storage.Bucket(
            name, name=args.name, project=args.project, location=args.location,
            uniform_bucket_level_access=True, public_access_prevention="enforced",
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True))
        for i, member in enumerate(args.writers):
            gcp.storage.BucketIAMMember(f"{name}-writer-{i}", bucket=bucket.name, role=OBJECT_ADMIN, member=member,
                                        opts=pulumi.ResourceOptions(parent=self))
        self.uri = f"gs://{args.name}"
        self.register_outputs({"uri": self.uri})
