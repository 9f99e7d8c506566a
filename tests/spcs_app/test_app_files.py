"""The app's files: manifest parses with every required key and exactly the images; specs come from the `spcs`
renderer and equal the `spcs` stack's for the same node groups; the start procedure's SQL, with a fake session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from components.spcs.families import family
from components.spcs.spec_lint import lint
from components.spcs_app.app_files import (
    CATALOG,
    HEAD_HOST,
    AppImages,
    AppShape,
    app_files,
    fill_template,
    manifest_problems,
    render_manifest,
)
from stacks import spcs as spcs_stack
from stacks.config import load
from stacks.offline import read_stack_config
from tests.modules import load_module

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "apps" / "ray-native-app"
IMAGES = AppImages("/db/s/r/spcs-ray:t", "/db/s/r/spcs-ray-cuda:t", "/db/s/r/spcs-prometheus:t",
                   "/db/s/r/spcs-grafana:t", custom=("/db/s/r/etl:1",))
SHAPE = AppShape([family("CPU_X64_M")], [family("CPU_X64_M"), family("GPU_NV_S")], IMAGES)


def procedures():
    return load_module("ray_cluster", APP_DIR / "python" / "ray_cluster.py")


def test_repo_manifest_parses_and_has_every_required_key():
    document = yaml.safe_load((APP_DIR / "manifest.yml").read_text())
    assert manifest_problems(document) == []
    assert document["artifacts"]["setup_script"] == "setup_script.sql" and (APP_DIR / "setup_script.sql").is_file()
    assert document["artifacts"]["readme"] == "README.md" and (APP_DIR / "README.md").is_file()
    reference = document["references"][0]["egress_eai"]
    assert reference["object_type"] == "EXTERNAL ACCESS INTEGRATION"
    assert reference["register_callback"] == "app_public.register_reference"
    setup = (APP_DIR / "setup_script.sql").read_text()
    for callback in (reference["register_callback"], reference["configuration_callback"],
                     document["artifacts"]["default_streamlit"]):
        assert f" {callback}" in setup  # every name the manifest points at is created by the setup script


def test_manifest_problems_name_each_missing_piece():
    document = yaml.safe_load((APP_DIR / "manifest.yml").read_text())
    del document["references"], document["artifacts"]["readme"]
    document["privileges"] = [{"BIND SERVICE ENDPOINT": {}}]
    document["artifacts"]["container_services"]["images"] = ["spcs-ray:latest"]
    assert manifest_problems(document) == [
        "references: missing (allowed: see Snowflake's manifest reference)",
        "artifacts.readme: missing (allowed: see Snowflake's manifest reference)",
        "privileges: CREATE COMPUTE POOL missing (allowed: BIND SERVICE ENDPOINT, CREATE COMPUTE POOL, CREATE WAREHOUSE)",
        "privileges: CREATE WAREHOUSE missing (allowed: BIND SERVICE ENDPOINT, CREATE COMPUTE POOL, CREATE WAREHOUSE)",
        "artifacts.container_services.images[0]: 'spcs-ray:latest' (allowed: /db/schema/repo/name:tag)",
    ]


def test_manifest_declares_gpu_use_and_a_string_trace_level():
    """A bare `trace_level: OFF` is YAML's false; GPU families need uses_gpu: true."""
    document = yaml.safe_load((APP_DIR / "manifest.yml").read_text())
    assert document["configuration"]["trace_level"] == "OFF"
    document["configuration"]["trace_level"] = yaml.safe_load("OFF")
    assert manifest_problems(document, uses_gpu=True) == [
        "artifacts.container_services.uses_gpu: not true while GPU instance families are offered (allowed: true)",
        "configuration.trace_level: False (allowed: the strings OFF, ALWAYS, ON_EVENT; quote OFF)"]
    rendered = yaml.safe_load(app_files(APP_DIR, SHAPE, "V1", "Ray")["manifest.yml"])
    assert rendered["artifacts"]["container_services"]["uses_gpu"] is True  # SHAPE offers GPU_NV_S workers
    cpu_only = AppShape(SHAPE.head_families, [family("CPU_X64_M")], SHAPE.images)
    assert yaml.safe_load(app_files(APP_DIR, cpu_only, "V1", "Ray")["manifest.yml"])["artifacts"][
        "container_services"]["uses_gpu"] is False


def test_rendered_manifest_lists_exactly_the_images_the_specs_run():
    files = app_files(APP_DIR, SHAPE, "V1", "Ray")
    manifest = yaml.safe_load(files["manifest.yml"])
    assert manifest["version"] == {"name": "V1", "label": "Ray"}
    used = {c["image"] for path, text in files.items() if path.startswith("specs/")
            for c in yaml.safe_load(text)["spec"]["containers"]} - {"{{ image }}"}  # custom groups: filled at start
    catalog = json.loads(files[CATALOG])
    assert set(manifest["artifacts"]["container_services"]["images"]) == used | set(catalog["custom_images"].values()) \
        == set(IMAGES.listed())
    assert catalog["custom_images"] == {"etl:1": "/db/s/r/etl:1"}


def test_every_spec_passes_the_linter_and_the_catalog_names_existing_files():
    files = app_files(APP_DIR, SHAPE, "V1", "Ray")
    catalog = json.loads(files[CATALOG])
    paths = [*catalog["head"].values(), *catalog["worker"].values(), *catalog["custom_worker"].values()]
    assert sorted(p.lstrip("/") for p in paths) == sorted(p for p in files if p.startswith("specs/"))
    for path in paths:
        filled = fill_template(files[path.lstrip("/")], "ray-head.abc.svc.spcs.internal")
        assert lint(filled.replace("{{ image }}", "/db/s/r/etl:1").replace("{{ resources }}", '{"etl":1}')) == []
    assert HEAD_HOST in files[catalog["worker"]["GPU_NV_S"].lstrip("/")]
    assert HEAD_HOST not in files[catalog["head"]["CPU_X64_M"].lstrip("/")]


def test_gpu_families_without_the_cuda_image_are_refused():
    with pytest.raises(ValueError, match="GPU worker families need images.ray_cuda"):
        AppShape([family("CPU_X64_M")], [family("GPU_NV_S")], AppImages("/d/s/r/ray:t", None, "/p:t", "/g:t"))


def test_app_specs_equal_the_spcs_stacks_for_the_same_node_groups(monkeypatch):
    """One renderer: the `spcs` stack's head and worker specs, and the app's for the same families, images,
    stages and head DNS name (the app's template filled in as `USING (head_host => ...)` does)."""
    monkeypatch.setattr(spcs_stack.pulumi, "get_stack", lambda: "spcs")
    raw, secrets = read_stack_config("spcs")
    cfg = load({**raw, "ray-platform:raydp": "false", "ray-platform:custom_workers": "[]"}, secrets)
    dns = "ray-spcs-head.x1y2.svc.spcs.internal"
    head = spcs_stack.head_spec(cfg)
    images = AppImages(spcs_stack.image_path(cfg, "spcs-ray"), spcs_stack.image_path(cfg, "spcs-ray-cuda"),
                       head.monitoring.prometheus_image, head.monitoring.grafana_image)
    shape = AppShape([head.family], [family(w.instance_family) for w in cfg.workers], images,
                     stages=spcs_stack.stage_mounts(cfg), env=spcs_stack.storage_env(cfg),
                     grafana_secret=head.monitoring.grafana_password, logs_volume_gib=cfg.head.logs_volume_gib,
                     ray_token=spcs_stack.ray_token(cfg))  # the app's own: a reference (test below)
    files = app_files(APP_DIR, shape, "V1", "Ray")
    catalog = json.loads(files[CATALOG])
    assert files[catalog["head"][head.family.name].lstrip("/")] == spcs_stack.render_head_spec(head)
    assert len(cfg.workers) == 2
    for w in cfg.workers:
        stack_spec = spcs_stack.render_worker_spec(spcs_stack.worker_spec(cfg, w, dns))
        app_spec = fill_template(files[catalog["worker"][w.instance_family].lstrip("/")], dns)
        assert yaml.safe_load(app_spec) == yaml.safe_load(stack_spec), w.name


def ray_containers(files: dict[str, str]) -> list[dict]:
    return [c for path, text in files.items() if path.startswith("specs/")
            for c in yaml.safe_load(text.replace("{{ resources }}", "{}"))["spec"]["containers"]
            if c["name"].startswith("ray-")]


def test_every_ray_container_of_the_app_reads_rays_token_through_the_consumers_secret_reference():
    files = app_files(APP_DIR, SHAPE, "V1", "Ray")
    containers = ray_containers(files)
    assert {c["name"] for c in containers} >= {"ray-head", "ray-worker", "ray-custom-worker"}
    for c in containers:
        assert c["env"]["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" not in c["env"]
        assert c["secrets"] == [{"snowflakeSecret": {"objectReference": "ray_auth_token"},
                                 "secretKeyRef": "secret_string", "envVarName": "RAY_AUTH_TOKEN"}]
    [reference] = [r["ray_auth_token"] for r in yaml.safe_load(files["manifest.yml"])["references"]
                   if "ray_auth_token" in r]
    assert reference["object_type"] == "SECRET" and set(reference["privileges"]) == {"READ", "USAGE"}
    assert reference["register_callback"] == "app_public.register_reference"
    assert json.loads(files[CATALOG])["ray_token_reference"] == "ray_auth_token"


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("path", ["specs/head-cpu_x64_m.yaml", "specs/worker-gpu_nv_s.yaml",
                                  "specs/custom-worker-cpu_x64_m.yaml"])
def test_app_spec_matches_golden(path):
    """The app's specs as shipped (Ray's token through the secret reference). Regenerate after an intended change:
    UPDATE_GOLDEN=1 python -m pytest tests/spcs_app"""
    text = app_files(APP_DIR, SHAPE, "V1", "Ray")[path]
    golden = GOLDEN / Path(path).name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_an_app_with_ray_auth_disabled_says_so_in_every_ray_container():
    shape = AppShape(SHAPE.head_families, SHAPE.worker_families, IMAGES, ray_token=None)
    files = app_files(APP_DIR, shape, "V1", "Ray")
    assert all(c["env"]["RAY_AUTH_MODE"] == "disabled" and "secrets" not in c for c in ray_containers(files))
    assert json.loads(files[CATALOG])["ray_token_reference"] is None


def test_render_manifest_refuses_a_manifest_without_privileges():
    base = (APP_DIR / "manifest.yml").read_text().replace("privileges:", "privileges_typo:")
    with pytest.raises(ValueError, match="manifest.yml: privileges: missing"):
        render_manifest(base, IMAGES.listed(), "V1", "L")


# --------------------------------------------------------------------------------- the procedures


class Row:
    def __init__(self, values: dict):
        self._values = values

    def as_dict(self) -> dict:
        return dict(self._values)


class FakeSession:
    def __init__(self, answers: dict[str, list[dict]]):
        self.answers, self.statements = answers, []

    def sql(self, statement: str):
        self.statements.append(statement)
        rows = next((v for k, v in self.answers.items() if statement.startswith(k)), [])
        return type("Result", (), {"collect": lambda _self: [Row(r) for r in rows]})()


ANSWERS = {"SELECT CURRENT_DATABASE()": [{"NAME": "RAY_APP"}], "SELECT SYSTEM$GET_ALL_REFERENCES": [{"REFS": "[\"x\"]"}],
           "SHOW SERVICES LIKE 'RAY_HEAD'": [{"name": "RAY_HEAD", "dns_name": "ray-head.ab12.svc.spcs.internal"}]}


def test_start_cluster_creates_pools_and_services_from_the_shipped_specs():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    session = FakeSession(ANSWERS)
    request = {"head": {"instance_family": "CPU_X64_M"}, "warehouse": "RAY_WH",
               "workers": [{"name": "gpu", "instance_family": "GPU_NV_S", "min_nodes": 1, "max_nodes": 2}]}
    out = json.loads(procedures().start_cluster(session, json.dumps(request), catalog))
    ddl = [s for s in session.statements if not s.startswith(("SELECT", "SHOW", "CREATE SECRET"))]
    tail = " EXTERNAL_ACCESS_INTEGRATIONS = (reference('egress_eai')) QUERY_WAREHOUSE = RAY_WH"
    assert ddl == [
        "CREATE COMPUTE POOL IF NOT EXISTS RAY_APP_HEAD_POOL MIN_NODES = 1 MAX_NODES = 1 INSTANCE_FAMILY = CPU_X64_M "
        "AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = 3600",
        "CREATE SERVICE IF NOT EXISTS services.RAY_HEAD IN COMPUTE POOL RAY_APP_HEAD_POOL FROM SPECIFICATION_FILE = "
        f"'/specs/head-cpu_x64_m.yaml' MIN_INSTANCES = 1 MAX_INSTANCES = 1{tail}",
        "CREATE COMPUTE POOL IF NOT EXISTS RAY_APP_GPU_POOL MIN_NODES = 1 MAX_NODES = 2 INSTANCE_FAMILY = GPU_NV_S "
        "AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = 3600",
        "CREATE SERVICE IF NOT EXISTS services.RAY_GPU IN COMPUTE POOL RAY_APP_GPU_POOL FROM "
        "SPECIFICATION_TEMPLATE_FILE = '/specs/worker-gpu_nv_s.yaml' USING (head_host => "
        f"'ray-head.ab12.svc.spcs.internal') MIN_INSTANCES = 1 MAX_INSTANCES = 2{tail}",
        "GRANT SERVICE ROLE services.RAY_HEAD!ALL_ENDPOINTS_USAGE TO APPLICATION ROLE app_user",
    ]
    assert any(s.startswith("CREATE SECRET IF NOT EXISTS services.grafana_admin_password") for s in session.statements)
    assert out["head_dns_name"] == "ray-head.ab12.svc.spcs.internal"


def test_start_cluster_refuses_to_start_without_rays_token_bound():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    # the first answer whose prefix matches is taken: the unbound token reference before ANSWERS' bound ones
    session = FakeSession({"SELECT SYSTEM$GET_ALL_REFERENCES('ray_auth_token')": [{"REFS": "[]"}], **ANSWERS})
    request = {"head": {"instance_family": "CPU_X64_M"}, "workers": []}
    with pytest.raises(ValueError, match="start_cluster: reference ray_auth_token is not bound"):
        procedures().start_cluster(session, request, catalog)
    assert not [s for s in session.statements if s.startswith("CREATE")]


def test_start_cluster_refuses_families_the_version_has_no_spec_for():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    session = FakeSession(ANSWERS)
    request = {"head": {"instance_family": "GPU_NV_L"},
               "workers": [{"name": "Bad_Name", "instance_family": "CPU_X64_M", "min_nodes": 3, "max_nodes": 2},
                           {"name": "zero", "instance_family": "CPU_X64_M", "min_nodes": 0, "max_nodes": 2}]}
    with pytest.raises(ValueError) as err:
        procedures().start_cluster(session, request, catalog)
    assert str(err.value) == (
        "start_cluster: head.instance_family: 'GPU_NV_L' (allowed: CPU_X64_M); workers[0].name: 'Bad_Name' "
        "(allowed: lower case letters, digits and '-', not 'head'); workers[0]: min_nodes 3, max_nodes 2 "
        "(allowed: 1 <= min <= max <= 100; a compute pool's MIN_NODES must be greater than 0, an idle pool suspends "
        "instead); workers[1]: min_nodes 0, max_nodes 2 (allowed: 1 <= min <= max <= 100; a compute pool's MIN_NODES "
        "must be greater than 0, an idle pool suspends instead)")
    assert session.statements == []  # nothing created


def test_stop_cluster_drops_services_before_pools():
    session = FakeSession({**ANSWERS, "SHOW SERVICES IN SCHEMA": [{"name": "RAY_HEAD"}, {"name": "RAY_GPU"}],
                           "SHOW COMPUTE POOLS": [{"name": "RAY_APP_HEAD_POOL"}]})
    procedures().stop_cluster(session)
    assert [s for s in session.statements if not s.startswith(("SELECT", "SHOW"))] == [
        "DROP SERVICE IF EXISTS services.RAY_HEAD", "DROP SERVICE IF EXISTS services.RAY_GPU",
        "ALTER COMPUTE POOL RAY_APP_HEAD_POOL STOP ALL", "DROP COMPUTE POOL IF EXISTS RAY_APP_HEAD_POOL"]


def test_scale_group_changes_pool_and_service():
    session = FakeSession(ANSWERS)
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    procedures().scale_group(session, "cpu", 2, 5, catalog)
    assert session.statements[1:] == ["ALTER COMPUTE POOL RAY_APP_CPU_POOL SET MIN_NODES = 2 MAX_NODES = 5",
                                      "ALTER SERVICE services.RAY_CPU SET MIN_INSTANCES = 2 MAX_INSTANCES = 5"]
    with pytest.raises(ValueError, match="allowed: a worker group, 1 <= min <= max <= 100"):
        procedures().scale_group(session, "cpu", 0, 5, catalog)


def test_service_containers_lists_every_container_of_the_apps_services_for_the_deploy_to_wait_on():
    session = FakeSession({**ANSWERS, "SHOW SERVICES IN SCHEMA": [{"name": "RAY_HEAD"}],
                           "SHOW SERVICE CONTAINERS IN SERVICE services.RAY_HEAD": [
                               {"instance_id": "0", "container_name": "ray-head", "status": "PENDING",
                                "message": "Pending scheduling"}]})
    procedures().service_containers(session)
    assert session.statements[-1] == ("SELECT * FROM (VALUES ('RAY_HEAD', '0', 'ray-head', 'PENDING', "
                                      "'Pending scheduling')) AS t(service_name, instance_id, container_name, status, "
                                      "message)")
    empty = FakeSession({})
    procedures().service_containers(empty)
    assert empty.statements[-1].endswith("NULL::STRING AS message WHERE FALSE")  # no services yet: no rows


def test_start_cluster_creates_custom_groups_with_their_image_and_resources():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    session = FakeSession(ANSWERS)
    request = {"head": {"instance_family": "CPU_X64_M"}, "workers": [
        {"name": "etl", "instance_family": "CPU_X64_M", "resources": {"etl": 1}, "image": "etl:1"},
        {"name": "tagged", "instance_family": "GPU_NV_S", "resources": {"big_gpu": 0.5}}]}
    procedures().start_cluster(session, request, catalog)
    services = [s for s in session.statements if s.startswith("CREATE SERVICE IF NOT EXISTS services.RAY_") and
                "HEAD" not in s.split(" IN ")[0]]
    head = "head_host => 'ray-head.ab12.svc.spcs.internal'"
    assert services == [
        "CREATE SERVICE IF NOT EXISTS services.RAY_ETL IN COMPUTE POOL RAY_APP_ETL_POOL FROM SPECIFICATION_TEMPLATE_FILE "
        f"= '/specs/custom-worker-cpu_x64_m.yaml' USING ({head}, image => '/db/s/r/etl:1', resources => "
        "'{\"etl\":1}') MIN_INSTANCES = 1 MAX_INSTANCES = 1 EXTERNAL_ACCESS_INTEGRATIONS = (reference('egress_eai'))",
        "CREATE SERVICE IF NOT EXISTS services.RAY_TAGGED IN COMPUTE POOL RAY_APP_TAGGED_POOL FROM "
        f"SPECIFICATION_TEMPLATE_FILE = '/specs/custom-worker-gpu_nv_s.yaml' USING ({head}, image => "
        "'/db/s/r/spcs-ray-cuda:t', resources => '{\"big_gpu\":0.5}') MIN_INSTANCES = 1 MAX_INSTANCES = 1 "
        "EXTERNAL_ACCESS_INTEGRATIONS = (reference('egress_eai'))"]
    # What Snowflake makes of the template: a spec that passes the linter, Ray told its resources.
    files = app_files(APP_DIR, SHAPE, "V1", "Ray")
    filled = (fill_template(files["specs/custom-worker-cpu_x64_m.yaml"], "ray-head.ab12.svc.spcs.internal")
              .replace("{{ image }}", "/db/s/r/etl:1").replace("{{ resources }}", '{"etl":1}'))
    (container,) = yaml.safe_load(filled)["spec"]["containers"]
    assert container["image"] == "/db/s/r/etl:1" and container["env"]["RAY_PLATFORM_RESOURCES"] == '{"etl":1}'
    assert lint(filled, family("CPU_X64_M")) == []


def test_custom_groups_are_checked_before_anything_is_created():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    request = {"head": {"instance_family": "CPU_X64_M"}, "workers": [
        {"name": "a", "instance_family": "CPU_X64_M", "resources": {"GPU": 1}},
        {"name": "b", "instance_family": "CPU_X64_M", "resources": {"etl": 1}, "image": "other:2"}]}
    session = FakeSession(ANSWERS)
    with pytest.raises(ValueError) as err:
        procedures().start_cluster(session, request, catalog)
    assert str(err.value) == (
        "start_cluster: workers[0].resources: {'GPU': 1} (allowed: a non-empty object of custom resource names to "
        "positive numbers, e.g. {\"etl\": 1}; not CPU, GPU, memory, object_store_memory); workers[1].image: 'other:2' "
        "(allowed: etl:1, or unset for the Ray image)")
    assert session.statements == []


def test_resize_cluster_scales_recreates_creates_and_drops_groups():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    pools = [{"name": "RAY_APP_HEAD_POOL", "instance_family": "CPU_X64_M"},
             {"name": "RAY_APP_CPU_POOL", "instance_family": "CPU_X64_M"},
             {"name": "RAY_APP_GPU_POOL", "instance_family": "CPU_X64_M"},
             {"name": "RAY_APP_OLD_POOL", "instance_family": "CPU_X64_M"}]
    session = FakeSession({**ANSWERS, "SHOW COMPUTE POOLS": pools, "SHOW SERVICES IN SCHEMA": [
        {"name": n} for n in ("RAY_HEAD", "RAY_CPU", "RAY_GPU", "RAY_OLD")]})
    request = {"head": {"instance_family": "CPU_X64_M"}, "warehouse": "WH2", "workers": [
        {"name": "cpu", "instance_family": "CPU_X64_M", "min_nodes": 2, "max_nodes": 4},
        {"name": "gpu", "instance_family": "GPU_NV_S", "min_nodes": 1, "max_nodes": 2},
        {"name": "new", "instance_family": "CPU_X64_M", "min_nodes": 1, "max_nodes": 1}]}
    out = json.loads(procedures().resize_cluster(session, json.dumps(request), catalog))
    assert out == {"changes": ["scaled cpu", "recreated gpu", "created new", "dropped old"]}
    ddl = [s for s in session.statements if s.startswith(("ALTER", "CREATE", "DROP"))]
    tail = " EXTERNAL_ACCESS_INTEGRATIONS = (reference('egress_eai')) QUERY_WAREHOUSE = WH2"
    assert ddl == [
        "ALTER COMPUTE POOL RAY_APP_CPU_POOL SET MIN_NODES = 2 MAX_NODES = 4",
        "ALTER SERVICE services.RAY_CPU SET MIN_INSTANCES = 2 MAX_INSTANCES = 4",
        "DROP SERVICE IF EXISTS services.RAY_GPU", "DROP COMPUTE POOL IF EXISTS RAY_APP_GPU_POOL",
        "CREATE COMPUTE POOL IF NOT EXISTS RAY_APP_GPU_POOL MIN_NODES = 1 MAX_NODES = 2 INSTANCE_FAMILY = GPU_NV_S "
        "AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = 3600",
        "CREATE SERVICE IF NOT EXISTS services.RAY_GPU IN COMPUTE POOL RAY_APP_GPU_POOL FROM "
        "SPECIFICATION_TEMPLATE_FILE = '/specs/worker-gpu_nv_s.yaml' USING (head_host => "
        f"'ray-head.ab12.svc.spcs.internal') MIN_INSTANCES = 1 MAX_INSTANCES = 2{tail}",
        "CREATE COMPUTE POOL IF NOT EXISTS RAY_APP_NEW_POOL MIN_NODES = 1 MAX_NODES = 1 INSTANCE_FAMILY = CPU_X64_M "
        "AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = 3600",
        "CREATE SERVICE IF NOT EXISTS services.RAY_NEW IN COMPUTE POOL RAY_APP_NEW_POOL FROM "
        "SPECIFICATION_TEMPLATE_FILE = '/specs/worker-cpu_x64_m.yaml' USING (head_host => "
        f"'ray-head.ab12.svc.spcs.internal') MIN_INSTANCES = 1 MAX_INSTANCES = 1{tail}",
        "DROP SERVICE IF EXISTS services.RAY_OLD", "DROP COMPUTE POOL IF EXISTS RAY_APP_OLD_POOL",
        *(f"ALTER SERVICE services.RAY_{g} SET QUERY_WAREHOUSE = WH2" for g in ("HEAD", "CPU", "GPU", "NEW")),
    ]


def test_resize_cluster_keeps_the_head_and_needs_a_running_cluster():
    catalog = json.loads(app_files(APP_DIR, SHAPE, "V1", "Ray")[CATALOG])
    request = {"head": {"instance_family": "CPU_X64_M"}, "workers": []}
    with pytest.raises(ValueError, match="no cluster running"):
        procedures().resize_cluster(FakeSession(ANSWERS), request, catalog)
    session = FakeSession({**ANSWERS, "SHOW COMPUTE POOLS": [{"name": "RAY_APP_HEAD_POOL", "instance_family": "CPU_X64_L"}]})
    with pytest.raises(ValueError, match="head.instance_family 'CPU_X64_M', running 'CPU_X64_L'"):
        procedures().resize_cluster(session, request, catalog)


def test_the_console_calls_only_procedures_the_setup_script_creates():
    import re

    console = (APP_DIR / "streamlit" / "ray_console.py").read_text()
    setup = (APP_DIR / "setup_script.sql").read_text()
    called = set(re.findall(r"app_public\.(\w+)", console))
    assert {"start_cluster", "resize_cluster", "stop_cluster", "cluster_status", "service_endpoints"} <= called
    for name in called:
        assert f"PROCEDURE app_public.{name}(" in setup, name


def test_every_procedure_handler_in_the_setup_script_exists():
    setup = (APP_DIR / "setup_script.sql").read_text()
    handlers = [line.split("'")[1].split(".")[1] for line in setup.splitlines() if "HANDLER = 'ray_cluster." in line]
    module = procedures()
    assert len(handlers) == 9 and all(callable(getattr(module, h)) for h in handlers)
