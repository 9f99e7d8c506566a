"""The Native App provider's configuration (`environment: spcs_app`): the account and role that publish it,
where its images live, the application package, version, release, listing and test install, and the instance
families the app ships specs for (a consumer's node groups pick among them).

Shared pieces (identifiers, warehouse, images) come from the `spcs` stack's model.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from components.spcs.families import family
from components.spcs.specs import ray_share, sidecars
from stacks.config import Strict
from stacks.config.spcs import (
    ADMIN_ROLES,
    MIN_HEAD_CPU,
    MIN_HEAD_MEMORY_GIB,
    CreditPrice,
    Images,
    Warehouse,
    identifier,
    known_family,
    repository_image,
)

ACCOUNT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")
CONSUMER_ACCOUNT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$")


def account_name(value: str) -> str:
    if not ACCOUNT.match(value):
        raise ValueError(f"{value!r} is not an organization or account name "
                         "(allowed: letters, digits and '_', as in ORGNAME-ACCOUNTNAME)")
    return value.upper()


def pem(value: SecretStr | None) -> SecretStr | None:
    if value is not None and "PRIVATE KEY-----" not in value.get_secret_value():
        raise ValueError("not a PEM private key (allowed: the contents of rsa_key.p8, "
                         "`pulumi config set --secret private_key < rsa_key.p8`)")
    return value


class Package(Strict):
    """`version` names a version: changed files add a patch to it; a new name adds a new version."""

    name: str = "RAY_APP_PKG"
    distribution: Literal["INTERNAL", "EXTERNAL"] = "INTERNAL"  # EXTERNAL: other orgs; Snowflake scans each version
    stage_schema: str = "APP_SRC"
    stage: str = "APP_STAGE"
    version: str = "V1"
    label: str = "Ray on SPCS"

    _ids = field_validator("name", "stage_schema", "stage", "version")(identifier)


class Listing(Strict):
    """A private listing: only the named accounts (ORG.ACCOUNT) see and install it."""

    enabled: bool = False
    name: str = "RAY_ON_SPCS"
    title: str = "Ray on Snowpark Container Services"
    accounts: list[str] = Field(default_factory=list)

    _name = field_validator("name")(identifier)

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        for account in value:
            if not CONSUMER_ACCOUNT.match(account):
                raise ValueError(f"{account!r} is not a consumer account (allowed: ORGNAME.ACCOUNTNAME)")
        return [a.upper() for a in value]


class TestInstall(Strict):
    """Install the released patch in the provider's own account (dropped with CASCADE on destroy)."""

    enabled: bool = False
    name: str = "RAY_APP_TEST"

    _name = field_validator("name")(identifier)


class Shapes(Strict):
    """Instance families the app ships a spec for: a head spec each, a worker spec template each."""

    head_families: list[str] = Field(default_factory=lambda: ["CPU_X64_M"], min_length=1)
    worker_families: list[str] = Field(default_factory=lambda: ["CPU_X64_M", "GPU_NV_S"], min_length=1)
    logs_volume_gib: int = Field(default=50, ge=10, le=1024)
    # Your own images (`name:tag`, pushed to image_repository yourself) that consumers' custom worker groups
    # may run; custom groups without an image run the app's Ray image.
    custom_images: list[str] = Field(default_factory=list)

    _custom_images = field_validator("custom_images")(lambda v: [repository_image(i) for i in v])

    @field_validator("head_families", "worker_families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        for name in value:
            known_family(name)
        return sorted(set(value))


class SpcsAppConfig(CreditPrice):
    environment: Literal["spcs_app"] = "spcs_app"
    organization_name: str
    account_name: str
    user: str
    admin_role: str = "ACCOUNTADMIN"  # creates the role and its account grants, nothing else
    role: str = "RAY_PROVIDER_ROLE"  # owns the objects, images and the application package
    grant_role_to_role: str | None = "SYSADMIN"
    name_prefix: str = "RAY"
    database: str = "RAY_PROVIDER_DB"
    schema_name: str = Field(default="RAY_PROVIDER_SCHEMA", alias="schema")
    warehouse: Warehouse = Warehouse()
    image_repository: str = "RAY_IMAGES"
    images: Images = Images()
    package: Package = Package()
    listing: Listing = Listing()
    test_install: TestInstall = TestInstall()
    shapes: Shapes = Shapes()
    raydp: bool = False
    monitoring: bool = True
    jupyter: bool = True
    # Ray's token authentication in the app's specs: the consumer binds a SECRET holding the token to the app's
    # `ray_auth_token` reference. `disabled` ships specs that run Ray without auth (the consumer's must match).
    ray_auth: Literal["token", "disabled"] = "token"
    # Secrets. Besides the provider's own login (like `spcs`), the app's uploads and versions run through
    # snowflake-connector-python, which reads SNOWFLAKE_PRIVATE_KEY(_PATH) from the environment of `pulumi up`.
    private_key: SecretStr | None = None
    private_key_passphrase: SecretStr | None = None
    registry_token: SecretStr | None = None

    SECRET_KEYS: ClassVar[tuple[str, ...]] = ("private_key", "private_key_passphrase", "registry_token")

    _ids = field_validator("admin_role", "role", "grant_role_to_role", "name_prefix", "database", "schema_name",
                           "image_repository")(lambda v: v if v is None else identifier(v))
    _accounts = field_validator("organization_name", "account_name")(account_name)
    _pem = field_validator("private_key")(pem)

    def cross_checks(self) -> list[str]:
        problems: list[str] = []
        if self.role in ADMIN_ROLES:
            problems.append(f"role: {self.role!r} cannot own the app's objects (allowed: a custom role, not "
                            f"{', '.join(ADMIN_ROLES)})")
        helpers = sidecars(self.monitoring, self.jupyter)
        for name in self.shapes.head_families:
            share = ray_share(family(name), helpers)
            if share.cpu < MIN_HEAD_CPU or share.memory_gib < MIN_HEAD_MEMORY_GIB:
                problems.append(f"shapes.head_families: {name} leaves {share.cpu} vCPU and {share.memory_gib} GiB for "
                                f"the Ray head beside its sidecars (allowed: at least {MIN_HEAD_CPU} vCPU and "
                                f"{MIN_HEAD_MEMORY_GIB} GiB)")
        if self.listing.enabled and not self.listing.accounts:
            problems.append("listing.accounts: empty with listing.enabled true (allowed: one or more ORGNAME.ACCOUNTNAME)")
        # Accounts outside the provider's organization need an EXTERNAL package, whose every version Snowflake
        # scans before it can be released (https://docs.snowflake.com/en/developer-guide/native-apps/security-run-scan).
        outside = [a for a in self.listing.accounts if a.split(".")[0] != self.organization_name]
        if self.listing.enabled and outside and self.package.distribution != "EXTERNAL":
            problems.append(f"listing.accounts: {', '.join(outside)} outside organization {self.organization_name} with "
                            "package.distribution INTERNAL (allowed: package.distribution EXTERNAL, then each version "
                            "is released once Snowflake's security scan approves it)")
        if not self.images.build and self.images.tag is None:
            problems.append("images.tag: missing with images.build false (allowed: the tag already pushed)")
        return problems
