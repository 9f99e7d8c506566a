"""The `spcs` stack under mocks: every object, wired right, secrets secret, stateful objects protected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stacks.config import load
from stacks.errors import ConfigError
from stacks.offline import preview
from stacks.preview import sdk_problems

from .conftest import FAKE_PEM, SECRETS

SF = "snowflake:index"
ROOT = Path(__file__).resolve().parents[2]


def spec_of(rec, name: str) -> dict:
    return yaml.safe_load(rec.get(f"{SF}/service:Service", name).revealed["fromSpecification"]["text"])["spec"]


def test_no_sdk_problems_and_every_contract_key(spcs):
    assert sdk_problems(spcs) == []
    out = spcs.outputs
    assert out["environment"] == "spcs" and out["ray_client_address"] is None
    assert out["ray_dashboard_url"].startswith("https://") and out["ray_dashboard_url"].endswith(".snowflakecomputing.app")
    assert out["access"]["mode"] == "snowflake" and out["access"]["token_env"] == "SNOWFLAKE_TOKEN"
    assert out["access"]["account"] == "MYORG-MYACCOUNT" and out["access"]["user"] == "RAY_DEPLOYER"
    assert out["storage"]["uri"] == "@RAY_DB.RAY_SCHEMA.RAYDP_ARTIFACTS"
    assert out["spark_ui_url"].startswith("https://")  # raydp: true
    assert set(out["ray_capacity"]) == {"head", "cpu", "gpu", "etl"}
    assert out["ray_capacity"]["gpu"]["resources"]["GPU"] == 1 and out["ray_capacity"]["gpu"]["max_nodes"] == 2


def test_admin_provider_only_for_role_and_account_grants(spcs):
    admin = {r.ref for r in spcs.resources if r.provider == "snowflake-admin"}
    assert admin == {f"{SF}/accountRole:AccountRole::access-role",
                     f"{SF}/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole::access-account-privileges",
                     f"{SF}/grantAccountRole:GrantAccountRole::access-to-user",
                     f"{SF}/grantAccountRole:GrantAccountRole::access-to-parent"}
    owner = spcs.get("pulumi:providers:snowflake", "snowflake-owner")
    assert owner.inputs["role"] == "RAY_PROVIDER_ROLE" not in ("ACCOUNTADMIN", "SECURITYADMIN", "ORGADMIN")
    assert f"{SF}/grantAccountRole:GrantAccountRole::access-to-user" in owner.dependencies  # role granted first
    for r in spcs.resources:
        if r.type.startswith("snowflake:") and r.ref not in admin:
            assert r.provider == "snowflake-owner", r.ref


def test_grants_on_the_right_objects(spcs):
    grant = spcs.get(f"{SF}/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole", "access-account-privileges")
    assert grant.inputs["onAccount"] is True
    assert sorted(grant.inputs["privileges"]) == ["BIND SERVICE ENDPOINT", "CREATE COMPUTE POOL", "CREATE DATABASE",
                                                 "CREATE INTEGRATION", "CREATE WAREHOUSE"]
    assert grant.inputs["accountRoleName"] == "RAY_PROVIDER_ROLE"
    assert spcs.get(f"{SF}/grantAccountRole:GrantAccountRole", "access-to-user").inputs == {
        "roleName": "RAY_PROVIDER_ROLE", "userName": "RAY_DEPLOYER"}
    assert spcs.get(f"{SF}/grantAccountRole:GrantAccountRole", "access-to-parent").inputs == {
        "roleName": "RAY_PROVIDER_ROLE", "parentRoleName": "SYSADMIN"}


def test_stateful_objects_are_protected(spcs):
    kept = {r.name for r in spcs.resources if r.protect and r.retain_on_delete}
    assert {"objects-database", "objects-schema", "objects-images", "objects-stage-artifacts", "objects-stage-logs",
            "objects-stage-specs"} <= kept
    assert not spcs.get(f"{SF}/service:Service", "ray-head").protect  # services are cattle


def test_services_use_their_pools_and_workers_carry_the_head_dns(spcs):
    dns = spcs.outputs["head_dns_name"]
    for group in ("head", "cpu", "gpu", "etl"):
        service = spcs.get(f"{SF}/service:Service", f"ray-{group}")
        pool = spcs.get(f"{SF}/computePool:ComputePool", f"ray-{group}-pool")
        assert service.inputs["computePool"] == pool.inputs["name"] == f"RAY_SPCS_{group.upper()}_POOL"
        assert f"{SF}/computePool:ComputePool::ray-{group}-pool" in service.dependencies
        if group != "head":
            (container,) = spec_of(spcs, f"ray-{group}")["containers"]
            assert f"--address={dns}:6379" in container["command"][2]
    gpu = spcs.get(f"{SF}/computePool:ComputePool", "ray-gpu-pool").inputs
    assert (gpu["instanceFamily"], gpu["minNodes"], gpu["maxNodes"]) == ("GPU_NV_S", 1, 2)
    for pool in spcs.by_type(f"{SF}/computePool:ComputePool"):
        assert pool.inputs["minNodes"] >= 1 and pool.inputs["autoSuspendSecs"] > 0, pool.name
    cpu = spcs.get(f"{SF}/service:Service", "ray-cpu").inputs
    assert (cpu["minInstances"], cpu["maxInstances"]) == (1, 3)
    (gpu_container,) = spec_of(spcs, "ray-gpu")["containers"]
    assert gpu_container["resources"]["requests"]["nvidia.com/gpu"] == gpu_container["resources"]["limits"][
        "nvidia.com/gpu"] == 1
    assert "/spcs-raydp-cuda:" in gpu_container["image"]  # raydp: true, so GPU nodes can host Spark executors too


def test_raydp_head_is_the_spark_driver_and_uses_the_raydp_image(spcs):
    head = spec_of(spcs, "ray-head")
    assert "spark-driver" in {e["name"] for e in head["endpoints"]}
    assert "/spcs-raydp:" in head["containers"][0]["image"]


def test_egress_only_the_configured_hosts(spcs):
    rule = spcs.get(f"{SF}/networkRule:NetworkRule", "egress-rule").inputs
    assert rule["mode"] == "EGRESS" and rule["type"] == "HOST_PORT"
    assert rule["valueLists"] == ["files.pythonhosted.org", "huggingface.co", "pypi.org"]
    integration = spcs.get(f"{SF}/externalAccessIntegration:ExternalAccessIntegration", "egress-integration")
    assert integration.inputs["allowedNetworkRules"] == ['"RAY_DB"."RAY_SCHEMA"."RAY_SPCS_EGRESS_RULE"']
    assert spcs.get(f"{SF}/service:Service", "ray-cpu").inputs["externalAccessIntegrations"] == ["RAY_SPCS_EGRESS"]


def test_no_egress_by_default():
    rec = preview("spcs", overrides={"egress": "{}"}, secret_overrides=SECRETS)
    assert rec.by_type(f"{SF}/networkRule:NetworkRule") == []
    assert "externalAccessIntegrations" not in rec.get(f"{SF}/service:Service", "ray-cpu").inputs


def test_images_are_amd64_pushed_with_secret_credentials(spcs):
    images = spcs.by_type("docker:index/image:Image")
    assert {i.name for i in images} == {"images-spcs-raydp", "images-spcs-raydp-cuda", "images-spcs-prometheus",
                                        "images-spcs-grafana"}
    for image in images:
        assert image.inputs["build"]["platform"] == "linux/amd64"
        flavor = {"RAY_FLAVOR": "gpu"} if image.name == "images-spcs-raydp-cuda" else {}
        assert image.inputs["build"]["args"] == {"RAY_VERSION": spcs.outputs["ray_version"], **flavor}
        assert image.inputs["registry"] == "[secret]"
        assert image.revealed["registry"]["password"] == SECRETS["registry_token"]
        assert image.inputs["imageName"].startswith("myorg-myaccount.registry.snowflakecomputing.com/ray_db/")
    assert {i.name: i.inputs["build"]["context"] for i in images} == {
        "images-spcs-raydp": "images/spcs-raydp", "images-spcs-raydp-cuda": "images/spcs-raydp",
        "images-spcs-prometheus": "images/spcs-prometheus", "images-spcs-grafana": "images/spcs-grafana"}
    head_image = spec_of(spcs, "ray-head")["containers"][0]["image"]
    pushed = spcs.get("docker:index/image:Image", "images-spcs-raydp").inputs["imageName"]
    assert pushed.endswith(head_image)  # the spec runs exactly what was pushed
    assert "docker:index/image:Image::images-spcs-raydp" in spcs.get(f"{SF}/service:Service", "ray-head").dependencies


def test_secrets_are_secret_everywhere(spcs):
    text = json.dumps(spcs.to_json())
    for value in SECRETS.values():
        assert value.strip() not in text
    assert spcs.get("pulumi:providers:snowflake", "snowflake-owner").inputs["privateKey"] == "[secret]"
    assert "credentials" in spcs.secret_outputs
    secret = spcs.get(f"{SF}/secretWithGenericString:SecretWithGenericString", "ray-secret-ray-grafana-admin-password")
    assert secret.inputs["secretString"] == "[secret]"
    grafana = next(c for c in spec_of(spcs, "ray-head")["containers"] if c["name"] == "grafana")
    assert grafana["secrets"][0]["snowflakeSecret"]["objectName"].endswith(".RAY_GRAFANA_ADMIN_PASSWORD")


def test_every_ray_container_reads_rays_token_from_a_snowflake_secret(spcs):
    token = spcs.outputs["ray_auth_token"]
    assert len(token) == 64 and "ray_auth_token" in spcs.secret_outputs
    secret = spcs.get(f"{SF}/secretWithGenericString:SecretWithGenericString", "ray-secret-ray-auth-token")
    assert secret.inputs["secretString"] == "[secret]" and secret.revealed["secretString"] == token
    services = [r.name for r in spcs.by_type(f"{SF}/service:Service")]
    ray_containers = [c for name in services for c in spec_of(spcs, name)["containers"] if c["name"].startswith("ray-")]
    assert {c["name"] for c in ray_containers} >= {"ray-head", "ray-worker"}
    for container in ray_containers:
        assert container["env"]["RAY_AUTH_MODE"] == "token"
        [ref] = [s for s in container["secrets"] if s["envVarName"] == "RAY_AUTH_TOKEN"]
        assert ref["secretKeyRef"] == "secret_string"
        assert ref["snowflakeSecret"]["objectName"].endswith("." + secret.revealed["name"])
    assert token not in json.dumps([r.revealed for r in spcs.resources if r is not secret])


def test_ray_auth_off_is_said_to_every_ray_container():
    rec = preview("spcs", {"ray_auth": "disabled"}, secret_overrides=SECRETS)
    assert rec.outputs["ray_auth_token"] is None
    containers = [c for r in rec.by_type(f"{SF}/service:Service") for c in spec_of(rec, r.name)["containers"]
                  if c["name"].startswith("ray-")]
    assert containers and all(c["env"]["RAY_AUTH_MODE"] == "disabled" and "secrets" not in c for c in containers)


def test_status_page_uploaded_from_memory_then_created(spcs):
    app = spcs.get(f"{SF}/streamlit:Streamlit", "status-streamlit")
    upload = spcs.get("pulumi-python:dynamic/spcs:StageFiles", "status-upload").revealed
    assert "pulumi-python:dynamic/spcs:StageFiles::status-upload" in app.dependencies
    uploaded = spcs.get("pulumi-python:dynamic/spcs:StageFiles", "status-upload")
    assert f"{SF}/stageInternal:StageInternal::objects-stage-apps" in uploaded.dependencies  # into a stage that exists
    assert upload["files"] == {"streamlit_app.py": (ROOT / "apps" / "spcs-status" / "streamlit_app.py").read_text()}
    assert app.inputs["mainFile"] == "streamlit_app.py" and app.inputs["directoryLocation"] == upload["folder"]
    assert upload["stage"] == app.inputs["stage"] == "RAY_DB.RAY_SCHEMA.RAY_APPS"
    assert spcs.by_type(f"{SF}/execute:Execute") == []  # no PUT through Execute, no re-read on refresh


def test_up_waits_for_every_service_and_the_heads_endpoints(spcs):
    ready = spcs.get("pulumi-python:dynamic/spcs:ServiceEndpoints", "ray-endpoints")
    props = ready.revealed
    assert props["endpoints"] == 'SHOW ENDPOINTS IN SERVICE "RAY_DB"."RAY_SCHEMA"."RAY_SPCS_HEAD"'
    assert sorted(props["containers"]) == [f'SHOW SERVICE CONTAINERS IN SERVICE "RAY_DB"."RAY_SCHEMA"."RAY_SPCS_{g}"'
                                           for g in ("CPU", "ETL", "GPU", "HEAD")]
    assert props["connection"] == {"account": "MYORG-MYACCOUNT", "user": "RAY_DEPLOYER", "role": "RAY_PROVIDER_ROLE"}
    for group in ("head", "cpu", "gpu", "etl"):
        assert f"{SF}/service:Service::ray-{group}" in ready.dependencies
    assert FAKE_PEM.strip() not in json.dumps(props)
    changed = preview("spcs", overrides={"head": '{"instance_family": "CPU_X64_L"}'}, secret_overrides=SECRETS)
    assert changed.get("pulumi-python:dynamic/spcs:ServiceEndpoints", "ray-endpoints").revealed["revision"] != \
        props["revision"]  # a changed spec waits again


def test_config_errors_name_key_value_and_allowed():
    base = {"ray-platform:environment": "spcs", "ray-platform:organization_name": "o",
            "ray-platform:account_name": "a", "ray-platform:user": "u"}
    with pytest.raises(ConfigError) as err:
        load({**base, "ray-platform:role": "ACCOUNTADMIN", "ray-platform:private_key": "nope",
              "ray-platform:workers": '[{"name": "w", "min_nodes": 3, "max_nodes": 2}]'}, set())
    assert err.value.problems == [
        "ray-platform:private_key: must be set as a secret (allowed: `pulumi config set --secret private_key ...`)",
        "ray-platform:private_key: not a PEM private key (allowed: the contents of rsa_key.p8, "
        "`pulumi config set --secret private_key < rsa_key.p8`)",
    ]
    with pytest.raises(ConfigError) as err:
        load({**base, "ray-platform:role": "ACCOUNTADMIN", "ray-platform:private_key": FAKE_PEM,
              "ray-platform:workers": '[{"name": "w", "min_nodes": 3, "max_nodes": 2}]'}, {"ray-platform:private_key"})
    assert err.value.problems == [
        "ray-platform:role: 'ACCOUNTADMIN' cannot own services (allowed: a custom role, not ACCOUNTADMIN, "
        "SECURITYADMIN, ORGADMIN)",
        "ray-platform:workers[0].min_nodes: 3 > max_nodes 2 (allowed: 1 to 2)",
    ]


def test_config_rejects_min_nodes_zero_and_raydp_with_a_foreign_image():
    base = {"ray-platform:environment": "spcs", "ray-platform:organization_name": "o",
            "ray-platform:account_name": "a", "ray-platform:user": "u", "ray-platform:raydp": "true"}
    with pytest.raises(ConfigError) as err:
        load({**base, "ray-platform:workers": '[{"name": "gpu", "instance_family": "GPU_NV_S", "min_nodes": 0}]',
              "ray-platform:custom_workers": '[{"name": "etl", "resources": {"etl": 1}, "image": "etl:1"}]'}, set())
    assert err.value.problems == [
        "ray-platform:workers[0].min_nodes: 0 (allowed: 1 to 1; a compute pool's MIN_NODES must be greater than 0, "
        "and an idle pool suspends after auto_suspend_s)",
        "ray-platform:custom_workers[0].image: 'etl:1' with raydp true (allowed: unset, so the group runs the RayDP "
        "image: Spark executors may land on any node and need Java and raydp)",
    ]
