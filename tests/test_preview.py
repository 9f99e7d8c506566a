"""`python -m stacks.preview`: the JSON snapshot of `dev`, diffs, graphs, errors, and the SDK key check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import preview as cli
from stacks.offline import preview
from stacks.sdk_check import check_inputs

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots"
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stacks.preview", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("stack", STACKS)
def test_json_matches_the_snapshot(stack):
    """Regenerate after an intended change: UPDATE_SNAPSHOTS=1 pytest tests/test_preview.py -k snapshot"""
    result = run_cli(stack, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    snapshot = SNAPSHOTS / f"{stack}.json"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(json.dumps(document, indent=2) + "\n")
    assert document == json.loads(snapshot.read_text())
    assert document["stack"] == stack and str(ROOT) not in result.stdout  # no checkout path: diffs stay stable


def test_json_has_every_field_the_design_names(dev):
    document = dev.to_json()
    assert document["stack"] == "dev" and document["environment"] == "local"
    head = next(r for r in document["resources"] if r["name"] == "ray-head")
    assert set(head) == {"type", "name", "parent", "provider", "dependencies", "protect", "retain_on_delete", "inputs"}
    assert head["parent"] == "ray-platform:local:DockerRayCluster::ray"
    assert head["provider"] == "docker-host-local"
    assert "docker:index/network:Network::ray" in head["dependencies"]
    assert document["outputs"]["credentials"] == "[secret]"


def test_diff_lists_created_changed_and_removed(dev, tmp_path):
    base = tmp_path / "base.json"
    base.write_text(json.dumps(dev.to_json()))
    result = run_cli("dev", "--set", "jupyter=false", "--set", "head={\"cpus\": 4, \"memory_gb\": 8}", "--diff",
                     str(base))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "0 to create, 1 to change, 5 to remove"
    assert "  - docker:index/container:Container::notebook-jupyter" in out
    assert "  ~ docker:index/container:Container::ray-head" in out
    assert 'inputs.command[7]: "--num-cpus=0" => "--num-cpus=4"' in out
    assert "~ ray_capacity.head.resources.CPU: 0 => 4" in out
    assert "ray-platform:local:DockerRayCluster::ray" in out  # grouped by component


def test_diff_never_shows_a_secret_value(dev):
    changed = preview("dev", secret_overrides={"jupyter_token": "a-very-secret-token"})
    text = cli.diff(dev.to_json(), changed.to_json())
    assert "a-very-secret-token" not in text and "mock-" not in text
    assert "a-very-secret-token" not in json.dumps(changed.to_json())


def test_diff_shows_that_a_secret_changed_and_what_it_changes():
    """Both sides print "[secret]"; the fingerprints show the change, as `pulumi up` would update the container."""
    before = preview("dev", secret_overrides={"jupyter_token": "the-first-token-value"})
    after = preview("dev", secret_overrides={"jupyter_token": "a-very-secret-token"})
    text = cli.diff(before.to_json(), after.to_json())
    assert "the-first-token-value" not in text and "a-very-secret-token" not in text
    assert text.splitlines() == [
        "0 to create, 1 to change, 0 to remove", "",
        "ray-platform:local:Notebook::notebook",
        "  ~ docker:index/container:Container::notebook-jupyter",
        "      inputs.envs: [secret] changed (value hidden; `pulumi up` updates or replaces the resource)", "",
        "Outputs:",
        "  ~ credentials: [secret] changed (value hidden)"]
    same = preview("dev", secret_overrides={"jupyter_token": "a-very-secret-token"})
    assert cli.diff(after.to_json(), same.to_json()).splitlines()[0] == "0 to create, 0 to change, 0 to remove"


def test_values_only_a_deploy_knows_are_marked_computed(capsys):
    """The mocks make up digests, IPs and e-mails that look real: the JSON lists them, the table marks them."""
    from stacks.offline import preview as run

    gke = run("gke")
    computed = gke.to_json()["computed"]
    assert {"images.ray-base", "images.ray-server", "ray_cluster.ray_image"} <= set(computed["outputs"])
    assert "ray_version" not in computed["outputs"] and "compute_class" not in computed["outputs"]
    assert "ray_dashboard_url" not in computed["outputs"]  # 127.0.0.1 through the port-forward: known
    assert computed["inputs"]  # e.g. IAM members naming made-up service account e-mails
    assert cli.main(["gke"]) == 0
    out = capsys.readouterr().out
    assert "Outputs (values marked computed are made up offline; a real deploy knows them):" in out
    images = next(line for line in out.splitlines() if line.startswith("  images: "))
    assert images.endswith("  # computed: images.ray-base, images.ray-server")
    assert next(line for line in out.splitlines() if line.startswith("  ray_version: ")) == '  ray_version: "2.60.0"'


def test_graph_is_mermaid_with_components_as_subgraphs():
    result = run_cli("dev", "--graph")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "graph LR"
    assert any(line.strip().startswith("subgraph") and "DockerRayCluster" in line for line in lines)
    assert sum("-->" in line for line in lines) >= 10


def test_table_lists_resources_and_outputs():
    result = run_cli("dev")
    assert result.returncode == 0, result.stderr
    assert "ray-head" in result.stdout and "ray_dashboard_url: \"http://127.0.0.1:8265\"" in result.stdout


def test_bad_config_is_one_clear_error_without_traceback():
    result = run_cli("dev", "--set", "workers=[{\"name\": \"g\", \"replicas\": -1}]", "--set", "typo=1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: invalid stack configuration (2 problems):",
        "  ray-platform:workers[0].replicas: -1 is out of range (allowed: >= 1)",
        "  ray-platform:typo: unknown key (allowed: environment, hosts, bind_address, head, "
        "workers, ports, images, monitoring, jupyter, checkpoint_bucket, minio_root_user, minio_root_password, "
        "grafana_admin_password, jupyter_token, ray_auth, ray_auth_token)",
    ]


def test_unknown_stack_names_the_known_ones():
    result = run_cli("nope")
    assert result.returncode == 2 and "Pulumi.nope.yaml does not exist (allowed: dev" in result.stderr


@pytest.mark.parametrize("token,inputs,expected", [
    ("docker:index/container:Container", {"image": "x", "ports": [{"internal": 1, "externl": 2}]},
     ["ports[0].externl: unknown key (allowed: external, internal, ip, protocol)"]),
    ("docker:index/container:Container", {"image": "x", "healthcheck": {"test": ["CMD"]}},
     ["healthcheck.test: unknown key (allowed: interval, retries, startInterval, startPeriod, tests, timeout)"]),
    ("gcp:container/cluster:Cluster", {"privateClusterConfig": {"enablePrivateNodes": True, "masterCidr": "x"}},
     ["privateClusterConfig.masterCidr: unknown key (allowed: enablePrivateEndpoint, enablePrivateNodes, "
      "masterGlobalAccessConfig, masterIpv4CidrBlock, peeringName, privateEndpoint, privateEndpointSubnetwork, "
      "publicEndpoint)"]),
    ("docker:index/container:Container", {"image": "x", "logOpts": {"max-size": "1m"}, "envs": ["A=1"]}, []),
])
def test_nested_keys_are_checked_against_the_sdk(token, inputs, expected):
    assert check_inputs(token, inputs) == expected


def test_a_nested_typo_in_the_program_fails_the_preview(monkeypatch, capsys):
    from components.local import ray_cluster

    real = ray_cluster.docker.ContainerHealthcheckArgs

    def typo(**kwargs):
        args = real(**kwargs)
        return {"tests": kwargs["tests"], "intervl": kwargs["interval"]} if args else args

    monkeypatch.setattr(ray_cluster, "http_health", lambda url: typo(tests=["CMD", url], interval="1s"))
    assert cli.main(["dev"]) == 2
    assert "ray-head: healthcheck.intervl: unknown key" in capsys.readouterr().err


def test_secure_config_values_preview_with_a_placeholder(tmp_path):
    from stacks.offline import read_stack_config

    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n  ray-platform:grafana_admin_password:\n    secure: v1:abc\n  ray-platform:jupyter: false\n")
    values, secrets = read_stack_config("s", tmp_path)
    assert secrets == {"ray-platform:grafana_admin_password"}
    placeholder = values.pop("ray-platform:grafana_admin_password")
    assert values == {"ray-platform:jupyter": "false"}
    assert placeholder.startswith("offline-preview-placeholder-") and "abc" not in placeholder
    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n  ray-platform:grafana_admin_password:\n    secure: v1:xyz\n  ray-platform:jupyter: false\n")
    assert read_stack_config("s", tmp_path)[0]["ray-platform:grafana_admin_password"] != placeholder  # re-encrypted
    from stacks.config import load

    assert load({"ray-platform:grafana_admin_password": placeholder}, secrets).grafana_admin_password \
        .get_secret_value() == placeholder


@pytest.mark.parametrize("base,expected", [
    ("/nonexistent.json", "error: --diff /nonexistent.json: cannot read it (No such file or directory)"),
    ("README.md", "error: --diff README.md: not JSON"),
    ("tests/snapshots", "error: --diff tests/snapshots: cannot read it (Is a directory)"),
    ("pyproject.toml", "error: --diff pyproject.toml: not JSON"),
], ids=["missing", "markdown", "directory", "toml"])
def test_a_bad_diff_base_is_one_error_line(base, expected):
    result = run_cli("dev", "--diff", base)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr


def test_a_json_diff_base_that_is_not_a_preview_is_named(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert run_cli("dev", "--diff", str(tmp_path / "x.json")).stderr.startswith(
        f"error: --diff {tmp_path / 'x.json'}: not a preview (no `resources` list)")


def test_turning_ray_auth_off_is_a_warning_bin_deploy_shows():
    # bin/deploy runs `bin/preview STACK --for-deploy` and keeps its stderr: the warning reaches the person deploying.
    result = run_cli("dev", "--set", "ray_auth=disabled", "--for-deploy")
    assert result.returncode == 0, result.stderr
    assert ("warning: ray-platform:ray_auth: 'disabled': Ray runs without token authentication, so whoever reaches "
            "its dashboard or GCS runs code as the cluster") in result.stderr
    assert "ray_auth" not in run_cli("dev", "--for-deploy").stderr


def test_output_cut_short_by_head_is_not_a_traceback():
    """`./bin/preview dev --graph | head -3`, as a user pages through it (`true` reads nothing: the reader is gone
    before the preview writes, every time)."""
    result = subprocess.run(f"'{sys.executable}' -m stacks.preview dev --graph | true; echo ${{PIPESTATUS[0]}}",
                            shell=True, executable="/bin/bash", cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.stdout == "0\n"


def test_a_preview_runs_after_asyncio_run_in_the_same_process():
    """asyncio.run() leaves the main thread without an event loop; Pulumi's runtime needs one (CrossGuard and other
    in-process previews ran after such a test and failed)."""
    import asyncio

    asyncio.run(asyncio.sleep(0))
    assert preview("dev").environment == "local"
