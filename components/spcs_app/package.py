"""The provider's side of the Native App: application package, a stage inside it, the app's files (uploaded
only when their content changes), a version or patch, the default release directive, an optional private
listing to named accounts, and an optional test install in the provider's own account.

Order is explicit: package -> schema -> stage -> files -> version/patch -> release directive -> listing and
test install. The package holds every version consumers run: protected and retained on delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_snowflake as snowflake
import yaml

from components.spcs.sql import StageFiles
from components.spcs_app.app_files import files_digest
from components.spcs_app.sql_provider import AppVersion, ReleaseDirective

DISTRIBUTIONS = ("INTERNAL", "EXTERNAL")


@dataclass(frozen=True)
class ListingArgs:
    name: str
    title: str
    accounts: list[str]  # ORG.ACCOUNT of each consumer

    def __post_init__(self) -> None:
        bad = [a for a in self.accounts if a.count(".") != 1]
        if not self.accounts or bad:
            raise ValueError(f"listing accounts {bad or self.accounts} (allowed: one or more ORG.ACCOUNT names)")


@dataclass(frozen=True)
class SpcsAppPackageArgs:
    package: str
    stage_schema: str
    stage: str
    files: dict[str, str]  # path -> content (app_files.app_files)
    version: str
    label: str
    distribution: str
    connection: dict[str, str]  # account, user, role: not secret; the key is read from the environment
    provider: snowflake.Provider  # the same role, for snowflake.* resources
    listing: ListingArgs | None = None
    test_install: str | None = None  # application name in the provider's account
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # e.g. the pushed images

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution {self.distribution!r} (allowed: {', '.join(DISTRIBUTIONS)})")
        for key in ("setup_script.sql", "manifest.yml"):
            if key not in self.files:
                raise ValueError(f"files: {key} missing (allowed: the app's files with manifest.yml and setup script)")


def listing_manifest(args: ListingArgs) -> str:
    """A private listing: visible to, and installable by, the named accounts only."""
    return yaml.safe_dump({"title": args.title, "subtitle": "Ray and RayDP on Snowpark Container Services",
                           "description": "Multi-node, multi-GPU Ray clusters in your account, as a Native App.",
                           "listing_terms": {"type": "OFFLINE"}, "targets": {"accounts": sorted(args.accounts)}},
                          sort_keys=False)


class SpcsAppPackage(pulumi.ComponentResource):
    location: pulumi.Output[str]
    patch: pulumi.Output[int]

    def __init__(self, name: str, args: SpcsAppPackageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs_app:SpcsAppPackage", name, None, opts)
        self._args = args
        pkg, stage_fqn = args.package, f"{args.package}.{args.stage_schema}.{args.stage}"
        package = self._sql(f"{name}-package",
                            f"CREATE APPLICATION PACKAGE IF NOT EXISTS {pkg} ENABLE_RELEASE_CHANNELS = TRUE "
                            f"DISTRIBUTION = {args.distribution} COMMENT = 'ray-platform: Ray on SPCS'",
                            f"DROP APPLICATION PACKAGE IF EXISTS {pkg}", query=f"SHOW APPLICATION PACKAGES LIKE '{pkg}'",
                            protect=True, retain_on_delete=True, depends_on=args.depends_on)
        schema = self._sql(f"{name}-schema", f"CREATE SCHEMA IF NOT EXISTS {pkg}.{args.stage_schema}",
                           f"DROP SCHEMA IF EXISTS {pkg}.{args.stage_schema}", depends_on=[package])
        stage = self._sql(f"{name}-stage",
                          f"CREATE STAGE IF NOT EXISTS {stage_fqn} DIRECTORY = (ENABLE = TRUE) "
                          "ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE')", f"DROP STAGE IF EXISTS {stage_fqn}",
                          depends_on=[schema])
        files = StageFiles(f"{name}-files", {"connection": args.connection, "stage": stage_fqn,
                                                "folder": f"v-{files_digest(args.files)}", "files": args.files},
                              opts=self._opts(depends_on=[stage], dynamic=True))
        self.location = files.location
        version = AppVersion(f"{name}-version", {"connection": args.connection, "package": pkg,
                                                 "version": args.version, "label": args.label,
                                                 "location": files.location},
                             opts=self._opts(depends_on=[files], dynamic=True))
        self.patch = version.patch
        directive = ReleaseDirective(f"{name}-release", {"connection": args.connection, "package": pkg,
                                                         "version": args.version, "patch": version.patch,
                                                         "distribution": args.distribution},
                                     opts=self._opts(depends_on=[version], dynamic=True))
        if args.listing is not None:
            snowflake.Listing(f"{name}-listing", name=args.listing.name, application_package=pkg,
                              manifest=snowflake.ListingManifestArgs(from_string=listing_manifest(args.listing)),
                              publish="true", comment="ray-platform: Ray on SPCS, private listing",
                              opts=self._opts(depends_on=[directive]))
        if args.test_install:
            app = args.test_install
            # No IF NOT EXISTS in CREATE APPLICATION's grammar; the package's own account may install from it
            # (https://docs.snowflake.com/en/sql-reference/sql/create-application).
            install = pulumi.Output.concat(
                f"CREATE APPLICATION {app} FROM APPLICATION PACKAGE {pkg} USING VERSION {args.version} "
                "PATCH ", version.patch.apply(str))
            # Same name on every change: drop the old install before creating the new one.
            self._sql(f"{name}-test-install", install, f"DROP APPLICATION IF EXISTS {app} CASCADE",
                      depends_on=[directive], delete_before_replace=True)
        self.register_outputs({"location": self.location, "patch": self.patch})

    def _opts(self, dynamic: bool = False, **kwargs: Any) -> pulumi.ResourceOptions:
        # Dynamic resources carry their own connection; snowflake.* ones use the explicit provider.
        return pulumi.ResourceOptions(parent=self, provider=None if dynamic else self._args.provider, **kwargs)

    def _sql(self, name: str, execute: pulumi.Input[str], revert: str, query: str | None = None,
             **opts: Any) -> snowflake.Execute:
        return snowflake.Execute(name, execute=execute, revert=revert, query=query, opts=self._opts(**opts))
