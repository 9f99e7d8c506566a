"""Deploy the `dev` stack into a private Docker Engine by running the real program under DockerEngineMocks.

The stack's own Pulumi.dev.yaml is used, with two overrides a test needs: the Docker host URL (the test
engine's socket) and the published host ports (free ones, so a developer's own services never clash).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.offline import Recording, preview, read_stack_config
from tests.local_real.docker_mocks import DockerEngineMocks
from tests.local_real.engine import Engine
from tests.local_real.standins import SKIPPED_IMAGES
from tests.ray_nodes import free_ports

STACK = "dev"
PUBLISHED = ("dashboard", "client", "prometheus", "grafana", "minio", "minio_console", "jupyter")


@dataclass
class Deployment:
    engine: Engine
    mocks: DockerEngineMocks
    recording: Recording
    ports: dict[str, int]
    created_at: float  # when the last resource was created (monotonic)
    outputs_file: Path | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, Any]:
        return self.recording.outputs

    def container_names(self, label_value: str | None = None) -> list[str]:
        """Names of the containers the program created (optionally only Ray nodes: "head" / "worker")."""
        return [
            r.revealed["name"] for r in self.recording.by_type("docker:index/container:Container")
            if not any(s.name == r.name for s in self.mocks.skipped)
            and (label_value is None or {"label": "ray-platform.node", "value": label_value} in r.revealed.get("labels", []))
        ]

    def retained(self) -> set[str]:
        return {r.ref for r in self.recording.resources if r.retain_on_delete}

    def destroy(self) -> list[str]:
        return self.mocks.destroy(self.retained())


def overrides(engine: Engine, ports: dict[str, int]) -> dict[str, str]:
    """The stack's hosts pointed at the test engine, and its published ports moved to free ones."""
    config, _ = read_stack_config(STACK)
    hosts = json.loads(config.get("ray-platform:hosts", '[{"name": "local"}]'))
    if len(hosts) != 1:
        raise AssertionError(f"the real-engine test runs single-host stacks; {STACK} has {len(hosts)} hosts")
    hosts[0]["url"] = engine.host
    return {"hosts": json.dumps(hosts), "ports": json.dumps(ports)}


def deploy(engine: Engine, work: Path, log=print, extra: dict[str, str] | None = None) -> Deployment:
    """`pulumi up` of the dev stack into `engine`; writes the stack outputs (secrets in the clear, as
    `pulumi stack output --json --show-secrets` prints them) to work/outputs.json."""
    ports = dict(zip(PUBLISHED, free_ports(len(PUBLISHED)), strict=True))
    mocks = DockerEngineMocks(engine, skip_images=SKIPPED_IMAGES, log=log)
    try:
        recording = preview(STACK, overrides={**overrides(engine, ports), **(extra or {})}, mocks=mocks)
    except Exception as exc:
        detail = "; ".join(mocks.errors) or str(exc)
        raise AssertionError(f"deploying {STACK} into the test engine failed: {detail}") from exc
    if mocks.errors:
        raise AssertionError("deploying failed: " + "; ".join(mocks.errors))
    deployment = Deployment(engine, mocks, recording, ports, created_at=time.monotonic(),
                            skipped=[f"{s.name}: {s.reason}" for s in mocks.skipped])
    deployment.outputs_file = work / "outputs.json"
    deployment.outputs_file.write_text(json.dumps(recording.outputs, indent=2))
    return deployment
