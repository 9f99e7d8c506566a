"""Egress for the cluster: a network rule listing the hosts it may reach, and the integration services use.

Nothing is reachable by default; only the hosts in config (package indexes, model hubs) are.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake


@dataclass(frozen=True)
class SpcsEgressArgs:
    name: str  # the integration's (account-level) name
    hosts: list[str]  # host[:port]
    database: pulumi.Input[str]
    schema: pulumi.Input[str]
    provider: snowflake.Provider

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("an egress integration needs at least one host (allowed: host[:port], e.g. pypi.org)")


class SpcsEgress(pulumi.ComponentResource):
    integration_name: pulumi.Output[str]

    def __init__(self, name: str, args: SpcsEgressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsEgress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        rule = snowflake.NetworkRule(
            f"{name}-rule", name=f"{args.name}_RULE", database=args.database, schema=args.schema,
            type="HOST_PORT", mode="EGRESS", value_lists=sorted(args.hosts),
            comment="ray-platform: hosts the Ray cluster may reach", opts=child)
        integration = snowflake.ExternalAccessIntegration(
            f"{name}-integration", name=args.name, allowed_network_rules=[rule.fully_qualified_name], enabled=True,
            comment="ray-platform: egress of the Ray cluster", opts=child)
        self.integration_name = integration.name
        self.register_outputs({"integration_name": self.integration_name})
