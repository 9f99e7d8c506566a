"""The role that owns the Ray cluster's objects and services, with exactly the account grants it needs.

Runs with the admin provider (ACCOUNTADMIN by default) and nothing else does: the service owner must not
be an admin role, so everything after this component is created by the role made here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake

# What the owner role does on the account: create its database, warehouse, compute pools and egress
# integration, and expose public endpoints. Object-level rights follow from owning what it creates.
ACCOUNT_PRIVILEGES = ("BIND SERVICE ENDPOINT", "CREATE COMPUTE POOL", "CREATE DATABASE", "CREATE INTEGRATION",
                      "CREATE WAREHOUSE")
ADMIN_ROLES = ("ACCOUNTADMIN", "SECURITYADMIN", "ORGADMIN")


@dataclass(frozen=True)
class SpcsAccessArgs:
    role: str
    user: str
    parent_role: str | None  # the role hierarchy parent, e.g. SYSADMIN
    admin_provider: snowflake.Provider
    grantable: tuple[str, ...] = ()  # of ACCOUNT_PRIVILEGES: held WITH GRANT OPTION (the role grants them onwards)

    def __post_init__(self) -> None:
        if self.role.upper() in ADMIN_ROLES:
            raise ValueError(f"role {self.role!r} cannot own services (allowed: a custom role)")
        if not set(self.grantable) <= set(ACCOUNT_PRIVILEGES):
            raise ValueError(f"grantable {sorted(set(self.grantable) - set(ACCOUNT_PRIVILEGES))} (allowed: some of "
                             f"{', '.join(ACCOUNT_PRIVILEGES)})")


class SpcsAccess(pulumi.ComponentResource):
    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: SpcsAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.admin_provider)
        role = snowflake.AccountRole(f"{name}-role", name=args.role,
                                     comment="ray-platform: owns the Ray cluster on SPCS", opts=child)
        self.role_name = role.name
        snowflake.GrantPrivilegesToAccountRole(
            f"{name}-account-privileges", account_role_name=role.name, on_account=True,
            privileges=[p for p in ACCOUNT_PRIVILEGES if p not in args.grantable], opts=child)
        if args.grantable:
            # One grant per privilege set: the same privilege in two grant resources would be revoked by either.
            snowflake.GrantPrivilegesToAccountRole(
                f"{name}-account-privileges-grantable", account_role_name=role.name, on_account=True,
                privileges=sorted(args.grantable), with_grant_option=True, opts=child)
        snowflake.GrantAccountRole(f"{name}-to-user", role_name=role.name, user_name=args.user, opts=child)
        if args.parent_role:
            snowflake.GrantAccountRole(f"{name}-to-parent", role_name=role.name, parent_role_name=args.parent_role,
                                       opts=child)
        self.register_outputs({"role_name": self.role_name})
