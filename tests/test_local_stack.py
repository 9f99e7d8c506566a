"""The `dev` stack (CPU-only default), `gpu-nvidia`/`gpu-amd` (seed 004's GPU box) and other `local` configurations,
under recording mocks."""

from __future__ import annotations

import json

import pulumi
import pytest

from stacks.contract import OUTPUT_KEYS
from stacks.offline import SECRET, Recording, preview, run_stack
from stacks.preview import sdk_problems

CONTAINER = "docker:index/container:Container"


def container(rec: Recording, name: str):
    return rec.get(CONTAINER, name)


def env(resource) -> dict[str, str]:
    """A container's environment with secrets revealed (wiring); secrecy is tested on `inputs`."""
    return dict(e.split("=", 1) for e in resource.revealed.get("envs", []))


def test_the_seed_pieces_are_all_present(dev, gpu_nvidia):
    services = {"monitoring-prometheus", "monitoring-grafana", "checkpoints-minio", "checkpoints-bucket",
                "notebook-jupyter"}
    assert {r.name for r in dev.by_type(CONTAINER)} == {"ray-head", "ray-cpu-0", "ray-cpu-1"} | services
    assert {r.name for r in gpu_nvidia.by_type(CONTAINER)} == {"ray-head", "ray-gpu-0", "ray-gpu-1"} | services


def test_dev_needs_no_gpu_and_fits_a_laptop(dev):
    assert all("deviceRequests" not in c.inputs and "devices" not in c.inputs for c in dev.by_type(CONTAINER))
    assert not any(i.inputs["build"]["context"] in ("images/ray-cuda", "images/ray-rocm")
                   for i in dev.by_type("docker:index/image:Image"))
    capacity = dev.outputs["ray_capacity"]
    nodes = [(entry["resources"], entry["max_nodes"]) for entry in capacity.values()]
    assert all("GPU" not in resources for resources, _ in nodes)
    assert sum(r["CPU"] * n for r, n in nodes) <= 4 and sum(r["memory"] * n for r, n in nodes) <= 6 * 1024**3


def test_each_gpu_worker_gets_its_own_gpu(gpu_nvidia):
    requests = [container(gpu_nvidia, f"ray-gpu-{i}").inputs["deviceRequests"] for i in range(2)]
    assert [r[0]["deviceIds"] for r in requests] == [["0"], ["1"]]
    assert all(r[0]["driver"] == "nvidia" and r[0]["capabilities"] == ["gpu"] for r in requests)
    assert "--num-gpus=1" in container(gpu_nvidia, "ray-gpu-0").inputs["command"]
    assert "deviceRequests" not in container(gpu_nvidia, "notebook-jupyter").inputs  # Jupyter has no GPU
    assert "--num-gpus=0" in container(gpu_nvidia, "ray-head").inputs["command"]


def test_the_amd_box_gives_each_worker_rocm_devices_and_its_own_gpu():
    rec = preview("gpu-amd")
    for i in range(2):
        worker = container(rec, f"ray-gpu-{i}")
        assert [d["hostPath"] for d in worker.inputs["devices"]] == ["/dev/kfd", "/dev/dri"]
        assert env(worker)["ROCR_VISIBLE_DEVICES"] == str(i) and "--num-gpus=1" in worker.inputs["command"]


def test_workers_depend_on_and_point_at_the_head(dev):
    head = container(dev, "ray-head")
    assert head.inputs["networksAdvanced"][0]["aliases"] == ["ray-head"]
    assert "--head" in head.inputs["command"] and "--port=6379" in head.inputs["command"]
    for i in range(2):
        worker = container(dev, f"ray-cpu-{i}")
        assert "docker:index/container:Container::ray-head" in worker.dependencies
        assert "--address=ray-head:6379" in worker.inputs["command"]
        assert worker.inputs["networksAdvanced"][0]["name"] == head.inputs["networksAdvanced"][0]["name"]
        assert worker.inputs["restart"] == "unless-stopped"  # rejoins a restarted head


def test_ray_containers_have_health_checks(dev):
    head = container(dev, "ray-head").inputs["healthcheck"]["tests"]
    assert "http://0.0.0.0:8265/api/gcs_healthz" not in head[-1] and "/api/gcs_healthz" in head[-1]
    worker = container(dev, "ray-cpu-0").inputs["healthcheck"]["tests"]
    assert "/api/local_raylet_healthz" in worker[-1]


def test_jupyter_reaches_the_cluster_by_ray_address(dev):
    assert env(container(dev, "notebook-jupyter"))["RAY_ADDRESS"] == "http://ray-head:8265"


def test_prometheus_scrapes_ray_through_the_heads_service_discovery_file(dev):
    prom = container(dev, "monitoring-prometheus")
    config = prom.inputs["uploads"][0]
    assert config["file"] == "/etc/prometheus/prometheus.yml"
    assert "/tmp/ray/prom_metrics_service_discovery.json" in config["content"]
    head_tmp = container(dev, "ray-head").inputs["volumes"][0]
    assert head_tmp["containerPath"] == "/tmp/ray"
    assert prom.inputs["volumes"][0] == {**head_tmp, "readOnly": True}


def test_grafana_has_prometheus_and_rays_dashboards(dev):
    grafana = container(dev, "monitoring-grafana")
    files = {u["file"]: u["content"] for u in grafana.inputs["uploads"]}
    assert "url: http://prometheus:9090" in files["/etc/grafana/provisioning/datasources/ray.yaml"]
    assert "/tmp/ray/session_latest/metrics/grafana/dashboards" in files["/etc/grafana/provisioning/dashboards/ray.yaml"]
    assert env(grafana)["GF_SECURITY_ADMIN_PASSWORD"].startswith("mock-")  # the generated password
    assert grafana.inputs["envs"] == SECRET


def test_minio_keeps_checkpoints_on_a_protected_volume_and_creates_the_bucket(dev):
    data = dev.get("docker:index/volume:Volume", "checkpoints-data")
    assert data.protect and data.retain_on_delete
    minio = container(dev, "checkpoints-minio")
    assert minio.inputs["volumes"][0]["containerPath"] == "/data"
    bucket = container(dev, "checkpoints-bucket")
    assert "mc mb --ignore-existing store/ray-checkpoints" in bucket.inputs["command"][0]
    assert "docker:index/container:Container::checkpoints-minio" in bucket.dependencies
    assert bucket.inputs["mustRun"] is False and bucket.inputs["attach"] is True


def test_every_published_port_binds_to_loopback(dev):
    ports = [p for c in dev.by_type(CONTAINER) for p in c.inputs.get("ports", [])]
    assert len(ports) == 7  # dashboard, client, prometheus, grafana, minio api + console, jupyter
    assert {p["ip"] for p in ports} == {"127.0.0.1"}


def test_secrets_are_secret_everywhere(dev):
    document = json.dumps(dev.to_json())
    assert "mock-" not in document  # no generated password appears in plain text
    for name in ("checkpoints-minio", "ray-cpu-0", "notebook-jupyter", "monitoring-grafana"):
        assert container(dev, name).inputs["envs"] == SECRET  # a list holding a secret is secret whole
    assert "credentials" in dev.secret_outputs


def test_every_ray_container_and_jupyter_run_with_the_stacks_one_token(dev):
    token = dev.outputs["ray_auth_token"]
    assert len(token) == 64 and "ray_auth_token" in dev.secret_outputs
    clients = ["ray-head", "ray-cpu-0", "ray-cpu-1", "notebook-jupyter"]
    for name in clients:
        assert env(container(dev, name))["RAY_AUTH_MODE"] == "token"
        assert env(container(dev, name))["RAY_AUTH_TOKEN"] == token
    for name in ("monitoring-prometheus", "monitoring-grafana", "checkpoints-minio"):  # no Ray inside
        assert "RAY_AUTH_TOKEN" not in env(container(dev, name))
    assert [r.name for r in dev.by_type("random:index/randomPassword:RandomPassword")
            if r.name == "ray-auth-token"] == ["ray-auth-token"]


def test_a_configured_ray_token_is_used_and_stays_secret():
    token = "t" * 40
    rec = preview("dev", secret_overrides={"ray_auth_token": token})
    assert env(container(rec, "ray-head"))["RAY_AUTH_TOKEN"] == token
    assert rec.outputs["ray_auth_token"] == token and token not in json.dumps(rec.to_json())
    assert "ray-auth-token" not in {r.name for r in rec.by_type("random:index/randomPassword:RandomPassword")}


def test_turning_ray_auth_off_is_explicit_and_said_to_every_ray_process():
    rec = local(ray_auth="disabled")
    assert rec.outputs["ray_auth_token"] is None
    for name in ("ray-head", "ray-cpu-0", "notebook-jupyter"):
        # Said, not left unset: Ray turns auth on by itself where a token file happens to exist.
        assert env(container(rec, name))["RAY_AUTH_MODE"] == "disabled"
        assert "RAY_AUTH_TOKEN" not in env(container(rec, name))


def test_every_docker_resource_uses_the_explicit_host_provider(dev):
    docker_resources = [r for r in dev.resources if r.type.startswith("docker:") and r.custom]
    assert docker_resources and {r.provider for r in docker_resources} == {"docker-host-local"}


def test_outputs_follow_the_contract(dev):
    assert set(OUTPUT_KEYS) <= set(dev.outputs)
    out = dev.outputs
    assert out["environment"] == "local" and out["ray_version"] == "2.60.0"
    assert out["ray_dashboard_url"] == "http://127.0.0.1:8265"
    assert out["ray_client_address"] == "ray://127.0.0.1:10001"
    assert out["ray_capacity"]["cpu"] == {"resources": {"CPU": 1, "memory": 2 * 1024**3}, "min_nodes": 2, "max_nodes": 2}
    assert out["storage"]["uri"] == "s3://ray-checkpoints"
    assert out["access"] == {"mode": "direct"}


def test_nested_inputs_match_the_provider_sdks(dev):
    assert sdk_problems(dev) == []


def test_images_are_built_by_default_with_the_pinned_ray_version(gpu_nvidia):
    images = gpu_nvidia.by_type("docker:index/image:Image")
    assert {i.inputs["build"]["context"] for i in images} == {"images/ray-cpu", "images/ray-cuda", "images/jupyter"}
    assert {i.inputs["build"]["args"]["RAY_VERSION"] for i in images} == {"2.60.0"}
    assert all(i.inputs["skipPush"] for i in images)


def local(**values) -> Recording:
    return preview("dev", {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})


def test_amd_workers_get_rocm_devices_and_their_own_gpus():
    rec = local(workers=[{"name": "mi", "replicas": 2, "gpu_vendor": "amd", "gpus_per_worker": 2,
                          "gpu_ids": ["0", "1", "2", "3"]}])
    worker = container(rec, "ray-mi-1")
    assert [d["hostPath"] for d in worker.inputs["devices"]] == ["/dev/kfd", "/dev/dri"]
    assert env(worker)["ROCR_VISIBLE_DEVICES"] == "2,3"
    assert "deviceRequests" not in worker.inputs
    assert any(i.inputs["build"]["context"] == "images/ray-rocm" for i in rec.by_type("docker:index/image:Image"))


def test_cpu_only_workers_have_no_gpu_devices():
    rec = local(workers=[{"name": "cpu", "replicas": 3}])
    workers = [container(rec, f"ray-cpu-{i}") for i in range(3)]
    assert all("deviceRequests" not in w.inputs and "devices" not in w.inputs for w in workers)
    assert rec.outputs["ray_capacity"]["cpu"]["max_nodes"] == 3


def test_pulled_images_use_official_ray_images():
    rec = local(images={"source": "pull", "jupyter": "example.org/jupyter-ray:1"},
                workers=[{"name": "cpu", "replicas": 1}])
    assert not rec.by_type("docker:index/image:Image")
    names = {r.inputs["name"] for r in rec.by_type("docker:index/remoteImage:RemoteImage")}
    assert names == {"rayproject/ray:2.60.0-py311-cpu", "example.org/jupyter-ray:1"}


def test_remote_gpu_box_over_ssh_is_reached_through_a_tunnel():
    rec = local(hosts=[{"name": "box", "url": "ssh://ubuntu@gpu.example.org", "ssh_opts": ["-p", "2222"]}])
    provider = rec.get("pulumi:providers:docker", "docker-host-box")
    assert provider.inputs["host"] == "ssh://ubuntu@gpu.example.org"
    access = rec.outputs["access"]
    assert access["mode"] == "port-forward"
    assert access["command"][:4] == ["ssh", "-N", "-p", "2222"] and access["command"][-1] == "ubuntu@gpu.example.org"
    assert "8265:127.0.0.1:8265" in access["command"]


def test_workers_on_a_second_host_use_host_networking_and_its_address():
    rec = local(
        hosts=[{"name": "a", "address": "10.1.0.1"}, {"name": "b", "url": "ssh://me@b", "address": "10.1.0.2"}],
        bind_address="10.1.0.1",
        workers=[{"name": "gpu", "host": "b", "gpu_vendor": "nvidia", "gpus_per_worker": 4,
                  "gpu_ids": ["0", "1", "2", "3"]}],
    )
    worker = container(rec, "ray-gpu-0")
    assert worker.provider == "docker-host-b" and worker.inputs["networkMode"] == "host"
    assert "--address=10.1.0.1:6379" in worker.inputs["command"]
    assert "--node-ip-address=10.1.0.2" in worker.inputs["command"]
    head = container(rec, "ray-head")
    assert head.inputs["networkMode"] == "host" and "--dashboard-host=10.1.0.1" in head.inputs["command"]
    assert env(worker)["AWS_ENDPOINT_URL"] == "http://10.1.0.1:9000"
    assert rec.outputs["ray_dashboard_url"] == "http://10.1.0.1:8265"


def test_optional_services_can_be_turned_off():
    rec = local(monitoring="false", jupyter="false")
    names = {r.name for r in rec.by_type(CONTAINER)}
    assert not names & {"monitoring-prometheus", "monitoring-grafana", "notebook-jupyter"}
    assert rec.outputs["grafana_url"] is None and rec.outputs["jupyter_url"] is None


def test_a_configured_secret_is_used_and_stays_secret():
    rec = preview("dev", secret_overrides={"grafana_admin_password": "correct-horse-battery"})
    assert not rec.by_type("random:index/randomPassword:RandomPassword") or all(
        r.name != "grafana-admin-password" for r in rec.by_type("random:index/randomPassword:RandomPassword"))
    assert "correct-horse-battery" not in json.dumps(rec.to_json())


def test_a_bad_config_stops_before_any_resource_is_registered():
    with pytest.raises(pulumi.RunError, match=r"ray-platform:workers\[0\].gpu_vendor: 'cuda' is not allowed"):
        run_stack("bad", {"ray-platform:workers": '[{"name": "g", "gpu_vendor": "cuda"}]'})
