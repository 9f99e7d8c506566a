"""`gke` components on their own, under recording mocks, and their Args validation (clear errors, early)."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pytest

from components.gke.binary_authorization import BinaryAuthorizationArgs
from components.gke.cloud_build import CloudBuildArgs, ImageSpec, build_request, context_files, context_hash
from components.gke.cluster import GkeClusterArgs
from components.gke.cluster_objects import ClusterNetworking, ClusterNetworkingArgs, ExtraNetwork
from components.gke.network import RdmaNetwork, RdmaNetworkArgs
from components.gke.node_pools import GpuPoolSpec, H200NodePools, H200NodePoolsArgs
from components.gke.services import ProjectServices, ProjectServicesArgs
from components.gke.training_data import TrainingDataArgs
from stacks.offline import run_program

ROOT = Path(__file__).resolve().parents[2]
RDMA = [f"10.32.{32 * i}.0/19" for i in range(8)]
NETWORK_ARGS = dict(project="p-123456", region="europe-west1", zone="europe-west1-b", prefix="t",
                    roce_network_profile="projects/p-123456/global/networkProfiles/europe-west1-b-vpc-roce",
                    nodes_cidr="10.0.0.0/20", pods_cidr="10.4.0.0/14", services_cidr="10.8.0.0/20",
                    gvnic_1_cidr="10.16.0.0/20", rdma_cidrs=RDMA)
NINE = [{"network": "n", "subnetwork": f"s{i}"} for i in range(9)]


def extra_networks(modes: dict[str, str] | None = None) -> list[ExtraNetwork]:
    names = ["gvnic-1", *[f"rdma-{i}" for i in range(8)]]
    modes = modes or {}
    return [ExtraNetwork(n, "vpc", f"sub-{n}", modes.get(n, "NetDevice" if n == "gvnic-1" else "RDMA")) for n in names]


@pytest.mark.parametrize("make,message", [
    (lambda: ProjectServicesArgs(project="p", services=("compute",)), "are not Google API names"),
    (lambda: RdmaNetworkArgs(**{**NETWORK_ARGS, "rdma_cidrs": RDMA[:7]}), "rdma_cidrs: 7 ranges (allowed: exactly 8"),
    (lambda: RdmaNetworkArgs(**{**NETWORK_ARGS, "zone": "us-east4-b"}), "zone: 'us-east4-b' is not in region"),
    (lambda: RdmaNetworkArgs(**{**NETWORK_ARGS, "roce_network_profile": "projects/p/global/networkProfiles/x"}),
     "is not the RoCE profile of europe-west1-b"),
    (lambda: GkeClusterArgs(project="p", region="r", zone="r-b", cluster_name="c", network="n", subnetwork="s",
                            pods_range_name="pods", services_range_name="svc", master_cidr="172.16.0.0/28",
                            authorized_networks=[("0.0.0.0/0", "all")]), "is the whole internet"),
    (lambda: GkeClusterArgs(project="p", region="r", zone="r-b", cluster_name="c", network="n", subnetwork="s",
                            pods_range_name="pods", services_range_name="svc", master_cidr="172.16.0.0/28",
                            authorized_networks=[("1.2.3.4/32", "me")], release_channel="EXTENDED"),
     "release_channel: 'EXTENDED'"),
    (lambda: GpuPoolSpec("spot", 1, reservation="r"), "reservation: set on the spot pool"),
    (lambda: GpuPoolSpec("preemptible", 1), "model: 'preemptible' (allowed: spot, flex-start, on-demand)"),
    (lambda: H200NodePoolsArgs(project="p", region="r", zone="r-b", cluster="c", node_service_account="sa",
                               additional_node_networks=NINE[:8], compute_class="c", pools=[GpuPoolSpec("spot", 1)]),
     "additional_node_networks: 8 entries (allowed: exactly 9"),
    (lambda: H200NodePoolsArgs(project="p", region="r", zone="r-b", cluster="c", node_service_account="sa",
                               additional_node_networks=NINE, compute_class="c",
                               pools=[GpuPoolSpec("spot", 1), GpuPoolSpec("spot", 2)]), "repeat a provisioning model"),
    (lambda: ClusterNetworkingArgs(provider=None, networks=extra_networks()[::-1], compute_class="c", pools=["p"]),
     "allowed: exactly gvnic-1, then rdma-0..rdma-7, in order"),
    (lambda: ClusterNetworkingArgs(provider=None, networks=extra_networks({"rdma-3": "NetDevice"}), compute_class="c",
                                   pools=["p"]), "device_mode must be NetDevice for gvnic-1 and RDMA for rdma-*"),
    (lambda: TrainingDataArgs(project="p", location="r", bucket_name="b", access="admin", workload_pool="p.svc.id.goog",
                              namespace="ray", kubernetes_service_account="ray", account_id="ray-workloads"),
     "access: 'admin' (allowed: read-write, read-only)"),
    (lambda: TrainingDataArgs(project="p", location="r", bucket_name="b", access="read-only", versioning=True,
                              workload_pool="p.svc.id.goog", namespace="ray", kubernetes_service_account="ray",
                              account_id="ray-workloads"),
     "versioning: true with hierarchical_namespace (allowed: one of them; HNS buckets cannot use Object Versioning)"),
    (lambda: ImageSpec("x", ROOT / "images" / "ray-cpu"), "has no cloudbuild.yaml"),
    (lambda: CloudBuildArgs(project="p", region="r", prefix="t", network="n", private_services_cidr="10.48.0.0/20",
                            push_repository=None, pull_repositories=[], push_path="x",
                            images=[ImageSpec("s", ROOT / "images" / "ray-server", base="ray-base")]),
     "images[0].base: 'ray-base' is not an image built before it"),
    (lambda: BinaryAuthorizationArgs(project="p", first_build=None, mode="audit"),
     "mode: 'audit' (allowed: dryrun, enforce)"),
])
def test_args_reject_bad_input_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_a_build_config_must_push_through_images():
    with pytest.raises(ValueError, match=r"`images:` must list \$\{_IMAGE\}"):
        build_request({"steps": []}, image="i", substitutions={}, pool="p", service_account="s", timeout_seconds=60)


def test_the_context_hash_changes_with_any_file_of_the_context():
    files = context_files(ROOT / "images" / "ray-base")
    assert set(files) == {"Dockerfile", "cloudbuild.yaml"}
    assert context_hash(files) != context_hash({**files, "Dockerfile": files["Dockerfile"] + "\n"})


def test_rdma_network_alone():
    def program():
        RdmaNetwork("net", RdmaNetworkArgs(**NETWORK_ARGS))

    rec = run_program(program)
    children = [r for r in rec.resources if r.custom]
    assert children and {r.parent for r in children} == {"ray-platform:gke:RdmaNetwork::net"}
    assert len(rec.by_type("gcp:compute/subnetwork:Subnetwork")) == 10  # gvnic-0, gvnic-1, rdma-0..7
    assert not rec.by_type("gcp:compute/subnetwork:Subnetwork")[0].inputs.get("purpose")
    assert all("net-rdma" not in d for f in rec.by_type("gcp:compute/firewall:Firewall") for d in f.dependencies)


def test_node_pools_alone_get_one_pool_per_model_with_the_nine_nics():
    def program():
        H200NodePools("gpu", H200NodePoolsArgs(
            project="p", region="r", zone="r-b", cluster="projects/p/locations/r/clusters/c",
            node_service_account="nodes@p.iam.gserviceaccount.com", additional_node_networks=NINE,
            compute_class="cc", pools=[GpuPoolSpec("on-demand", 3), GpuPoolSpec("flex-start", 1)]))

    rec = run_program(program)
    pools = {r.inputs["name"]: r.inputs for r in rec.by_type("gcp:container/nodePool:NodePool")}
    assert set(pools) == {"h200-on-demand", "h200-flex-start"}
    assert pools["h200-on-demand"]["networkConfig"]["additionalNodeNetworkConfigs"] == NINE
    assert "reservationAffinity" not in pools["h200-on-demand"]["nodeConfig"]
    assert "spot" not in pools["h200-on-demand"]["nodeConfig"]


def test_services_are_looked_up_by_short_name():
    seen = {}

    def program():
        services = ProjectServices("s", ProjectServicesArgs(project="p"))
        seen["compute"] = services.of("compute")
        with pytest.raises(ValueError, match=r"services \['cloudrun'\] are not enabled"):
            services.of("cloudrun")

    rec = run_program(program)
    assert len(seen["compute"]) == 1
    assert {r.inputs["disableOnDestroy"] for r in rec.by_type("gcp:projects/service:Service")} == {False}


def test_cluster_networking_alone_uses_only_the_given_provider():
    def program():
        provider = k8s.Provider("cluster", kubeconfig="{}")
        ClusterNetworking("cn", ClusterNetworkingArgs(provider=provider, networks=extra_networks(), compute_class="cc",
                                                      pools=["h200-spot"]))
        gcp.Provider("unused", project="p")  # a second provider must not be picked up

    rec = run_program(program)
    objects = [r for r in rec.resources if r.type.startswith("kubernetes:") and r.custom]
    assert len(objects) == 20 and {r.provider for r in objects} == {"cluster"}
    network = rec.get("kubernetes:networking.gke.io/v1:Network", "cn-rdma-0")
    assert "kubernetes:networking.gke.io/v1:GKENetworkParamSet::cn-rdma-0-params" in network.dependencies


def test_capacity_and_access_follow_the_config():
    from stacks.config.gke import GkeConfig
    from stacks.gke import access, capacity

    cfg = GkeConfig(project="my-project-123", region="europe-west1", zone="europe-west1-b",
                    authorized_networks=[{"cidr": "203.0.113.7/32"}],
                    gpu_pools={"spot": {"max_nodes": 5}, "flex_start": {"enabled": False},
                               "ray_worker": {"cpus": 100, "memory_gb": 1000}},
                    ray={"namespace": "training"})
    # Part 2: one H200 worker group over every pool (the compute class picks the pool), and the CPU group.
    assert capacity(cfg) == {"headgroup": {"resources": {"CPU": 0, "memory": 16 * 1024**3}, "min_nodes": 1, "max_nodes": 1},
                             "h200": {"resources": {"CPU": 100, "GPU": 8, "memory": 1000 * 1024**3},
                                      "min_nodes": 0, "max_nodes": 6},  # spot 5 + on-demand 1 (the default)
                             "cpu": {"resources": {"CPU": 4, "memory": 16 * 1024**3}, "min_nodes": 0, "max_nodes": 4}}
    command = access(cfg)["command"]
    assert command[:2] == ["kubectl", "port-forward"] and "10001:10001" in command
    assert command[command.index("--namespace") + 1] == "training"
