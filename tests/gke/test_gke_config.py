"""`gke` config validation: every problem at once, each naming the key, the value and what is allowed."""

from __future__ import annotations

import pytest

from stacks.config import load
from stacks.config.gke import GkeConfig, version_tuple
from stacks.errors import ConfigError
from stacks.offline import config_string, read_stack_config

BASE = {"environment": "gke", "project": "my-project-123", "region": "europe-west1", "zone": "europe-west1-b",
        "authorized_networks": [{"cidr": "203.0.113.7/32"}]}


def cfg(**overrides) -> GkeConfig:
    return load({f"ray-platform:{k}": config_string(v) for k, v in {**BASE, **overrides}.items()})


def problems(**overrides) -> list[str]:
    values = {**BASE, **overrides}
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        load({f"ray-platform:{k}": config_string(v) for k, v in values.items()})
    return info.value.problems


def test_the_example_stack_config_is_valid():
    config, secrets = read_stack_config("gke")
    c = load(config, secrets)
    assert isinstance(c, GkeConfig) and c.project == "my-gcp-project-id"
    assert [m for m, _ in c.enabled_pools()] == ["spot", "flex-start", "on-demand"]


def test_defaults():
    c = cfg()
    assert c.compute_class.name == "h200-ccc" and c.compute_class.when_unsatisfiable == "DoNotScaleUp"
    assert c.binary_authorization.mode == "dryrun" and c.cluster.deletion_protection
    assert c.bucket_name == "my-project-123-ray-training"
    assert c.roce_network_profile == "projects/my-project-123/global/networkProfiles/europe-west1-b-vpc-roce"
    assert c.networks.rdma_subnets()[0] == "10.32.0.0/19" and len(c.networks.rdma_subnets()) == 8


def test_required_keys_are_named():
    assert problems(project=None, zone=None, authorized_networks=None) == [
        "ray-platform:project: required but missing",
        "ray-platform:zone: required but missing",
        "ray-platform:authorized_networks: required but missing",
    ]


BAD = [
    ({"project": "My_Project"},
     ["ray-platform:project: 'My_Project' is not a project id (allowed: 6-30 lowercase letters, digits and '-', "
      "starting with a letter)"]),
    ({"zone": "us-east4-b"},
     ["ray-platform:zone: 'us-east4-b' is not in region 'europe-west1' (allowed: a zone of europe-west1 that has the "
      "<zone>-vpc-roce network profile: gcloud compute network-profiles list)"]),
    ({"zone": "europe-west1"},
     ["ray-platform:zone: 'europe-west1' is not a zone (allowed: e.g. us-central1-b)"]),
    ({"authorized_networks": [{"cidr": "0.0.0.0/0"}]},
     ["ray-platform:authorized_networks[0].cidr: '0.0.0.0/0' opens the API server to too much of the internet "
      "(allowed: /8 or narrower, e.g. your egress IP as a /32)"]),
    ({"authorized_networks": [{"cidr": "203.0.113.7"}, {"cidr": "203.0.113.7/32"}]},
     []),  # a bare address is a /32 network: valid
    ({"authorized_networks": []},
     ["ray-platform:authorized_networks: [] is out of range (allowed: at least 1 items)"]),
    ({"networks": {"pods_cidr": "10.0.0.0/14"}},
     ["ray-platform:networks.pods_cidr: 10.0.0.0/14 overlaps networks.nodes_cidr 10.0.0.0/20 "
      "(allowed: disjoint ranges)"]),
    ({"networks": {"rdma_cidr": "10.32.0.0/25"}},
     ["ray-platform:networks.rdma_cidr: '10.32.0.0/25' is too small for eight subnets (allowed: /24 or wider)"]),
    ({"networks": {"master_cidr": "172.16.0.0/24"}},
     ["ray-platform:networks.master_cidr: '172.16.0.0/24' is not a /28 (allowed: a /28, as GKE requires)"]),
    ({"networks": {"nodes_cidr": "10.0.0.1/20"}},
     ["ray-platform:networks.nodes_cidr: '10.0.0.1/20' is not an IPv4 network (allowed: a CIDR such as "
      "10.0.0.0/20, host bits zero)"]),
    ({"networks": {"gvnic_1_cidr": "8.8.8.0/24"}},
     ["ray-platform:networks.gvnic_1_cidr: 8.8.8.0/24 is not a private range (allowed: RFC 1918 ranges such as "
      "10.0.0.0/8)"]),
    ({"gpu_pools": {"spot": {"enabled": False}, "flex_start": {"enabled": False}, "on_demand": {"enabled": False}}},
     ["ray-platform:gpu_pools: every pool is disabled (allowed: at least one of spot, flex_start, on_demand enabled)"]),
    ({"gpu_pools": {"spot": {"max_nodes": 0}}},
     ["ray-platform:gpu_pools.spot.max_nodes: 0 for an enabled pool (allowed: 1 to 64, or enabled: false)"]),
    ({"gpu_pools": {"spot": {"max_nodes": 65}}},
     ["ray-platform:gpu_pools.spot.max_nodes: 65 is out of range (allowed: <= 64)"]),
    ({"gpu_pools": {"on_demand": {"enabled": False, "reservation": "r1"}}},
     ["ray-platform:gpu_pools.on_demand.reservation: set but the on-demand pool is disabled (allowed: enabled: true "
      "with a reservation, or no reservation)"]),
    ({"cluster": {"min_master_version": "1.31"}},
     ["ray-platform:cluster.min_master_version: '1.31' is below 1.31.4-gke.1183000 which H200 (a3-ultragpu-8g) "
      "nodes need (allowed: 1.31.4-gke.1183000 or newer)",
      "ray-platform:cluster.min_master_version: '1.31' is below 1.32.2-gke.1652000 which DWS flex-start need "
      "(allowed: 1.32.2-gke.1652000 or newer)"]),
    ({"nccl_plugin_version": "latest"},
     ["ray-platform:nccl_plugin_version: 'latest' is not an installer version (allowed: a tag such as v1.1.1, "
      "optionally @sha256:<64 hex digits>)"]),
    ({"cluster": {"min_master_version": "latest"}},
     ["ray-platform:cluster.min_master_version: 'latest' is not a GKE version (allowed: e.g. 1.33 or "
      "1.32.2-gke.1652000)"]),
    ({"cluster": {"upgrade_exclusion": {"scope": "NO_UPGRADES"}}},
     ["ray-platform:cluster.upgrade_exclusion.scope: 'NO_UPGRADES' is not allowed (allowed: "
      "'NO_MINOR_OR_NODE_UPGRADES' or 'NO_MINOR_UPGRADES')"]),
    ({"cluster": {"upgrade_exclusion": {"start_time": "next monday"}}},
     ["ray-platform:cluster.upgrade_exclusion.start_time: 'next monday' is not an RFC 3339 time (allowed: e.g. "
      "2025-01-04T03:00:00Z)"]),
    ({"cluster": {"system_pool": {"min_nodes": 4, "max_nodes": 2}}},
     ["ray-platform:cluster.system_pool.min_nodes: 4 is above max_nodes 2 (allowed: min_nodes <= max_nodes)"]),
    ({"binary_authorization": {"mode": "block"}},
     ["ray-platform:binary_authorization.mode: 'block' is not allowed (allowed: 'dryrun' or 'enforce')"]),
    ({"training_data": {"versioning": True}},
     ["ray-platform:training_data.versioning: true while training_data.hierarchical_namespace is true (allowed: one "
      "of them: buckets with a hierarchical namespace cannot use Object Versioning)"]),
    ({"training_data": {"gcs_fuse": {"file_cache_gb": 12000}}},
     ["ray-platform:training_data.gcs_fuse.file_cache_gb: 12000 is out of range (allowed: <= 10000)"]),
    ({"training_data": {"access": "admin"}},
     ["ray-platform:training_data.access: 'admin' is not allowed (allowed: 'read-write' or 'read-only')"]),
    ({"compute_class": {"when_unsatisfiable": "Wait"}},
     ["ray-platform:compute_class.when_unsatisfiable: 'Wait' is not allowed (allowed: 'DoNotScaleUp' or "
      "'ScaleUpAnyway')"]),
    ({"gpu_pool": {}},
     ["ray-platform:gpu_pool: unknown key (allowed: environment, project, region, zone, name_prefix, "
      "authorized_networks, networks, cluster, gpu_pools, compute_class, training_data, ray, kuberay, ingress, "
      "monitoring, artifact_registry, cloud_build, binary_authorization, nccl_plugin_version, ray_redis_password, "
      "ray_auth, ray_auth_token)"]),
]


@pytest.mark.parametrize("overrides,expected", BAD)
def test_bad_values_are_named_with_what_is_allowed(overrides, expected):
    if not expected:
        assert cfg(**overrides).authorized_networks[0].cidr == "203.0.113.7"
        return
    assert problems(**overrides) == expected


def test_every_problem_is_reported_at_once():
    found = problems(zone="us-east4-b", networks={"pods_cidr": "10.0.0.0/14"},
                     binary_authorization={"mode": "enforce"}, gpu_pools={"spot": {"max_nodes": 0}})
    # zone, overlap, max_nodes, and the four images by tag that an enforcing Binary Authorization blocks
    assert len(found) == 7 and found[0].startswith("ray-platform:zone:")
    assert ("ray-platform:nccl_plugin_version: 'us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.1' "
            "is referenced by tag while binary_authorization.mode is enforce (allowed: name@sha256:<digest> "
            "(v1.1.1@sha256:<digest>), a binary_authorization.allowlist pattern that matches it)") in found


def test_the_compute_class_floor_applies_without_flex_start():
    found = problems(cluster={"min_master_version": "1.30.1"}, gpu_pools={"flex_start": {"enabled": False}})
    assert found == ["ray-platform:cluster.min_master_version: '1.30.1' is below 1.30.3-gke.1451000 which compute "
                     "classes need (allowed: 1.30.3-gke.1451000 or newer)",
                     "ray-platform:cluster.min_master_version: '1.30.1' is below 1.31.4-gke.1183000 which H200 "
                     "(a3-ultragpu-8g) nodes need (allowed: 1.31.4-gke.1183000 or newer)"]


def test_the_h200_floor_applies_on_its_own():
    found = problems(cluster={"min_master_version": "1.31.4-gke.1182999"}, gpu_pools={"flex_start": {"enabled": False}})
    assert found == ["ray-platform:cluster.min_master_version: '1.31.4-gke.1182999' is below 1.31.4-gke.1183000 "
                     "which H200 (a3-ultragpu-8g) nodes need (allowed: 1.31.4-gke.1183000 or newer)"]
    ok = cfg(cluster={"min_master_version": "1.31.4-gke.1183000"}, gpu_pools={"flex_start": {"enabled": False}})
    assert ok.cluster.min_master_version == "1.31.4-gke.1183000"
    assert cfg(cluster={"min_master_version": "1.33"}).cluster.min_master_version == "1.33"


def test_gpu_nodes_are_kept_from_upgrades_by_default_and_can_be_let_go():
    assert cfg().cluster.upgrade_exclusion.scope == "NO_MINOR_OR_NODE_UPGRADES"
    assert cfg(cluster={"upgrade_exclusion": None}).cluster.upgrade_exclusion is None


def test_version_tuples_compare_like_gke_versions():
    assert version_tuple("1.32.2-gke.1652000") > version_tuple("1.32.2-gke.1651999") > version_tuple("1.32")
    assert version_tuple("1.33") > version_tuple("1.32.9-gke.1")
