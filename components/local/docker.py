"""Small shared pieces for containers: published ports, environment lists, health checks."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_docker as docker


def published(ports: Mapping[int, int], bind_address: str) -> list[docker.ContainerPortArgs]:
    """Publish container ports (internal -> host port) on one address only: loopback unless chosen otherwise."""
    return [docker.ContainerPortArgs(internal=i, external=e, ip=bind_address) for i, e in sorted(ports.items())]


def env_list(env: Mapping[str, pulumi.Input[str]]) -> list[pulumi.Input[str]]:
    """Docker's KEY=value list; a secret value keeps its entry secret."""
    return [pulumi.Output.concat(k, "=", v) if not isinstance(v, str) else f"{k}={v}" for k, v in sorted(env.items())]


def http_health(url: str, interval: str = "10s") -> docker.ContainerHealthcheckArgs:
    """A health check that needs only Python in the image (no curl/wget)."""
    probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=3)"
    return docker.ContainerHealthcheckArgs(
        tests=["CMD", "python", "-c", probe], interval=interval, timeout="5s", retries=3, start_period="30s"
    )
