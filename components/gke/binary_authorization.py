"""BinaryAuthorization: the project's policy requiring the `built-by-cloud-build` attestation, dry-run by default.

Google's system images are exempt (global policy evaluation), config adds allow-list patterns. The attestor
exists only once Cloud Build has built an image in the project, so the policy depends on the first build:
a fresh project needs no manual second step. The policy is a project singleton: destroying it resets the
project to Google's default policy (allow all), it is not deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

ENFORCEMENT = {"dryrun": "DRYRUN_AUDIT_LOG_ONLY", "enforce": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
ATTESTOR = "built-by-cloud-build"


@dataclass(frozen=True)
class BinaryAuthorizationArgs:
    project: str
    first_build: pulumi.Resource  # the attestor appears with the project's first Cloud Build build
    mode: str = "dryrun"
    allowlist: list[str] = field(default_factory=list)
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in ENFORCEMENT:
            raise ValueError(f"mode: {self.mode!r} (allowed: {', '.join(ENFORCEMENT)})")
        bad = [p for p in self.allowlist if not p or " " in p]
        if bad:
            raise ValueError(f"allowlist: {bad} (allowed: image name patterns such as gcr.io/project/*)")


class BinaryAuthorization(pulumi.ComponentResource):
    policy: gcp.binaryauthorization.Policy

    def __init__(self, name: str, args: BinaryAuthorizationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:BinaryAuthorization", name, None, opts)
        self.policy = gcp.binaryauthorization.Policy(
            f"{name}-policy",
            project=args.project,
            description="ray-platform: images must be built by Cloud Build",
            global_policy_evaluation_mode="ENABLE",  # Google-maintained system images are exempt
            admission_whitelist_patterns=[{"name_pattern": p} for p in args.allowlist],
            default_admission_rule={
                "evaluation_mode": "REQUIRE_ATTESTATION",
                "enforcement_mode": ENFORCEMENT[args.mode],
                "require_attestations_bies": [f"projects/{args.project}/attestors/{ATTESTOR}"],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.first_build, *args.depends_on]),
        )
        self.register_outputs({"mode": args.mode})
