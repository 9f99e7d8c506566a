"""The generated Ray autoscaler config: Ray's own validator accepts it, and workers get what they need."""

from __future__ import annotations

import copy
import shlex

import pytest
from gcpvm_testing import ROOT, gcpvm_config
from ray.autoscaler._private.util import prepare_config, validate_config

from components.gcpvm.autoscaler_config import KEY_PATH, ClusterSpec, NodeTypeSpec, cluster_config, cluster_yaml
from components.gcpvm.registry import login_commands
from components.ray_node import RayNode
from stacks.config import load
from stacks.gcpvm import cluster_spec

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExample"
AR_IMAGE = "us-west1-docker.pkg.dev/my-ray-project/ray/ray-gcpvm:2.60.0"
EXAMPLES = {
    "Pulumi.gcpvm.yaml": {},
    "gpu-and-spot": {"worker_types": [
        {"name": "cpu", "max_workers": 4},
        {"name": "t4", "machine_type": "n1-standard-8", "accelerator_type": "nvidia-tesla-t4", "accelerator_count": 1,
         "max_workers": 2, "spot": True, "resources": {"tuner": 1}},
        {"name": "l4", "machine_type": "g2-standard-24", "min_workers": 1, "max_workers": 1}]},
    "private-artifact-registry": {"image": {"source": "private", "ref": AR_IMAGE}},
    "private-password": {"image": {"source": "private", "ref": "registry.example.com/t/ray:1", "registry_username": "u"},
                         "registry_password": "a-password-123"},
    "64-worker-types": {"worker_types": [{"name": f"type-{i}", "machine_type": f"n2-standard-{2 ** (1 + i % 4)}",
                                          "max_workers": 1 + i % 3, "min_workers": i % 2} for i in range(64)]},
}


def rendered(changes: dict) -> tuple[dict, object]:
    secrets = {"ray-platform:registry_password"} if "registry_password" in changes else set()
    cfg = load(gcpvm_config(**changes), secrets)
    logins = []
    if cfg.image.source == "private":
        mode = "artifact-registry" if cfg.image.artifact_registry else "password"
        logins = login_commands(mode, cfg.project, cfg.image.registry_host, cfg.image.registry_username, "pw-secret")
    # With Ray's token (every stack's default): its fetch, variables and mount are in what Ray validates.
    return cluster_config(cluster_spec(cfg, logins, token_secret="tok-secret"), PUBLIC_KEY), cfg


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_rays_own_validator_accepts_every_example(name):
    config, cfg = rendered(EXAMPLES[name])
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)  # raises on any schema or node-type problem
    assert set(prepared["available_node_types"]) == {"head"} | {w.name for w in cfg.worker_types}
    # Ray's GCP defaults must not sneak in commands we did not write (e.g. a pip install of a nightly wheel).
    assert prepared["setup_commands"] == [] and prepared["head_setup_commands"] == []
    assert prepared["max_workers"] == sum(w.max_workers for w in cfg.worker_types)


def test_sixty_four_worker_types_keep_their_counts_and_resources():
    config, cfg = rendered(EXAMPLES["64-worker-types"])
    types = config["available_node_types"]
    assert len(types) == 65
    for w in cfg.worker_types:
        entry = types[w.name]
        assert (entry["min_workers"], entry["max_workers"]) == (w.min_workers, w.max_workers)
        assert entry["resources"]["CPU"] == w.ray_cpus() and isinstance(entry["resources"]["memory"], int)


def test_validator_would_catch_a_broken_config():
    """The check above can fail: Ray refuses min above max and a node type without resources."""
    config, _ = rendered({})
    broken = copy.deepcopy(config)
    del broken["available_node_types"]["cpu"]["resources"]
    with pytest.raises(Exception, match="resources"):
        validate_config(prepare_config(broken))


def test_workers_have_the_subnet_account_key_and_no_public_ip():
    config, cfg = rendered({})
    node = config["available_node_types"]["cpu"]["node_config"]
    assert node["networkInterfaces"] == [{"subnetwork": "projects/my-ray-project/regions/us-west1/subnetworks/"
                                                        "autotuner-subnet"}]
    assert "accessConfigs" not in node["networkInterfaces"][0]
    assert node["serviceAccounts"][0]["email"] == "autotuner-workers@my-ray-project.iam.gserviceaccount.com"
    metadata = {item["key"]: item["value"] for item in node["metadata"]["items"]}
    assert metadata["ssh-keys"] == f"ray:{PUBLIC_KEY} ray"
    assert metadata["block-project-ssh-keys"] == "true"
    assert node["tags"]["items"] == ["autotuner-node"]
    assert node["machineType"] == "n2-standard-8" and node["disks"][0]["initializeParams"]["diskSizeGb"] == 100
    assert config["auth"] == {"ssh_user": "ray", "ssh_private_key": KEY_PATH}
    assert config["provider"] == {"type": "gcp", "region": "us-west1", "availability_zone": "us-west1-b",
                                  "project_id": "my-ray-project", "use_internal_ips": True,
                                  "cache_stopped_nodes": False}
    assert config["idle_timeout_minutes"] == 5
    assert "--env=RAY_PLATFORM_STORAGE_URI=gs://my-ray-project-autotuner-results" in config["docker"]["run_options"]


def test_gpu_and_spot_workers():
    config, _ = rendered(EXAMPLES["gpu-and-spot"])
    t4 = config["available_node_types"]["t4"]
    assert t4["resources"]["GPU"] == 1 and t4["resources"]["tuner"] == 1
    assert t4["node_config"]["guestAccelerators"] == [{
        "acceleratorType": "projects/my-ray-project/zones/us-west1-b/acceleratorTypes/nvidia-tesla-t4",
        "acceleratorCount": 1}]
    assert t4["node_config"]["scheduling"] == {"onHostMaintenance": "TERMINATE", "automaticRestart": False,
                                               "provisioningModel": "SPOT", "instanceTerminationAction": "DELETE"}
    assert t4["docker"] == {"worker_image": "rayproject/ray:2.60.0-py311-gpu", "worker_run_options": ["--gpus all"]}
    l4 = config["available_node_types"]["l4"]
    assert l4["resources"]["GPU"] == 2 and "guestAccelerators" not in l4["node_config"]  # built into g2
    assert "deeplearning-platform-release" in l4["node_config"]["disks"][0]["initializeParams"]["sourceImage"]
    assert "docker" not in config["available_node_types"]["cpu"]


def test_private_artifact_registry_logs_docker_in_on_each_worker():
    config, _ = rendered(EXAMPLES["private-artifact-registry"])
    assert config["docker"]["image"] == AR_IMAGE
    assert config["initialization_commands"][0] == "gcloud auth configure-docker us-west1-docker.pkg.dev --quiet"
    assert "--secret=tok-secret" in config["initialization_commands"][2]  # then Ray's token (components/gcpvm/ray_token)


def test_worker_start_keeps_the_head_address_for_the_autoscaler_to_fill_in():
    config, _ = rendered({})
    start = config["worker_start_ray_commands"][-1]
    assert "--address=$RAY_HEAD_IP:6379" in start and "'" not in start.split("--address")[1].split()[0]
    assert shlex.split(start.split("; ", 1)[1])[:2] == ["ray", "start"]


def test_yaml_is_the_same_document():
    import yaml

    config, cfg = rendered({})
    assert yaml.safe_load(cluster_yaml(cluster_spec(cfg, [], token_secret="tok-secret"), PUBLIC_KEY)) == config


def test_spec_rejects_duplicate_node_types_and_min_above_max():
    head = NodeTypeSpec("head", "n2-standard-4", 50, "img", RayNode(cpus=2, memory_gb=4))
    with pytest.raises(ValueError, match="unique"):
        ClusterSpec("c", "p", "r", "z", "s", "t", "sa", "ray", "img", head, [head], 1)
    with pytest.raises(ValueError, match="min_workers 3 > max_workers 1"):
        NodeTypeSpec("w", "n2-standard-4", 50, "img", RayNode(cpus=2, memory_gb=4), 3, 1)


def test_the_example_stack_file_is_the_one_tested():
    assert (ROOT / "Pulumi.gcpvm.yaml").exists()
