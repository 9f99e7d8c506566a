"""The Pulumi program: validate the stack's config, build its environment, export the output contract."""

from __future__ import annotations

import importlib
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from stacks import config
from stacks.contract import missing_keys
from stacks.errors import ConfigError


def pulumi_config() -> tuple[dict[str, Any], set[str]]:
    """Every config value the engine (or the mocks) handed this program, and which keys are secret."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secrets = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return values, secrets


def main() -> None:
    try:
        cfg = config.load(*pulumi_config())
    except ConfigError as exc:
        # RunError: the CLI prints the message alone, no traceback, and exits non-zero.
        raise pulumi.RunError(exc.report()) from None
    for warning in config.warnings(cfg):
        pulumi.log.warn(warning)
    outputs = importlib.import_module(f"stacks.{cfg.environment}").build(cfg)
    missing = missing_keys(outputs)
    if missing:
        raise pulumi.RunError(f"stack {cfg.environment!r} does not export {missing} (the output contract)")
    for key, value in outputs.items():
        pulumi.export(key, value)
