"""Pulumi.STACK.yaml mistakes the Pulumi CLI would ignore or trip over are one error naming the line; documentation
placeholders are named with the key to edit (the preview warns, bin/deploy refuses: tests/test_bin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks import preview as cli
from stacks.errors import ConfigError
from stacks.offline import read_stack_config
from stacks.stack_file import placeholder_hint, placeholders

ROOT = Path(__file__).resolve().parent.parent
DEV = (ROOT / "Pulumi.dev.yaml").read_text()


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "Pulumi.s.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        read_stack_config("s", tmp_path)
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_misindented_key_names_its_line(tmp_path):
    text = DEV.replace("  ray-platform:bind_address", " ray-platform:bind_address")
    [problem] = problems(tmp_path, text)
    assert problem.startswith(f"Pulumi.s.yaml line {line_of(text, 'bind_address')}: not valid YAML (")
    assert "check this line's indentation" in problem


@pytest.mark.parametrize("text,expected", [
    (DEV.replace("config:", "configs:"),
     f"Pulumi.s.yaml line {line_of(DEV, 'config:')}: configs: unknown key (allowed: config, environment, "
     "secretsprovider, encryptedkey, encryptionsalt)"),
    (DEV.replace("ray-platform:head", "ray-platfrom:head"),
     f"Pulumi.s.yaml line {line_of(DEV, 'ray-platform:head')}: ray-platfrom:head: namespace 'ray-platfrom' is not "
     "'ray-platform' (allowed: ray-platform:KEY)"),
    ("", "Pulumi.s.yaml: empty (allowed: a `config:` mapping with at least ray-platform:environment)"),
    ("# only a comment\n", "Pulumi.s.yaml: empty (allowed: a `config:` mapping with at least ray-platform:environment)"),
    ("config:\n  gcp:project: p\n",
     "Pulumi.s.yaml: sets no ray-platform: key (allowed: a `config:` mapping with at least ray-platform:environment)"),
    ("config: local\n", "Pulumi.s.yaml line 1: config: not a mapping (allowed: `ray-platform:KEY: value` lines "
                        "indented under it)"),
    (DEV + "  ray-platform:environment: gke\n",
     f"Pulumi.s.yaml line {len(DEV.splitlines()) + 1}: ray-platform:environment: given twice (first on line "
     f"{line_of(DEV, 'ray-platform:environment')}) (allowed: each key once)"),
    ("config:\n  ray-platform:head:\n    cpus: 2\n    cpus: 4\n",
     "Pulumi.s.yaml line 4: cpus: given twice (first on line 3) (allowed: each key once)"),
], ids=["unknown-top-level-key", "misspelled-namespace", "empty", "comment-only", "nothing-of-ours", "config-scalar",
        "duplicate-key", "duplicate-nested-key"])
def test_what_the_cli_would_ignore_is_an_error_naming_the_line(tmp_path, text, expected):
    assert problems(tmp_path, text) == [expected]


def test_other_providers_namespaces_stay_allowed(tmp_path):
    (tmp_path / "Pulumi.s.yaml").write_text(DEV.replace("config:", "config:\n  gcp:project: p\n  docker:host: x"))
    values, _ = read_stack_config("s", tmp_path)
    assert values["gcp:project"] == "p"


def test_the_preview_reports_a_bad_stack_file_as_one_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.s.yaml").write_text(DEV.replace("config:", "configs:"))
    real = cli.preview
    monkeypatch.setattr(cli, "preview", lambda stack, *a: real(stack, *a, project_dir=tmp_path))
    assert cli.main(["s"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid stack configuration (1 problem):\n"
                          f"  Pulumi.s.yaml line {line_of(DEV, 'config:')}: configs:")
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["my-gcp-project-id", "my-ray-project-autotuner-results", "MYORG", "MYORG.CONSUMER",
                                   "203.0.113.0/24", "203.0.113.7/32", "198.51.100.4", "192.0.2.0/25", "2001:db8::/48"])
def test_documentation_placeholders_are_recognised(value):
    assert placeholder_hint(value)


@pytest.mark.parametrize("value", ["acme-prod-123", "RAY_PROVIDER_ROLE", "RAY_CONSUMER", "10.0.0.0/8",
                                   "35.235.240.0/20", "203.0.114.0/24", "unix:///var/run/docker.sock"])
def test_real_values_are_not_placeholders(value):
    assert placeholder_hint(value) is None


def test_every_shipped_cloud_stack_names_its_placeholders():
    """Each cloud stack file ships with stand-ins a user must replace; dev (this machine's Docker) has none."""
    found = {p.name.split(".")[1]: {x.key for x in placeholders(p)} for p in ROOT.glob("Pulumi.*.yaml")}
    assert found["dev"] == set()
    assert found["gke"] == {"ray-platform:project", "ray-platform:authorized_networks[0].cidr"}
    assert found["gcpvm"] == {"ray-platform:project", "ray-platform:results_bucket"}
    assert {"ray-platform:organization_name", "ray-platform:account_name"} <= found["spcs"]
    assert {"ray-platform:organization_name", "ray-platform:account_name", "ray-platform:listing.accounts[0]"} \
        <= found["spcs-app"]
    assert {"ray-platform:organization_name", "ray-platform:account_name", "ray-platform:install.name"} \
        <= found["spcs-consumer"]


def test_the_preview_warns_about_placeholders_and_for_deploy_refuses(capsys):
    assert cli.main(["gke"]) == 0
    err = capsys.readouterr().err
    assert "warning: Pulumi.gke.yaml line 7: ray-platform:project: 'my-gcp-project-id' is a documentation " \
           "placeholder (allowed: your GCP project id)" in err
    assert cli.main(["gke", "--for-deploy", "--set", "project=acme-prod"]) == 2
    err = capsys.readouterr().err
    assert "ray-platform:project" not in err  # overridden with --set
    assert "ray-platform:authorized_networks[0].cidr: '203.0.113.7/32'" in err


@pytest.mark.parametrize("value,hint", [
    ("my-ray-project-autotuner-results", "a globally unique bucket name of yours"),
    ("my-ray-project", "your GCP project id"),
    ("MYORG.CONSUMER", "the consumer accounts, as ORGANIZATION.ACCOUNT"),
    ("MYORG", "your Snowflake organization name"),
])
def test_each_placeholder_says_what_goes_there(value, hint):
    assert placeholder_hint(value) == hint
