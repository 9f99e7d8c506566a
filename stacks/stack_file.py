"""`Pulumi.STACK.yaml` as the user wrote it, checked line by line before the program runs.

The Pulumi CLI ignores what it does not know (a top-level `configs:`, a key under `ray-platfrom:`) and an
empty file deploys every default; here each is an error naming its line. Documentation placeholders left in
(`my-gcp-project-id`, `MYORG`, a documentation CIDR) are named too: the preview warns, `bin/deploy` refuses.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from stacks.errors import ConfigError

NAMESPACE = "ray-platform"
# The keys of a stack settings file: https://www.pulumi.com/docs/iac/concepts/projects/stack-settings-file/
TOP_LEVEL = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")

# Values the shipped Pulumi.*.yaml files use as stand-ins, and what a user puts there instead.
PLACEHOLDERS = {
    "my-gcp-project-id": "your GCP project id",
    "my-ray-project": "your GCP project id",
    "my-ray-project-autotuner-results": "a globally unique bucket name of yours",
    "MYORG": "your Snowflake organization name",
    "MYACCOUNT": "your Snowflake account name",
    "MYORG.CONSUMER": "the consumer accounts, as ORGANIZATION.ACCOUNT",
    "PROVIDER": "your Snowflake (provider) account name",
    "CONSUMER": "your Snowflake (consumer) account name",
    "GZ1Z2RAYSPCS": "the listing's global name, as the provider shared it",
}
# Longest first, so that `my-ray-project-autotuner-results` is named as the bucket it is, not as the project.
_PLACEHOLDER = re.compile(r"\b(" + "|".join(re.escape(p) for p in sorted(PLACEHOLDERS, key=len, reverse=True)) + r")\b")
# Address blocks reserved for documentation, never a real network: RFC 5737 (IPv4) and RFC 3849 (IPv6).
DOCUMENTATION_NETWORKS = [ipaddress.ip_network(n) for n in
                          ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


@dataclass(frozen=True)
class Placeholder:
    key: str  # ray-platform:project, ray-platform:authorized_networks[0].cidr
    line: int
    value: str
    hint: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.key}: {self.value!r} is a documentation placeholder (allowed: {self.hint})"


def load_document(path: Path) -> dict:
    """The parsed file; raises ConfigError naming the line of a YAML error, an unknown top-level key, a
    misspelled namespace, or a file that sets nothing of ours."""
    text = path.read_text()
    try:
        root = yaml.compose(text)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path.name}{where}: not valid YAML ({problem}; check this line's indentation against "
                           f"the lines above) (allowed: `config:` with each key indented the same under it, e.g. "
                           f"`  {NAMESPACE}:environment: local`)"]) from None
    if not isinstance(document, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError([f"{path.name}: {'empty' if document is None else 'not a mapping'} (allowed: a `config:` "
                           f"mapping with at least {NAMESPACE}:environment)"])
    problems = []
    for key_node, value_node in root.value:
        if key_node.value not in TOP_LEVEL:
            problems.append(f"{path.name} line {key_node.start_mark.line + 1}: {key_node.value}: unknown key "
                            f"(allowed: {', '.join(TOP_LEVEL)})")
        elif key_node.value == "config" and not isinstance(value_node, yaml.MappingNode):
            problems.append(f"{path.name} line {key_node.start_mark.line + 1}: config: not a mapping "
                            f"(allowed: `{NAMESPACE}:KEY: value` lines indented under it)")
    problems += _duplicates(path.name, root)
    config_node = _config_node(root)
    for key_node, _ in config_node.value if config_node else ():
        namespace = str(key_node.value).partition(":")[0]
        if namespace != NAMESPACE and difflib.SequenceMatcher(None, namespace, NAMESPACE).ratio() >= 0.75:
            problems.append(f"{path.name} line {key_node.start_mark.line + 1}: {key_node.value}: namespace "
                            f"{namespace!r} is not {NAMESPACE!r} (allowed: {NAMESPACE}:KEY)")
    keys = [str(k.value) for k, _ in (config_node.value if config_node else ())]
    if not problems and not any(key.startswith(f"{NAMESPACE}:") for key in keys):
        problems.append(f"{path.name}: sets no {NAMESPACE}: key (allowed: a `config:` mapping with at least "
                        f"{NAMESPACE}:environment)")
    if problems:
        raise ConfigError(problems)
    return document


def _duplicates(name: str, node: yaml.Node) -> list[str]:
    """A key given twice in one mapping: YAML loaders keep the last one silently."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                found.append(f"{name} line {line}: {key_node.value}: given twice (first on line {seen[key_node.value]}) "
                             "(allowed: each key once)")
            seen.setdefault(key_node.value, line)
            found += _duplicates(name, value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicates(name, item)
    return found


def _config_node(root: yaml.MappingNode) -> yaml.MappingNode | None:
    for key_node, value_node in root.value:
        if key_node.value == "config" and isinstance(value_node, yaml.MappingNode):
            return value_node
    return None


def placeholders(path: Path) -> list[Placeholder]:
    """Every documentation placeholder under `config:` (call after load_document succeeded)."""
    config_node = _config_node(yaml.compose(path.read_text()))
    found: list[Placeholder] = []

    def walk(node: yaml.Node, key: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(v, f"{key}.{k.value}")
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{key}[{i}]")
        elif isinstance(node, yaml.ScalarNode):
            hint = placeholder_hint(str(node.value))
            if hint:
                found.append(Placeholder(key, node.start_mark.line + 1, str(node.value), hint))

    for key_node, value_node in config_node.value if config_node else ():
        walk(value_node, str(key_node.value))
    return found


def placeholder_hint(value: str) -> str | None:
    """What to put instead, when the value is a documentation placeholder; None for a real-looking value."""
    match = _PLACEHOLDER.search(value)
    if match:
        return PLACEHOLDERS[match.group(1)]
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    if any(network.version == doc.version and network.subnet_of(doc) for doc in DOCUMENTATION_NETWORKS):
        return "your own address range; this one is reserved for documentation by RFC 5737 or RFC 3849"
    return None
