"""The gcpvm stack under recording mocks: safe network, least privilege, secrets, the head, the cleanup."""

from __future__ import annotations

import base64
import re

import pytest
import yaml
from gcpvm_testing import gcpvm_config

from components.gcpvm.autoscaler_config import CONFIG_PATH
from components.gcpvm.cleanup import WorkerCleanupProvider
from components.gcpvm.identity import FORBIDDEN_ROLES
from components.gcpvm.ray_token import TOKEN_PATH
from stacks.contract import OUTPUT_KEYS
from stacks.offline import SECRET, run_stack
from stacks.preview import sdk_problems

FIREWALL = "gcp:compute/firewall:Firewall"
INSTANCE = "gcp:compute/instance:Instance"
CLEANUP = "pulumi-python:dynamic:Resource"
OPEN_WORLD = {"0.0.0.0/0", "::/0"}
AR_IMAGE = "us-west1-docker.pkg.dev/my-ray-project/ray/ray-gcpvm:2.60.0"


def test_exports_the_contract_and_passes_the_sdk_key_check(gcpvm):
    assert set(OUTPUT_KEYS) <= set(gcpvm.outputs)
    assert gcpvm.outputs["environment"] == "gcpvm" and gcpvm.outputs["ray_client_address"] is None
    assert gcpvm.outputs["storage"] == {"uri": "gs://my-ray-project-autotuner-results", "endpoint": None}
    assert gcpvm.outputs["ray_capacity"]["cpu"] == {"resources": {"CPU": 8, "memory": int(32 * 0.7 * 1024**3)},
                                                     "min_nodes": 0, "max_nodes": 4}
    assert sdk_problems(gcpvm) == []


def test_access_is_an_iap_tunnel_to_the_head(gcpvm):
    access = gcpvm.outputs["access"]
    assert access["mode"] == "port-forward"
    assert access["command"] == ["gcloud", "compute", "start-iap-tunnel", "autotuner-head-compute", "8265",
                                 "--local-host-port=127.0.0.1:8265", "--zone", "us-west1-b", "--project",
                                 "my-ray-project"]
    assert access["local_dashboard_url"] == gcpvm.outputs["ray_dashboard_url"] == "http://127.0.0.1:8265"


def test_no_firewall_rule_opens_anything_to_the_internet(gcpvm):
    rules = {r.name: r.inputs for r in gcpvm.by_type(FIREWALL)}
    assert set(rules) == {"network-internal", "network-tunnel-ssh", "network-tunnel-dashboard"}
    for rule in rules.values():
        assert not OPEN_WORLD & set(rule.get("sourceRanges", [])), rule
    internal = rules["network-internal"]
    assert internal["sourceTags"] == internal["targetTags"] == ["autotuner-node"] and "sourceRanges" not in internal
    assert rules["network-tunnel-ssh"]["sourceRanges"] == ["35.235.240.0/20"]
    assert rules["network-tunnel-ssh"]["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
    assert rules["network-tunnel-dashboard"]["targetTags"] == ["autotuner-head"]


def test_vms_have_no_public_ip_and_nat_covers_the_subnet(gcpvm):
    head = gcpvm.get(INSTANCE, "head-vm").inputs
    assert all("accessConfigs" not in nic for nic in head["networkInterfaces"])
    nat = gcpvm.get("gcp:compute/routerNat:RouterNat", "network-nat").inputs
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_autoscaler_account_has_no_broad_role(gcpvm):
    roles = [r.inputs["role"] for r in gcpvm.by_type("gcp:projects/iAMMember:IAMMember")]
    assert roles and not set(roles) & set(FORBIDDEN_ROLES)
    autoscaler = [r.inputs["role"] for r in gcpvm.by_type("gcp:projects/iAMMember:IAMMember")
                  if "autotuner-autoscaler@" in r.inputs["member"]]
    assert "roles/compute.instanceAdmin.v1" in autoscaler
    act_as = gcpvm.get("gcp:serviceaccount/iAMMember:IAMMember", "identity-autoscaler-acts-as-worker").inputs
    assert act_as["role"] == "roles/iam.serviceAccountUser" and "autotuner-workers@" in act_as["serviceAccountId"]


def test_ssh_private_key_is_only_a_secret(gcpvm):
    version = gcpvm.get("gcp:secretmanager/secretVersion:SecretVersion", "head-ssh-key")
    assert version.inputs["secretData"] == SECRET
    assert version.revealed["secretData"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = version.revealed["secretData"]
    for resource in gcpvm.resources:
        assert private not in str(resource.inputs), resource.ref
    assert private not in str(gcpvm.outputs)


def test_head_startup_script_holds_the_config_and_starts_the_autoscaler(gcpvm):
    head = gcpvm.get(INSTANCE, "head-vm")
    script = head.inputs["metadataStartupScript"]
    assert f"cat > {CONFIG_PATH} <<'" in script and "cluster_name: autotuner" in script
    assert "available_node_types:" in script and "max_workers: 4" in script
    assert f"--autoscaling-config={CONFIG_PATH}" in script and "ray start --head" in script
    assert "gcloud secrets versions access latest --secret=autotuner-autoscaler-ssh-key" in script
    assert "PRIVATE KEY" not in script
    # What `ray up` would put on a head it launched (the autoscaler harness shows why each matters).
    assert head.inputs["labels"] == {"ray-cluster-name": "autotuner", "ray-node-type": "head",
                                     "ray-user-node-type": "head", "ray-node-status": "up-to-date",
                                     "ray-node-name": "ray-autotuner-head"}
    assert head.inputs["serviceAccount"]["email"] == "autotuner-autoscaler@my-ray-project.iam.gserviceaccount.com"


@pytest.mark.parametrize("head, memory_gb", [({"machine_type": "n2-standard-8"}, 32),
                                             ({"machine_type": "n2-highmem-32"}, 256),
                                             ({"machine_type": "m3-ultramem-32", "cpus": 32, "memory_gb": 680}, 680 / 0.7)])
def test_the_heads_shm_holds_rays_object_store(head, memory_gb):
    """Ray's own sizing of a container's /dev/shm (what it gives the workers), run on the head's machine: the head's
    --shm-size is the same, so the object store (30 % of memory, at most 200 GB) does not fall back to /tmp."""
    from types import SimpleNamespace

    from ray._private.ray_constants import DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES as CAP
    from ray._private.ray_constants import DEFAULT_OBJECT_STORE_MEMORY_PROPORTION as SHARE
    from ray.autoscaler._private.command_runner import DockerCommandRunner

    meminfo = f"MemAvailable: {int(memory_gb * 1024**2)} kB".encode()
    runner = SimpleNamespace(docker_config={}, ssh_command_runner=SimpleNamespace(run=lambda *a, **k: meminfo))
    [rays] = DockerCommandRunner._auto_configure_shm(runner, [])
    rays_bytes = float(rays.split("=")[1].strip("'b"))
    script = run_stack("gcpvm", gcpvm_config(head=head)).get(INSTANCE, "head-vm").inputs["metadataStartupScript"]
    ours = int(re.search(r"--shm-size=(\d+)b ", script).group(1))
    assert rays_bytes <= ours < rays_bytes + 1
    assert ours >= min(memory_gb * 1024**3 * SHARE, CAP)  # Ray's default object store on that machine


def test_artifact_registry_api_is_enabled_only_for_an_artifact_registry_image(gcpvm):
    def services(rec):
        return {r.inputs["service"] for r in rec.by_type("gcp:projects/service:Service")}

    assert "artifactregistry.googleapis.com" not in services(gcpvm)
    ar = run_stack("gcpvm", gcpvm_config(image={"source": "private", "ref": AR_IMAGE}))
    assert services(ar) == services(gcpvm) | {"artifactregistry.googleapis.com"}
    other = run_stack("gcpvm", gcpvm_config(
        image={"source": "private", "ref": "registry.example.com/t/ray:1", "registry_username": "u"},
        registry_password="a-password-123"), {"ray-platform:registry_password"})
    assert services(other) == services(gcpvm)


def test_cleanup_exists_depends_on_head_and_network_and_targets_this_cluster(gcpvm):
    cleanup = gcpvm.get(CLEANUP, "worker-cleanup")
    assert {"gcp:compute/instance:Instance::head-vm", "gcp:compute/network:Network::network-vpc",
            "gcp:compute/subnetwork:Subnetwork::network-subnet"} <= set(cleanup.dependencies)
    assert {k: v for k, v in cleanup.inputs.items() if k != "__provider"} == {
        "project": "my-ray-project", "zone": "us-west1-b", "cluster_name": "autotuner",
        "head_name": "autotuner-head-compute", "timeout_s": 600}
    # The provider in state is a reference to our class, with no credentials or other captured state.
    pickled = base64.b64decode(cleanup.revealed["__provider"])
    assert WorkerCleanupProvider.__module__.encode() in pickled and len(pickled) < 200


def test_every_resource_uses_an_explicit_provider(gcpvm):
    for resource in gcpvm.resources:
        if resource.custom and not resource.type.startswith(("pulumi:providers:", "pulumi-python:dynamic")):
            assert resource.provider in {"gcp", "tls", "random"}, resource.ref


def test_results_bucket_survives_destroy_and_is_private(gcpvm):
    bucket = gcpvm.get("gcp:storage/bucket:Bucket", "results")
    assert bucket.protect and bucket.retain_on_delete
    assert bucket.inputs["publicAccessPrevention"] == "enforced" and bucket.inputs["uniformBucketLevelAccess"]


def test_private_registry_password_is_a_secret_read_on_the_vm():
    config = gcpvm_config(image={"source": "private", "ref": "registry.example.com/t/ray:1", "registry_username": "u"},
                          registry_password="a-password-123")
    rec = run_stack("gcpvm", config, {"ray-platform:registry_password"})
    version = rec.get("gcp:secretmanager/secretVersion:SecretVersion", "registry-password")
    assert version.inputs["secretData"] == SECRET and version.revealed["secretData"] == "a-password-123"
    assert "a-password-123" not in str([r.revealed for r in rec.resources if r is not version])
    script = rec.get(INSTANCE, "head-vm").inputs["metadataStartupScript"]
    assert "--secret=autotuner-registry-password" in script and "docker login registry.example.com" in script
    accessors = rec.by_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert len([a for a in accessors if a.name.startswith("registry-accessor")]) == 2


def test_rays_token_reaches_the_head_and_every_worker_only_through_secret_manager(gcpvm):
    token = gcpvm.outputs["ray_auth_token"]
    assert len(token) == 64 and "ray_auth_token" in gcpvm.secret_outputs
    version = gcpvm.get("gcp:secretmanager/secretVersion:SecretVersion", "ray-auth-token")
    assert version.inputs["secretData"] == SECRET and version.revealed["secretData"] == token
    readers = {r.inputs["member"] for r in gcpvm.by_type("gcp:secretmanager/secretIamMember:SecretIamMember")
               if r.name.startswith("ray-auth-token-reader")}
    assert readers == {"serviceAccount:autotuner-autoscaler@my-ray-project.iam.gserviceaccount.com",
                       "serviceAccount:autotuner-workers@my-ray-project.iam.gserviceaccount.com"}
    for resource in gcpvm.resources:  # not in metadata, the startup script, the autoscaler config, anywhere else
        assert resource is version or token not in str(resource.revealed), resource.ref
    assert "gcp:secretmanager/secretVersion:SecretVersion::ray-auth-token" in gcpvm.get(
        "ray-platform:gcpvm:HeadNode", "head").dependencies  # the head boots once the token can be read
    head = gcpvm.get(INSTANCE, "head-vm")
    script = head.inputs["metadataStartupScript"]
    fetch = "gcloud secrets versions access latest --secret=autotuner-ray-auth-token --project=my-ray-project"
    assert fetch in script and f"--volume {TOKEN_PATH}:{TOKEN_PATH}:ro" in script
    assert f"--env RAY_AUTH_MODE=token --env RAY_AUTH_TOKEN_PATH={TOKEN_PATH}" in script
    # Every worker the autoscaler launches: the same fetch on the VM before Docker, the same mount and variables.
    config = yaml.safe_load(script.split(f"cat > {CONFIG_PATH} <<'RAY_PLATFORM_CLUSTER_CONFIG_END'\n")[1]
                            .split("\nRAY_PLATFORM_CLUSTER_CONFIG_END")[0])
    assert any(fetch in command for command in config["initialization_commands"])
    assert {"--env=RAY_AUTH_MODE=token", f"--env=RAY_AUTH_TOKEN_PATH={TOKEN_PATH}",
            f"--volume={TOKEN_PATH}:{TOKEN_PATH}:ro"} <= set(config["docker"]["run_options"])


def test_ray_auth_disabled_is_said_to_the_head_and_every_worker():
    rec = run_stack("gcpvm", gcpvm_config(ray_auth="disabled"))
    assert rec.outputs["ray_auth_token"] is None
    script = rec.get(INSTANCE, "head-vm").inputs["metadataStartupScript"]
    assert "--env RAY_AUTH_MODE=disabled" in script and "ray-auth-token" not in script
    assert "--env=RAY_AUTH_MODE=disabled" in script  # the workers' run_options in the autoscaler config
    assert not [r for r in rec.resources if "ray-auth-token" in r.name]


def test_artifact_registry_grants_read_on_the_repository_only():
    ref = "us-west1-docker.pkg.dev/my-ray-project/ray/ray-gcpvm:2.60.0"
    rec = run_stack("gcpvm", gcpvm_config(image={"source": "private", "ref": ref}))
    readers = rec.by_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert {(r.inputs["repository"], r.inputs["location"], r.inputs["role"]) for r in readers} == {
        ("ray", "us-west1", "roles/artifactregistry.reader")}
    assert len(readers) == 2


def test_existing_network_is_used_not_created():
    rec = run_stack("gcpvm", gcpvm_config(network={"name": "shared", "subnet": "ray-subnet"}))
    assert not rec.by_type("gcp:compute/network:Network")
    assert {r.inputs["network"] for r in rec.by_type(FIREWALL)} == {"shared"}
    nic = rec.get(INSTANCE, "head-vm").inputs["networkInterfaces"][0]
    assert nic["subnetwork"] == "projects/my-ray-project/regions/us-west1/subnetworks/ray-subnet"


def test_bad_config_stops_before_any_resource():
    import pulumi

    with pytest.raises(pulumi.RunError, match="zone: 'europe-west4-a' is not in region"):
        run_stack("gcpvm", gcpvm_config(zone="europe-west4-a"))
