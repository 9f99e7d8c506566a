"""The Kubernetes objects the `gke` stack applies, validated offline: the GKE CRDs against their real schemas
(../shared/schemas) plus the CEL rules that matter, built-in kinds with kubernetes-validate."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.gke import cluster_objects as objects
from components.gke.cluster import kubeconfig

KUBERNETES_VERSION = "1.33.0"
POOLS = ["h200-spot", "h200-flex-start", "h200-on-demand"]


def cel_problems(compute_class: dict) -> list[str]:
    """The ComputeClass CEL rules (x-kubernetes-validations) plain JSON Schema does not check, as Python."""
    found = []
    for i, p in enumerate(compute_class["spec"]["priorities"]):
        if "nodepools" in p and len(p) != 1:
            found.append(f"priorities[{i}]: Nodepool field cannot be set along with other fields")
        if p.get("spot") is True and (p.get("flexStart") or {}).get("enabled") is True:
            found.append(f"priorities[{i}]: Flex Start provisioning model is incompatible with Spot")
        if "machineFamily" in p and "machineType" in p:
            found.append(f"priorities[{i}]: MachineFamily and MachineType cannot be set together")
    return found


def test_compute_class_matches_the_crd_schema(schema):
    manifest = objects.compute_class("h200-ccc", POOLS, "DoNotScaleUp")
    jsonschema.validate(manifest, schema("cloud.google.com_computeclass_v1.json"))


def test_compute_class_ranks_spot_then_flex_then_on_demand_each_pool_alone():
    manifest = objects.compute_class("h200-ccc", POOLS, "ScaleUpAnyway")
    spec = manifest["spec"]
    assert spec["priorities"] == [{"nodepools": ["h200-spot"]}, {"nodepools": ["h200-flex-start"]},
                                  {"nodepools": ["h200-on-demand"]}]
    assert spec["whenUnsatisfiable"] == "ScaleUpAnyway"
    assert spec["nodePoolAutoCreation"] == {"enabled": False}
    assert cel_problems(manifest) == []


def test_the_cel_check_catches_a_nodepools_rule_that_does_not_stand_alone(schema):
    bad = copy.deepcopy(objects.compute_class("c", POOLS, "DoNotScaleUp"))
    bad["spec"]["priorities"][0]["spot"] = True
    jsonschema.validate(bad, schema("cloud.google.com_computeclass_v1.json"))  # the schema alone lets it through
    assert cel_problems(bad) == ["priorities[0]: Nodepool field cannot be set along with other fields"]
    mixed = {"spec": {"priorities": [{"spot": True, "flexStart": {"enabled": True}}]}}
    assert cel_problems(mixed) == ["priorities[0]: Flex Start provisioning model is incompatible with Spot"]


def test_the_crd_schema_rejects_a_bad_when_unsatisfiable(schema):
    bad = objects.compute_class("c", POOLS, "DoNotScaleUp")
    bad["spec"]["whenUnsatisfiable"] = "Wait"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("cloud.google.com_computeclass_v1.json"))
    with pytest.raises(ValueError, match="when_unsatisfiable: 'Wait'"):
        objects.compute_class("c", POOLS, "Wait")


@pytest.mark.parametrize("name,mode", [("gvnic-1", "NetDevice"), *[(f"rdma-{i}", "RDMA") for i in range(8)]])
def test_param_sets_and_networks_match_their_crd_schemas(schema, name, mode):
    params = objects.param_set(name, "ray-rdma", f"ray-{name}", mode)
    jsonschema.validate(params, schema("networking.gke.io_gkenetworkparamset_v1.json"))
    net = objects.network(name)
    jsonschema.validate(net, schema("networking.gke.io_network_v1.json"))
    assert net["spec"]["parametersRef"] == {"group": "networking.gke.io", "kind": "GKENetworkParamSet", "name": name}


def test_the_param_set_schema_rejects_an_unknown_device_mode(schema):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(objects.param_set("rdma-0", "v", "s", "Rdma"),
                            schema("networking.gke.io_gkenetworkparamset_v1.json"))


def test_nccl_installer_is_a_valid_daemonset_on_h200_nodes():
    ds = objects.nccl_installer("v1.1.1")
    kubernetes_validate.validate(ds, KUBERNETES_VERSION, strict=True)
    pod = ds["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert init["image"] == "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.1"
    assert init["securityContext"]["privileged"] is True
    script = init["command"][-1].splitlines()
    # GKE's manifest dropped --install-nccl: a host NCCL first on LD_LIBRARY_PATH would shadow the framework's.
    assert "/scripts/container_entry.sh install" in script and not any("--install-nccl" in line for line in script)
    assert {v["hostPath"]["path"] for v in pod["volumes"]} == {"/home/kubernetes/bin/nvidia/lib64",
                                                                "/home/kubernetes/bin/gib"}
    assert pod["hostNetwork"] is True and pod["hostPID"] is True and pod["tolerations"] == [{"operator": "Exists"}]
    # Google's pause image by digest (no NAT, no allow-list entry), not registry.k8s.io by tag.
    assert pod["containers"][0]["image"] == ("gke.gcr.io/pause:3.8@sha256:"
                                             "880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830")
    # Only the init container is privileged; the pause container holds nothing, the pod no API token.
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0] == {"key": "cloud.google.com/gke-accelerator", "operator": "In",
                                           "values": ["nvidia-h200-141gb"]}
    assert ds["metadata"]["namespace"] == "kube-system"


def test_kubernetes_validate_would_catch_a_typo():
    ds = objects.nccl_installer("v1.1.1")
    ds["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, KUBERNETES_VERSION, strict=True)


def test_namespace_and_workload_identity_service_account_are_valid():
    kubernetes_validate.validate(objects.namespace("ray"), KUBERNETES_VERSION, strict=True)
    sa = objects.service_account("ray-worker", "ray", "ray-workloads@p.iam.gserviceaccount.com")
    kubernetes_validate.validate(sa, KUBERNETES_VERSION, strict=True)
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "ray-workloads@p.iam.gserviceaccount.com"}


def test_kubeconfig_authenticates_with_the_gke_plugin_and_holds_no_token():
    doc = yaml.safe_load(kubeconfig("ray", "34.1.2.3", "Q0E="))
    assert doc["clusters"][0]["cluster"] == {"server": "https://34.1.2.3", "certificate-authority-data": "Q0E="}
    user = doc["users"][0]["user"]
    assert set(user) == {"exec"} and user["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert doc["current-context"] == "ray"
