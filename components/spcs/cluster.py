"""The Ray cluster on SPCS: a compute pool and a service per node group, and the head's public endpoints.

Specs arrive as renderers (components/spcs/specs.py) and pass the linter before any service is registered.
Workers get the head service's `dns_name` output. `pulumi up` ends once every service is READY and the head's
public endpoints are provisioned (components/spcs/readiness.py), with their URLs as outputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_snowflake as snowflake

from components.spcs.families import family
from components.spcs.readiness import ServiceEndpoints
from components.spcs.spec_lint import lint

PLACEHOLDER_HEAD = "ray-head.lint.invalid"  # renders worker specs for the up-front lint


@dataclass(frozen=True)
class PoolArgs:
    name: str
    instance_family: str
    min_nodes: int
    max_nodes: int
    auto_suspend_s: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_nodes <= self.max_nodes:  # config explains why (stacks/config/spcs.py MIN_POOL_NODES)
            raise ValueError(f"pool {self.name}: min_nodes {self.min_nodes}, max_nodes {self.max_nodes} "
                             "(allowed: 1 <= min_nodes <= max_nodes)")


@dataclass(frozen=True)
class ServiceArgs:
    key: str  # node group, e.g. "head", "cpu"
    service_name: str
    pool: PoolArgs
    render: Callable[[str], str]  # the head's DNS name -> spec YAML
    min_instances: int = 1
    max_instances: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min_instances <= self.max_instances <= max(self.pool.max_nodes, 1):
            raise ValueError(f"service {self.service_name}: instances {self.min_instances}..{self.max_instances} "
                             f"(allowed: 1 <= min <= max <= the pool's max_nodes {self.pool.max_nodes})")
        checked_spec(self.service_name, self.render(PLACEHOLDER_HEAD), self.pool.instance_family)


@dataclass(frozen=True)
class SpcsRayClusterArgs:
    database: pulumi.Input[str]
    schema: pulumi.Input[str]
    warehouse: pulumi.Input[str]
    head: ServiceArgs
    workers: list[ServiceArgs]
    provider: snowflake.Provider
    connection: dict[str, str]  # account, user, role for the readiness wait; the key comes from the environment
    secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)  # SECRET object name -> value (secret)
    external_access_integrations: Sequence[pulumi.Input[str]] = ()
    depends_on: Sequence[pulumi.Resource] = ()  # e.g. the pushed images


def checked_spec(service: str, text: str, instance_family: str) -> str:
    problems = lint(text, family(instance_family))
    if problems:
        raise ValueError(f"service {service}: the spec breaks SPCS rules:\n  " + "\n  ".join(problems))
    return text


class SpcsRayCluster(pulumi.ComponentResource):
    head_dns_name: pulumi.Output[str]
    urls: pulumi.Output[dict[str, str | None]]  # public endpoint name -> URL
    services: dict[str, snowflake.Service]
    pools: dict[str, snowflake.ComputePool]

    def __init__(self, name: str, args: SpcsRayClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsRayCluster", name, None, opts)
        self._args = args
        self.pools, self.services = {}, {}
        secrets = [
            snowflake.SecretWithGenericString(
                f"{name}-secret-{object_name.lower().replace('_', '-')}", name=object_name,
                database=args.database, schema=args.schema, secret_string=pulumi.Output.secret(value),
                opts=self._opts())
            for object_name, value in sorted(args.secrets.items())
        ]
        head_spec = args.head.render("")
        head = self._service(name, args.head, head_spec, [*secrets, *args.depends_on])
        self.head_dns_name = head.show_outputs.apply(lambda rows: rows[0].dns_name)
        specs: list[pulumi.Input[str]] = [head_spec]
        for worker in args.workers:
            spec = self.head_dns_name.apply(
                lambda dns, w=worker: checked_spec(w.service_name, w.render(dns), w.pool.instance_family))
            self._service(name, worker, spec, list(args.depends_on))
            specs.append(spec)
        services = list(self.services.values())
        ready = ServiceEndpoints(f"{name}-endpoints", {
            "connection": args.connection,
            "containers": pulumi.Output.all(*[s.fully_qualified_name for s in services]).apply(
                lambda names: [f"SHOW SERVICE CONTAINERS IN SERVICE {n}" for n in names]),
            "endpoints": head.fully_qualified_name.apply(lambda fqn: f"SHOW ENDPOINTS IN SERVICE {fqn}"),
            "revision": pulumi.Output.all(*specs).apply(
                lambda texts: hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]),
        }, opts=pulumi.ResourceOptions(parent=self, depends_on=services))
        self.urls = ready.urls
        self.register_outputs({"head_dns_name": self.head_dns_name, "urls": self.urls})

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)

    def _service(self, name: str, group: ServiceArgs, spec: pulumi.Input[str],
                 depends_on: list[pulumi.Resource]) -> snowflake.Service:
        p = group.pool
        pool = snowflake.ComputePool(
            f"{name}-{group.key}-pool", name=p.name, instance_family=p.instance_family, min_nodes=p.min_nodes,
            max_nodes=p.max_nodes, auto_suspend_secs=p.auto_suspend_s, auto_resume="true",
            initially_suspended="false", comment=f"ray-platform: Ray {group.key} nodes", opts=self._opts())
        args = self._args
        service = snowflake.Service(
            f"{name}-{group.key}", name=group.service_name, database=args.database, schema=args.schema,
            compute_pool=pool.name, from_specification=snowflake.ServiceFromSpecificationArgs(text=spec),
            min_instances=group.min_instances, max_instances=group.max_instances, query_warehouse=args.warehouse,
            external_access_integrations=list(args.external_access_integrations) or None,
            comment=f"ray-platform: Ray {group.key}", opts=self._opts(depends_on=depends_on))
        self.pools[group.key], self.services[group.key] = pool, service
        return service
