"""The Native App consumer (`environment: spcs_consumer`): install Ray on SPCS from a listing (or package).

The admin provider creates the consumer role with seed 000's consumer grants; that role creates a warehouse,
the egress integration for the configured hosts, installs the app, grants it what its manifest requests,
binds the egress reference, starts the cluster with the configured node groups and reads the URLs back.
"""

from __future__ import annotations

import pulumi
import pulumi_snowflake as snowflake

from components.ray_node import capacity_entry
from components.spcs.egress import SpcsEgress, SpcsEgressArgs
from components.spcs.families import family
from components.spcs.specs import HeadSpec, Monitoring, WorkerSpec, head_node, worker_node
from components.spcs_app.app_files import APP_GRAFANA_SECRET, APP_STAGES, SERVICES_SCHEMA
from components.spcs_app.consumer import APP_ACCOUNT_PRIVILEGES, SpcsAppInstall, SpcsAppInstallArgs
from components.versions import RAY_VERSION
from stacks.config.spcs_consumer import SpcsConsumerConfig
from stacks.secrets import ray_auth_token
from stacks.spcs import connection, endpoint_outputs, snowflake_name
from stacks.spcs_app import access_output, role_and_owner

# What installing and running the app needs beyond the `spcs` owner's grants (seed 000's consumer step 0).
INSTALL_PRIVILEGES = ("CREATE APPLICATION", "IMPORT SHARE")
RAY_TOKEN_SECRET = "RAY_AUTH_TOKEN"  # the consumer's SECRET the app's Ray containers read Ray's token from


def start_request(cfg: SpcsConsumerConfig, warehouse: str) -> dict:
    return {"head": {"instance_family": cfg.head.instance_family},
            "workers": [{"name": w.name, "instance_family": w.instance_family, "min_nodes": w.min_nodes,
                         "max_nodes": w.max_nodes, **({"resources": w.resources} if w.resources else {}),
                         **({"image": w.image} if w.image else {})} for w in cfg.workers],
            "warehouse": warehouse}


def capacity(cfg: SpcsConsumerConfig) -> dict:
    """The same sizing as the app's specs: one Ray node per service instance."""
    monitoring = Monitoring("-", "-", APP_GRAFANA_SECRET) if cfg.monitoring else None
    head = HeadSpec(family(cfg.head.instance_family), "-", monitoring=monitoring, jupyter=cfg.jupyter)
    out = {"head": capacity_entry(head_node(head), 1, 1)}
    for w in cfg.workers:
        out[w.name] = capacity_entry(worker_node(WorkerSpec(family(w.instance_family), "-", "",
                                                            resources=dict(w.resources))), w.min_nodes,
                                     w.max_nodes)
    return out


def build(cfg: SpcsConsumerConfig) -> dict:
    stack_prefix = snowflake_name(cfg.name_prefix, pulumi.get_stack())
    owner = role_and_owner(cfg, INSTALL_PRIVILEGES, "access-install-privileges", "snowflake-consumer",
                           grantable=APP_ACCOUNT_PRIVILEGES)
    child = pulumi.ResourceOptions(provider=owner)
    kept = pulumi.ResourceOptions(provider=owner, protect=True, retain_on_delete=True)

    warehouse = snowflake.Warehouse(
        "warehouse", name=snowflake_name(stack_prefix, "WH"), warehouse_size=cfg.warehouse.size,
        auto_suspend=cfg.warehouse.auto_suspend_s, auto_resume="true", initially_suspended=True, opts=child)
    integration = token_secret = None
    token = ray_auth_token(cfg)
    if cfg.egress.hosts or token is not None:
        database = snowflake.Database("database", name=cfg.database, opts=kept)
        schema = snowflake.Schema("schema", database=database.name, name=cfg.schema_name, opts=kept)
    if token is not None:
        # The value goes in only as a secret input of the provider's resource, never in SQL text.
        secret = snowflake.SecretWithGenericString(
            "ray-auth-token-secret", name=RAY_TOKEN_SECRET, database=database.name, schema=schema.name,
            secret_string=token, opts=child)
        token_secret = pulumi.Output.concat(database.name, ".", schema.name, ".", secret.name)
    if cfg.egress.hosts:
        integration = SpcsEgress("egress", SpcsEgressArgs(
            name=snowflake_name(stack_prefix, "EGRESS"), hosts=cfg.egress.hosts, database=database.name,
            schema=schema.name, provider=owner)).integration_name

    warehouse_name = snowflake_name(stack_prefix, "WH")
    app = SpcsAppInstall("app", SpcsAppInstallArgs(
        application=cfg.application, listing=cfg.install.name, role=cfg.role,
        warehouse=warehouse.name, request=start_request(cfg, warehouse_name), provider=owner,
        egress_integration=integration, ray_token_secret=token_secret, grantable=APP_ACCOUNT_PRIVILEGES,
        connection=connection(cfg, cfg.role)))

    urls = app.urls
    artifacts = f"@{cfg.application}.{APP_STAGES[0].stage.removeprefix('@')}"
    return {
        "environment": "spcs",
        "ray_version": RAY_VERSION,
        **endpoint_outputs(urls, monitoring=cfg.monitoring, jupyter=cfg.jupyter),
        "ray_capacity": capacity(cfg),
        "storage": {"uri": artifacts, "endpoint": None, "cluster_mount": APP_STAGES[0].mount_path,
                    "logs": f"@{cfg.application}.{SERVICES_SCHEMA}.logs"},
        "access": access_output(cfg),
        "ray_auth_token": token,
        "serve_url": urls.apply(lambda u: u.get("serve")),
        "application": cfg.application,
    }
