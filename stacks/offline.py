"""Run the real program under Pulumi mocks and record what it registers: the offline preview's engine.

`run_stack(...)` returns every resource (type, name, parent, provider, dependencies, protect,
retain_on_delete, inputs as the engine receives them, secrets masked) and the resolved stack outputs.
The mocks answer with realistic computed outputs (ids, digests, endpoints) so outputs resolve to
real-looking values. Tests and `python -m stacks.preview` both use this; no CLI, Docker or cloud needed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import pickle
import pickletools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from stacks.config import NAMESPACE
from stacks.mock_outputs import computed, digest
from stacks.stack_file import load_document

SECRET = "[secret]"
SECRET_PLACEHOLDER = "offline-preview-placeholder"  # stands in for a `secure:` config value
PROJECT_DIR = Path(__file__).resolve().parent.parent


class RealisticMocks(pulumi_mocks.Mocks):
    def __init__(self) -> None:
        # Every value the mocks made up (ids, digests, endpoints, IPs) and not echoed from the inputs: what only
        # a real deploy knows. The preview marks every string that carries one (see Recording.computed_paths).
        self.made_up: set[str] = set()

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        answer = computed(args.typ, args.name, args.inputs)
        resource_id = f"{args.name}-{digest(args.typ, args.name, length=12)}"
        echoed = {v for v in flatten(args.inputs).values() if isinstance(v, str)} | {args.name}
        self.made_up |= {v for v in [resource_id, *flatten(answer).values()]
                         if isinstance(v, str) and len(v) >= 6 and v not in echoed}
        return resource_id, {**args.inputs, **answer}

    def call(self, args: pulumi_mocks.MockCallArgs):
        return {}, None


@dataclass
class Resource:
    type: str
    name: str
    parent: str | None
    provider: str | None
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    inputs: dict[str, Any]  # secrets masked, as previews and policies see them
    custom: bool
    revealed: dict[str, Any] = field(default_factory=dict, repr=False)  # secrets in the clear, for wiring tests

    @property
    def ref(self) -> str:
        return f"{self.type}::{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "parent": self.parent, "provider": self.provider,
                "dependencies": self.dependencies, "protect": self.protect,
                "retain_on_delete": self.retain_on_delete, "inputs": _sorted(self.inputs)}

    def secret_fingerprints(self) -> dict[str, str]:
        """`inputs.PATH: fingerprint` of each secret input, so a diff shows that a secret changed, not its value."""
        return secret_fingerprints(self.inputs, self.revealed, "inputs")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves by path: `{"a": {"b": [1]}}` -> `{"a.b[0]": 1}` (the paths the preview's diff and marks print)."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items()
                for k, v in flatten(item, f"{prefix}.{key}" if prefix else str(key)).items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def fingerprint(value: Any) -> str:
    """A short keyed hash of a secret: equal for equal values, so a diff can say "changed" without the value. (Like
    a Helm checksum annotation it could confirm a guess at a weak secret; the JSON stays where the secret is.)"""
    data = _portable(json.dumps(value, sort_keys=True).encode())
    return hmac.new(b"ray-platform offline preview", data, hashlib.sha256).hexdigest()[:12]


def _portable(data: bytes) -> bytes:
    """A dynamic provider's `__provider` is its pickled code, which names the files it came from: fingerprint its
    opcodes with the checkout's path as `<project>` (string lengths and frame sizes dropped with it), so the
    snapshot does not depend on where the repository is."""
    try:
        text = json.loads(data)
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) and len(text) > 64 else b""
        ops = list(pickletools.genops(raw)) if str(PROJECT_DIR).encode() in raw else []
    except (ValueError, binascii.Error, pickle.UnpicklingError):
        return data
    if not ops:
        return data
    return "\n".join(f"{op.name} {arg}".replace(str(PROJECT_DIR), "<project>")
                     for op, arg, _ in ops if op.name != "FRAME").encode()


def secret_fingerprints(masked: Any, revealed: Any, prefix: str) -> dict[str, str]:
    if masked == SECRET and revealed != SECRET:
        return {prefix: fingerprint(revealed)}
    if isinstance(masked, dict) and isinstance(revealed, dict):
        # A dynamic resource's pickled provider embeds the checkout's file paths: its fingerprint would differ per
        # clone (and it is code, not a secret the user set).
        return {k: v for key in masked if key != "__provider" for k, v in
                secret_fingerprints(masked[key], revealed.get(key), f"{prefix}.{key}").items()}
    if isinstance(masked, list) and isinstance(revealed, list):
        return {k: v for i, (a, b) in enumerate(zip(masked, revealed, strict=False))
                for k, v in secret_fingerprints(a, b, f"{prefix}[{i}]").items()}
    return {}


def _sorted(value: Any) -> Any:
    """Keys in a stable order and the checkout's path as `<project>`, so snapshots and pull-request diffs
    change only when the stack does (not with registration order or where the repository was cloned)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    if isinstance(value, str):
        return value.replace(str(PROJECT_DIR), "<project>")
    return value


def _urn_ref(urn: str) -> str | None:
    """`type::name` from a URN (a provider reference `urn::id` included)."""
    if not urn:
        return None
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{parts[3]}"


def _provider_name(ref: str) -> str | None:
    if not ref:
        return None
    name = ref.split("::")[3]
    return "default" if name.startswith("default") else name


def mask(value: Any, reveal: bool = False) -> Any:
    """Plain Python from deserialized RPC values: secrets become "[secret]" (or their value, for tests
    that check wiring), and whole numbers come back as ints."""
    if rpc.is_rpc_secret(value):
        return mask(rpc.unwrap_rpc_secret(value), reveal) if reveal else SECRET
    if isinstance(value, dict):
        return {k: mask(v, reveal) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, reveal) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping what the engine would see: parents, providers, dependencies."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            parent = _urn_ref(request.parent)
            properties = rpc.deserialize_properties(request.object)
            self.recorded.append(Resource(
                type=request.type,
                name=request.name,
                parent=None if parent and parent.startswith("pulumi:pulumi:Stack") else parent,
                provider=_provider_name(request.provider),
                dependencies=sorted({_urn_ref(d) for d in request.dependencies}),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                inputs=mask(properties),
                custom=bool(request.custom),
                revealed=mask(properties, reveal=True),
            ))
        return response


@dataclass
class Recording:
    stack: str
    environment: str | None
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)  # `pulumi.log.warn` messages of the run
    made_up: set[str] = field(default_factory=set, repr=False)  # the mocks' computed values (RealisticMocks)
    config: dict[str, str] = field(default_factory=dict, repr=False)  # the config map the program ran with

    def by_type(self, token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == token]

    def get(self, token: str, name: str) -> Resource:
        matches = [r for r in self.resources if r.type == token and r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{token}::{name} (found {len(matches)})")
        return matches[0]

    def to_json(self) -> dict[str, Any]:
        """Resources and outputs as the engine sees them, plus `computed` (which values only a real deploy
        knows: the mocks made them up) and `secrets` (fingerprints of secret values, never the values)."""
        resources = sorted(self.resources, key=lambda r: (r.type, r.name))
        document = {"stack": self.stack, "environment": self.environment,
                    "resources": [r.to_json() for r in resources],
                    "outputs": {k: SECRET if k in self.secret_outputs else v for k, v in self.outputs.items()}}
        computed_inputs = {r.ref: paths for r in resources if (paths := self.computed_paths(r.inputs, "inputs"))}
        document["computed"] = {"outputs": self.computed_paths(document["outputs"]), "inputs": computed_inputs}
        secrets = {r.ref: found for r in resources if (found := r.secret_fingerprints())}
        outputs = {f"outputs.{k}": fingerprint(self.outputs[k]) for k in sorted(self.secret_outputs)}
        document["secrets"] = {**secrets, **({"(outputs)": outputs} if outputs else {})}
        return document

    def computed_paths(self, value: Any, prefix: str = "") -> list[str]:
        """Paths of the strings in value that carry a value the mocks made up (a digest, an IP, a URL)."""
        if not self.made_up:
            return []
        pattern = re.compile("|".join(re.escape(v) for v in sorted(self.made_up, key=len, reverse=True)))
        return sorted(path for path, leaf in flatten(value, prefix).items()
                      if isinstance(leaf, str) and leaf != SECRET and pattern.search(leaf))


# --------------------------------------------------------------------------------------- stack config


def read_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, str], set[str]]:
    """The config map the CLI would hand the program for `Pulumi.<stack>.yaml` (secure values masked); raises
    ConfigError for a file the CLI would misread (see stacks/stack_file.py)."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name.split(".")[1] for p in project_dir.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack {stack!r}: {path.name} does not exist (allowed: {', '.join(known)})")
    document = load_document(path)
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted with the stack's secrets provider: unreadable offline, so a placeholder stands in
            # (a plain string: "[secret]" would read as a JSON list to the config loader).
            # Its ciphertext's hash rides along, so that re-encrypting a new value shows as a changed secret.
            values[key] = f"{SECRET_PLACEHOLDER}-{hashlib.sha256(str(value['secure']).encode()).hexdigest()[:12]}"
            secrets.add(key)
        else:
            values[key] = config_string(value)
    return values, secrets


def config_string(value: Any) -> str:
    """Config values reach a Pulumi program as strings; structured ones as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def qualify(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


# --------------------------------------------------------------------------------------------- running


def run_stack(stack: str, config: dict[str, str], secret_keys: set[str] = frozenset(),
              mocks: pulumi_mocks.Mocks | None = None) -> Recording:
    """Run the program once under mocks with this config; raises pulumi.RunError for a bad config."""
    from stacks.program import main

    return run_program(main, stack, config, secret_keys, mocks)


def run_program(program: Callable[[], Any], stack: str = "test", config: dict[str, str] | None = None,
                secret_keys: set[str] = frozenset(), mocks: pulumi_mocks.Mocks | None = None) -> Recording:
    """Run any Pulumi program function under the recording mocks (components are tested this way); other
    mocks (e.g. ones that create the resources in a real Docker engine) may stand in for RealisticMocks."""
    settings.reset_options(project="ray-platform", stack=stack)
    try:
        asyncio.get_event_loop()
    except RuntimeError:  # an earlier asyncio.run() in this process left none; Pulumi's runtime needs one
        asyncio.set_event_loop(asyncio.new_event_loop())
    monitor = RecordingMonitor(mocks or RealisticMocks())
    logger, messages = _recording_logger()
    pulumi.runtime.set_mocks(monitor.mocks, project="ray-platform", stack=stack, preview=False, monitor=monitor,
                             logger=logger)
    pulumi.runtime.set_all_config(dict(config or {}), sorted(secret_keys))
    _sync_await(run_pulumi_func(program))

    outputs, secret_outputs = _sync_await(_resolve_outputs(settings.get_root_resource().outputs))
    environment = outputs.get("environment")
    return Recording(stack, environment, monitor.recorded, outputs, secret_outputs,
                     [m.getMessage() for m in messages if m.levelno >= logging.WARNING],
                     getattr(monitor.mocks, "made_up", set()), dict(config or {}))


def _recording_logger() -> tuple[logging.Logger, list[logging.LogRecord]]:
    """What the program logs (`pulumi.log.warn`), kept for the preview to print rather than lost to stderr."""
    messages: list[logging.LogRecord] = []
    logger = logging.Logger("ray-platform.offline")
    handler = logging.Handler()
    handler.emit = messages.append
    logger.addHandler(handler)
    return logger, messages


async def _resolve_outputs(exported: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values, secrets = {}, set()
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        values[key] = mask(await output.future())
        if await output.is_secret():
            secrets.add(key)
    return values, secrets


def stack_config(stack: str, overrides: dict[str, str] | None = None, secret_overrides: dict[str, str] | None = None,
                 project_dir: Path = PROJECT_DIR) -> tuple[dict[str, str], set[str]]:
    """The config map of Pulumi.<stack>.yaml with `--set` / `--set-secret` overrides, and its secret keys."""
    config, secrets = read_stack_config(stack, project_dir)
    for key, value in (overrides or {}).items():
        config[qualify(key)] = value
        secrets.discard(qualify(key))
    for key, value in (secret_overrides or {}).items():
        config[qualify(key)] = value
        secrets.add(qualify(key))
    return config, secrets


def preview(stack: str, overrides: dict[str, str] | None = None, secret_overrides: dict[str, str] | None = None,
            project_dir: Path = PROJECT_DIR, mocks: pulumi_mocks.Mocks | None = None) -> Recording:
    """The offline preview of a stack: its own Pulumi.<stack>.yaml plus `--set` overrides."""
    return run_stack(stack, *stack_config(stack, overrides, secret_overrides, project_dir), mocks=mocks)
