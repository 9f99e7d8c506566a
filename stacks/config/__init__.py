"""Typed, validated stack configuration: one pydantic model per environment (a module each, beside this
one), every default in those models.

`load(raw, secret_keys)` takes the Pulumi config map (`{"ray-platform:workers": "[...]"}`) and returns the
model for the environment named by `ray-platform:environment` (default `local`), or raises `ConfigError`
listing every problem at once as `key: problem (allowed: ...)`. Nothing here touches the Pulumi runtime,
so the same check runs in `pulumi up`, in the offline preview and in tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import json
import re
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stacks.errors import ConfigError

NAMESPACE = "ray-platform"
DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
GIB = 1024**3


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored. Types are strict (`replicas: true` is
    not 1, `monitoring: yes` is not true, `"8"` is not 8) and an empty string is never a value."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _spelled_as_strings(cls, data: Any) -> Any:
        """The CLI may hand numbers and booleans over as strings ("4", "true"): read those as what they spell;
        anything else ("yes", "4x", "1" for a boolean) stays as written for strict validation to reject."""
        if not isinstance(data, dict):
            return data
        return {key: _scalar(cls, key, value) for key, value in data.items()}


class RayAuth(Strict):
    """Ray's token authentication (Ray >= 2.52: `RAY_AUTH_MODE=token`), on in every environment unless a stack
    turns it off: without it, whoever reaches the dashboard port runs code as the cluster (CVE-2023-48022)."""

    ray_auth: Literal["token", "disabled"] = "token"
    ray_auth_token: SecretStr | None = None  # generated (and kept in the stack's state) when unset

    @field_validator("ray_auth_token")
    @classmethod
    def _token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        if info.data.get("ray_auth") == "disabled":
            raise ValueError("is set while ray_auth is 'disabled' (allowed: unset it, or ray_auth: token)")
        # Ray's own tokens are 64 hex characters (`secrets.token_hex(32)`, ray/_private/authentication/
        # authentication_token_generator.py); the token travels in HTTP headers and environment variables.
        if not re.fullmatch(r"[\x21-\x7e]{32,}", value.get_secret_value()):
            raise ValueError("is not a usable token (allowed: at least 32 printable ASCII characters, no spaces; "
                             "e.g. `ray get-auth-token --generate`)")
        return value


def model_secret_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys of a model that must be set with `pulumi config set --secret`."""
    own = tuple(getattr(model, "SECRET_KEYS", ()))
    return own + (("ray_auth_token",) if issubclass(model, RayAuth) else ())


def ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (allowed: an IPv4 or IPv6 address, e.g. 127.0.0.1)") from None
    return value


def dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (allowed: lowercase letters, digits and '-', starting with a letter, "
            "at most 32 characters)"
        )
    return value


# An image reference, as Docker parses it: [registry[:port]/]path[:tag][@digest]. The grammar of
# github.com/distribution/reference (regexp.go); nothing else (no spaces, quotes, `;`, `$(...)`) reaches a
# `docker run` or startup script.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::[\w][\w.-]{{0,127}})?"
                             r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")
# A GPU as Docker's device requests and ROCR_VISIBLE_DEVICES name it: an index, or a GPU/MIG UUID.
GPU_ID = re.compile(r"^(?:[0-9]{1,3}|(?:GPU|MIG)-[0-9A-Za-z/-]{1,80})$")


def image_reference(value: str) -> str:
    if len(value) > 255 or not IMAGE_REFERENCE.match(value):
        raise ValueError(f"{value!r} is not an image reference (allowed: [registry[:port]/]name[:tag][@sha256:...], "
                         "lowercase path, e.g. rayproject/ray:2.60.0-py311-cpu)")
    return value


def gpu_id(value: str) -> str:
    if not GPU_ID.match(value):
        raise ValueError(f"{value!r} is not a GPU id (allowed: an index such as 0, or a UUID such as GPU-5fd4a2b1-...)")
    return value


ImageReference = Annotated[str, AfterValidator(image_reference)]
GpuId = Annotated[str, AfterValidator(gpu_id)]


def duplicates(key: str, names: list[str]) -> list[str]:
    seen = {n for n in names if names.count(n) > 1}
    return [f"{key}: name {n!r} is used more than once (allowed: unique names)" for n in sorted(seen)]


# Each environment's model lives in its own module beside this one, imported when selected.
MODELS: dict[str, str] = {
    "local": "stacks.config.local:LocalConfig",
    "gke": "stacks.config.gke:GkeConfig",
    "gcpvm": "stacks.config.gcpvm:GcpVmConfig",
    "spcs": "stacks.config.spcs:SpcsConfig",
    # The Native App's two sides; their Ray clusters run on SPCS (output `environment` is "spcs").
    "spcs_app": "stacks.config.spcs_app:SpcsAppConfig",
    "spcs_consumer": "stacks.config.spcs_consumer:SpcsConsumerConfig",
}


def model_for(environment: str) -> type[Strict] | None:
    """The environment's model, or None while its module is not part of this version."""
    module, _, name = MODELS[environment].partition(":")
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(importlib.import_module(module), name)


# ---------------------------------------------------------------------------------------------- loading


def parse_raw(config: dict[str, Any]) -> dict[str, Any]:
    """Our namespace's keys, without the namespace, with structured values decoded from JSON."""
    values: dict[str, Any] = {}
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if isinstance(value, str) and value[:1] and value[0] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError([f"{full_key}: not valid JSON ({exc.msg}) (allowed: a YAML/JSON value)"]) from exc
        values[key] = value
    return values


def load(config: dict[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> Strict:
    """Validate a whole Pulumi config map; raise ConfigError with every problem found."""
    values = parse_raw(config)
    environment = values.get("environment", "local")
    if environment not in MODELS:
        raise ConfigError(
            [f"{NAMESPACE}:environment: {environment!r} is not an environment (allowed: {', '.join(MODELS)})"]
        )
    model = model_for(environment)
    if model is None:
        available = [env for env in MODELS if model_for(env) is not None]
        raise ConfigError(
            [f"{NAMESPACE}:environment: {environment!r} is not available in this version "
             f"(allowed: {', '.join(available)})"]
        )
    problems = [
        f"{NAMESPACE}:{key}: must be set as a secret (allowed: `pulumi config set --secret {key} ...`)"
        for key in model_secret_keys(model)
        if key in values and f"{NAMESPACE}:{key}" not in secret_keys
    ]
    for key in [k for k, v in values.items() if v == ""]:
        problems.append(f"{NAMESPACE}:{key}: empty (allowed: a value; remove the key to get its default)")
        del values[key]
    try:
        cfg = model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(problems + [_describe(model, e) for e in exc.errors()]) from None
    problems += [f"{NAMESPACE}:{p}" for p in cfg.cross_checks()]
    if problems:
        raise ConfigError(problems)
    return cfg


def scalar_kinds(annotation: Any) -> set[Any]:
    """`int | None` -> {int, NoneType}; a generic such as `dict[str, int]` is itself, not its arguments."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation))
    return {annotation}


def warnings(cfg: Strict) -> list[str]:
    """What a valid config probably did not mean (a model may define `warnings()`), as `key: problem` lines."""
    found = list(cfg.warnings() if hasattr(cfg, "warnings") else [])
    if isinstance(cfg, RayAuth) and cfg.ray_auth == "disabled":
        found.append("ray_auth: 'disabled': Ray runs without token authentication, so whoever reaches its dashboard "
                     "or GCS runs code as the cluster; the policy pack's ray-token-auth rule fails this stack "
                     "(allowed: token, the default)")
    return [f"{NAMESPACE}:{w}" for w in found]


def _scalar(model: type[BaseModel], key: str, value: Any) -> Any:
    field = model.model_fields.get(key)
    if not isinstance(value, str) or field is None:
        return value
    kinds = scalar_kinds(field.annotation)
    if kinds & {str, SecretStr}:
        return value
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return value
    if isinstance(decoded, bool):
        return decoded if bool in kinds else value
    if isinstance(decoded, int):
        return decoded if kinds & {int, float} else value
    return decoded if isinstance(decoded, float) and float in kinds else value


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return f"{NAMESPACE}:{out}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of loc (for listing the keys it allows)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) else None
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _describe(model: type[BaseModel], error: dict[str, Any]) -> str:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    key = _key(loc)
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        # The environment's own keys first, then the ones every environment shares (Ray's auth).
        shared = [k for k in RayAuth.model_fields if owner and issubclass(owner, RayAuth)]
        allowed = ", ".join([k for k in owner.model_fields if k not in shared] + shared) if owner else "see README"
        return f"{key}: unknown key (allowed: {allowed})"
    if kind == "literal_error":
        return f"{key}: {value!r} is not allowed (allowed: {error['ctx']['expected']})"
    if kind == "missing":
        return f"{key}: required but missing"
    bounds = {"greater_than_equal": ">= {ge}", "less_than_equal": "<= {le}", "greater_than": "> {gt}",
              "less_than": "< {lt}", "too_short": "at least {min_length} items",
              "too_long": "at most {max_length} items", "string_too_short": "at least {min_length} characters",
              "string_too_long": "at most {max_length} characters"}
    if kind == "string_too_short" and error["ctx"]["min_length"] == 1:
        return f"{key}: empty (allowed: a value; remove the key to get its default)"
    if kind in bounds:
        return f"{key}: {value!r} is out of range (allowed: {bounds[kind].format(**error['ctx'])})"
    types = {"int_parsing": "an integer", "int_from_float": "an integer", "int_type": "an integer",
             "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
             "bool_type": "true or false", "string_type": "a string", "list_type": "a list",
             "dict_type": "a mapping", "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys"}
    if kind in types:
        return f"{key}: {value!r} has the wrong type (allowed: {types[kind]})"
    message = error["msg"].removeprefix("Value error, ")
    if "(allowed:" in message:
        return f"{key}: {message}"
    return f"{key}: {message} (got {value!r})"


__all__ = ["ConfigError", "RayAuth", "Strict", "load", "NAMESPACE"]
