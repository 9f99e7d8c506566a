"""The `spcs` environment: Ray (and RayDP, Spark on Ray) on Snowflake Snowpark Container Services.

An admin provider creates the owner role and its account grants; everything else is created by that role:
database, schema, warehouse, image repository, stages, egress, images, compute pools, services, status page.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_snowflake as snowflake

from components.ray_auth import TOKEN_ENV as RAY_TOKEN_ENV
from components.ray_node import capacity_entry
from components.spcs.access import SpcsAccess, SpcsAccessArgs
from components.spcs.cluster import PoolArgs, ServiceArgs, SpcsRayCluster, SpcsRayClusterArgs
from components.spcs.egress import SpcsEgress, SpcsEgressArgs
from components.spcs.families import family
from components.spcs.images import (
    SpcsImages,
    SpcsImagesArgs,
    context_dir,
    image_reference,
    image_tag,
    images_needed,
    ray_image_name,
)
from components.spcs.objects import SpcsObjects, SpcsObjectsArgs
from components.spcs.specs import (
    HeadSpec,
    Monitoring,
    SecretEnv,
    StageMount,
    WorkerSpec,
    head_node,
    render_custom_worker_spec,
    render_head_spec,
    render_raydp_head_spec,
    render_worker_spec,
    worker_node,
)
from components.spcs.status_app import SpcsStatusApp, SpcsStatusAppArgs
from components.versions import RAY_VERSION
from stacks.config.spcs import SpcsConfig, WorkerGroup
from stacks.secrets import ray_auth_token

ROOT = Path(__file__).resolve().parent.parent
EAI_PREVIEW_FEATURE = "snowflake_external_access_integration_resource"
GRAFANA_SECRET = "RAY_GRAFANA_ADMIN_PASSWORD"
RAY_TOKEN_SECRET = "RAY_AUTH_TOKEN"  # the SECRET object every Ray container reads Ray's token from
ARTIFACTS_MOUNT, LOGS_MOUNT = "/artifacts", "/raydplogs"
TOKEN_ENV = "SNOWFLAKE_TOKEN"


def snowflake_name(*parts: str) -> str:
    return "_".join(p.upper().replace("-", "_") for p in parts)


def connection(cfg, role: str) -> dict[str, str]:
    """What the dynamic resources connect with; the key comes from the environment at run time."""
    return {"account": f"{cfg.organization_name}-{cfg.account_name}", "user": cfg.user, "role": role}


def prefix(cfg: SpcsConfig) -> str:
    """Account-level objects (pools, warehouse, integration) are shared by every stack in the account."""
    return snowflake_name(cfg.name_prefix, pulumi.get_stack())


def stage_fqn(cfg: SpcsConfig, stage: str) -> str:
    return f"{cfg.database}.{cfg.schema_name}.{stage}"


def stage_mounts(cfg: SpcsConfig) -> list[StageMount]:
    return [StageMount("artifacts", f"@{stage_fqn(cfg, cfg.stages.artifacts)}", ARTIFACTS_MOUNT),
            StageMount("logs", f"@{stage_fqn(cfg, cfg.stages.logs)}", LOGS_MOUNT)]


def image_names(cfg: SpcsConfig) -> list[str]:
    """The images/ folders this stack runs."""
    gpu = any(family(w.instance_family).has_gpu for w in cfg.all_workers)
    return images_needed(raydp=cfg.raydp, gpu=gpu, monitoring=cfg.monitoring)


def image_path(cfg: SpcsConfig, name: str) -> str:
    """An image as specs name it: /db/schema/repo/name:tag (lower case)."""
    tag = image_tag(ROOT / "images" / context_dir(name)) if cfg.images.build else cfg.images.tag
    return image_reference(cfg.database, cfg.schema_name, cfg.image_repository, name, tag)


def ray_image(cfg: SpcsConfig, w: WorkerGroup | None = None) -> str:
    if w is not None and getattr(w, "image", None):
        return f"/{cfg.database}/{cfg.schema_name}/{cfg.image_repository}/{w.image}".lower()
    gpu = w is not None and family(w.instance_family).has_gpu
    return image_path(cfg, ray_image_name(raydp=cfg.raydp, gpu=gpu))


def storage_env(cfg: SpcsConfig) -> dict[str, str]:
    return {"RAY_PLATFORM_STORAGE_URI": f"@{stage_fqn(cfg, cfg.stages.artifacts)}",
            "RAY_PLATFORM_STORAGE_MOUNT": ARTIFACTS_MOUNT}


def ray_token(cfg: SpcsConfig) -> SecretEnv | None:
    """Where Ray's token comes from in every Ray container: a Snowflake SECRET into RAY_AUTH_TOKEN."""
    if cfg.ray_auth == "disabled":
        return None
    return SecretEnv(f"{cfg.database}.{cfg.schema_name}.{RAY_TOKEN_SECRET}", RAY_TOKEN_ENV)


def head_spec(cfg: SpcsConfig) -> HeadSpec:
    monitoring = None
    if cfg.monitoring:
        monitoring = Monitoring(image_path(cfg, "spcs-prometheus"), image_path(cfg, "spcs-grafana"),
                                SecretEnv(f"{cfg.database}.{cfg.schema_name}.{GRAFANA_SECRET}",
                                          "GF_SECURITY_ADMIN_PASSWORD"))
    return HeadSpec(family=family(cfg.head.instance_family), image=ray_image(cfg), stages=stage_mounts(cfg),
                    ray_cpus=cfg.head.ray_cpus, monitoring=monitoring, jupyter=cfg.jupyter, env=storage_env(cfg),
                    logs_volume_gib=cfg.head.logs_volume_gib, ray_token=ray_token(cfg))


def worker_spec(cfg: SpcsConfig, w: WorkerGroup, head_host: str) -> WorkerSpec:
    return WorkerSpec(family=family(w.instance_family), image=ray_image(cfg, w), head_host=head_host,
                      stages=stage_mounts(cfg), resources=dict(w.resources), env=storage_env(cfg),
                      ray_token=ray_token(cfg))


def capacity(cfg: SpcsConfig) -> dict:
    """One Ray node per service instance; a group can grow to its service's max_instances."""
    out = {"head": capacity_entry(head_node(head_spec(cfg)), 1, 1)}
    for w in cfg.all_workers:
        out[w.name] = capacity_entry(worker_node(worker_spec(cfg, w, "")), w.min_nodes, w.max_nodes)
    return out


def _pool(cfg: SpcsConfig, key: str, group) -> PoolArgs:
    return PoolArgs(snowflake_name(prefix(cfg), key, "POOL"), group.instance_family, group.min_nodes,
                    group.max_nodes, group.auto_suspend_s)


def _provider(name: str, cfg: SpcsConfig, role: str, **kwargs) -> snowflake.Provider:
    return snowflake.Provider(
        name, organization_name=cfg.organization_name, account_name=cfg.account_name, user=cfg.user, role=role,
        authenticator="SNOWFLAKE_JWT", private_key=_secret(cfg.private_key),
        private_key_passphrase=_secret(cfg.private_key_passphrase),
        preview_features_enabled=[EAI_PREVIEW_FEATURE], **kwargs)


def build(cfg: SpcsConfig) -> dict:
    stack_prefix = prefix(cfg)
    admin = _provider("snowflake-admin", cfg, cfg.admin_role)
    access = SpcsAccess("access", SpcsAccessArgs(cfg.role, cfg.user, cfg.grant_role_to_role, admin))
    # The owner's session needs the role to exist and be granted first.
    owner = _provider("snowflake-owner", cfg, cfg.role, opts=pulumi.ResourceOptions(depends_on=[access]))

    stages = {"artifacts": cfg.stages.artifacts, "logs": cfg.stages.logs, "specs": cfg.stages.specs}
    if cfg.status_app:
        stages["apps"] = cfg.stages.apps
    objects = SpcsObjects("objects", SpcsObjectsArgs(
        database=cfg.database, schema=cfg.schema_name, warehouse=snowflake_name(stack_prefix, "WH"),
        warehouse_size=cfg.warehouse.size, warehouse_auto_suspend_s=cfg.warehouse.auto_suspend_s,
        image_repository=cfg.image_repository, stages=stages, provider=owner))

    integrations = []
    if cfg.egress.hosts:
        egress = SpcsEgress("egress", SpcsEgressArgs(
            name=snowflake_name(stack_prefix, "EGRESS"), hosts=cfg.egress.hosts, database=objects.database,
            schema=objects.schema, provider=owner))
        integrations.append(egress.integration_name)

    pushed: list[pulumi.Resource] = []
    if cfg.images.build:
        builder = docker.Provider("docker-image-builder", host=cfg.images.docker_host)
        pushed.append(SpcsImages("images", SpcsImagesArgs(
            names=image_names(cfg), repository_url=objects.repository_url, registry_user=cfg.user,
            registry_token=_secret(cfg.registry_token), docker_provider=builder,
            root=ROOT)))

    secrets: dict[str, pulumi.Input[str]] = {}
    grafana_password = None
    if cfg.monitoring:
        grafana_password = _grafana_password(cfg)
        secrets[GRAFANA_SECRET] = grafana_password
    token = ray_auth_token(cfg)
    if token is not None:
        secrets[RAY_TOKEN_SECRET] = token
    head = head_spec(cfg)
    render_head = render_raydp_head_spec if cfg.raydp else render_head_spec
    workers = [
        ServiceArgs(w.name, snowflake_name(stack_prefix, w.name), _pool(cfg, w.name, w),
                    render=lambda dns, w=w, r=render: r(worker_spec(cfg, w, dns)),
                    min_instances=w.min_nodes, max_instances=w.max_nodes)
        for group, render in ((cfg.workers, render_worker_spec), (cfg.custom_workers, render_custom_worker_spec))
        for w in group
    ]
    cluster = SpcsRayCluster("ray", SpcsRayClusterArgs(
        database=objects.database, schema=objects.schema, warehouse=objects.warehouse,
        head=ServiceArgs("head", snowflake_name(stack_prefix, "HEAD"), _pool(cfg, "head", cfg.head),
                         render=lambda _dns: render_head(head)),
        workers=workers, provider=owner, connection=connection(cfg, cfg.role), secrets=secrets,
        external_access_integrations=integrations, depends_on=pushed))

    if cfg.status_app:
        SpcsStatusApp("status", SpcsStatusAppArgs(
            name=snowflake_name(stack_prefix, "STATUS"), source=ROOT / "apps" / "spcs-status" / "streamlit_app.py",
            database=objects.database, schema=objects.schema, stage=stage_fqn(cfg, cfg.stages.apps),
            warehouse=objects.warehouse, provider=owner, connection=connection(cfg, cfg.role), after=[objects]))

    urls = cluster.urls
    return {
        "environment": "spcs",
        "ray_version": RAY_VERSION,
        **endpoint_outputs(urls, monitoring=cfg.monitoring, jupyter=cfg.jupyter),
        "ray_capacity": capacity(cfg),
        "storage": {"uri": f"@{stage_fqn(cfg, cfg.stages.artifacts)}", "endpoint": None,
                    "cluster_mount": ARTIFACTS_MOUNT, "logs": f"@{stage_fqn(cfg, cfg.stages.logs)}"},
        "access": access_output(cfg),
        "ray_auth_token": token,
        "serve_url": urls.apply(lambda u: u.get("serve")),
        "spark_ui_url": urls.apply(lambda u: u.get("spark-ui")) if cfg.raydp else None,  # while a Spark session runs
        "head_dns_name": cluster.head_dns_name,
        "credentials": pulumi.Output.secret({"grafana_admin_user": "admin" if cfg.monitoring else None,
                                             "grafana_admin_password": grafana_password}),
    }


def access_output(cfg: SpcsConfig) -> dict:
    """What jobs/snowflake.py reads: a token from SNOWFLAKE_TOKEN, or a key-pair JWT for this account/user."""
    account = f"{cfg.organization_name}-{cfg.account_name}"
    return {"mode": "snowflake", "token_env": TOKEN_ENV, "private_key_env": "SNOWFLAKE_PRIVATE_KEY_PATH",
            "account": account, "user": cfg.user, "role": cfg.role,
            "account_url": f"https://{account.lower()}.snowflakecomputing.com"}


def _secret(value) -> pulumi.Output[str] | None:
    """A configured secret as a Pulumi secret; None (the tool's own fallback) when unset."""
    return None if value is None else pulumi.Output.secret(value.get_secret_value())


def _grafana_password(cfg: SpcsConfig) -> pulumi.Output[str]:
    if cfg.grafana_admin_password is not None:
        return pulumi.Output.secret(cfg.grafana_admin_password.get_secret_value())
    return pulumi.Output.secret(random.RandomPassword("grafana-admin-password", length=24, special=False).result)


def endpoint_outputs(urls: pulumi.Output[dict], monitoring: bool, jupyter: bool) -> dict:
    """The contract's URLs from the head service's public endpoints (`SHOW ENDPOINTS`)."""
    return {
        "ray_dashboard_url": urls.apply(lambda u: u.get("dashboard")),
        "ray_client_address": None,  # the Ray client's gRPC does not pass SPCS ingress: use the Jobs API
        "grafana_url": urls.apply(lambda u: u.get("grafana")) if monitoring else None,
        "prometheus_url": urls.apply(lambda u: u.get("prometheus")) if monitoring else None,
        "jupyter_url": urls.apply(lambda u: u.get("jupyter")) if jupyter else None,
    }
