"""Part 2's manifests as pure functions: the RayCluster against KubeRay 1.7.0's CRD (strict), PodMonitoring and
BackendConfig against their GKE schemas, Services, Ingress, Secrets and ConfigMaps with kubernetes-validate."""

from __future__ import annotations

import copy
import json

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.gke import kuberay
from components.gke import ray_access as access
from components.gke import ray_cluster as rc
from components.gke import ray_monitoring as mon
from components.ray_node import RayNode

KUBERNETES_VERSION = "1.33.0"
NETWORKS = ["gvnic-1", *[f"rdma-{i}" for i in range(8)]]
IMAGE = "europe-west1-docker.pkg.dev/p/ray-docker/ray-server@sha256:" + "a" * 64
H200 = RayNode(cpus=200, memory_gb=2600, gpus=8)


def spec(**changes) -> rc.RayClusterSpec:
    base = dict(
        name="ray", namespace="ray", ray_version="2.60.0", image=IMAGE, service_account="ray-worker",
        head=RayNode(cpus=4, memory_gb=16), head_node_selector={"ray-platform/pool": "system"},
        groups=[rc.WorkerGroup("h200", H200, 0, 4, gpu=True, shm_gb=256),
                rc.WorkerGroup("cpu", RayNode(cpus=4, memory_gb=16), 1, 3)],
        compute_class="h200-ccc", network_names=NETWORKS, bucket="p-ray-training", idle_timeout_s=900,
        head_sidecars=[mon.grafana_sidecar("grafana/grafana-oss:12.2.1"),
                       mon.prometheus_frontend_sidecar("gke.gcr.io/prometheus-engine/frontend:v0.15.3-gke.0", "p")],
        head_volumes=mon.grafana_volumes("ray-grafana", "ray-grafana-admin"),
        head_env=mon.head_env(),
    )
    return rc.RayClusterSpec(**{**base, **changes})


def groups(manifest: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in manifest["spec"]["workerGroupSpecs"]}


def test_the_ray_cluster_matches_kuberay_1_7_0s_crd(ray_cluster_schema):
    jsonschema.validate(rc.ray_cluster(spec()), ray_cluster_schema)
    with_redis = rc.ray_cluster(spec(redis_address="10.0.0.3:6379", redis_password_secret="ray-redis"))
    jsonschema.validate(with_redis, ray_cluster_schema)


def test_the_strict_crd_schema_catches_a_typo(ray_cluster_schema):
    bad = rc.ray_cluster(spec())
    bad["spec"]["workerGroupSpecs"][0]["template"]["spec"]["nodeSelecter"] = {"a": "b"}
    with pytest.raises(jsonschema.ValidationError, match="nodeSelecter"):
        jsonschema.validate(bad, ray_cluster_schema)
    bad = rc.ray_cluster(spec())
    bad["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, ray_cluster_schema)


def test_the_h200_group_uses_every_rdma_nic_and_the_compute_class():
    h200 = groups(rc.ray_cluster(spec()))["h200"]
    pod = h200["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["networking.gke.io/default-interface"] == "eth0"
    nics = json.loads(annotations["networking.gke.io/interfaces"])
    assert nics[0] == {"interfaceName": "eth0", "network": "default"}
    assert [n["network"] for n in nics[1:]] == NETWORKS  # the Networks part 1 created, in NIC order
    assert [n["interfaceName"] for n in nics] == [f"eth{i}" for i in range(10)]
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/compute-class": "h200-ccc"}
    assert {"key": "cloud.google.com/compute-class", "operator": "Equal", "value": "h200-ccc",
            "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert pod["spec"]["serviceAccountName"] == "ray-worker"  # Workload Identity


def test_the_h200_worker_has_host_libraries_nccl_env_shm_and_the_bucket():
    pod = groups(rc.ray_cluster(spec()))["h200"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/usr/local/nvidia"]]["hostPath"] == {"path": "/home/kubernetes/bin/nvidia"}
    assert volumes[mounts["/usr/local/gib"]]["hostPath"] == {"path": "/home/kubernetes/bin/gib"}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Gi"}
    data = volumes[mounts["/data"]]["csi"]
    assert data["driver"] == "gcsfuse.csi.storage.gke.io" and data["volumeAttributes"]["bucketName"] == "p-ray-training"
    assert {"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"} in container["env"]
    assert container["command"] == ["source /usr/local/gib/scripts/set_nccl_env.sh"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["image"] == IMAGE


def test_ray_start_params_declare_what_ray_capacity_reports():
    manifest = rc.ray_cluster(spec())
    h200 = groups(manifest)["h200"]
    params = h200["rayStartParams"]
    resources = H200.ray_resources()
    assert params["num-gpus"] == "8" and int(params["num-cpus"]) == resources["CPU"]
    assert int(params["memory"]) == resources["memory"]
    assert params["metrics-export-port"] == "8080"
    assert (h200["minReplicas"], h200["maxReplicas"], h200["replicas"]) == (0, 4, 0)
    head = manifest["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no tasks on the head
    assert head["template"]["spec"]["nodeSelector"] == {"ray-platform/pool": "system"}
    assert head["serviceType"] == "ClusterIP"


def test_autoscaling_and_the_cpu_group():
    manifest = rc.ray_cluster(spec())
    assert manifest["spec"]["enableInTreeAutoscaling"] is True
    assert manifest["spec"]["autoscalerOptions"]["idleTimeoutSeconds"] == 900
    cpu = groups(manifest)["cpu"]
    assert (cpu["minReplicas"], cpu["maxReplicas"]) == (1, 3)
    assert "nvidia.com/gpu" not in cpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert cpu["template"]["spec"]["nodeSelector"] == {"ray-platform/pool": "system"}
    assert "gcsFaultToleranceOptions" not in manifest["spec"]


def test_ray_token_auth_is_kuberays_auth_options_with_the_stacks_own_secret(ray_cluster_schema):
    manifest = rc.ray_cluster(spec(auth_secret="ray-ray-auth"))
    jsonschema.validate(manifest, ray_cluster_schema)
    assert manifest["spec"]["authOptions"] == {"mode": "token", "secretName": "ray-ray-auth"}
    secret = rc.auth_secret("ray-ray-auth", "ray", "t" * 64)
    assert secret["stringData"] == {"auth_token": "t" * 64}  # the key KubeRay reads
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    off = rc.ray_cluster(spec())
    jsonschema.validate(off, ray_cluster_schema)
    assert off["spec"]["authOptions"] == {"mode": "disabled"}  # said explicitly, never left out
    bad = rc.ray_cluster(spec(auth_secret="x"))
    bad["spec"]["authOptions"]["mode"] = "tokens"
    with pytest.raises(jsonschema.ValidationError, match="tokens"):  # the CRD's enum is what KubeRay accepts
        jsonschema.validate(bad, ray_cluster_schema)


def test_gcs_fault_tolerance_reads_the_password_from_a_secret():
    manifest = rc.ray_cluster(spec(redis_address="10.0.0.3:6379", redis_password_secret="ray-redis"))
    assert manifest["spec"]["gcsFaultToleranceOptions"] == {
        "redisAddress": "10.0.0.3:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "ray-redis", "key": "password"}}}}
    secret = rc.redis_secret("ray-redis", "ray", "s3cret-value")
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)


def test_the_head_runs_grafana_and_the_prometheus_frontend_beside_ray():
    head = rc.ray_cluster(spec())["spec"]["headGroupSpec"]["template"]["spec"]
    names = [c["name"] for c in head["containers"]]
    assert names == ["ray-head", "grafana", "prometheus-frontend"]
    ray_head, grafana = head["containers"][0], head["containers"][1]
    assert {"name": "ray-tmp", "mountPath": "/tmp/ray"} in ray_head["volumeMounts"]
    assert {"name": "ray-tmp", "mountPath": "/tmp/ray", "readOnly": True} in grafana["volumeMounts"]
    env = {e["name"]: e.get("value") for e in ray_head["env"]}
    assert env["RAY_GRAFANA_IFRAME_HOST"] == "http://127.0.0.1:3000"
    assert env["RAY_PROMETHEUS_HOST"] == "http://localhost:9090"
    # The admin password is a file from the Secret, never an environment variable (checkov CKV_K8S_35).
    env = {e["name"]: e for e in grafana["env"]}
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env and not any("valueFrom" in e for e in env.values())
    path = env["GF_SECURITY_ADMIN_PASSWORD__FILE"]["value"]
    mount = next(m for m in grafana["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in head["volumes"] if v["name"] == mount["name"])
    assert volume["secret"] == {"secretName": "ray-grafana-admin"} and path.endswith("/admin-password")
    ports = {p["name"] for c in head["containers"] for p in c["ports"]}
    assert {"dashboard", "client", "metrics", "as-metrics", "dash-metrics", "grafana", "prometheus"} <= ports


def test_worker_groups_reject_bad_sizes():
    with pytest.raises(ValueError, match="min 3 / max 2"):
        rc.WorkerGroup("h200", H200, 3, 2, gpu=True, shm_gb=1)
    with pytest.raises(ValueError, match="needs gpus >= 1"):
        rc.WorkerGroup("h200", RayNode(cpus=1, memory_gb=1), 0, 1, gpu=True, shm_gb=1)


@pytest.mark.parametrize("manifest", mon.ray_pod_monitorings("ray", "ray", "30s"), ids=lambda m: m["metadata"]["name"])
def test_pod_monitorings_match_their_schema(schema, manifest):
    jsonschema.validate(manifest, schema("monitoring.googleapis.com_podmonitoring_v1.json"))


def test_pod_monitorings_scrape_the_head_and_the_workers_by_port_name():
    head, workers = mon.ray_pod_monitorings("ray", "ray", "30s")
    assert head["spec"]["selector"]["matchLabels"] == {"ray.io/cluster": "ray", "ray.io/node-type": "head"}
    assert [e["port"] for e in head["spec"]["endpoints"]] == ["metrics", "as-metrics", "dash-metrics"]
    assert workers["spec"]["selector"]["matchLabels"] == {"ray.io/cluster": "ray", "ray.io/node-type": "worker"}
    assert [e["port"] for e in workers["spec"]["endpoints"]] == ["metrics"]
    worker_ports = {p["name"] for p in groups(rc.ray_cluster(spec()))["h200"]["template"]["spec"]["containers"][0]
                    ["ports"]}
    assert "metrics" in worker_ports  # the port the PodMonitoring names exists on the pod


def test_grafana_provisions_managed_prometheus_and_rays_dashboards():
    cm = mon.grafana_config("ray-grafana", "ray")
    kubernetes_validate.validate(cm, KUBERNETES_VERSION, strict=True)
    source = yaml.safe_load(cm["data"]["datasources.yaml"])["datasources"][0]
    assert source["url"] == "http://localhost:9090" and source["name"] == mon.head_env()["RAY_PROMETHEUS_NAME"]
    dashboards = yaml.safe_load(cm["data"]["dashboards.yaml"])["providers"][0]
    assert dashboards["options"]["path"].startswith("/tmp/ray/")


def test_the_head_service_and_port_forward_command():
    ports = [access.ForwardedPort("dashboard", 8265), access.ForwardedPort("client", 10001)]
    service = access.head_service("ray-head", "ray", "ray", ports)
    kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)
    assert service["spec"]["type"] == "ClusterIP" and service["metadata"]["annotations"] == {}
    assert service["spec"]["selector"] == {"ray.io/cluster": "ray", "ray.io/node-type": "head"}
    command = access.port_forward_command("ray", "ray-head", ports, "gke_p_r_ray")
    assert command == ["kubectl", "port-forward", "--context", "gke_p_r_ray", "--namespace", "ray",
                       "--address", "127.0.0.1", "svc/ray-head", "8265:8265", "10001:10001"]


def test_the_internal_ingress_sits_behind_iap(schema):
    bc = access.backend_config("ray-dashboard", "ray", 8265, iap=True, oauth_secret="iap-oauth")
    jsonschema.validate(bc, schema("cloud.google.com_backendconfig_v1.json"))
    assert bc["spec"]["iap"] == {"enabled": True, "oauthclientCredentials": {"secretName": "iap-oauth"}}
    assert bc["spec"]["healthCheck"]["requestPath"] == "/api/gcs_healthz"
    ingress = access.internal_ingress("ray-dashboard", "ray", "ray-head", 8265, "ray-tls")
    kubernetes_validate.validate(ingress, KUBERNETES_VERSION, strict=True)
    assert ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"] == "gce-internal"
    assert ingress["metadata"]["annotations"]["kubernetes.io/ingress.allow-http"] == "false"
    service = access.head_service("ray-head", "ray", "ray", [access.ForwardedPort("dashboard", 8265)],
                                  "ray-dashboard", 8265)
    kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)
    assert json.loads(service["metadata"]["annotations"]["cloud.google.com/backend-config"]) == {
        "ports": {"8265": "ray-dashboard"}}


def test_the_backend_config_schema_rejects_a_misspelt_iap_field(schema):
    bad = copy.deepcopy(access.backend_config("b", "ray", 8265, iap=True, oauth_secret=None))
    bad["spec"]["iap"]["enable"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("cloud.google.com_backendconfig_v1.json"))


def test_iap_needs_https_and_never_admits_everyone():
    with pytest.raises(ValueError, match="tls_secret"):
        access.IngressArgs(iap=True, tls_secret=None)
    with pytest.raises(ValueError, match="allUsers"):
        access.IngressArgs(iap=True, tls_secret="t", iap_members=["allUsers"], project="p")


def test_kuberay_is_pinned_to_the_schemas_version_and_the_addon_keeps_its_own_metrics_off():
    assert kuberay.CHART_VERSION == "1.7.0"
    assert kuberay.helm_values({"a": "b"})["image"] == {"repository": "quay.io/kuberay/operator", "tag": "v1.7.0"}
    assert kuberay.ray_addon_config()["ray_cluster_monitoring_config"] == {"enabled": False}
    with pytest.raises(ValueError, match="install: 'both'"):
        kuberay.KubeRayOperatorArgs(install="both", provider=None, cluster=None)


def test_every_ray_pod_runs_unprivileged_and_the_crd_schema_accepts_it(ray_cluster_schema):
    manifest = rc.ray_cluster(spec())
    jsonschema.validate(manifest, ray_cluster_schema)  # securityContext fields as KubeRay 1.7.0's CRD types them
    pods = [manifest["spec"]["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in manifest["spec"]["workerGroupSpecs"]]
    for pod in pods:
        assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100,
                                          "seccompProfile": {"type": "RuntimeDefault"}}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
            assert "privileged" not in context
    workers = pods[1:]
    assert all(p["automountServiceAccountToken"] is False for p in workers)  # only the head's autoscaler needs it
    assert "automountServiceAccountToken" not in pods[0]
    # The non-root Ray user owns the bucket's files, so checkpoints can be written.
    csi = next(v["csi"] for v in pods[1]["volumes"] if "csi" in v)
    assert "uid=1000" in csi["volumeAttributes"]["mountOptions"].split(",")


def test_the_crd_schema_rejects_a_misspelt_security_field(ray_cluster_schema):
    bad = rc.ray_cluster(spec())
    context = bad["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["securityContext"]
    context["allowPrivilegeEscalaton"] = False
    with pytest.raises(jsonschema.ValidationError, match="allowPrivilegeEscalaton"):
        jsonschema.validate(bad, ray_cluster_schema)
    bad = rc.ray_cluster(spec())
    bad["spec"]["headGroupSpec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] = 7
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, ray_cluster_schema)


def test_h200_workers_cache_the_bucket_on_local_ssd_and_the_others_do_not(ray_cluster_schema):
    manifest = rc.ray_cluster(spec(gpu_fuse=rc.FuseCache(6000, range_read=True, parallel_downloads=True)))
    jsonschema.validate(manifest, ray_cluster_schema)
    h200 = groups(manifest)["h200"]["template"]
    csi = next(v["csi"] for v in h200["spec"]["volumes"] if "csi" in v)["volumeAttributes"]
    assert (csi["fileCacheCapacity"], csi["fileCacheForRangeRead"]) == ("6000Gi", "true")
    assert csi["mountOptions"].split(",") == ["implicit-dirs", "uid=1000", "gid=100",
                                               "file-cache:enable-parallel-downloads:true"]
    # The cache is the FUSE sidecar's emptyDir: its ephemeral-storage limit must exceed the cache.
    assert h200["metadata"]["annotations"]["gke-gcsfuse/ephemeral-storage-limit"] == "6100Gi"
    for pod in (groups(manifest)["cpu"]["template"], manifest["spec"]["headGroupSpec"]["template"]):
        csi = next(v["csi"] for v in pod["spec"]["volumes"] if "csi" in v)["volumeAttributes"]
        assert "fileCacheCapacity" not in csi and "gke-gcsfuse/ephemeral-storage-limit" not in pod["metadata"]["annotations"]
    off = groups(rc.ray_cluster(spec(gpu_fuse=rc.FuseCache(0))))["h200"]["template"]
    assert "fileCacheCapacity" not in next(v["csi"] for v in off["spec"]["volumes"] if "csi" in v)["volumeAttributes"]
