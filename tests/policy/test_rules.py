"""The guardrails hold for every stack, and each rule catches what it exists to catch."""

from __future__ import annotations

import pytest

from policy.rules import RULES, Subject, evaluate
from tests.policy.subjects import stack_names, stack_subjects


@pytest.mark.parametrize("stack", stack_names())
def test_every_stack_passes_every_rule(stack):
    assert evaluate(stack_subjects(stack)) == []


@pytest.mark.parametrize("stack", ["dev", "gke", "gcpvm", "spcs", "spcs-app"])
def test_ray_runs_with_token_auth_in_every_stack_as_crossguard_sees_it_and_turning_it_off_is_caught(stack):
    from stacks.offline import preview
    from tests.policy.subjects import subjects

    def auth_violations(recording):
        return sorted(name for rule, name, _ in evaluate(subjects(recording, revealed=True)) if rule == "ray-token-auth")

    assert auth_violations(preview(stack)) == []
    off = {"ray_auth": "disabled"} | ({"kuberay": '{"install": "helm"}'} if stack == "gke" else {})
    assert auth_violations(preview(stack, off)) == {"dev": ["ray-cpu-0", "ray-cpu-1", "ray-head"],
                                                    "gke": ["ray-cluster"], "gcpvm": ["head-vm"],
                                                    "spcs": ["ray-cpu", "ray-etl", "ray-gpu", "ray-head"],
                                                    "spcs-app": ["app-files"]}[stack]  # the Native App's specs


def test_a_stack_that_exposes_docker_ports_is_caught_unless_it_opts_in():
    from stacks.offline import preview
    from tests.policy.subjects import subjects

    exposed = subjects(preview("dev", {"bind_address": "0.0.0.0"}))
    found = [v for v in evaluate(exposed) if v[0] == "docker-ports-on-loopback"]
    assert {name for _, name, _ in found} >= {"ray-head", "monitoring-grafana", "notebook-jupyter"}
    assert evaluate(exposed, {"allow-docker-all-interfaces": True}) == []


def firewall(ranges, ports, protocol="tcp"):
    return Subject("gcp:compute/firewall:Firewall", "fw",
                   {"direction": "INGRESS", "sourceRanges": ranges, "allows": [{"protocol": protocol, "ports": ports}]})


SA = "serviceAccount:ray@p.iam.gserviceaccount.com"
PRIVATE_CLUSTER = {"privateClusterConfig": {"enablePrivateNodes": True},
                   "masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "10.0.0.0/8"}]},
                   "workloadIdentityConfig": {"workloadPool": "p.svc.id.goog"}}
SPEC_TCP = "spec:\n  endpoints:\n  - name: gcs\n    port: 6379\n    public: true\n    protocol: TCP\n"
SPEC_HTTP = "spec:\n  endpoints:\n  - name: dashboard\n    port: 8265\n    public: true\n"

# rule -> (violating subject(s), expected message fragment, compliant subject(s))
CASES = {
    "no-ray-ports-to-internet": (
        [firewall(["0.0.0.0/0"], ["8000-8300"])], "to the internet (0.0.0.0/0)",
        [firewall(["10.0.0.0/8"], ["8265"]), firewall(["0.0.0.0/0"], ["443"])]),
    "docker-ports-on-loopback": (
        [Subject("docker:index/container:Container", "c", {"ports": [{"internal": 8265, "external": 8265}]})],
        "published on all interfaces (0.0.0.0)",
        [Subject("docker:index/container:Container", "c", {"ports": [{"internal": 1, "ip": "127.0.0.1"}]})]),
    "gke-private-cluster": (
        [Subject("gcp:container/cluster:Cluster", "gke", {**PRIVATE_CLUSTER, "masterAuthorizedNetworksConfig": {
            "cidrBlocks": [{"cidrBlock": "0.0.0.0/0"}]}})], "authorized for 0.0.0.0/0",
        [Subject("gcp:container/cluster:Cluster", "gke", PRIVATE_CLUSTER)]),
    "no-broad-roles-for-service-accounts": (
        [Subject("gcp:projects/iAMMember:IAMMember", "m", {"role": "roles/editor", "member": SA}),
         Subject("gcp:storage/bucketIAMMember:BucketIAMMember", "b", {"role": "roles/storage.admin", "member": SA})],
        "service account granted",
        [Subject("gcp:projects/iAMMember:IAMMember", "m", {"role": "roles/compute.instanceAdmin.v1", "member": SA}),
         Subject("gcp:projects/iAMMember:IAMMember", "u", {"role": "roles/owner", "member": "user:me@x.org"})]),
    "buckets-uniform-and-private": (
        [Subject("gcp:storage/bucket:Bucket", "b", {"uniformBucketLevelAccess": False}),
         Subject("gcp:storage/bucketIAMMember:BucketIAMMember", "p", {"role": "roles/storage.objectViewer",
                                                                      "member": "allUsers"})], "bucket",
        [Subject("gcp:storage/bucket:Bucket", "b", {"uniformBucketLevelAccess": True,
                                                    "publicAccessPrevention": "enforced"})]),
    "stateful-resources-protected": (
        [Subject("gcp:storage/bucket:Bucket", "data", {}),
         Subject("docker:index/volume:Volume", "v", {"labels": [{"label": "ray-platform.stateful", "value": "true"}]})],
        "neither protected nor retained",
        [Subject("gcp:storage/bucket:Bucket", "data", {}, protect=True),
         Subject("docker:index/volume:Volume", "tmp", {})]),
    "kubernetes-explicit-provider": (
        [Subject("kubernetes:apps/v1:DaemonSet", "ds", {}, provider="default")], "ambient kubeconfig",
        [Subject("kubernetes:apps/v1:DaemonSet", "ds", {}, provider="gke-k8s")]),
    "spcs-services": (
        [Subject("snowflake:index/service:Service", "head", {"fromSpecification": {"text": SPEC_TCP}},
                 provider="ray", provider_props={"role": "RAY_PROVIDER_ROLE"}),
         Subject("snowflake:index/service:Service", "head2", {"fromSpecification": {"text": SPEC_HTTP}},
                 provider="admin", provider_props={"role": "ACCOUNTADMIN"})], "",
        [Subject("snowflake:index/service:Service", "head", {"fromSpecification": {"text": SPEC_HTTP}},
                 provider="ray", provider_props={"role": "RAY_PROVIDER_ROLE"})]),
    "spcs-no-admin-ownership": (
        [Subject("snowflake:index/grantOwnership:GrantOwnership", "own", {"accountRoleName": "SECURITYADMIN"})],
        "ownership granted to SECURITYADMIN",
        [Subject("snowflake:index/grantOwnership:GrantOwnership", "own", {"accountRoleName": "RAY_PROVIDER_ROLE"})]),
    "ray-token-auth": (
        [Subject("docker:index/container:Container", "head", {"labels": [{"label": "ray-platform.node", "value": "head"}],
                                                              "envs": ["RAY_AUTH_MODE=disabled"]}),
         Subject("docker:index/container:Container", "worker", {"labels": [{"label": "ray-platform.node",
                                                                           "value": "worker"}], "envs": ["A=1"]}),
         Subject("kubernetes:ray.io/v1:RayCluster", "ray", {"spec": {"authOptions": {"mode": "disabled"}}}),
         Subject("kubernetes:ray.io/v1:RayCluster", "ray-old", {"spec": {}}),
         Subject("snowflake:index/service:Service", "ray-head-svc", {"fromSpecification": {"text": (
             "spec:\n  containers:\n  - name: ray-head\n    env:\n      RAY_AUTH_MODE: disabled\n")}}),
         Subject("gcp:compute/instance:Instance", "head-vm", {"metadataStartupScript": (
             "docker run --env RAY_AUTH_MODE=token img ray start --head\n- --env=RAY_AUTH_MODE=disabled\n")}),
         Subject("pulumi-python:dynamic/spcs:StageFiles", "app-files", {"files": {  # a Native App's spec template
             "specs/worker-cpu_x64_m.yaml": "spec:\n  containers:\n  - name: ray-worker\n    image: {{ image }}\n"
                                            "    env:\n      RAY_HEAD_ADDRESS: {{ head_host }}:6379\n"}})],
        "Ray runs without token authentication",
        [Subject("docker:index/container:Container", "head", {"labels": [{"label": "ray-platform.node", "value": "head"}],
                                                              "envs": ["RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN=x"]}),
         Subject("docker:index/container:Container", "grafana", {"envs": ["A=1"]}),  # no Ray inside
         Subject("kubernetes:ray.io/v1:RayCluster", "ray", {"spec": {"authOptions": {"mode": "token"}}}),
         Subject("snowflake:index/service:Service", "ray-head-svc", {"fromSpecification": {"text": (
             "spec:\n  containers:\n  - name: ray-head\n    env:\n      RAY_AUTH_MODE: token\n"
             "  - name: grafana\n")}}),
         Subject("gcp:compute/instance:Instance", "head-vm", {"metadataStartupScript": (
             "docker run --env RAY_AUTH_MODE=token img ray start --head\n- --env=RAY_AUTH_MODE=token\n")}),
         Subject("gcp:compute/instance:Instance", "bastion", {"metadataStartupScript": "apt-get update"}),
         Subject("pulumi-python:dynamic/spcs:StageFiles", "app-files", {"files": {
             "specs/worker-cpu_x64_m.yaml": "spec:\n  containers:\n  - name: ray-worker\n    image: {{ image }}\n"
                                            "    env:\n      RAY_AUTH_MODE: token\n", "README.md": "ray-"}})]),
    "secrets-are-secret": (
        [Subject("docker:index/container:Container", "c", {"envs": ["AWS_SECRET_ACCESS_KEY=abc", "A=1"]}),
         Subject("snowflake:index/user:User", "u", {"rsaPublicKey": "x", "password": "plain"})], "looks like a secret",
        [Subject("docker:index/container:Container", "c", {"envs": "[secret]"}),
         Subject("snowflake:index/user:User", "u", {"password": "[secret]", "passwordPolicyName": "p"}),
         Subject("gcp:secretmanager/secret:Secret", "s", {"secretId": "ray-ssh-key"}),
         Subject("gcp:secretmanager/secretVersion:SecretVersion", "v", {"secret": "projects/p/secrets/ray-ssh-key",
                                                                        "secretData": "[secret]"})]),
    "images-by-digest-under-binauthz": (
        [Subject("gcp:binaryauthorization/policy:Policy", "bin", {"defaultAdmissionRule": {
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}}),
         Subject("kubernetes:ray.io/v1:RayCluster", "ray", {"spec": {"headGroupSpec": {"template": {"spec": {
             "containers": [{"image": "us-docker.pkg.dev/p/r/ray:2.60.0"}]}}}}}, provider="k8s")],
        "referenced by tag",
        [Subject("gcp:binaryauthorization/policy:Policy", "bin", {"defaultAdmissionRule": {
            "enforcementMode": "DRYRUN_AUDIT_LOG_ONLY"}}),
         Subject("kubernetes:ray.io/v1:RayCluster", "ray", {"spec": {"image": "ray:2.60.0"}}, provider="k8s")]),
}


def test_every_rule_has_a_case():
    assert set(CASES) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule_name", sorted(CASES))
def test_each_rule_catches_a_violation_and_passes_a_compliant_resource(rule_name):
    violating, fragment, compliant = CASES[rule_name]
    found = [v for v in evaluate(violating) if v[0] == rule_name]
    names = {name for _, name, _ in found}
    expected = {s.name for s in violating if not s.type.startswith("gcp:binaryauthorization")}
    assert names == expected, found
    assert all(fragment in message for _, _, message in found)
    assert [v for v in evaluate(compliant) if v[0] == rule_name] == []


def test_binauthz_allow_list_admits_tagged_images_it_names():
    policy = Subject("gcp:binaryauthorization/policy:Policy", "bin", {
        "defaultAdmissionRule": {"enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"},
        "admissionWhitelistPatterns": [{"namePattern": "gke.gcr.io/**"}, {"namePattern": "docker.io/library/*"}]})

    def pod(image):
        return Subject("kubernetes:apps/v1:DaemonSet", image, {"spec": {"image": image}}, provider="k8s")

    found = evaluate([policy, pod("gke.gcr.io/nccl-plugin-gib/x:v1.0"), pod("docker.io/library/busybox:1"),
                      pod("docker.io/library/x/y:1"), pod("us-docker.pkg.dev/p/r/ray:2.60.0")])
    assert {name for rule, name, _ in found} == {"docker.io/library/x/y:1", "us-docker.pkg.dev/p/r/ray:2.60.0"}


def test_spcs_rule_names_both_problems():
    violating = CASES["spcs-services"][0]
    messages = [m for rule, _, m in evaluate(violating) if rule == "spcs-services"]
    assert any("public endpoint 'gcs' uses TCP" in m for m in messages)
    assert any("service owned by ACCOUNTADMIN" in m for m in messages)
