"""CloudBuild: a private worker pool peered to the VPC, a least-privilege build service account, and the
image builds of `images/<name>/` (each a CloudBuildImage: rebuilt only when its context changes, pushed
through the build's `images:` field to Artifact Registry, returned by digest).

Private Services Access (a reserved range + the service networking peering) comes first; the pool peers
through it. Builds need no cluster: nothing here waits for one.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_gcp as gcp
import yaml

from components.gke.cloud_build_image import CloudBuildImage, CloudBuildImageProvider

BUILD_CONFIG = "cloudbuild.yaml"
SOURCE_RETENTION_DAYS = 7  # uploaded build contexts are only needed while their build runs


@dataclass(frozen=True)
class ImageSpec:
    name: str  # the image's repository name, e.g. ray-base
    context_dir: Path  # holds cloudbuild.yaml and the Dockerfile
    substitutions: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    base: str | None = None  # another image of this build whose image_ref becomes _BASE_IMAGE

    def __post_init__(self) -> None:
        if not (self.context_dir / BUILD_CONFIG).is_file():
            raise ValueError(f"context_dir: {self.context_dir} has no {BUILD_CONFIG} (allowed: a folder of images/ "
                             "with a Cloud Build config)")
        bad = [k for k in self.substitutions if not k.startswith("_")]
        if bad:
            raise ValueError(f"substitutions: {bad} (allowed: user substitutions start with '_')")


def context_files(context_dir: Path) -> dict[str, str]:
    """Every file of a build context, by relative path (the contexts are small text files)."""
    return {str(p.relative_to(context_dir)): p.read_text()
            for p in sorted(context_dir.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def context_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return digest.hexdigest()


def build_request(config: dict[str, Any], *, image: Any, substitutions: dict[str, Any], pool: Any,
                  service_account: Any, timeout_seconds: int) -> dict[str, Any]:
    """The Cloud Build `Build` body (without its source): steps and images from the context's config, run on
    the private pool as the build service account. VERIFIED asks Cloud Build for the provenance and the
    `built-by-cloud-build` attestation that Binary Authorization checks."""
    if "${_IMAGE}" not in (config.get("images") or []):
        raise ValueError(f"{BUILD_CONFIG}: `images:` must list ${{_IMAGE}} (pushing there is what gets attested)")
    return {
        "steps": config["steps"],
        "images": config["images"],
        "substitutions": {**(config.get("substitutions") or {}), **substitutions, "_IMAGE": image},
        "options": {**(config.get("options") or {}), "pool": {"name": pool}, "logging": "CLOUD_LOGGING_ONLY",
                    "requestedVerifyOption": "VERIFIED"},
        "serviceAccount": service_account,
        "timeout": f"{timeout_seconds}s",
        "tags": ["ray-platform"],
    }


@dataclass(frozen=True)
class CloudBuildArgs:
    project: str
    region: str
    prefix: str
    network: pulumi.Input[str]  # the VPC id the pool peers with
    private_services_cidr: str
    push_repository: gcp.artifactregistry.Repository  # docker local: the build service account writes here
    pull_repositories: list[gcp.artifactregistry.Repository]  # docker + python virtual: read only
    push_path: pulumi.Input[str]  # <region>-docker.pkg.dev/<project>/<repo>
    images: list[ImageSpec]
    machine_type: str = "e2-highcpu-32"
    disk_size_gb: int = 200
    public_egress: bool = True
    timeout_minutes: int = 60
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        net = ipaddress.IPv4Network(self.private_services_cidr)
        if net.prefixlen > 24:
            raise ValueError(f"private_services_cidr: {self.private_services_cidr!r} (allowed: /24 or wider)")
        names = [i.name for i in self.images]
        if len(set(names)) != len(names):
            raise ValueError(f"images: {names} repeat a name (allowed: unique names)")
        for i, spec in enumerate(self.images):
            if spec.base is not None and spec.base not in names[:i]:
                raise ValueError(f"images[{i}].base: {spec.base!r} is not an image built before it "
                                 f"(allowed: {names[:i]})")


class CloudBuild(pulumi.ComponentResource):
    worker_pool: gcp.cloudbuild.WorkerPool
    service_account: gcp.serviceaccount.Account
    images: dict[str, CloudBuildImage]  # by name, in build order: the first is what Binary Authorization waits for
    image_refs: dict[str, pulumi.Output[str]]  # repository@sha256:...

    def __init__(self, name: str, args: CloudBuildArgs, opts: pulumi.ResourceOptions | None = None,
                 provider: CloudBuildImageProvider | None = None):
        super().__init__("ray-platform:gke:CloudBuild", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        after_services = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        psa = ipaddress.IPv4Network(args.private_services_cidr)
        psa_range = gcp.compute.GlobalAddress(
            f"{name}-psa-range",
            name=f"{args.prefix}-psa",
            project=args.project,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            address=str(psa.network_address),
            prefix_length=psa.prefixlen,
            network=args.network,
            opts=after_services,
        )
        peering = gcp.servicenetworking.Connection(
            f"{name}-psa",
            network=args.network,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[psa_range.name],
            # Removing the peering fails while Google's side still holds it after the pool is gone: abandon it.
            deletion_policy="ABANDON",
            opts=child,
        )
        self.worker_pool = gcp.cloudbuild.WorkerPool(
            f"{name}-pool",
            name=f"{args.prefix}-pool",
            project=args.project,
            location=args.region,
            worker_config={"machine_type": args.machine_type, "disk_size_gb": args.disk_size_gb,
                           "no_external_ip": not args.public_egress},
            network_config={"peered_network": args.network},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[peering]),
        )
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-builder",
            account_id=f"{args.prefix}-builder",
            display_name="Cloud Build: ray-platform images",
            project=args.project,
            opts=after_services,
        )
        member = self.service_account.member
        sources = gcp.storage.Bucket(
            f"{name}-sources",
            name=f"{args.project}-{args.prefix}-build-sources",
            project=args.project,
            location=args.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=True,  # only disposable build contexts live here
            lifecycle_rules=[{"action": {"type": "Delete"}, "condition": {"age": SOURCE_RETENTION_DAYS}}],
            # Disposable, but the project's policy protects every bucket; `pulumi state unprotect` before destroy.
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on, protect=True),
        )
        grants = [
            gcp.projects.IAMMember(f"{name}-builder-logs", project=args.project, role="roles/logging.logWriter",
                                   member=member, opts=child),
            gcp.storage.BucketIAMMember(f"{name}-builder-sources", bucket=sources.name,
                                        role="roles/storage.objectViewer", member=member, opts=child),
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-builder-push", project=args.project, location=args.region,
                repository=args.push_repository.name, role="roles/artifactregistry.writer", member=member, opts=child),
        ]
        grants += [
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-builder-pull-{i}", project=args.project, location=args.region, repository=repo.name,
                role="roles/artifactregistry.reader", member=member, opts=child)
            for i, repo in enumerate(args.pull_repositories)
        ]
        # The pool's full resource name, as a build's options.pool.name wants it.
        pool_name = pulumi.Output.concat(
            "projects/", args.project, "/locations/", args.region, "/workerPools/", self.worker_pool.name)
        builder = self.service_account.email.apply(lambda e: f"projects/{args.project}/serviceAccounts/{e}")
        self.images, self.image_refs = {}, {}
        for spec in args.images:
            files = context_files(spec.context_dir)
            digest = context_hash(files)
            substitutions = dict(spec.substitutions)
            if spec.base:
                substitutions["_BASE_IMAGE"] = self.images[spec.base].image_ref
            image = pulumi.Output.from_input(args.push_path).apply(lambda p, n=spec.name, d=digest: f"{p}/{n}:{d[:12]}")
            request = build_request(
                yaml.safe_load(files[BUILD_CONFIG]), image=image, substitutions=substitutions,
                pool=pool_name, service_account=builder, timeout_seconds=args.timeout_minutes * 60)
            built = CloudBuildImage(
                f"{name}-{spec.name}",
                {"project": args.project, "location": args.region, "image": image, "files": files,
                 "context_hash": digest, "build": request, "source_bucket": sources.name,
                 "source_object": f"sources/{spec.name}-{digest[:16]}.tar.gz",
                 "timeout_seconds": args.timeout_minutes * 60},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*grants, self.worker_pool]),
                provider=provider,
            )
            self.images[spec.name] = built
            self.image_refs[spec.name] = built.image_ref
        self.register_outputs({"worker_pool": pool_name, "image_refs": self.image_refs})
