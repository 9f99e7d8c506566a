"""The `gke` stack (seed 003) under recording mocks: every seed element with the reference's fields, names
lining up from VPCs to node pools to Kubernetes Networks, least privilege, protection, and ordering."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from stacks.contract import OUTPUT_KEYS
from stacks.offline import SECRET, Recording, preview
from stacks.preview import sdk_problems

NETWORK, SUBNET = "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork"
POOL, CLUSTER = "gcp:container/nodePool:NodePool", "gcp:container/cluster:Cluster"
PARAMS, K8S_NETWORK = "kubernetes:networking.gke.io/v1:GKENetworkParamSet", "kubernetes:networking.gke.io/v1:Network"
COMPUTE_CLASS = "kubernetes:cloud.google.com/v1:ComputeClass"
IMAGE = "pulumi-python:dynamic/gke:CloudBuildImage"
IAM_TYPES = ("gcp:projects/iAMMember:IAMMember", "gcp:storage/bucketIAMMember:BucketIAMMember",
             "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
             "gcp:secretmanager/secretIamMember:SecretIamMember", "gcp:serviceaccount/iAMMember:IAMMember")


def gpu_pools(rec: Recording) -> dict[str, dict]:
    return {r.name: r.revealed for r in rec.by_type(POOL) if r.name.startswith("h200-")}


def closure(rec: Recording, ref: str) -> set[str]:
    """Everything a resource waits for, transitively (through components' children too)."""
    by_ref = {r.ref: r for r in rec.resources}
    seen, todo = set(), [ref]
    while todo:
        current = by_ref.get(todo.pop())
        if current is None:
            continue
        for dep in current.dependencies:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
                todo += [r.ref for r in rec.resources if r.parent == dep]  # a component means all its children
    return seen


def test_the_stack_registers_only_inputs_the_providers_know(gke):
    assert sdk_problems(gke) == []


def test_every_api_the_stack_uses_is_enabled_and_waited_for(gke):
    services = {r.inputs["service"] for r in gke.by_type("gcp:projects/service:Service")}
    assert {"compute.googleapis.com", "container.googleapis.com", "artifactregistry.googleapis.com",
            "cloudbuild.googleapis.com", "servicenetworking.googleapis.com", "binaryauthorization.googleapis.com",
            "containeranalysis.googleapis.com", "secretmanager.googleapis.com", "iam.googleapis.com",
            "storage.googleapis.com"} <= services
    assert "gcp:projects/service:Service::services-container" in gke.get(CLUSTER, "gke").dependencies
    assert "gcp:projects/service:Service::services-compute" in gke.get(NETWORK, "network-rdma").dependencies
    assert "gcp:projects/service:Service::services-artifactregistry" in gke.get(
        "gcp:artifactregistry/repository:Repository", "registry-docker").dependencies


def test_three_vpcs_one_of_them_roce_with_eight_subnets(gke):
    rdma = gke.get(NETWORK, "network-rdma").inputs
    assert rdma["mtu"] == 8896 and rdma["routingMode"] == "REGIONAL" and rdma["autoCreateSubnetworks"] is False
    assert rdma["networkProfile"] == "projects/my-gcp-project-id/global/networkProfiles/europe-west1-b-vpc-roce"
    subnets = [gke.get(SUBNET, f"network-rdma-{i}").inputs for i in range(8)]
    assert [s["ipCidrRange"] for s in subnets] == [f"10.32.{32 * i}.0/19" for i in range(8)]
    assert {s["region"] for s in subnets} == {"europe-west1"}
    primary = gke.get(SUBNET, "network-gvnic-0").inputs
    assert [r["rangeName"] for r in primary["secondaryIpRanges"]] == ["pods", "services"]
    assert primary["privateIpGoogleAccess"] is True
    assert len(gke.by_type(NETWORK)) == 3


def test_firewall_rules_and_nat_exist_on_the_gvnic_vpcs_only(gke):
    firewalls = gke.by_type("gcp:compute/firewall:Firewall")
    networks = {dep for f in firewalls for dep in f.dependencies if dep.startswith(NETWORK)}
    assert networks == {f"{NETWORK}::network-gvnic-0", f"{NETWORK}::network-gvnic-1"}
    assert all(f.inputs["direction"] == "INGRESS" and "0.0.0.0/0" not in f.inputs["sourceRanges"] for f in firewalls)
    routers = gke.by_type("gcp:compute/router:Router")
    assert {d for r in routers for d in r.dependencies} == {f"{NETWORK}::network-gvnic-0", f"{NETWORK}::network-gvnic-1"}
    assert len(gke.by_type("gcp:compute/routerNat:RouterNat")) == 2


def test_the_cluster_is_private_multi_networked_and_ready_for_ray(gke):
    c = gke.get(CLUSTER, "gke").inputs
    assert c["datapathProvider"] == "ADVANCED_DATAPATH" and c["enableMultiNetworking"] is True
    assert c["networkingMode"] == "VPC_NATIVE"
    assert c["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}
    assert c["privateClusterConfig"]["enablePrivateNodes"] is True
    assert c["masterAuthorizedNetworksConfig"]["cidrBlocks"] == [{"cidrBlock": "203.0.113.7/32",
                                                                  "displayName": "deployer"}]
    assert c["workloadIdentityConfig"] == {"workloadPool": "my-gcp-project-id.svc.id.goog"}
    assert c["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    assert "networkPolicyConfig" not in c["addonsConfig"]  # Dataplane V2 enforces policies itself
    assert c["monitoringConfig"]["managedPrometheus"] == {"enabled": True}
    assert "DCGM" in c["monitoringConfig"]["enableComponents"]
    assert c["binaryAuthorization"] == {"evaluationMode": "PROJECT_SINGLETON_POLICY_ENFORCE"}
    assert c["removeDefaultNodePool"] is True and c["deletionProtection"] is True
    assert c["releaseChannel"] == {"channel": "REGULAR"}
    assert c["maintenancePolicy"]["recurringWindow"]["recurrence"] == "FREQ=WEEKLY;BYDAY=SA,SU"
    # As Cluster Toolkit's A3 Ultra blueprint: the minor pinned, no node or minor upgrades until end of support.
    assert c["minMasterVersion"] == "1.35"
    assert c["maintenancePolicy"]["maintenanceExclusions"] == [{
        "exclusionName": "no-minor-or-node-upgrades", "startTime": "2026-01-01T00:00:00Z",
        "exclusionOptions": {"scope": "NO_MINOR_OR_NODE_UPGRADES", "endTimeBehavior": "UNTIL_END_OF_SUPPORT"}}]
    system = gke.get(POOL, "gke-system").inputs
    assert system["nodeConfig"]["machineType"] == "n2-standard-16"
    assert system["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


def test_h200_pools_carry_the_reference_fields(gke):
    pools = gpu_pools(gke)
    # The origin document's three priorities: spot, then DWS flex-start, then on-demand as the fallback.
    assert set(pools) == {"h200-spot", "h200-flex-start", "h200-on-demand"}
    for pool in pools.values():
        node = pool["nodeConfig"]
        assert node["machineType"] == "a3-ultragpu-8g"
        assert node["guestAccelerators"] == [{"type": "nvidia-h200-141gb", "count": 8,
                                              "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"}}]
        assert node["gvnic"] == {"enabled": True}
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert node["ephemeralStorageLocalSsdConfig"] == {"localSsdCount": 32}
        assert node["labels"]["cloud.google.com/compute-class"] == "h200-ccc"
        assert node["taints"] == [{"key": "cloud.google.com/compute-class", "value": "h200-ccc",
                                   "effect": "NO_SCHEDULE"}]
        assert pool["nodeLocations"] == ["europe-west1-b"]
        assert pool["autoscaling"]["totalMinNodeCount"] == 0
    assert {name: p["autoscaling"]["totalMaxNodeCount"] for name, p in pools.items()} == {
        "h200-spot": 2, "h200-flex-start": 2, "h200-on-demand": 1}
    spot, flex, on_demand = pools["h200-spot"], pools["h200-flex-start"], pools["h200-on-demand"]
    assert spot["nodeConfig"]["spot"] is True and "flexStart" not in spot["nodeConfig"]
    assert spot["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert flex["nodeConfig"]["flexStart"] is True and "spot" not in flex["nodeConfig"]
    assert flex["nodeConfig"]["maxRunDuration"] == "604800s"
    assert flex["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert flex["management"]["autoRepair"] is False and spot["management"]["autoRepair"] is True
    assert not {"spot", "flexStart", "reservationAffinity"} & set(on_demand["nodeConfig"])  # plain on-demand


def test_names_line_up_from_vpcs_to_node_pools_to_param_sets(gke):
    vpc = {r.name: r.inputs["name"] for r in gke.by_type(NETWORK)}
    subnet = {r.name: r.inputs["name"] for r in gke.by_type(SUBNET)}
    expected = [{"network": vpc["network-gvnic-1"], "subnetwork": subnet["network-gvnic-1"]}]
    expected += [{"network": vpc["network-rdma"], "subnetwork": subnet[f"network-rdma-{i}"]} for i in range(8)]
    for pool in gpu_pools(gke).values():
        assert pool["networkConfig"]["additionalNodeNetworkConfigs"] == expected  # NAMES, in NIC order
    order = ["gvnic-1", *[f"rdma-{i}" for i in range(8)]]
    found = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in gke.by_type(PARAMS)}
    assert sorted(found) == sorted(order)
    params = {name: found[name] for name in order}
    assert [{"network": p["vpc"], "subnetwork": p["vpcSubnet"]} for p in params.values()] == expected
    assert params["gvnic-1"]["deviceMode"] == "NetDevice"
    assert {params[f"rdma-{i}"]["deviceMode"] for i in range(8)} == {"RDMA"}
    networks = {r.inputs["metadata"]["name"]: r.inputs["spec"]["parametersRef"]["name"]
                for r in gke.by_type(K8S_NETWORK)}
    assert networks == {name: name for name in params}
    assert gke.outputs["networks"]["kubernetes"] == order


def test_the_compute_class_ranks_the_pools_and_matches_its_schema(gke, schema):
    cc = gke.get(COMPUTE_CLASS, "cluster-networking-compute-class")
    manifest = {"apiVersion": cc.inputs["apiVersion"], "kind": cc.inputs["kind"], "metadata": cc.inputs["metadata"],
                "spec": cc.inputs["spec"]}
    jsonschema.validate(manifest, schema("cloud.google.com_computeclass_v1.json"))
    assert manifest["metadata"]["name"] == "h200-ccc"
    assert manifest["spec"]["priorities"] == [{"nodepools": ["h200-spot"]}, {"nodepools": ["h200-flex-start"]},
                                              {"nodepools": ["h200-on-demand"]}]
    assert all(len(p) == 1 for p in manifest["spec"]["priorities"])  # nodepools rules stand alone
    assert manifest["spec"]["whenUnsatisfiable"] == "DoNotScaleUp"


def test_every_kubernetes_object_uses_the_clusters_explicit_provider(gke):
    k8s_objects = [r for r in gke.resources if r.type.startswith("kubernetes:") and r.custom
                   and not r.type.startswith("pulumi:providers")]
    assert len(k8s_objects) >= 21  # 9 ParamSets + 9 Networks + installer + compute class + namespace + SA
    assert {r.provider for r in k8s_objects} == {"gke-k8s"}
    provider = gke.get("pulumi:providers:kubernetes", "gke-k8s")
    assert provider.inputs["kubeconfig"] == SECRET
    assert "gke-gcloud-auth-plugin" in provider.revealed["kubeconfig"]
    assert {r.provider for r in gke.resources if r.type.startswith("gcp:") and r.custom} == {"gcp"}


def test_images_build_in_parallel_with_the_cluster_and_are_used_by_digest(gke):
    base, server = gke.get(IMAGE, "build-ray-base"), gke.get(IMAGE, "build-ray-server")
    for image in (base, server):
        waits_for = closure(gke, image.ref)
        assert "gcp:cloudbuild/workerPool:WorkerPool::build-pool" in waits_for  # the closure does see through
        assert not [d for d in waits_for if d.startswith(("gcp:container/", "kubernetes:"))], image.name
        assert image.revealed["build"]["options"]["pool"]["name"] == \
            "projects/my-gcp-project-id/locations/europe-west1/workerPools/ray-pool"
        assert image.revealed["build"]["images"] == ["${_IMAGE}"]
        assert image.revealed["build"]["options"]["requestedVerifyOption"] == "VERIFIED"
    ray_image = "/ray-docker-virtual/rayproject/ray:2.60.0-py311-gpu"
    assert base.revealed["build"]["substitutions"]["_BASE_IMAGE"].endswith(ray_image)
    images = gke.outputs["images"]
    assert server.revealed["build"]["substitutions"]["_BASE_IMAGE"] == images["ray-base"]
    by_digest = r"^europe-west1-docker\.pkg\.dev/my-gcp-project-id/ray-docker/ray-(base|server)@sha256:[0-9a-f]{64}$"
    assert all(re.match(by_digest, ref) for ref in images.values())


def test_the_worker_pool_is_private_and_peered_after_private_services_access(gke):
    pool = gke.get("gcp:cloudbuild/workerPool:WorkerPool", "build-pool")
    assert "gcp:servicenetworking/connection:Connection::build-psa" in pool.dependencies
    address = gke.get("gcp:compute/globalAddress:GlobalAddress", "build-psa-range").inputs
    assert address["purpose"] == "VPC_PEERING" and f"{address['address']}/{address['prefixLength']}" == "10.48.0.0/20"


def test_binary_authorization_waits_for_the_first_build(gke):
    policy = gke.get("gcp:binaryauthorization/policy:Policy", "binary-authorization-policy")
    assert f"{IMAGE}::build-ray-base" in policy.dependencies
    rule = policy.inputs["defaultAdmissionRule"]
    assert rule == {"evaluationMode": "REQUIRE_ATTESTATION", "enforcementMode": "DRYRUN_AUDIT_LOG_ONLY",
                    "requireAttestationsBies": ["projects/my-gcp-project-id/attestors/built-by-cloud-build"]}
    assert policy.inputs["globalPolicyEvaluationMode"] == "ENABLE"
    # No allow-list: what enforce admits is attested (the Ray builds) or pinned by digest (see the variant below).
    assert policy.inputs.get("admissionWhitelistPatterns", []) == []


def test_the_training_bucket_is_protected_and_private(gke):
    bucket = gke.get("gcp:storage/bucket:Bucket", "training-data-bucket")
    assert bucket.protect and bucket.retain_on_delete
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    # Hierarchical namespace (as Cluster Toolkit's training bucket), so no Object Versioning: GCS allows only one.
    assert bucket.inputs["hierarchicalNamespace"] == {"enabled": True} and bucket.inputs["versioning"] == {"enabled": False}
    assert bucket.inputs["publicAccessPrevention"] == "enforced" and bucket.inputs["forceDestroy"] is False


def test_iam_is_least_privilege(gke):
    roles = [r.inputs["role"] for t in IAM_TYPES for r in gke.by_type(t)]
    assert roles and not [r for r in roles if re.search(r"owner|editor|admin", r, re.I)]
    members = {r.revealed["member"] for t in IAM_TYPES for r in gke.by_type(t)}
    assert not [m for m in members if m in ("allUsers", "allAuthenticatedUsers")]
    bucket_roles = {r.inputs["role"] for r in gke.by_type("gcp:storage/bucketIAMMember:BucketIAMMember")
                    if "training-data" in r.name}
    assert bucket_roles == {"roles/storage.objectUser"}
    wi = gke.get("gcp:serviceaccount/iAMMember:IAMMember", "training-data-workload-identity").inputs
    assert wi["role"] == "roles/iam.workloadIdentityUser"
    assert wi["member"] == "serviceAccount:my-gcp-project-id.svc.id.goog[ray/ray-worker]"
    sa = gke.get("kubernetes:core/v1:ServiceAccount", "ray-namespace-service-account").inputs
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        gke.outputs["workload_identity"]["gcp_service_account"]


def test_registries_local_remote_virtual_with_cleanup(gke):
    repos = {r.inputs["repositoryId"]: r.inputs for r in gke.by_type("gcp:artifactregistry/repository:Repository")}
    assert {k: (v["format"], v["mode"]) for k, v in repos.items()} == {
        "ray-docker": ("DOCKER", "STANDARD_REPOSITORY"), "ray-docker-hub": ("DOCKER", "REMOTE_REPOSITORY"),
        "ray-docker-virtual": ("DOCKER", "VIRTUAL_REPOSITORY"), "ray-python": ("PYTHON", "STANDARD_REPOSITORY"),
        "ray-pypi": ("PYTHON", "REMOTE_REPOSITORY"), "ray-python-virtual": ("PYTHON", "VIRTUAL_REPOSITORY")}
    assert repos["ray-docker-hub"]["remoteRepositoryConfig"]["dockerRepository"] == {"publicRepository": "DOCKER_HUB"}
    assert repos["ray-pypi"]["remoteRepositoryConfig"]["pythonRepository"] == {"publicRepository": "PYPI"}
    assert {p["action"] for p in repos["ray-docker"]["cleanupPolicies"]} == {"DELETE", "KEEP"}
    upstreams = repos["ray-docker-virtual"]["virtualRepositoryConfig"]["upstreamPolicies"]
    assert max(upstreams, key=lambda u: u["priority"])["id"] == "local"  # our images win over Docker Hub's


def test_outputs_follow_the_contract(gke):
    out = gke.outputs
    assert set(OUTPUT_KEYS) <= set(out) and out["environment"] == "gke" and out["ray_version"] == "2.60.0"
    assert [out[k] for k in ("ray_dashboard_url", "ray_client_address", "grafana_url", "prometheus_url",
                             "jupyter_url")] == ["http://127.0.0.1:8265", "ray://127.0.0.1:10001",
                                                 "http://127.0.0.1:3000", "http://127.0.0.1:9090", None]
    assert out["storage"] == {"uri": "gs://my-gcp-project-id-ray-training", "endpoint": None}
    assert out["access"]["mode"] == "port-forward" and out["access"]["command"][:2] == ["kubectl", "port-forward"]
    assert "8265:8265" in out["access"]["command"] and out["access"]["local_dashboard_url"] == "http://127.0.0.1:8265"
    assert "kubeconfig" in gke.secret_outputs and gke.to_json()["outputs"]["kubeconfig"] == SECRET
    assert "BEGIN CERTIFICATE" not in json.dumps(gke.to_json())


def test_ray_capacity_comes_from_the_pools_config(gke):
    capacity = gke.outputs["ray_capacity"]
    assert set(capacity) == {"headgroup", "h200", "cpu"}  # the RayCluster's groups, named as Ray's autoscaler does
    assert capacity["h200"] == {"resources": {"CPU": 200, "GPU": 8, "memory": 2600 * 1024**3},
                                "min_nodes": 0, "max_nodes": 5}  # spot 2 + flex-start 2 + on-demand 1


@pytest.fixture(scope="module")
def variant() -> Recording:
    return preview("gke", {
        "gpu_pools": json.dumps({"spot": {"max_nodes": 4}, "flex_start": {"enabled": False},
                                 "on_demand": {"enabled": True, "max_nodes": 1, "reservation": "h200-res"}}),
        "binary_authorization": json.dumps({"mode": "enforce", "allowlist": []}),
        "training_data": json.dumps({"access": "read-only", "secrets": ["hf-token"], "hierarchical_namespace": False,
                                     "versioning": True, "gcs_fuse": {"file_cache_gb": 0}}),
        "compute_class": json.dumps({"name": "gpu-class", "when_unsatisfiable": "ScaleUpAnyway"}),
        # Enforcing with an empty allow-list: only images by digest pass, so the GKE-managed operator, no Grafana.
        "kuberay": json.dumps({"install": "addon"}),
        "ray_auth": "disabled",  # the add-on cannot promise it (stacks/config/gke.py)
        "monitoring": json.dumps({"grafana": False}),
        # A digest shaped like the real one (a first deploy reads it from the registry: docs/first-deployment/gke.md).
        "nccl_plugin_version": "v1.1.1@sha256:" + "ab" * 32,
        "cluster": json.dumps({"upgrade_exclusion": None}),
    })


def test_config_changes_reach_the_resources(variant):
    pools = gpu_pools(variant)
    assert set(pools) == {"h200-spot", "h200-on-demand"}
    assert pools["h200-spot"]["autoscaling"]["totalMaxNodeCount"] == 4
    assert pools["h200-on-demand"]["nodeConfig"]["reservationAffinity"] == {
        "consumeReservationType": "SPECIFIC_RESERVATION", "key": "compute.googleapis.com/reservation-name",
        "values": ["h200-res"]}
    cc = variant.get(COMPUTE_CLASS, "cluster-networking-compute-class").inputs
    assert cc["metadata"]["name"] == "gpu-class" and cc["spec"]["whenUnsatisfiable"] == "ScaleUpAnyway"
    assert cc["spec"]["priorities"] == [{"nodepools": ["h200-spot"]}, {"nodepools": ["h200-on-demand"]}]
    policy = variant.get("gcp:binaryauthorization/policy:Policy", "binary-authorization-policy").inputs
    assert policy["defaultAdmissionRule"]["enforcementMode"] == "ENFORCED_BLOCK_AND_AUDIT_LOG"
    bucket_roles = {r.inputs["role"] for r in variant.by_type("gcp:storage/bucketIAMMember:BucketIAMMember")
                    if "training-data" in r.name}
    assert bucket_roles == {"roles/storage.objectViewer"}
    bucket = variant.get("gcp:storage/bucket:Bucket", "training-data-bucket").inputs
    assert bucket["hierarchicalNamespace"] == {"enabled": False} and bucket["versioning"] == {"enabled": True}
    ray = variant.get("kubernetes:ray.io/v1:RayCluster", "ray-cluster").inputs["spec"]
    h200 = next(g for g in ray["workerGroupSpecs"] if g["groupName"] == "h200")["template"]
    csi = next(v["csi"] for v in h200["spec"]["volumes"] if "csi" in v)["volumeAttributes"]
    assert "fileCacheCapacity" not in csi and "gke-gcsfuse/ephemeral-storage-limit" not in h200["metadata"]["annotations"]
    secret = variant.get("gcp:secretmanager/secretIamMember:SecretIamMember", "training-data-secret-hf-token").inputs
    assert secret["role"] == "roles/secretmanager.secretAccessor" and secret["secretId"] == "hf-token"
    assert variant.outputs["ray_capacity"]["h200"]["max_nodes"] == 5  # spot 4 + on-demand 1
    cluster = variant.get(CLUSTER, "gke").inputs
    assert "maintenanceExclusions" not in cluster["maintenancePolicy"] and "minMasterVersion" not in cluster
    installer = variant.get("kubernetes:apps/v1:DaemonSet", "cluster-networking-nccl-rdma-installer").inputs["spec"]
    pod = installer["template"]["spec"]
    # Enforcing with an empty allow-list: every image the cluster objects name is pinned by digest.
    assert all("@sha256:" in c["image"] for c in pod["initContainers"] + pod["containers"])
    assert sdk_problems(variant) == []
