"""The Native App provider (`environment: spcs_app`): publish Ray on SPCS from this account.

The admin provider creates the provider role and its account grants; that role creates the database, schema,
warehouse and image repository, pushes the images, and builds the application package: the app's files
(apps/ray-native-app plus specs rendered by components/spcs/specs.py), a version/patch, the release directive,
an optional private listing and an optional test install. No cluster runs here: the Ray outputs are null.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_snowflake as snowflake

from components.spcs.access import SpcsAccess, SpcsAccessArgs
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
from components.spcs_app.app_files import APP_RAY_TOKEN, AppImages, AppShape, app_files
from components.spcs_app.package import ListingArgs, SpcsAppPackage, SpcsAppPackageArgs
from components.versions import RAY_VERSION
from stacks.config.spcs_app import SpcsAppConfig
from stacks.spcs import EAI_PREVIEW_FEATURE, TOKEN_ENV, connection, snowflake_name

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "apps" / "ray-native-app"
# Beyond the `spcs` owner's grants: what publishing a Native App needs (seed 000's provider step 0).
PUBLISH_PRIVILEGES = ("CREATE APPLICATION", "CREATE APPLICATION PACKAGE", "CREATE DATA EXCHANGE LISTING")


def image_names(cfg: SpcsAppConfig) -> list[str]:
    gpu = any(family(f).has_gpu for f in cfg.shapes.worker_families)
    return images_needed(raydp=cfg.raydp, gpu=gpu, monitoring=cfg.monitoring)


def image_path(cfg: SpcsAppConfig, name: str) -> str:
    """As specs and manifest.yml name it: /db/schema/repo/name:tag (lower case)."""
    tag = image_tag(ROOT / "images" / context_dir(name)) if cfg.images.build else cfg.images.tag
    return image_reference(cfg.database, cfg.schema_name, cfg.image_repository, name, tag)


def app_shape(cfg: SpcsAppConfig) -> AppShape:
    names = image_names(cfg)
    path = {n: image_path(cfg, n) for n in names}
    custom = tuple(f"/{cfg.database}/{cfg.schema_name}/{cfg.image_repository}/{i}".lower()
                   for i in cfg.shapes.custom_images)
    images = AppImages(ray=path[ray_image_name(raydp=cfg.raydp, gpu=False)],
                       ray_cuda=path.get(ray_image_name(raydp=cfg.raydp, gpu=True)), custom=custom,
                       prometheus=path.get("spcs-prometheus"), grafana=path.get("spcs-grafana"))
    return AppShape(head_families=[family(f) for f in cfg.shapes.head_families],
                    worker_families=[family(f) for f in cfg.shapes.worker_families], images=images, raydp=cfg.raydp,
                    monitoring=cfg.monitoring, jupyter=cfg.jupyter, logs_volume_gib=cfg.shapes.logs_volume_gib,
                    ray_token=APP_RAY_TOKEN if cfg.ray_auth == "token" else None)


def provider(name: str, cfg, role: str, **kwargs) -> snowflake.Provider:
    return snowflake.Provider(
        name, organization_name=cfg.organization_name, account_name=cfg.account_name, user=cfg.user, role=role,
        authenticator="SNOWFLAKE_JWT", private_key=secret(cfg.private_key),
        private_key_passphrase=secret(cfg.private_key_passphrase),
        preview_features_enabled=[EAI_PREVIEW_FEATURE], **kwargs)


def secret(value) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value.get_secret_value())


def access_output(cfg) -> dict:
    account = f"{cfg.organization_name}-{cfg.account_name}"
    return {"mode": "snowflake", "token_env": TOKEN_ENV, "private_key_env": "SNOWFLAKE_PRIVATE_KEY_PATH",
            "account": account, "user": cfg.user, "role": cfg.role,
            "account_url": f"https://{account.lower()}.snowflakecomputing.com"}


def role_and_owner(cfg, privileges: tuple[str, ...], grant_name: str, owner_name: str,
                   grantable: tuple[str, ...] = ()) -> snowflake.Provider:
    """The admin provider creates the role and grants it `privileges` on the account (`grantable` ones WITH GRANT
    OPTION); the returned provider, acting as that role, owns everything else once those grants exist."""
    admin = provider("snowflake-admin", cfg, cfg.admin_role)
    access = SpcsAccess("access", SpcsAccessArgs(cfg.role, cfg.user, cfg.grant_role_to_role, admin, grantable))
    grant = snowflake.GrantPrivilegesToAccountRole(
        grant_name, account_role_name=access.role_name, on_account=True,
        privileges=list(privileges), opts=pulumi.ResourceOptions(provider=admin))
    return provider(owner_name, cfg, cfg.role, opts=pulumi.ResourceOptions(depends_on=[access, grant]))


def build(cfg: SpcsAppConfig) -> dict:
    stack_prefix = snowflake_name(cfg.name_prefix, pulumi.get_stack())
    owner = role_and_owner(cfg, PUBLISH_PRIVILEGES, "access-publish-privileges", "snowflake-owner")

    objects = SpcsObjects("objects", SpcsObjectsArgs(
        database=cfg.database, schema=cfg.schema_name, warehouse=snowflake_name(stack_prefix, "WH"),
        warehouse_size=cfg.warehouse.size, warehouse_auto_suspend_s=cfg.warehouse.auto_suspend_s,
        image_repository=cfg.image_repository, stages={}, provider=owner))
    pushed: list[pulumi.Resource] = [objects]
    if cfg.images.build:
        builder = docker.Provider("docker-image-builder", host=cfg.images.docker_host)
        pushed.append(SpcsImages("images", SpcsImagesArgs(
            names=image_names(cfg), repository_url=objects.repository_url, registry_user=cfg.user,
            registry_token=secret(cfg.registry_token), docker_provider=builder, root=ROOT)))

    shape = app_shape(cfg)
    files = app_files(APP_DIR, shape, cfg.package.version, cfg.package.label)
    listing = None
    if cfg.listing.enabled:
        listing = ListingArgs(cfg.listing.name, cfg.listing.title, cfg.listing.accounts)
    package = SpcsAppPackage("app", SpcsAppPackageArgs(
        package=cfg.package.name, stage_schema=cfg.package.stage_schema, stage=cfg.package.stage, files=files,
        version=cfg.package.version, label=cfg.package.label, distribution=cfg.package.distribution,
        connection=connection(cfg, cfg.role), provider=owner, listing=listing,
        test_install=cfg.test_install.name if cfg.test_install.enabled else None, depends_on=pushed))

    return {
        "environment": "spcs",
        "ray_version": RAY_VERSION,
        # The provider publishes; clusters run in consumer accounts (and their stacks export these).
        "ray_dashboard_url": None,
        "ray_client_address": None,
        "ray_capacity": {},
        "grafana_url": None,
        "prometheus_url": None,
        "jupyter_url": None,
        "storage": None,
        "access": access_output(cfg),
        "ray_auth_token": None,  # no cluster runs in the provider's account
        "application_package": cfg.package.name,
        "app_version": cfg.package.version,
        "app_patch": package.patch,
        "app_files_location": package.location,
        "app_images": shape.images.listed(),
        "app_families": {"head": cfg.shapes.head_families, "worker": cfg.shapes.worker_families},
        "listing": cfg.listing.name if cfg.listing.enabled else None,
        "test_install": cfg.test_install.name if cfg.test_install.enabled else None,
    }
