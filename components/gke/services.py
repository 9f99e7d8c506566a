"""Project services: every Google API the `gke` stack uses, enabled once, for the resources that need them to
depend on. Services stay enabled on destroy (other things in the project may use them)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

SERVICES = (
    "artifactregistry.googleapis.com",
    "binaryauthorization.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "containeranalysis.googleapis.com",  # Binary Authorization reads Cloud Build's attestations here
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "storage.googleapis.com",
)


@dataclass(frozen=True)
class ProjectServicesArgs:
    project: str
    services: tuple[str, ...] = SERVICES

    def __post_init__(self) -> None:
        bad = [s for s in self.services if not s.endswith(".googleapis.com")]
        if bad:
            raise ValueError(f"services: {bad} are not Google API names (allowed: NAME.googleapis.com)")
        if len(set(self.services)) != len(self.services):
            raise ValueError("services: listed more than once (allowed: each service once)")


class ProjectServices(pulumi.ComponentResource):
    """`enabled` is what a resource needing these APIs depends on."""

    enabled: list[gcp.projects.Service]
    by_name: dict[str, gcp.projects.Service]  # "compute" -> compute.googleapis.com

    def __init__(self, name: str, args: ProjectServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:ProjectServices", name, None, opts)
        self.enabled = [
            gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in args.services
        ]
        self.by_name = {service.split(".")[0]: s for service, s in zip(args.services, self.enabled, strict=True)}
        self.register_outputs({"services": [s.service for s in self.enabled]})

    def of(self, *names: str) -> list[gcp.projects.Service]:
        """The services a resource needs, to depend on: `of("compute", "container")`."""
        unknown = [n for n in names if n not in self.by_name]
        if unknown:
            raise ValueError(f"services {unknown} are not enabled by this stack (allowed: {', '.join(self.by_name)})")
        return [self.by_name[n] for n in names]
