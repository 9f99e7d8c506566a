"""Where a cluster's endpoints come from: `pulumi stack output`, an outputs JSON file, or RAY_ADDRESS.

Whatever the source, the result is a dict in the shape of `stacks.contract.OUTPUT_KEYS`, checked well
enough that the rest of the client can trust it; every problem is a one-line `JobsError`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jobs import PROJECT_ROOT, JobsError
from stacks.contract import ACCESS_MODES, OUTPUT_KEYS, missing_keys

PULUMI_TIMEOUT_S = 120
STATE_DIR = PROJECT_ROOT / ".pulumi-state"  # where bin/deploy keeps state and its passphrase file


@dataclass(frozen=True)
class Target:
    """How the user named the cluster; also used to print follow-up commands that reach it again."""

    stack: str | None = None
    outputs_file: str | None = None

    def flags(self) -> list[str]:
        if self.stack:
            return ["--stack", self.stack]
        if self.outputs_file:
            return ["--outputs", self.outputs_file]
        return []


def load(target: Target, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The stack outputs for `target`, validated."""
    environ = os.environ if environ is None else environ
    if target.stack and target.outputs_file:
        raise JobsError("give either --stack or --outputs, not both")
    if target.stack:
        return validate(from_pulumi(target.stack, environ), f"stack '{target.stack}'")
    if target.outputs_file:
        return validate(from_file(target.outputs_file), target.outputs_file)
    address = environ.get("RAY_ADDRESS") or environ.get("RAY_API_SERVER_ADDRESS")
    if address:
        return validate(from_ray_address(address), "RAY_ADDRESS")
    raise JobsError("no cluster named: pass --stack STACK or --outputs FILE, or set RAY_ADDRESS")


def pulumi_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for `pulumi`: bin/deploy's backend and passphrase file unless the user chose their own."""
    env = dict(environ)
    if env.get("PULUMI_BACKEND_URL"):
        return env
    if not STATE_DIR.is_dir():
        raise JobsError(
            f"no Pulumi state in {STATE_DIR} (deploy first: ./bin/deploy STACK), or set PULUMI_BACKEND_URL to "
            "the backend you deployed with"
        )
    env["PULUMI_BACKEND_URL"] = f"file://{STATE_DIR}"
    passphrase = STATE_DIR / "passphrase"
    if not env.get("PULUMI_CONFIG_PASSPHRASE") and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE") and passphrase.exists():
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase)
    return env


def from_pulumi(stack: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets --stack STACK`, run in the Pulumi project."""
    environ = os.environ if environ is None else environ
    installed = PROJECT_ROOT / ".tools" / "pulumi" / "bin" / "pulumi"  # where bin/deploy installs it
    pulumi = shutil.which("pulumi", path=environ.get("PATH")) or (str(installed) if os.access(installed, os.X_OK) else None)
    if pulumi is None:
        raise JobsError(
            "the Pulumi CLI is not on PATH nor in .tools/pulumi (./bin/deploy installs it there; or: "
            "https://www.pulumi.com/docs/install/), or pass --outputs FILE with the stack's outputs JSON"
        )
    env = pulumi_env(environ)
    cwd = PROJECT_ROOT if (PROJECT_ROOT / "Pulumi.yaml").exists() else None
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--non-interactive", "--stack", stack]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=PULUMI_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise JobsError(f"`pulumi stack output` for stack '{stack}' did not answer in {PULUMI_TIMEOUT_S} s") from exc
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise JobsError(f"cannot read outputs of stack '{stack}': {reason.removeprefix('error: ')}")
    return _parse_json(result.stdout, f"`pulumi stack output` for stack '{stack}'")


def from_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise JobsError(f"cannot read outputs file {path}: {exc.strerror}") from exc
    return _parse_json(text, path)


def from_ray_address(address: str) -> dict[str, Any]:
    """Minimal outputs for a cluster known only by its dashboard address (no capacity known)."""
    if "://" not in address:
        address = f"http://{address}"
    outputs: dict[str, Any] = dict.fromkeys(OUTPUT_KEYS)
    outputs.update(ray_dashboard_url=address, access={"mode": "direct"}, ray_capacity={})
    return outputs


def _parse_json(text: str, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobsError(f"{source} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(outputs, dict):
        raise JobsError(f"{source} is not a JSON object of stack outputs")
    return outputs


def validate(outputs: dict[str, Any], source: str) -> dict[str, Any]:
    """Check the keys and values the client relies on; return the outputs unchanged."""
    missing = missing_keys(outputs)
    if missing:
        raise JobsError(
            f"{source} lacks the stack outputs {', '.join(missing)} (is it a ray-platform stack, deployed?)"
        )
    check_http_url(outputs["ray_dashboard_url"], "ray_dashboard_url", source)
    access = outputs["access"] or {"mode": "direct"}
    if not isinstance(access, dict) or access.get("mode") not in ACCESS_MODES:
        raise JobsError(f"{source}: access.mode must be one of {', '.join(ACCESS_MODES)}, got {access!r}")
    if access["mode"] == "port-forward":
        command = access.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(part, str) for part in command):
            raise JobsError(f"{source}: port-forward access needs 'command', a non-empty list of strings")
        check_http_url(access.get("local_dashboard_url"), "access.local_dashboard_url", source)
    token = outputs["ray_auth_token"]
    if token is not None and not (isinstance(token, str) and token.strip()):
        raise JobsError(f"{source}: ray_auth_token must be the token (a string) or null, got a {type(token).__name__}")
    capacity = outputs["ray_capacity"]
    if capacity is not None and not (
        isinstance(capacity, dict) and all(isinstance(kind, dict) for kind in capacity.values())
    ):
        raise JobsError(f"{source}: ray_capacity must map node types to {{resources, min_nodes, max_nodes}}")
    return outputs


def check_http_url(url: Any, key: str, source: str) -> None:
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise JobsError(f"{source}: {key} must be an http(s) URL with a host, got {url!r}")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise JobsError(f"{source}: {key} has a bad port: {url!r}") from exc
