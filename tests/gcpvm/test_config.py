"""GcpVmConfig: defaults, and one clear message per bad value (key, value, what is allowed)."""

from __future__ import annotations

import pytest
from gcpvm_testing import gcpvm_config

from stacks.config import load
from stacks.config.gcpvm import GcpVmConfig
from stacks.errors import ConfigError


def problems(secret_keys=frozenset(), **changes) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load(gcpvm_config(**changes), secret_keys)
    return exc.value.problems


def test_the_example_config_loads_with_the_seed_shape():
    cfg = load(gcpvm_config())
    assert isinstance(cfg, GcpVmConfig)
    assert (cfg.project, cfg.zone, cfg.cluster_name) == ("my-ray-project", "us-west1-b", "autotuner")
    assert [(w.name, w.min_workers, w.max_workers) for w in cfg.worker_types] == [("cpu", 0, 4)]
    assert cfg.worker_types[0].ray_cpus() == 8 and cfg.head.ray_cpus() == 4
    assert cfg.network.ssh_source_ranges == ["35.235.240.0/20"]


def test_project_is_required():
    config = gcpvm_config()
    del config["ray-platform:project"]
    with pytest.raises(ConfigError) as exc:
        load(config)
    assert exc.value.problems == ["ray-platform:project: required but missing"]


@pytest.mark.parametrize("changes,expected", [
    ({"zone": "us-east1-b"},
     "ray-platform:zone: 'us-east1-b' is not in region 'us-west1' (allowed: us-west1-a, us-west1-b, ...)"),
    ({"worker_types": [{"name": "cpu", "min_workers": 3, "max_workers": 2}]},
     "ray-platform:worker_types[0].min_workers: 3 is above max_workers 2 (allowed: 0 to 2)"),
    ({"worker_types": [{"name": "gpu", "machine_type": "n2-standard-8", "accelerator_type": "nvidia-tesla-t4",
                        "accelerator_count": 1}]},
     "ray-platform:worker_types[0].accelerator_type: nvidia-tesla-t4 cannot be attached to n2-standard-8 (allowed: "
     "an n1-* machine type, or a machine type with built-in GPUs: g2-standard-*, a2-*, a3-*)"),
    ({"worker_types": [{"name": "gpu", "machine_type": "n1-standard-8", "accelerator_type": "nvidia-tesla-t4",
                        "accelerator_count": 3}]},
     "ray-platform:worker_types[0].accelerator_type: 3 x nvidia-tesla-t4 (allowed counts: 1, 2, 4)"),
    ({"worker_types": [{"name": "l4", "machine_type": "g2-standard-24", "accelerator_type": "nvidia-l4",
                        "accelerator_count": 1}]},
     "ray-platform:worker_types[0].accelerator_type: g2-standard-24 comes with 2 nvidia-l4 (allowed: no "
     "accelerator_type/accelerator_count, or exactly those)"),
    ({"worker_types": [{"name": "cpu", "disk_gb": 20}]},
     "ray-platform:worker_types[0].disk_gb: 20 is out of range (allowed: >= 50)"),
    ({"head": {"machine_type": "n2-standard-8", "cpus": 16}},
     "ray-platform:head.cpus: 16 on n2-standard-8 with 8 vCPUs (allowed: at most 8)"),
    ({"head": {"machine_type": "n2-standard-8", "memory_gb": 30}},
     "ray-platform:head.memory_gb: 30 GB of Ray memory on n2-standard-8 (32 GB) (allowed: at most 22.4 GB, 70% of the "
     "machine; the rest is the object store and Ray's own processes)"),
    ({"head": {"machine_type": "n1-standard-1"}},
     "ray-platform:head.machine_type: n1-standard-1 has 1 vCPU (allowed: at least 2: the GCS, dashboard and "
     "autoscaler run beside the work)"),
    ({"image": {"source": "private"}},
     "ray-platform:image.ref: missing with image.source 'private' (allowed: your image, e.g. "
     "us-west1-docker.pkg.dev/my-ray-project/ray/ray-gcpvm:2.60.0)"),
    ({"image": {"source": "private", "ref": "registry.example.com/team/ray:1"}},
     "ray-platform:image.registry_username: a private image outside Artifact Registry ('registry.example.com/team/"
     "ray:1') needs image.registry_username and the secret registry_password (allowed: both, or an Artifact "
     "Registry image LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG)"),
    ({"image": {"source": "public", "registry_username": "me"}},
     "ray-platform:image.source: 'public' with registry credentials (allowed: source 'private' for a registry that "
     "needs a login, or no registry_username/registry_password)"),
    ({"network": {"ssh_source_ranges": ["0.0.0.0/0"]}},
     "ray-platform:network.ssh_source_ranges: '0.0.0.0/0' opens SSH to the whole internet (allowed: narrower "
     "ranges, e.g. 35.235.240.0/20 for IAP)"),
    ({"network": {"name": "shared-vpc"}},
     "ray-platform:network.subnet: an existing network needs both network.name and network.subnet (allowed: both, "
     "or neither to create them)"),
    ({"worker_types": [{"name": "big", "machine_type": "m3-ultramem-32"}]},
     "ray-platform:worker_types[0].machine_type: 'm3-ultramem-32' is not a machine type this stack knows the size of "
     "(allowed: n1/n2/n2d/n4/e2/c2/c2d/c3/c3d/c4/t2d-standard|highmem|highcpu-N, g2-standard-N, a2-*, "
     "a3-highgpu-8g, or set worker_types[0].cpus and worker_types[0].memory_gb)"),
    ({"worker_types": [{"name": "head"}]},
     "ray-platform:worker_types: name 'head' is the head's node type (allowed: any other name)"),
    ({"cluster_name": "a-very-long-cluster-name"},
     "ray-platform:cluster_name: 'a-very-long-cluster-name' is too long (allowed: at most 18 characters, as it "
     "prefixes service account ids)"),
])
def test_bad_values_name_the_key_and_what_is_allowed(changes, expected):
    assert expected in problems(**changes)


def test_registry_password_must_be_a_secret():
    found = problems(image={"source": "private", "ref": "registry.example.com/team/ray:1", "registry_username": "me"},
                     registry_password="hunter2hunter2")
    assert found == ["ray-platform:registry_password: must be set as a secret (allowed: "
                     "`pulumi config set --secret registry_password ...`)"]


def test_private_registry_with_a_secret_password_loads():
    config = gcpvm_config(image={"source": "private", "ref": "registry.example.com/team/ray:1",
                                 "registry_username": "me"}, registry_password="hunter2hunter2")
    cfg = load(config, {"ray-platform:registry_password"})
    assert cfg.image.registry_host == "registry.example.com"


def test_artifact_registry_image_needs_no_credentials():
    ref = "us-west1-docker.pkg.dev/my-ray-project/ray/ray-gcpvm:2.60.0"
    cfg = load(gcpvm_config(image={"source": "private", "ref": ref}))
    assert cfg.image.artifact_registry.group(3) == "ray" and cfg.image.for_gpus() == ref


def test_gpu_machine_types_count_their_gpus():
    cfg = load(gcpvm_config(worker_types=[
        {"name": "t4", "machine_type": "n1-standard-8", "accelerator_type": "nvidia-tesla-t4", "accelerator_count": 2},
        {"name": "l4", "machine_type": "g2-standard-24"}]))
    assert [w.gpus() for w in cfg.worker_types] == [("nvidia-tesla-t4", 2), ("nvidia-l4", 2)]
    assert cfg.image.for_gpus() == "rayproject/ray:2.60.0-py311-gpu"


def test_sixty_four_worker_types_load_and_sixty_five_do_not():
    many = [{"name": f"w{i}", "max_workers": 1} for i in range(64)]
    assert len(load(gcpvm_config(worker_types=many)).worker_types) == 64
    assert problems(worker_types=many + [{"name": "w64"}]) == [
        f"ray-platform:worker_types: {many + [{'name': 'w64'}]!r} is out of range (allowed: at most 64 items)"]


def test_cluster_max_workers_below_the_min_sum_is_refused():
    assert problems(worker_types=[{"name": "a", "min_workers": 2, "max_workers": 3}], max_workers=1) == [
        "ray-platform:max_workers: 1 is below the sum of min_workers 2 (allowed: >= 2)"]
