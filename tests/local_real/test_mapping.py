"""The real-engine mocks' field table against the stack as it is now, without an engine: every input of every
resource the dev stack registers is carried out by FIELDS, and anything else is refused by name."""

from __future__ import annotations

import pytest

from stacks.offline import Recording
from tests.local_real.docker_mocks import FIELDS, UnmappedField, spec_for


def test_every_input_the_dev_stack_uses_is_mapped(dev: Recording) -> None:
    custom = [r for r in dev.resources if r.custom]
    assert {r.type for r in custom} <= set(FIELDS), {r.type for r in custom} - set(FIELDS)
    for resource in custom:
        spec_for(resource.type, resource.revealed)  # raises UnmappedField for a field (or nested key) not mapped


def test_a_container_is_created_as_declared(dev: Recording) -> None:
    head = dev.get("docker:index/container:Container", "ray-head").revealed
    spec = spec_for("docker:index/container:Container", head)
    assert spec.body["Cmd"] == head["command"]
    assert spec.body["Healthcheck"]["Test"] == head["healthcheck"]["tests"]  # exec form kept, not a shell string
    assert {b["HostIp"] for bindings in spec.host["PortBindings"].values() for b in bindings} == {"127.0.0.1"}
    assert spec.host["ShmSize"] == head["shmSize"] * 1024 * 1024
    assert spec.host["RestartPolicy"] == {"Name": "unless-stopped"}


@pytest.mark.parametrize("typ, inputs, named", [
    ("docker:index/container:Container", {"name": "x", "privileged": True}, "privileged"),
    ("docker:index/container:Container", {"ports": [{"internal": 1, "external": 2, "ipv6": True}]}, "ports.ipv6"),
    ("docker:index/container:Container", {"volumes": [{"hostPath": "/", "containerPath": "/x"}]}, "volumes.hostPath"),
    ("docker:index/image:Image", {"skipPush": False}, "skipPush"),
    ("docker:index/service:Service", {}, "docker:index/service:Service"),
])
def test_an_unmapped_field_fails_by_name(typ: str, inputs: dict, named: str) -> None:
    with pytest.raises(UnmappedField, match=named.replace(".", r"\.")):
        spec_for(typ, inputs)
