"""Secrets a stack either takes from its config (set with `--secret`) or generates once and keeps in its state.

Every value returned is an explicit Pulumi secret: the engine would mark a RandomPassword's `result` secret on its
own, but nothing else (the offline preview, a policy pack reading inputs) would.
"""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pydantic import SecretStr

from stacks.config import RayAuth


def configured_or_generated(name: str, configured: SecretStr | None, length: int = 24,
                            opts: pulumi.ResourceOptions | None = None) -> pulumi.Output[str]:
    """The configured secret, or one generated once and kept in state (never a fixed default)."""
    if configured is not None:
        return pulumi.Output.secret(configured.get_secret_value())
    return pulumi.Output.secret(random.RandomPassword(name, length=length, special=False, opts=opts).result)


def ray_auth_token(cfg: RayAuth, opts: pulumi.ResourceOptions | None = None) -> pulumi.Output[str] | None:
    """The stack's one Ray token (64 characters, as long as Ray's own), or None where `ray_auth: disabled`."""
    if cfg.ray_auth == "disabled":
        return None
    return configured_or_generated("ray-auth-token", cfg.ray_auth_token, length=64, opts=opts)
