"""The consumer's side: install the app (from the listing or the package), grant it what its manifest asks
for, bind the egress reference, call its start procedure with the node groups, read the endpoints back.

Everything is SQL through `snowflake.Execute` (pulumi-snowflake has no application resources): each
statement has its revert, so a destroy revokes, unbinds, stops the cluster and drops the app in reverse order.
`pulumi up` ends once the app's services are READY and their endpoints provisioned (components/spcs/readiness.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_snowflake as snowflake

from components.spcs.readiness import ServiceEndpoints

# What the app's manifest requests, minus warehouses (the app gets usage on the consumer's warehouse instead).
APP_ACCOUNT_PRIVILEGES = ("BIND SERVICE ENDPOINT", "CREATE COMPUTE POOL")
ACCOUNT_GRANTS = ", ".join(APP_ACCOUNT_PRIVILEGES)
APP_ROLE = "APP_USER"
EGRESS_REFERENCE = "EGRESS_EAI"
RAY_TOKEN_REFERENCE = "RAY_AUTH_TOKEN"  # manifest.yml's ray_auth_token: a SECRET with Ray's token


@dataclass(frozen=True)
class SpcsAppInstallArgs:
    application: str
    listing: str  # the listing's global name (FROM APPLICATION PACKAGE installs only in the package's own account)
    role: str  # the consumer role that owns the app
    warehouse: pulumi.Input[str]
    request: dict[str, Any]  # start_cluster's argument: head, workers, warehouse
    provider: snowflake.Provider
    connection: dict[str, str]  # account, user, role for the readiness wait; the key comes from the environment
    egress_integration: pulumi.Input[str] | None = None
    ray_token_secret: pulumi.Input[str] | None = None  # the SECRET's fully qualified name (never its value)
    grantable: tuple[str, ...] = ()  # account privileges `role` holds WITH GRANT OPTION

    def __post_init__(self) -> None:
        # Granting a privilege onwards (here: to the app) needs it WITH GRANT OPTION
        # (https://docs.snowflake.com/en/sql-reference/sql/grant-privilege).
        missing = [p for p in APP_ACCOUNT_PRIVILEGES if p not in self.grantable]
        if missing:
            raise ValueError(f"role {self.role}: holds {', '.join(missing)} without grant option, so it cannot grant "
                             "them to the app (allowed: grantable includes every privilege the app is granted)")


def install_sql(args: SpcsAppInstallArgs) -> str:
    """CREATE APPLICATION has no IF NOT EXISTS (https://docs.snowflake.com/en/sql-reference/sql/create-application);
    Execute runs it once per install and drops the app on destroy."""
    return f"CREATE APPLICATION {args.application} FROM LISTING '{args.listing}'"


def reference_sql(application: str, reference: str, object_type: str, name: pulumi.Input[str],
                  *privileges: str) -> pulumi.Output[str]:
    """Binds a consumer object to one of the app's references by name: SYSTEM$REFERENCE takes the object type,
    its name, PERSISTENT and the privileges granted through it
    (https://docs.snowflake.com/en/sql-reference/functions/system_reference)."""
    granted = ", ".join(f"'{p}'" for p in privileges)
    return pulumi.Output.concat(f"CALL {application}.app_public.register_reference('{reference}', 'ADD', "
                                f"SYSTEM$REFERENCE('{object_type}', '", name, f"', 'PERSISTENT', {granted}))")


def start_sql(application: str, request: dict[str, Any]) -> str:
    body = json.dumps(request, sort_keys=True).replace("'", "''")
    return f"CALL {application}.app_public.start_cluster(PARSE_JSON('{body}'))"


class SpcsAppInstall(pulumi.ComponentResource):
    urls: pulumi.Output[dict[str, str | None]]  # public endpoint name -> URL

    def __init__(self, name: str, args: SpcsAppInstallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs_app:SpcsAppInstall", name, None, opts)
        self._args = args
        app = args.application
        # The app keeps the consumer's artifacts (its stages): protected like any other data.
        installed = self._sql(f"{name}-application", install_sql(args), f"DROP APPLICATION IF EXISTS {app} CASCADE",
                              protect=True)
        grants: list[pulumi.Resource] = [
            self._sql(f"{name}-grant-account", f"GRANT {ACCOUNT_GRANTS} ON ACCOUNT TO APPLICATION {app}",
                      f"REVOKE {ACCOUNT_GRANTS} ON ACCOUNT FROM APPLICATION {app}", depends_on=[installed]),
            self._sql(f"{name}-grant-warehouse",
                      pulumi.Output.concat("GRANT USAGE ON WAREHOUSE ", args.warehouse, f" TO APPLICATION {app}"),
                      pulumi.Output.concat("REVOKE USAGE ON WAREHOUSE ", args.warehouse, f" FROM APPLICATION {app}"),
                      depends_on=[installed]),
        ]
        grants.append(snowflake.GrantApplicationRole(
            f"{name}-app-role", application_role_name=f'"{app}"."{APP_ROLE}"', parent_account_role_name=args.role,
            opts=self._opts(depends_on=[installed])))
        if args.egress_integration is not None:
            reference = reference_sql(app, EGRESS_REFERENCE, "EXTERNAL ACCESS INTEGRATION", args.egress_integration,
                                      "USAGE")
            grants.append(self._sql(
                f"{name}-egress-reference", reference,
                f"CALL {app}.app_public.register_reference('{EGRESS_REFERENCE}', 'CLEAR', '')", depends_on=[installed]))
        if args.ray_token_secret is not None:
            # The SQL names the SECRET, never its value: the token stays out of query history.
            reference = reference_sql(app, RAY_TOKEN_REFERENCE, "SECRET", args.ray_token_secret, "READ", "USAGE")
            grants.append(self._sql(
                f"{name}-ray-token-reference", reference,
                f"CALL {app}.app_public.register_reference('{RAY_TOKEN_REFERENCE}', 'CLEAR', '')",
                depends_on=[installed]))
        # A changed request restarts the cluster: stop the old one first (same pools and services by name).
        start = self._sql(f"{name}-start", start_sql(app, args.request), f"CALL {app}.app_public.stop_cluster()",
                          depends_on=grants, delete_before_replace=True)
        # The app's services live in the app: its procedures list their containers and endpoints.
        ready = ServiceEndpoints(f"{name}-endpoints", {
            "connection": args.connection, "containers": [f"CALL {app}.app_public.service_containers()"],
            "endpoints": f"CALL {app}.app_public.service_endpoints()", "revision": start_sql(app, args.request)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[start]))
        self.urls = ready.urls
        self.register_outputs({"urls": self.urls})

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)

    def _sql(self, name: str, execute: pulumi.Input[str], revert: pulumi.Input[str], **opts: Any) -> snowflake.Execute:
        return snowflake.Execute(name, execute=execute, revert=revert, opts=self._opts(**opts))
