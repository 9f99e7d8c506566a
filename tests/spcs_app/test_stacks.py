"""Both Native App stacks under mocks: order (files before version before directive, grants before start),
providers, secrets, protection, the output contract, config errors, and the offline-preview snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stacks.config import load
from stacks.contract import missing_keys
from stacks.errors import ConfigError
from stacks.offline import preview
from stacks.preview import sdk_problems

from .conftest import FAKE_PEM, SECRETS

SF = "snowflake:index"
DYN = "pulumi-python:dynamic/spcs_app"
FILES = "pulumi-python:dynamic/spcs:StageFiles"
READY = "pulumi-python:dynamic/spcs:ServiceEndpoints"
EXECUTE = f"{SF}/execute:Execute"
ROOT = Path(__file__).resolve().parents[2]


def depends(rec, token: str, name: str, on: str) -> bool:
    return on in rec.get(token, name).dependencies


def test_provider_order_files_version_directive_listing_install(provider_stack):
    rec = provider_stack
    assert depends(rec, EXECUTE, "app-schema", f"{EXECUTE}::app-package")
    assert depends(rec, EXECUTE, "app-stage", f"{EXECUTE}::app-schema")
    assert depends(rec, FILES, "app-files", f"{EXECUTE}::app-stage")
    assert depends(rec, f"{DYN}:AppVersion", "app-version", f"{FILES}::app-files")
    assert depends(rec, f"{DYN}:ReleaseDirective", "app-release", f"{DYN}:AppVersion::app-version")
    assert depends(rec, f"{SF}/listing:Listing", "app-listing", f"{DYN}:ReleaseDirective::app-release")
    assert depends(rec, EXECUTE, "app-test-install", f"{DYN}:ReleaseDirective::app-release")
    images = rec.by_type("docker:index/image:Image")
    assert len(images) == 4
    for image in images:  # pushed before the package that lists them is made
        assert image.ref in rec.get(EXECUTE, "app-package").dependencies


def test_provider_sql_and_reverts(provider_stack):
    rec = provider_stack
    package = rec.get(EXECUTE, "app-package")
    assert package.inputs["execute"] == ("CREATE APPLICATION PACKAGE IF NOT EXISTS RAY_APP_PKG ENABLE_RELEASE_CHANNELS = "
                                         "TRUE DISTRIBUTION = INTERNAL COMMENT = 'ray-platform: Ray on SPCS'")
    assert package.protect and package.retain_on_delete
    install = rec.get(EXECUTE, "app-test-install").inputs
    assert install["execute"] == ("CREATE APPLICATION RAY_APP_TEST FROM APPLICATION PACKAGE RAY_APP_PKG "
                                  "USING VERSION V1 PATCH 0")
    assert install["revert"] == "DROP APPLICATION IF EXISTS RAY_APP_TEST CASCADE"  # torn down with its pools
    listing = rec.get(f"{SF}/listing:Listing", "app-listing").inputs
    assert listing["applicationPackage"] == "RAY_APP_PKG"
    assert yaml.safe_load(listing["manifest"]["fromString"])["targets"] == {"accounts": ["MYORG.CONSUMER"]}
    directive = rec.get(f"{DYN}:ReleaseDirective", "app-release").inputs
    assert (directive["package"], directive["version"], directive["patch"]) == ("RAY_APP_PKG", "V1", 0)


def test_manifest_lists_exactly_the_pushed_images(provider_stack):
    files = provider_stack.get(FILES, "app-files").inputs["files"]
    listed = yaml.safe_load(files["manifest.yml"])["artifacts"]["container_services"]["images"]
    pushed = [i.inputs["imageName"] for i in provider_stack.by_type("docker:index/image:Image")]
    assert len(listed) == len(pushed) == 4
    assert sorted(p.split(".snowflakecomputing.com")[1] for p in pushed) == listed


def test_files_upload_again_only_when_content_changes(provider_stack):
    folder = provider_stack.get(FILES, "app-files").inputs["folder"]
    same = preview("spcs-app", overrides={"listing": '{"enabled": false}'}, secret_overrides=SECRETS)
    assert same.get(FILES, "app-files").inputs["folder"] == folder
    changed = preview("spcs-app", overrides={"shapes": '{"head_families": ["CPU_X64_L"]}'}, secret_overrides=SECRETS)
    assert changed.get(FILES, "app-files").inputs["folder"] != folder


def test_dynamic_resources_carry_no_credentials(provider_stack):
    for token, name in ((FILES, "app-files"), (f"{DYN}:AppVersion", "app-version"),
                        (f"{DYN}:ReleaseDirective", "app-release")):
        props = provider_stack.get(token, name).revealed
        assert props["connection"] == {"account": "MYORG-PROVIDER", "user": "RAY_DEPLOYER", "role": "RAY_PROVIDER_ROLE"}
        assert FAKE_PEM.strip() not in json.dumps(props)


@pytest.mark.parametrize("fixture", ["provider_stack", "consumer_stack"])
def test_contract_sdk_secrets_and_providers(fixture, request):
    rec = request.getfixturevalue(fixture)
    assert sdk_problems(rec) == [] and missing_keys(rec.outputs) == []
    assert rec.outputs["environment"] == "spcs" and rec.outputs["access"]["mode"] == "snowflake"
    text = json.dumps(rec.to_json())
    assert FAKE_PEM.strip() not in text and SECRETS["registry_token"] not in text
    admin = {r.name for r in rec.resources if r.provider == "snowflake-admin"}
    assert admin == {"access-role", "access-account-privileges", "access-to-user", "access-to-parent",
                     *(["access-publish-privileges"] if fixture == "provider_stack" else
                       ["access-install-privileges", "access-account-privileges-grantable"])}
    for r in rec.resources:
        if r.type.startswith("snowflake:"):
            assert r.provider in ("snowflake-admin", "snowflake-owner", "snowflake-consumer"), r.ref


def test_consumer_order_install_grants_reference_start_endpoints(consumer_stack):
    rec = consumer_stack
    app = f"{EXECUTE}::app-application"
    for name in ("app-grant-account", "app-grant-warehouse", "app-egress-reference"):
        assert depends(rec, EXECUTE, name, app)
        assert depends(rec, EXECUTE, "app-start", f"{EXECUTE}::{name}")  # grants before start
    assert depends(rec, EXECUTE, "app-start", f"{SF}/grantApplicationRole:GrantApplicationRole::app-app-role")
    assert depends(rec, READY, "app-endpoints", f"{EXECUTE}::app-start")
    assert "pulumi:providers:snowflake::snowflake-admin" not in rec.get(EXECUTE, "app-start").dependencies


def test_consumer_sql_and_reverts(consumer_stack):
    rec = consumer_stack
    sql = {name: (rec.get(EXECUTE, name).inputs["execute"], rec.get(EXECUTE, name).inputs["revert"])
           for name in ("app-application", "app-grant-account", "app-grant-warehouse", "app-egress-reference")}
    assert sql == {
        "app-application": ("CREATE APPLICATION RAY_APP FROM LISTING 'GZ1Z2RAYSPCS'",
                            "DROP APPLICATION IF EXISTS RAY_APP CASCADE"),
        "app-grant-account": ("GRANT BIND SERVICE ENDPOINT, CREATE COMPUTE POOL ON ACCOUNT TO APPLICATION RAY_APP",
                              "REVOKE BIND SERVICE ENDPOINT, CREATE COMPUTE POOL ON ACCOUNT FROM APPLICATION RAY_APP"),
        "app-grant-warehouse": ("GRANT USAGE ON WAREHOUSE RAY_SPCS_CONSUMER_WH TO APPLICATION RAY_APP",
                                "REVOKE USAGE ON WAREHOUSE RAY_SPCS_CONSUMER_WH FROM APPLICATION RAY_APP"),
        "app-egress-reference": (
            "CALL RAY_APP.app_public.register_reference('EGRESS_EAI', 'ADD', SYSTEM$REFERENCE("
            "'EXTERNAL ACCESS INTEGRATION', 'RAY_SPCS_CONSUMER_EGRESS', 'PERSISTENT', 'USAGE'))",
            "CALL RAY_APP.app_public.register_reference('EGRESS_EAI', 'CLEAR', '')"),
    }
    assert rec.get(EXECUTE, "app-application").protect
    start = rec.get(EXECUTE, "app-start").inputs
    assert start["revert"] == "CALL RAY_APP.app_public.stop_cluster()"
    body = json.loads(start["execute"].split("PARSE_JSON('")[1].rsplit("')", 1)[0])
    assert body == {"head": {"instance_family": "CPU_X64_M"}, "warehouse": "RAY_SPCS_CONSUMER_WH", "workers": [
        {"name": "cpu", "instance_family": "CPU_X64_M", "min_nodes": 1, "max_nodes": 3},
        {"name": "gpu", "instance_family": "GPU_NV_S", "min_nodes": 1, "max_nodes": 2}]}


def test_consumer_gives_the_app_rays_token_through_a_secret_it_never_writes_in_sql(consumer_stack):
    rec = consumer_stack
    token = rec.outputs["ray_auth_token"]
    assert len(token) == 64 and "ray_auth_token" in rec.secret_outputs
    secret = rec.get(f"{SF}/secretWithGenericString:SecretWithGenericString", "ray-auth-token-secret")
    assert secret.inputs["secretString"] == "[secret]" and secret.revealed["secretString"] == token
    assert secret.provider == "snowflake-consumer"
    reference = rec.get(EXECUTE, "app-ray-token-reference").inputs
    assert reference == {
        "execute": "CALL RAY_APP.app_public.register_reference('RAY_AUTH_TOKEN', 'ADD', SYSTEM$REFERENCE('SECRET', "
                   "'RAY_CONSUMER_DB.RAY_CONSUMER_SCHEMA.RAY_AUTH_TOKEN', 'PERSISTENT', 'READ', 'USAGE'))",
        "revert": "CALL RAY_APP.app_public.register_reference('RAY_AUTH_TOKEN', 'CLEAR', '')"}
    assert depends(rec, EXECUTE, "app-ray-token-reference", f"{EXECUTE}::app-application")
    assert depends(rec, EXECUTE, "app-start", f"{EXECUTE}::app-ray-token-reference")  # bound before start
    # No SQL (nor any other input) carries the token: only the SECRET's own secret input does.
    sql = [r.revealed for r in rec.resources if r is not secret]
    assert sql and token not in json.dumps(sql)


def test_job_client_sends_the_consumers_token_past_snowflake_ingress(consumer_stack):
    from jobs.auth import request_headers

    token = consumer_stack.outputs["ray_auth_token"]
    assert request_headers(consumer_stack.outputs, {}) == {"X-Ray-Authorization": f"Bearer {token}"}


def test_consumer_with_ray_auth_disabled_binds_no_token():
    rec = preview("spcs-consumer", overrides={"ray_auth": "disabled"}, secret_overrides={"private_key": FAKE_PEM})
    assert rec.outputs["ray_auth_token"] is None
    assert rec.by_type(f"{SF}/secretWithGenericString:SecretWithGenericString") == []
    assert "app-ray-token-reference" not in {r.name for r in rec.by_type(EXECUTE)}


@pytest.mark.parametrize(("auth", "mode"), [("token", "token"), ("disabled", "disabled")])
def test_provider_ships_specs_whose_ray_containers_follow_ray_auth(auth, mode):
    rec = preview("spcs-app", overrides={"ray_auth": auth}, secret_overrides=SECRETS)
    files = rec.get(FILES, "app-files").inputs["files"]
    containers = [c for path, text in files.items() if path.startswith("specs/")
                  for c in yaml.safe_load(text.replace("{{ resources }}", "{}"))["spec"]["containers"]
                  if c["name"].startswith("ray-")]
    assert containers and all(c["env"]["RAY_AUTH_MODE"] == mode for c in containers)
    bound = [c["secrets"] for c in containers if "secrets" in c]
    assert bound == ([[{"snowflakeSecret": {"objectReference": "ray_auth_token"}, "secretKeyRef": "secret_string",
                        "envVarName": "RAY_AUTH_TOKEN"}]] * len(containers) if auth == "token" else [])


def test_consumer_outputs_come_from_the_apps_endpoints(consumer_stack):
    out = consumer_stack.outputs
    ready = consumer_stack.get(READY, "app-endpoints").revealed
    assert ready["endpoints"] == "CALL RAY_APP.app_public.service_endpoints()"
    assert ready["containers"] == ["CALL RAY_APP.app_public.service_containers()"]
    assert ready["connection"] == {"account": "MYORG-CONSUMER", "user": "RAY_CONSUMER", "role": "RAY_CONSUMER_ROLE"}
    for key in ("ray_dashboard_url", "grafana_url", "prometheus_url", "jupyter_url", "serve_url"):
        assert out[key].startswith("https://") and out[key].endswith(".snowflakecomputing.app"), key
    assert out["ray_client_address"] is None
    assert set(out["ray_capacity"]) == {"head", "cpu", "gpu"}
    assert out["ray_capacity"]["gpu"]["resources"]["GPU"] == 1 and out["ray_capacity"]["cpu"]["max_nodes"] == 3
    assert out["storage"]["uri"] == "@RAY_APP.services.artifacts"


def test_consumer_without_egress_binds_nothing():
    rec = preview("spcs-consumer", overrides={"egress": "{}"}, secret_overrides={"private_key": FAKE_PEM})
    names = {r.name for r in rec.by_type(EXECUTE)}
    assert "app-egress-reference" not in names and rec.by_type(f"{SF}/networkRule:NetworkRule") == []


def test_consumer_role_holds_what_it_grants_the_app_with_grant_option(consumer_stack):
    grantable = consumer_stack.get(f"{SF}/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
                                   "access-account-privileges-grantable").inputs
    assert grantable["withGrantOption"] is True and grantable["accountRoleName"] == "RAY_CONSUMER_ROLE"
    assert sorted(grantable["privileges"]) == ["BIND SERVICE ENDPOINT", "CREATE COMPUTE POOL"]
    plain = consumer_stack.get(f"{SF}/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
                               "access-account-privileges").inputs
    assert not set(plain["privileges"]) & set(grantable["privileges"])  # each privilege in one grant only
    granted = consumer_stack.get(EXECUTE, "app-grant-account").inputs["execute"]
    assert all(p in granted for p in grantable["privileges"])


def test_an_app_grant_without_grant_option_is_refused():
    from components.spcs_app.consumer import SpcsAppInstallArgs

    with pytest.raises(ValueError, match="holds CREATE COMPUTE POOL without grant option, so it cannot grant them"):
        SpcsAppInstallArgs(application="A", listing="L", role="R", warehouse="W", request={}, provider=None, connection={},
                           grantable=("BIND SERVICE ENDPOINT",))


def test_config_errors_name_key_value_and_allowed():
    base = {"ray-platform:environment": "spcs_consumer", "ray-platform:organization_name": "o",
            "ray-platform:account_name": "a", "ray-platform:user": "u"}
    with pytest.raises(ConfigError) as err:
        load({**base, "ray-platform:install": '{"source": "package", "name": "RAY_APP_PKG"}',
              "ray-platform:role": "ACCOUNTADMIN",
              "ray-platform:workers": '[{"name": "head", "min_nodes": 3, "max_nodes": 2}, {"name": "g", "min_nodes": 0}]'})
    assert err.value.problems == [
        "ray-platform:role: 'ACCOUNTADMIN' cannot own the application (allowed: a custom role, not ACCOUNTADMIN, "
        "SECURITYADMIN, ORGADMIN)",
        "ray-platform:workers[0].min_nodes: 3 > max_nodes 2 (allowed: 1 to 2)",
        "ray-platform:workers[1].min_nodes: 0 (allowed: 1 to 1; a compute pool's MIN_NODES must be greater than 0, "
        "and an idle pool suspends after auto_suspend_s)",
        "ray-platform:workers[0].name: 'head' is the head's group (allowed: another name)",
        "ray-platform:install.source: 'package' (allowed: listing; an application package installs only in its own "
        "account: use the spcs-app stack's test_install there)",
    ]
    with pytest.raises(ConfigError) as err:
        load({"ray-platform:environment": "spcs_app", "ray-platform:organization_name": "o",
              "ray-platform:account_name": "a", "ray-platform:user": "u",
              "ray-platform:listing": '{"enabled": true, "accounts": ["nodot"]}',
              "ray-platform:shapes": '{"head_families": ["CPU_X64_XS"]}'})
    assert err.value.problems == [
        "ray-platform:listing.accounts: 'nodot' is not a consumer account (allowed: ORGNAME.ACCOUNTNAME)",
    ]
    with pytest.raises(ConfigError) as err:
        load({"ray-platform:environment": "spcs_app", "ray-platform:organization_name": "myorg",
              "ray-platform:account_name": "a", "ray-platform:user": "u",
              "ray-platform:listing": '{"enabled": true, "accounts": ["MYORG.B", "OTHERORG.C"]}'})
    assert err.value.problems == [
        "ray-platform:listing.accounts: OTHERORG.C outside organization MYORG with package.distribution INTERNAL "
        "(allowed: package.distribution EXTERNAL, then each version is released once Snowflake's security scan "
        "approves it)"]
    load({"ray-platform:environment": "spcs_app", "ray-platform:organization_name": "myorg",
          "ray-platform:account_name": "a", "ray-platform:user": "u", "ray-platform:package": '{"distribution": "EXTERNAL"}',
          "ray-platform:listing": '{"enabled": true, "accounts": ["OTHERORG.C"]}'})
    with pytest.raises(ConfigError) as err:
        load({"ray-platform:environment": "spcs_app", "ray-platform:organization_name": "o",
              "ray-platform:account_name": "a", "ray-platform:user": "u",
              "ray-platform:shapes": '{"head_families": ["CPU_X64_XS"]}'})
    assert err.value.problems == [
        "ray-platform:shapes.head_families: CPU_X64_XS leaves -0.45 vCPU and 1.3 GiB for the Ray head beside its "
        "sidecars (allowed: at least 1 vCPU and 4 GiB)",
    ]


def test_consumer_custom_groups_reach_start_cluster_and_capacity():
    rec = preview("spcs-consumer", secret_overrides={"private_key": FAKE_PEM}, overrides={
        "workers": '[{"name": "cpu"}, {"name": "etl", "instance_family": "HIGHMEM_X64_S", "resources": {"etl": 1}, '
                   '"image": "etl:1"}]'})
    start = rec.get(EXECUTE, "app-start").inputs["execute"]
    body = json.loads(start.split("PARSE_JSON('")[1].rsplit("')", 1)[0])
    assert body["workers"][1] == {"name": "etl", "instance_family": "HIGHMEM_X64_S", "min_nodes": 1, "max_nodes": 1,
                                  "resources": {"etl": 1.0}, "image": "etl:1"}
    assert "resources" not in body["workers"][0]
    assert rec.outputs["ray_capacity"]["etl"]["resources"]["etl"] == 1
    with pytest.raises(ConfigError) as err:
        load({"ray-platform:environment": "spcs_consumer", "ray-platform:organization_name": "o",
              "ray-platform:account_name": "a", "ray-platform:user": "u", "ray-platform:install": '{"name": "L"}',
              "ray-platform:workers": '[{"name": "w", "image": "etl:1"}]'})
    assert err.value.problems == ["ray-platform:workers[0].image: 'etl:1' without resources (allowed: a custom group, "
                                  "with resources, runs a custom image)"]


def test_provider_ships_custom_images_in_the_manifest():
    rec = preview("spcs-app", overrides={"shapes": '{"custom_images": ["etl:1"]}'}, secret_overrides=SECRETS)
    files = rec.get(FILES, "app-files").inputs["files"]
    assert "/ray_provider_db/ray_provider_schema/ray_images/etl:1" in yaml.safe_load(files["manifest.yml"])[
        "artifacts"]["container_services"]["images"]
    assert json.loads(files["python/catalog.json"])["custom_images"] == {
        "etl:1": "/ray_provider_db/ray_provider_schema/ray_images/etl:1"}
