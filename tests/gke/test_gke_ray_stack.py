"""Part 2 of the `gke` stack under recording mocks: the RayCluster wired to what part 1 created (Networks, compute
class, image digest, bucket, service account), KubeRay before it, explicit providers, every custom resource valid
against its real schema, built-in kinds valid, and the access, monitoring and capacity outputs."""

from __future__ import annotations

import json

import jsonschema
import kubernetes_validate
import pytest

from stacks.offline import Recording, preview
from stacks.preview import sdk_problems

RAY_CLUSTER = "kubernetes:ray.io/v1:RayCluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_NETWORK = "kubernetes:networking.gke.io/v1:Network"
PODMON = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
BACKEND_CONFIG = "kubernetes:cloud.google.com/v1:BackendConfig"
SCHEMAS = {
    "kubernetes:cloud.google.com/v1:ComputeClass": "cloud.google.com_computeclass_v1.json",
    K8S_NETWORK: "networking.gke.io_network_v1.json",
    "kubernetes:networking.gke.io/v1:GKENetworkParamSet": "networking.gke.io_gkenetworkparamset_v1.json",
    PODMON: "monitoring.googleapis.com_podmonitoring_v1.json",
    BACKEND_CONFIG: "cloud.google.com_backendconfig_v1.json",
}
BUILT_IN = {"kubernetes:core/v1:Service", "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap",
            "kubernetes:core/v1:Namespace", "kubernetes:core/v1:ServiceAccount", "kubernetes:apps/v1:DaemonSet",
            "kubernetes:networking.k8s.io/v1:Ingress"}
KUBERNETES_VERSION = "1.33.0"


def manifest(resource) -> dict:
    inputs = resource.revealed
    kind_version = resource.type.split(":")[1]
    group_version, kind = kind_version.rsplit("/", 1)[0], resource.type.split(":")[2]
    api_version = inputs.get("apiVersion") or (group_version.replace("core/", "") if group_version.startswith("core/")
                                               else group_version)
    return {"apiVersion": api_version, "kind": kind, **{k: v for k, v in inputs.items() if k != "apiVersion"}}


def pod(rec: Recording, group: str) -> dict:
    spec = rec.get(RAY_CLUSTER, "ray-cluster").revealed["spec"]
    if group == "head":
        return spec["headGroupSpec"]["template"]
    return next(g for g in spec["workerGroupSpecs"] if g["groupName"] == group)["template"]


@pytest.fixture(scope="module")
def addon() -> Recording:
    return preview("gke", {"kuberay": json.dumps({"install": "addon"}), "ray_auth": "disabled",
                           "monitoring": json.dumps({"grafana": False}),
                           "ray": json.dumps({"cpu_workers": {"enabled": False},
                                              "gpu_workers": {"min_replicas": 1, "max_replicas": 3},
                                              "gcs_fault_tolerance": {"redis_address": "10.0.0.3:6379"}})},
                   secret_overrides={"ray_redis_password": "redis-pass-123"})


@pytest.fixture(scope="module")
def ingress() -> Recording:
    return preview("gke", {"ingress": json.dumps({"enabled": True, "tls_secret": "ray-tls",
                                                  "iap_members": ["group:ml@example.com"]})})


def test_the_ray_cluster_validates_against_kuberay_1_7_0(gke, ray_cluster_schema):
    jsonschema.validate(manifest(gke.get(RAY_CLUSTER, "ray-cluster")), ray_cluster_schema)


def test_every_custom_resource_validates_against_its_real_schema(gke, ingress, schema, ray_cluster_schema):
    seen = set()
    for rec in (gke, ingress):
        for r in rec.resources:
            if r.type in SCHEMAS:
                jsonschema.validate(manifest(r), schema(SCHEMAS[r.type]))
                seen.add(r.type)
            elif r.type == RAY_CLUSTER:
                jsonschema.validate(manifest(r), ray_cluster_schema)
                seen.add(r.type)
    assert seen == {*SCHEMAS, RAY_CLUSTER}  # nothing custom escapes validation


def test_every_built_in_kind_passes_kubernetes_validate(gke, ingress):
    seen = set()
    for rec in (gke, ingress):
        for r in rec.resources:
            if r.type in BUILT_IN:
                kubernetes_validate.validate(manifest(r), KUBERNETES_VERSION, strict=True)
                seen.add(r.type)
    assert seen == BUILT_IN
    known = BUILT_IN | set(SCHEMAS) | {RAY_CLUSTER, RELEASE}
    assert not [r.type for r in ingress.resources if r.type.startswith("kubernetes:") and r.custom
                and not r.type.startswith("pulumi:") and r.type not in known]


def test_interface_annotation_networks_are_the_networks_part_1_created(gke):
    created = [r.revealed["metadata"]["name"] for r in gke.by_type(K8S_NETWORK)]
    nics = json.loads(pod(gke, "h200")["metadata"]["annotations"]["networking.gke.io/interfaces"])
    assert [n["network"] for n in nics[1:]] == gke.outputs["networks"]["kubernetes"]
    assert sorted(n["network"] for n in nics[1:]) == sorted(created)
    assert nics[0] == {"interfaceName": "eth0", "network": "default"}


def test_the_gpu_group_selects_the_compute_class_and_requests_eight_gpus(gke):
    cc = gke.get("kubernetes:cloud.google.com/v1:ComputeClass", "cluster-networking-compute-class")
    spec = pod(gke, "h200")["spec"]
    assert spec["nodeSelector"] == {"cloud.google.com/compute-class": cc.revealed["metadata"]["name"]}
    assert spec["nodeSelector"]["cloud.google.com/compute-class"] == gke.outputs["compute_class"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert spec["serviceAccountName"] == gke.outputs["workload_identity"]["kubernetes_service_account"]
    csi = next(v["csi"] for v in spec["volumes"] if "csi" in v)
    assert "gs://" + csi["volumeAttributes"]["bucketName"] == gke.outputs["storage"]["uri"]


def test_every_ray_image_is_the_part_1_build_by_digest(gke):
    images = {c["image"] for g in ("head", "h200", "cpu") for c in pod(gke, g)["spec"]["containers"]
              if c["name"].startswith("ray-")}
    assert images == {gke.outputs["images"]["ray-server"]} and "@sha256:" in images.pop()


def test_the_ray_cluster_waits_for_the_operator_networks_class_installer_and_account(gke):
    deps = set(gke.get(RAY_CLUSTER, "ray-cluster").dependencies)
    assert f"{RELEASE}::kuberay-chart" in deps
    assert "kubernetes:cloud.google.com/v1:ComputeClass::cluster-networking-compute-class" in deps
    assert "kubernetes:apps/v1:DaemonSet::cluster-networking-nccl-rdma-installer" in deps
    assert {f"{K8S_NETWORK}::cluster-networking-rdma-{i}" for i in range(8)} <= deps
    assert "kubernetes:core/v1:ServiceAccount::ray-namespace-service-account" in deps
    assert "kubernetes:core/v1:Service::ray-access-head" not in deps
    assert f"{RAY_CLUSTER}::ray-cluster" in gke.get("kubernetes:core/v1:Service", "ray-access-head").dependencies
    release = gke.get(RELEASE, "kuberay-chart").revealed
    assert release["chart"] == "kuberay-operator" and release["version"] == "1.7.0"
    assert release["repositoryOpts"] == {"repo": "https://ray-project.github.io/kuberay-helm/"}


def test_explicit_kubernetes_provider_everywhere_and_server_side_apply(gke, ingress):
    for rec in (gke, ingress):
        k8s_objects = [r for r in rec.resources if r.type.startswith("kubernetes:") and r.custom]
        assert {r.provider for r in k8s_objects} == {"gke-k8s"}
        assert {r.provider for r in rec.resources if r.type.startswith("gcp:") and r.custom} == {"gcp"}
    assert gke.get("pulumi:providers:kubernetes", "gke-k8s").inputs["enableServerSideApply"] == "true"


def test_ray_runs_with_the_stacks_token_from_a_secret_the_stack_owns(gke):
    token = gke.outputs["ray_auth_token"]
    assert len(token) == 64 and "ray_auth_token" in gke.secret_outputs
    secret = gke.get("kubernetes:core/v1:Secret", "ray-cluster-ray-auth-token")
    assert secret.inputs["stringData"] == "[secret]" and secret.revealed["stringData"] == {"auth_token": token}
    spec = gke.get(RAY_CLUSTER, "ray-cluster").revealed["spec"]
    assert spec["authOptions"] == {"mode": "token", "secretName": secret.revealed["metadata"]["name"]}
    assert secret.revealed["metadata"]["namespace"] == gke.get(RAY_CLUSTER, "ray-cluster").revealed["metadata"][
        "namespace"]
    assert "kubernetes:core/v1:Secret::ray-cluster-ray-auth-token" in gke.get(RAY_CLUSTER, "ray-cluster").dependencies
    assert token not in json.dumps(gke.to_json())


def test_the_addon_runs_ray_only_with_auth_explicitly_off(addon):
    assert addon.get(RAY_CLUSTER, "ray-cluster").revealed["spec"]["authOptions"] == {"mode": "disabled"}
    assert addon.outputs["ray_auth_token"] is None
    with pytest.raises(Exception, match=r"kuberay.install: 'addon' cannot promise Ray token auth"):
        preview("gke", {"kuberay": json.dumps({"install": "addon"})})


def test_the_addon_replaces_the_chart_never_both(gke, addon):
    assert not gke.get("gcp:container/cluster:Cluster", "gke").inputs["addonsConfig"].get("rayOperatorConfigs")
    assert addon.by_type(RELEASE) == []
    configs = addon.get("gcp:container/cluster:Cluster", "gke").inputs["addonsConfig"]["rayOperatorConfigs"]
    assert configs == [{"enabled": True, "rayClusterLoggingConfig": {"enabled": True},
                        "rayClusterMonitoringConfig": {"enabled": False}}]
    assert "gcp:container/cluster:Cluster::gke" in addon.get(RAY_CLUSTER, "ray-cluster").dependencies
    assert sdk_problems(addon) == []


def test_config_reaches_the_ray_cluster(addon):
    spec = addon.get(RAY_CLUSTER, "ray-cluster").revealed["spec"]
    assert [g["groupName"] for g in spec["workerGroupSpecs"]] == ["h200"]
    h200 = spec["workerGroupSpecs"][0]
    assert (h200["minReplicas"], h200["maxReplicas"]) == (1, 3)
    assert addon.outputs["ray_capacity"] == {
        "headgroup": {"resources": {"CPU": 0, "memory": 16 * 1024**3}, "min_nodes": 1, "max_nodes": 1},
        "h200": {"resources": {"CPU": 200, "GPU": 8, "memory": 2600 * 1024**3}, "min_nodes": 1, "max_nodes": 3}}
    assert spec["gcsFaultToleranceOptions"]["redisAddress"] == "10.0.0.3:6379"
    secret_ref = spec["gcsFaultToleranceOptions"]["redisPassword"]["valueFrom"]["secretKeyRef"]
    secret = addon.get("kubernetes:core/v1:Secret", "ray-cluster-redis-password")
    assert secret_ref == {"name": secret.revealed["metadata"]["name"], "key": "password"}
    assert secret.inputs["stringData"] == "[secret]" and secret.revealed["stringData"] == {"password": "redis-pass-123"}
    assert "redis-pass-123" not in json.dumps(addon.to_json())
    head = [c["name"] for c in spec["headGroupSpec"]["template"]["spec"]["containers"]]
    assert head == ["ray-head"]  # no Grafana: nothing by tag while Binary Authorization may enforce
    assert addon.outputs["grafana_url"] is None and addon.outputs["prometheus_url"] is None
    assert addon.outputs["access"]["command"][-2:] == ["8265:8265", "10001:10001"]


def test_access_is_port_forward_to_the_head_service_on_loopback(gke):
    out = gke.outputs
    access = out["access"]
    assert set(access) == {"mode", "command", "local_dashboard_url"} and access["mode"] == "port-forward"
    service = gke.get("kubernetes:core/v1:Service", "ray-access-head").revealed
    command = access["command"]
    assert command[:2] == ["kubectl", "port-forward"] and f"svc/{service['metadata']['name']}" in command
    assert command[command.index("--namespace") + 1] == service["metadata"]["namespace"]
    assert command[command.index("--address") + 1] == "127.0.0.1"
    assert command[command.index("--context") + 1] == "gke_my-gcp-project-id_europe-west1_ray"
    forwarded = {int(c.split(":")[0]) for c in command if c.count(":") == 1 and c[0].isdigit()}
    assert forwarded == {p["port"] for p in service["spec"]["ports"]} == {8265, 10001, 3000, 9090}
    assert service["spec"]["type"] == "ClusterIP"
    for key in ("ray_dashboard_url", "grafana_url", "prometheus_url"):
        assert out[key].startswith("http://127.0.0.1:") and int(out[key].rsplit(":", 1)[1]) in forwarded
    assert out["ray_client_address"] == "ray://127.0.0.1:10001"
    assert access["local_dashboard_url"] == out["ray_dashboard_url"]
    assert not gke.by_type("kubernetes:networking.k8s.io/v1:Ingress")  # private by default


def test_the_optional_ingress_is_internal_and_behind_iap(ingress):
    ing = ingress.get("kubernetes:networking.k8s.io/v1:Ingress", "ray-access-ingress").revealed
    assert ing["metadata"]["annotations"]["kubernetes.io/ingress.class"] == "gce-internal"
    assert ing["spec"]["tls"] == [{"secretName": "ray-tls"}]
    bc = ingress.get(BACKEND_CONFIG, "ray-access-backend-config").revealed
    assert bc["spec"]["iap"] == {"enabled": True}
    service = ingress.get("kubernetes:core/v1:Service", "ray-access-head").revealed
    assert json.loads(service["metadata"]["annotations"]["cloud.google.com/backend-config"]) == {
        "ports": {"8265": bc["metadata"]["name"]}}
    grant = ingress.get("gcp:iap/webIamMember:WebIamMember", "ray-access-iap-ml-at-example.com").inputs
    assert grant["role"] == "roles/iap.httpsResourceAccessor" and grant["member"] == "group:ml@example.com"
    assert sdk_problems(ingress) == []


def test_monitoring_scrapes_head_and_workers_with_dcgm_on_the_cluster(gke):
    monitorings = {r.revealed["metadata"]["name"]: r.revealed["spec"] for r in gke.by_type(PODMON)}
    assert set(monitorings) == {"ray-head", "ray-workers"}
    assert monitorings["ray-workers"]["selector"]["matchLabels"]["ray.io/node-type"] == "worker"
    worker_ports = {p["name"] for p in pod(gke, "h200")["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitorings["ray-workers"]["endpoints"]} <= worker_ports
    head_ports = {p["name"] for c in pod(gke, "head")["spec"]["containers"] for p in c["ports"]}
    assert {e["port"] for e in monitorings["ray-head"]["endpoints"]} <= head_ports
    cluster = gke.get("gcp:container/cluster:Cluster", "gke").inputs["monitoringConfig"]
    assert "DCGM" in cluster["enableComponents"] and cluster["managedPrometheus"] == {"enabled": True}
    viewer = gke.get("gcp:projects/iAMMember:IAMMember", "monitoring-metrics-viewer").inputs
    assert viewer["role"] == "roles/monitoring.viewer"
    assert viewer["member"] == "serviceAccount:" + gke.outputs["workload_identity"]["gcp_service_account"]
    admin = gke.get("kubernetes:core/v1:Secret", "monitoring-grafana-admin")
    assert admin.inputs["stringData"] == "[secret]"


def test_the_graph_shows_part_2s_components(gke):
    components = {r.type.split(":")[-1] for r in gke.resources if r.type.startswith("ray-platform:gke:")}
    assert {"KubeRayOperator", "RayCluster", "RayAccess", "RayMonitoring"} <= components
