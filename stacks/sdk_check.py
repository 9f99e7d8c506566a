"""Check recorded inputs against the provider SDKs' typed `...Args` classes, nested keys included.

Mocks accept any dict inside a resource's arguments, so a typo such as `{"hostPth": ...}` in a nested
input would only fail at `pulumi up`. This walks every input the engine would receive and names each key
the provider's schema does not know.
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import importlib.util
import json
import re
import typing
from pathlib import Path
from typing import Any

from pulumi import _types

PACKAGES = ("pulumi_docker", "pulumi_random", "pulumi_tls", "pulumi_gcp", "pulumi_kubernetes", "pulumi_snowflake")


@functools.cache
def _class_names() -> dict[str, tuple[str, str]]:
    """type token -> (python module, class name), read from each SDK's own registration table."""
    table: dict[str, tuple[str, str]] = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        text = Path(spec.origin).read_text()
        match = re.search(r'resource_modules="""(.*?)"""', text, re.S)
        for module in json.loads(match.group(1)) if match else []:
            for token, cls in module["classes"].items():
                table[token] = (module["fqn"], cls)
    return table


def args_class(token: str) -> type | None:
    """The `...Args` input type for a resource type token, or None when the SDK has none (components, CRDs)."""
    if token.startswith("pulumi:providers:"):
        package = token.split(":")[2]
        module, cls_name = f"pulumi_{package.replace('-', '_')}", "Provider"
    elif token in _class_names():
        module, cls_name = _class_names()[token]
    else:
        return None
    cls = getattr(importlib.import_module(module), cls_name)
    return getattr(importlib.import_module(cls.__module__), f"{cls_name}Args", None)


def _candidates(typ: Any) -> list[Any]:
    """The shapes a typed input may take, with Input/Optional/Awaitable/Output wrappers removed."""
    origin = typing.get_origin(typ)
    if origin is typing.Union:
        return [c for arg in typing.get_args(typ) for c in _candidates(arg)]
    if origin is collections.abc.Awaitable or typ is type(None) or getattr(typ, "__name__", "") == "Output":
        return []
    return [typ]


def check_inputs(token: str, inputs: dict[str, Any]) -> list[str]:
    """Unknown keys in a resource's inputs, as `path: unknown key (allowed: ...)`."""
    cls = args_class(token)
    if cls is None:
        return []
    problems: list[str] = []
    _check(inputs, cls, "", problems)
    return problems


def _check(value: Any, typ: Any, path: str, problems: list[str]) -> None:
    for candidate in _candidates(typ):
        origin = typing.get_origin(candidate)
        if isinstance(candidate, type) and _types.is_input_type(candidate) and isinstance(value, dict):
            fields = _types.input_type_types(candidate)
            for key, item in value.items():
                if key in fields:
                    _check(item, fields[key], f"{path}.{key}" if path else key, problems)
                else:
                    problems.append(f"{path + '.' if path else ''}{key}: unknown key "
                                    f"(allowed: {', '.join(sorted(fields))})")
            return
        if origin in (collections.abc.Sequence, list) and isinstance(value, list):
            (item_type,) = typing.get_args(candidate) or (Any,)
            for i, item in enumerate(value):
                _check(item, item_type, f"{path}[{i}]", problems)
            return
        if origin in (collections.abc.Mapping, dict) and isinstance(value, dict):
            args = typing.get_args(candidate)
            for key, item in value.items():
                _check(item, args[1] if len(args) == 2 else Any, f"{path}.{key}", problems)
            return
