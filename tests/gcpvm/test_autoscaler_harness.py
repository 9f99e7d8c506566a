"""Ray's own autoscaler on the stack's head and cluster YAML (see autoscaler_harness.py), scenario by scenario:
what it asks the Compute API for, with which instance bodies, and what it runs on the workers."""

from __future__ import annotations

import pytest
from autoscaler_harness import INSTANCE, Harness
from fake_gcp import ComputeRestAdapter, FakeApi, http_error
from gcpvm_testing import gcpvm_config
from ray.autoscaler._private.gcp import config as gcp_config

from components.gcpvm.cleanup import Target, terminate_workers
from components.gcpvm.ray_token import TOKEN_PATH
from stacks.config.gcpvm import GPU_VM_IMAGE
from stacks.offline import run_stack

T4 = {"name": "t4", "machine_type": "n1-standard-8", "accelerator_type": "nvidia-tesla-t4", "accelerator_count": 1,
      "max_workers": 2, "spot": True}
CPU = {"name": "cpu", "machine_type": "n2-standard-8", "max_workers": 4}
AR_IMAGE = "us-west1-docker.pkg.dev/my-ray-project/ray/ray-gcpvm:2.60.0"


@pytest.fixture
def cluster(gcpvm, monkeypatch, tmp_path) -> Harness:
    """The cluster exactly as Pulumi.gcpvm.yaml configures it: a head and up to 4 `cpu` workers."""
    return Harness(gcpvm, monkeypatch, tmp_path)


@pytest.fixture
def stack(monkeypatch, tmp_path):
    """A cluster from the example config with some keys changed."""
    def make(**changes) -> Harness:
        secrets = {"ray-platform:registry_password"} if "registry_password" in changes else set()
        return Harness(run_stack("gcpvm", gcpvm_config(**changes), secrets), monkeypatch, tmp_path)
    return make


def metadata(body: dict) -> dict[str, str]:
    return {item["key"]: item["value"] for item in body["metadata"]["items"]}


def test_an_idle_cluster_launches_nothing_and_status_lists_the_head(cluster):
    cluster.rounds(3)
    assert cluster.compute.inserted() == [] and cluster.compute.deleted() == []
    # Only reads of this cluster's VMs: no IAM, no project metadata, no firewall (those would fail on the fake).
    assert set(cluster.compute.api.paths()) == {"instances.list"}
    assert active(cluster.status()) == {"head": 1}
    assert "(no pending nodes)" in cluster.status()


def test_queued_cpu_tasks_launch_only_the_needed_type_within_max_workers(stack):
    cluster = stack(worker_types=[CPU, T4], max_workers=4)
    cluster.demand([{"CPU": 1}] * 12)  # the head's 4 CPUs are busy: 12 more need two 8-CPU workers
    cluster.step()
    bodies = cluster.compute.inserted()
    assert [b["labels"]["ray-user-node-type"] for b in bodies] == ["cpu", "cpu"]
    body = bodies[0]
    assert body["name"].startswith("ray-autotuner-worker-") and body["name"].endswith("-compute")
    assert body["machineType"] == "zones/us-west1-b/machineTypes/n2-standard-8"
    assert body["labels"]["ray-cluster-name"] == "autotuner" and body["labels"]["ray-node-type"] == "worker"
    assert body["networkInterfaces"] == [
        {"subnetwork": "projects/my-ray-project/regions/us-west1/subnetworks/autotuner-subnet"}]  # no public IP
    assert body["serviceAccounts"][0]["email"] == "autotuner-workers@my-ray-project.iam.gserviceaccount.com"
    assert body["tags"] == {"items": ["autotuner-node"]}
    assert "guestAccelerators" not in body and "scheduling" not in body
    # Ray logs in with this key only; OS Login (if the project turns it on) would ignore it.
    assert metadata(body) == {"ssh-keys": metadata(body)["ssh-keys"], "block-project-ssh-keys": "true",
                              "enable-oslogin": "FALSE"}
    assert metadata(body)["ssh-keys"].startswith("ray:ssh-ed25519 ")

    cluster.demand([{"CPU": 1}] * 100)  # far more than the cluster can ever hold
    cluster.rounds(4)
    workers = cluster.workers()
    assert len(workers) == 4 and {w["labels"]["ray-user-node-type"] for w in workers.values()} == {"cpu"}
    assert len(cluster.compute.inserted()) == 4 and cluster.compute.deleted() == []
    assert active(cluster.status()) == {"head": 1, "cpu": 4}


def test_request_resources_beyond_the_head_launches_workers_and_keeps_them(cluster):
    cluster.request_resources([{"CPU": 8}] * 3)  # the head has 4 CPUs: three whole workers
    cluster.step()
    assert [b["labels"]["ray-user-node-type"] for b in cluster.compute.inserted()] == ["cpu"] * 3
    for ip in [w["networkInterfaces"][0]["networkIP"] for w in cluster.workers().values()]:
        cluster.idle_s[ip] = 3600  # idle, but requested: kept
    cluster.rounds(2)
    assert len(cluster.workers()) == 3 and cluster.compute.deleted() == []


def test_gpu_demand_launches_the_gpu_type_with_accelerators_spot_and_driver(stack):
    cluster = stack(worker_types=[CPU, T4])
    cluster.demand([{"GPU": 1}])
    cluster.rounds(2)  # the launch, then Ray's updater on the new VM
    [body] = cluster.compute.inserted()
    assert body["labels"]["ray-user-node-type"] == "t4"
    assert body["machineType"] == "zones/us-west1-b/machineTypes/n1-standard-8"
    assert body["guestAccelerators"] == [{
        "acceleratorType": "projects/my-ray-project/zones/us-west1-b/acceleratorTypes/nvidia-tesla-t4",
        "acceleratorCount": 1}]
    assert body["scheduling"] == {"onHostMaintenance": "TERMINATE", "automaticRestart": False,
                                  "provisioningModel": "SPOT", "instanceTerminationAction": "DELETE"}
    assert metadata(body)["install-nvidia-driver"] == "True"
    assert body["disks"][0]["initializeParams"]["sourceImage"] == GPU_VM_IMAGE

    commands = cluster.runner.on(body_ip(cluster, body))
    driver = index(commands, "nvidia-smi")
    run = index(commands, "docker run")
    assert driver < run, commands  # the driver is ready before the container asks for the GPUs
    assert "timeout" in commands[driver]  # bounded: a VM whose driver never comes up fails its update
    assert "--gpus all" in commands[run] and "rayproject/ray:2.60.0-py311-gpu" in commands[run]
    assert "ray start --address=10.10.0.2:6379" in commands[-1].replace("$RAY_HEAD_IP", "10.10.0.2")


def test_idle_workers_are_drained_and_deleted_after_idle_timeout(cluster):
    cluster.demand([{"CPU": 1}] * 12)
    cluster.rounds(2)
    workers = cluster.workers()
    assert len(workers) == 2
    cluster.finish()
    ips = [w["networkInterfaces"][0]["networkIP"] for w in workers.values()]
    for ip in ips:
        cluster.idle_s[ip] = 5 * 60 - 10  # idle_timeout_minutes is 5: not yet
    cluster.step()
    assert cluster.compute.deleted() == []
    for ip in ips:
        cluster.idle_s[ip] = 5 * 60 + 10
    cluster.step()
    assert sorted(cluster.compute.deleted()) == sorted(workers)
    assert len(cluster.gcs.drained) == 2  # Ray drains each raylet before deleting its VM
    assert cluster.workers() == {} and cluster.head_name in cluster.compute.instances


def test_workers_start_ray_against_the_heads_address(cluster):
    cluster.demand([{"CPU": 1}] * 5)
    cluster.rounds(2)
    [worker] = cluster.workers().values()
    commands = cluster.runner.on(worker["networkInterfaces"][0]["networkIP"])
    assert commands[0] == "(uptime)"  # Ray waits for SSH first
    pull, run = index(commands, "docker pull rayproject/ray:2.60.0-py311-cpu"), index(commands, "docker run")
    assert pull < run < index(commands, "ray stop") < index(commands, "ray start")
    assert "--shm-size=" in commands[run]  # Ray sizes the workers' /dev/shm for the object store itself
    assert "export RAY_HEAD_IP=10.10.0.2" in commands[-1] and '{"CPU":8,"memory":24051816857}' in commands[-1]
    assert worker["labels"]["ray-node-status"] == "up-to-date"
    assert active(cluster.status()) == {"head": 1, "cpu": 1}


def test_destroy_time_cleanup_removes_what_rays_autoscaler_launched(cluster):
    cluster.demand([{"CPU": 1}] * 12)
    cluster.rounds(2)
    launched = set(cluster.workers())
    assert len(launched) == 2
    target = Target(cluster.compute.project, cluster.compute.zone, cluster.config["cluster_name"], cluster.head_name)
    deleted = terminate_workers(ComputeRestAdapter(cluster.compute), target, sleep=cluster.compute.advance,
                                clock=lambda: cluster.compute.now)
    assert set(deleted) == launched and cluster.workers() == {}
    assert cluster.compute.instances[cluster.head_name]["status"] == "TERMINATED"


def test_rays_provider_resolves_the_head_by_its_name(cluster):
    provider = cluster.autoscaler.provider
    assert provider.non_terminated_nodes({"ray-node-type": "head"}) == [cluster.head_name]
    # set_node_tags, terminate_node and get_command_runner find a VM's API from its name; the head's works.
    provider.set_node_tags(cluster.head_name, {"ray-node-status": "up-to-date"})
    assert cluster.compute.calls("setLabels")[-1]["instance"] == cluster.head_name
    assert cluster.compute.instances[cluster.head_name]["labels"]["ray-user-node-type"] == "head"


def cpu_and_gpu_workers(cluster) -> list[dict]:
    """Demand CPUs, then a GPU: the autoscaler launches one worker of each type; their VMs."""
    cluster.demand([{"CPU": 1}] * 5)
    cluster.rounds(2)
    cluster.demand([{"GPU": 1}])
    cluster.rounds(2)
    workers = list(cluster.workers().values())
    assert {w["labels"]["ray-user-node-type"] for w in workers} == {"cpu", "t4"}
    return workers


@pytest.mark.parametrize("image, login", [
    ({"source": "private", "ref": AR_IMAGE}, "gcloud auth configure-docker us-west1-docker.pkg.dev --quiet"),
    ({"source": "private", "ref": "registry.example.com/team/ray:1", "registry_username": "me"},
     "gcloud secrets versions access latest --secret=autotuner-registry-password --project=my-ray-project | "
     "docker login registry.example.com --username me --password-stdin"),
])
def test_private_registry_login_runs_on_each_worker_before_the_pull(stack, image, login):
    extra = {"registry_password": "a-password-123"} if "registry_username" in image else {}
    cluster = stack(image=image, worker_types=[CPU, T4], **extra)
    for worker in cpu_and_gpu_workers(cluster):
        commands = cluster.runner.on(worker["networkInterfaces"][0]["networkIP"])
        logged_in, pull = index(commands, login), index(commands, f"docker pull {image['ref']}")
        assert logged_in < pull < index(commands, "docker run"), commands
    assert "a-password-123" not in str(cluster.runner.commands) + cluster.yaml_text


def test_every_worker_type_writes_rays_token_before_its_container_starts(stack):
    cluster = stack(worker_types=[CPU, T4])
    for worker in cpu_and_gpu_workers(cluster):
        commands = cluster.runner.on(worker["networkInterfaces"][0]["networkIP"])
        written = index(commands, f"mv {TOKEN_PATH}.new {TOKEN_PATH}")
        run = index(commands, "docker run")
        assert written < run and f"-v {TOKEN_PATH}:{TOKEN_PATH}:ro" in commands[run].replace("--volume=", "-v ")
        assert f"RAY_AUTH_TOKEN_PATH={TOKEN_PATH}" in commands[run] and "RAY_AUTH_MODE=token" in commands[run]


def test_rays_gcp_bootstrap_is_what_ray_up_would_do_and_the_head_never_runs_it(cluster, monkeypatch):
    """`ray up` runs bootstrap_gcp; the head's autoscaler does not (the other scenarios would have failed: the
    harness gives Ray no IAM or Resource Manager client). Run on our YAML, bootstrap skips the SSH key and the
    subnets (the YAML names them), but creates Ray's own service account with roles/compute.admin on the
    project, which the stack forbids: hence docs/gcpvm.md's "never run ray up/exec/attach/down with it"."""
    def crm_or_iam(path, kw):
        if path == "projects.get":
            return {"projectId": kw["projectId"], "lifecycleState": "ACTIVE"}
        if path == "projects.serviceAccounts.get":
            raise http_error(404, "not found")
        if path == "projects.serviceAccounts.create":
            return {"email": f"{kw['body']['accountId']}@my-ray-project.iam.gserviceaccount.com",
                    "projectId": "my-ray-project"}
        if path == "projects.getIamPolicy":
            return {"bindings": []}
        return {}

    crm, iam = FakeApi(crm_or_iam), FakeApi(crm_or_iam)
    monkeypatch.setattr(gcp_config, "construct_clients_from_provider_config",
                        lambda _config: (crm, iam, cluster.compute.api, None))
    before = len(cluster.compute.api.calls)
    bootstrapped = gcp_config.bootstrap_gcp(cluster.config)
    assert len(cluster.compute.api.calls) == before  # no project-wide SSH key, no subnet lookup, no firewall
    assert bootstrapped["auth"]["ssh_private_key"] == cluster.config["auth"]["ssh_private_key"]
    assert [p for p, _ in iam.calls] == ["projects.serviceAccounts.get", "projects.serviceAccounts.create"]
    assert iam.calls[1][1]["body"]["accountId"] == "ray-autoscaler-sa-v1"
    [(_, policy)] = [c for c in crm.calls if c[0] == "projects.setIamPolicy"]
    roles = {b["role"] for b in policy["body"]["policy"]["bindings"]}
    assert "roles/compute.admin" in roles and "roles/storage.objectAdmin" in roles


def active(status: str) -> dict[str, int]:
    """`ray status`'s Active section: node count per node type."""
    section = status.split("Active:\n", 1)[1].split("Pending:", 1)[0]
    return {line.split()[1]: int(line.split()[0]) for line in section.splitlines() if line.strip()}


def body_ip(cluster: Harness, body: dict) -> str:
    return cluster.compute.instances[body["name"]]["networkInterfaces"][0]["networkIP"]


def index(commands: list[str], fragment: str) -> int:
    """Where the first command containing `fragment` ran."""
    found = [i for i, c in enumerate(commands) if fragment in c]
    assert found, f"{fragment!r} never ran: {commands}"
    return found[0]


def test_the_label_names_are_rays_own():
    from ray.autoscaler import tags
    from ray.autoscaler._private.gcp.node import GCPNodeType

    from components.gcpvm import ray_tags

    assert (ray_tags.CLUSTER_LABEL, ray_tags.KIND_LABEL, ray_tags.USER_TYPE_LABEL, ray_tags.STATUS_LABEL,
            ray_tags.NAME_LABEL, ray_tags.STATUS_UP_TO_DATE) == (
        tags.TAG_RAY_CLUSTER_NAME, tags.TAG_RAY_NODE_KIND, tags.TAG_RAY_USER_NODE_TYPE, tags.TAG_RAY_NODE_STATUS,
        tags.TAG_RAY_NODE_NAME, tags.STATUS_UP_TO_DATE)
    assert GCPNodeType.name_to_type(ray_tags.head_vm_name("autotuner")) == GCPNodeType.COMPUTE


def test_the_harness_runs_the_google_api_client_the_head_installs():
    from gcpvm_testing import ROOT

    from components.gcpvm.startup import GOOGLE_API_CLIENT

    assert GOOGLE_API_CLIENT in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_the_head_runs_the_autoscaler_this_harness_runs(gcpvm):
    """Ray 2.60 starts the v1 monitor (StandardAutoscaler) unless RAY_enable_autoscaler_v2 is set; if a Ray upgrade
    flips that default, this harness would be testing an autoscaler the head no longer runs."""
    import ray

    assert not ray._config.enable_autoscaler_v2()
    script = gcpvm.get(INSTANCE, "head-vm").inputs["metadataStartupScript"]
    assert "autoscaler_v2" not in script.lower()
