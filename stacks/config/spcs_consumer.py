"""The Native App consumer's configuration (`environment: spcs_consumer`): the account and role that install
the app, where from (a listing or a package), the warehouse and egress granted to it, and the node groups its
start procedure creates. `monitoring`/`jupyter` repeat the published app's choice (they size the head).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from stacks.config import RayAuth, Strict, dns_label, duplicates
from stacks.config.spcs import (
    ADMIN_ROLES,
    CreditPrice,
    Egress,
    Warehouse,
    custom_resources,
    identifier,
    known_family,
    pool_problems,
    repository_image,
)
from stacks.config.spcs_app import account_name, pem


class Install(Strict):
    """The listing's global name (Snowsight shows it, e.g. GZ1Z2ABC3D); the listing's release directive decides
    the version."""

    source: str = "listing"  # the only source another account can install from; checked in cross_checks
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return identifier(value)


class HeadGroup(Strict):
    instance_family: str = "CPU_X64_M"

    _family = field_validator("instance_family")(known_family)


class NodeGroup(Strict):
    """A worker group; with `resources` a custom group (Ray custom resources steer work onto it), optionally
    running one of the app's custom images (`name:tag`, as the provider ships them)."""

    name: str
    instance_family: str = "CPU_X64_M"
    min_nodes: int = Field(default=1, ge=0, le=100)
    max_nodes: int = Field(default=1, ge=1, le=100)
    resources: dict[str, float] = Field(default_factory=dict)
    image: str | None = None

    _resources = field_validator("resources")(custom_resources)
    _image = field_validator("image")(repository_image)

    _name = field_validator("name")(dns_label)
    _family = field_validator("instance_family")(known_family)


class SpcsConsumerConfig(RayAuth, CreditPrice):
    environment: Literal["spcs_consumer"] = "spcs_consumer"
    organization_name: str
    account_name: str
    user: str
    admin_role: str = "ACCOUNTADMIN"  # creates the consumer role and its account grants, nothing else
    role: str = "RAY_CONSUMER_ROLE"  # installs and owns the application
    grant_role_to_role: str | None = "SYSADMIN"
    name_prefix: str = "RAY"
    application: str = "RAY_APP"
    install: Install
    database: str = "RAY_CONSUMER_DB"  # holds the egress network rule
    schema_name: str = Field(default="RAY_CONSUMER_SCHEMA", alias="schema")
    warehouse: Warehouse = Warehouse()
    egress: Egress = Egress()
    head: HeadGroup = HeadGroup()
    workers: list[NodeGroup] = Field(default_factory=lambda: [NodeGroup(name="cpu", max_nodes=2)], min_length=1)
    monitoring: bool = True
    jupyter: bool = True
    private_key: SecretStr | None = None
    private_key_passphrase: SecretStr | None = None

    SECRET_KEYS: ClassVar[tuple[str, ...]] = ("private_key", "private_key_passphrase")

    _ids = field_validator("admin_role", "role", "grant_role_to_role", "name_prefix", "application", "database",
                           "schema_name")(lambda v: v if v is None else identifier(v))
    _accounts = field_validator("organization_name", "account_name")(account_name)
    _pem = field_validator("private_key")(pem)

    def cross_checks(self) -> list[str]:
        problems: list[str] = []
        if self.role in ADMIN_ROLES:
            problems.append(f"role: {self.role!r} cannot own the application (allowed: a custom role, not "
                            f"{', '.join(ADMIN_ROLES)})")
        problems += duplicates("workers", [w.name for w in self.workers]) + pool_problems("workers", self.workers)
        for i, w in enumerate(self.workers):
            if w.name == "head":
                problems.append(f"workers[{i}].name: 'head' is the head's group (allowed: another name)")
            if w.image and not w.resources:
                problems.append(f"workers[{i}].image: {w.image!r} without resources (allowed: a custom group, with "
                                "resources, runs a custom image)")
        if self.install.source != "listing":
            # FROM APPLICATION PACKAGE installs only in the package's own account; others install FROM LISTING
            # (https://docs.snowflake.com/en/sql-reference/sql/create-application).
            problems.append(f"install.source: {self.install.source!r} (allowed: listing; an application package "
                            "installs only in its own account: use the spcs-app stack's test_install there)")
        return problems
