"""Ray's own KubeRay autoscaler derivation (`ray.autoscaler._private.kuberay.autoscaling_config`, in the Ray wheel)
run on the RayCluster the `gke` stack generates: the node types, resources and min/max replicas Ray's autoscaler
will work with must equal the stack's `ray_capacity`, which the job client's preflight reads. Ray's derivation is
the truth; it also runs Ray's autoscaler config validator on what it derives."""

from __future__ import annotations

import json

import pytest
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

from stacks.offline import Recording, preview

RAY_CLUSTER = "kubernetes:ray.io/v1:RayCluster"
HEAD = "headgroup"  # Ray's name for the head group's node type

# --set variations of pools and worker shapes, and what Ray must derive for each: (CPU, min, max) per group.
VARIATIONS = {
    "shipped": ({}, {HEAD: (0, 1, 1), "h200": (200, 0, 5), "cpu": (4, 0, 4)}),
    "pools": ({"gpu_pools": {"spot": {"max_nodes": 4}, "flex_start": {"enabled": False},
                             "on_demand": {"max_nodes": 3}}},
              {HEAD: (0, 1, 1), "h200": (200, 0, 7), "cpu": (4, 0, 4)}),
    "worker-shapes": ({"gpu_pools": {"ray_worker": {"cpus": 150, "memory_gb": 1800}},
                       "ray": {"head": {"cpus": 8, "memory_gb": 64},
                               "gpu_workers": {"min_replicas": 1, "max_replicas": 3, "shm_gb": 128},
                               "cpu_workers": {"cpus": 12, "memory_gb": 48, "min_replicas": 2, "max_replicas": 6}}},
                      {HEAD: (0, 1, 1), "h200": (150, 1, 3), "cpu": (12, 2, 6)}),
    "flex-start-only": ({"gpu_pools": {"spot": {"enabled": False}, "on_demand": {"enabled": False},
                                       "flex_start": {"max_nodes": 7}},
                         "ray": {"cpu_workers": {"enabled": False}}},
                        {HEAD: (0, 1, 1), "h200": (200, 0, 7)}),
}


def derived(rec: Recording) -> dict:
    """What Ray's autoscaler derives from the RayCluster as the API server stores it."""
    cr = rec.get(RAY_CLUSTER, "ray-cluster").revealed
    return _derive_autoscaling_config_from_ray_cr({"apiVersion": cr["apiVersion"], "kind": cr["kind"],
                                                   "metadata": cr["metadata"], "spec": cr["spec"]})


def as_capacity(config: dict) -> dict:
    """Ray's node types in ray_capacity's shape. Ray counts the head outside the workers (0 to 0 workers of its
    type); ray_capacity counts nodes, and there is always exactly one head."""
    out = {}
    for name, node_type in config["available_node_types"].items():
        count = (1, 1) if name == config["head_node_type"] else (node_type["min_workers"], node_type["max_workers"])
        out[name] = {"resources": node_type["resources"], "min_nodes": count[0], "max_nodes": count[1]}
    return out


@pytest.fixture(scope="module", params=list(VARIATIONS))
def variation(request) -> tuple[Recording, dict]:
    overrides, expected = VARIATIONS[request.param]
    return preview("gke", {k: json.dumps(v) for k, v in overrides.items()}), expected


def test_rays_derivation_equals_ray_capacity(variation):
    stack, _ = variation
    config = derived(stack)
    assert config["head_node_type"] == HEAD
    assert as_capacity(config) == stack.outputs["ray_capacity"]


def test_rays_derivation_follows_the_config(variation):
    """Not only equal: both carry what the config asked for (so a mistake shared by both would still show)."""
    stack, expected = variation
    capacity = as_capacity(derived(stack))
    assert {name: (t["resources"]["CPU"], t["min_nodes"], t["max_nodes"]) for name, t in capacity.items()} == expected
    assert capacity["h200"]["resources"]["GPU"] == 8  # one pod per a3-ultragpu-8g node, all eight GPUs


def test_the_comparison_can_fail():
    """A RayCluster whose rayStartParams disagree with ray_capacity is caught."""
    rec = preview("gke")
    cr = rec.get(RAY_CLUSTER, "ray-cluster").revealed
    h200 = next(g for g in cr["spec"]["workerGroupSpecs"] if g["groupName"] == "h200")
    original = h200["rayStartParams"]["num-cpus"]
    try:
        h200["rayStartParams"]["num-cpus"] = str(int(original) + 1)
        assert as_capacity(derived(rec)) != rec.outputs["ray_capacity"]
    finally:
        h200["rayStartParams"]["num-cpus"] = original
