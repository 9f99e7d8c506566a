"""Checks an SPCS service specification against the rules Snowflake enforces only at CREATE SERVICE time.

`lint(text_or_dict, family)` returns every problem as `path: problem (allowed: ...)`; an empty list means the
spec passes. Pure (no Pulumi import); the stack refuses to register a service whose spec has problems. Each
rule sits next to the one-line source it comes from.
"""

from __future__ import annotations

import re

import yaml

from components.spcs.families import REQUESTABLE, InstanceFamily
from components.spcs.specs import EPHEMERAL_PORTS

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)$")
CPU = re.compile(r"^\d+(\.\d+)?m?$")
BLOCK_SIZE = re.compile(r"^\d+Gi$")
GPU = "nvidia.com/gpu"
MAX_STAGE_MOUNTS = 8
# Endpoint protocols TCP and HTTP; public endpoints HTTP only (ingress terminates TLS)
# (https://docs.snowflake.com/en/developer-guide/snowpark-container-services/specification-reference).
HTTP_PROTOCOLS = ("HTTP",)
PROTOCOLS = ("HTTP", "TCP")
LOCAL_SOURCES = ("local", "memory", "block")
UNITS_GIB = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10, "K": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30,
             "T": 1e12 / 2**30}


def lint(spec: str | dict, family: InstanceFamily | None = None) -> list[str]:
    """Every problem of one spec; with `family`, also whether its requests fit one node of that family."""
    document = yaml.safe_load(spec) if isinstance(spec, str) else spec
    body = (document or {}).get("spec")
    if not isinstance(body, dict):
        return ["spec: missing (allowed: a mapping with containers, endpoints, volumes)"]
    problems: list[str] = []
    volumes = body.get("volumes") or []
    containers = body.get("containers") or []
    if not containers:
        problems.append("spec.containers: empty (allowed: at least one container)")
    problems += _names("spec.containers", containers)
    problems += _names("spec.endpoints", body.get("endpoints") or [])
    problems += _names("spec.volumes", volumes)
    for i, container in enumerate(containers):
        problems += _resources(f"spec.containers[{i}].resources", container.get("resources") or {})
    for i, endpoint in enumerate(body.get("endpoints") or []):
        problems += _endpoint(f"spec.endpoints[{i}]", endpoint)
    problems += _volumes(volumes)
    problems += _mounts(containers, volumes)
    problems += _ephemeral(containers, body.get("endpoints") or [])
    if family is not None:
        problems += _fits(containers, family)
    return problems


def _gib(quantity: object) -> float:
    match = MEMORY.match(str(quantity))
    return float(str(quantity).removesuffix(match.group(2))) * UNITS_GIB[match.group(2)] if match else 0.0


def _cpu(quantity: object) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text) if CPU.match(text) else 0.0


def _fits(containers: list[dict], family: InstanceFamily) -> list[str]:
    """All containers of an instance share one node, and requests must fit what Snowflake's own components
    leave of it (https://docs.snowflake.com/en/release-notes/bcr-bundles/2024_06/bcr-1648)."""
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    cpu, memory = sum(_cpu(r.get("cpu", 0)) for r in requests), sum(_gib(r.get("memory", "0Gi")) for r in requests)
    gpus = sum(int(r.get(GPU, 0)) for r in requests)
    out = []
    if cpu > family.requestable_cpu + 1e-6:
        out.append(f"spec.containers: request {cpu:g} vCPU together on {family.name} (allowed: at most "
                   f"{family.requestable_cpu:g}, {REQUESTABLE:.0%} of its {family.vcpus}; Snowflake's components "
                   "use the rest)")
    if memory > family.requestable_memory_gib + 1e-3:
        out.append(f"spec.containers: request {memory:g} GiB together on {family.name} (allowed: at most "
                   f"{family.requestable_memory_gib:g} GiB, {REQUESTABLE:.0%} of its {family.memory_gib}; Snowflake's "
                   "components use the rest)")
    if gpus > family.gpus:
        out.append(f"spec.containers: request {gpus} GPUs together on {family.name} (allowed: at most {family.gpus})")
    return out


def _ephemeral(containers: list[dict], endpoints: list[dict]) -> list[str]:
    """Spark executors, torch.distributed and NCCL listen on random ephemeral ports; Snowflake's Ray samples
    declare 32768-60999 on every Ray service (../shared/reference/spcs.md, "Ports between Ray nodes")."""
    runs_ray = any("ray start" in " ".join(map(str, c.get("command") or [])) for c in containers)
    first, last = EPHEMERAL_PORTS
    for endpoint in endpoints:
        low, _, high = str(endpoint.get("portRange", "")).partition("-")
        if (low.isdigit() and high.isdigit() and int(low) <= first and int(high) >= last
                and endpoint.get("protocol") == "TCP" and not endpoint.get("public", False)):
            return []
    if not runs_ray:
        return []
    return [f"spec.endpoints: no private TCP portRange covers {first}-{last} for a Ray service (allowed: "
            f"{{name: ephemeral, portRange: {first}-{last}, protocol: TCP, public: false}})"]


def _names(path: str, items: list[dict]) -> list[str]:
    out = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = str(item.get("name", ""))
        if not NAME.match(name):
            out.append(f"{path}[{i}].name: {name!r} is not a valid name "
                       "(allowed: lowercase letters, digits and '-', at most 63 characters)")
        if name in seen:
            out.append(f"{path}[{i}].name: {name!r} is used twice (allowed: unique names)")
        seen.add(name)
    return out


def _resources(path: str, resources: dict) -> list[str]:
    out = []
    for kind in ("requests", "limits"):
        values = resources.get(kind) or {}
        if "memory" in values and not MEMORY.match(str(values["memory"])):
            out.append(f"{path}.{kind}.memory: {values['memory']!r} has no unit "
                       "(allowed: a number with Ki, Mi, Gi, Ti, K, M, G or T, e.g. 6Gi)")
        if "cpu" in values and not CPU.match(str(values["cpu"])):
            out.append(f"{path}.{kind}.cpu: {values['cpu']!r} is not a CPU quantity (allowed: e.g. 2, 0.5, 500m)")
    requested = (resources.get("requests") or {}).get(GPU)
    limited = (resources.get("limits") or {}).get(GPU)
    if requested != limited:
        out.append(f"{path}: {GPU} requests {requested} != limits {limited} "
                   "(allowed: equal GPU requests and limits, or the container sees no GPU)")
    return out


def _endpoint(path: str, endpoint: dict) -> list[str]:
    out = []
    protocol = endpoint.get("protocol", "HTTP")
    public = bool(endpoint.get("public", False))
    if protocol not in PROTOCOLS:
        out.append(f"{path}.protocol: {protocol!r} (allowed: {', '.join(PROTOCOLS)})")
    if ("port" in endpoint) == ("portRange" in endpoint):
        out.append(f"{path}: needs exactly one of port and portRange (allowed: port: 8265 or portRange: 11000-11999)")
    if public and protocol not in HTTP_PROTOCOLS:
        out.append(f"{path}.public: a public endpoint speaks {protocol} "
                   "(allowed: public endpoints with protocol HTTP only; keep TCP private)")
    if "portRange" in endpoint:
        if protocol != "TCP" or public:
            out.append(f"{path}.portRange: used with protocol {protocol} and public {str(public).lower()} "
                       "(allowed: portRange only on private TCP endpoints)")
        if not re.match(r"^\d+-\d+$", str(endpoint["portRange"])):
            out.append(f"{path}.portRange: {endpoint['portRange']!r} (allowed: FIRST-LAST, e.g. 11000-11999)")
    return out


def _volumes(volumes: list[dict]) -> list[str]:
    out = []
    for i, volume in enumerate(volumes):
        source, size = str(volume.get("source", "")), volume.get("size")
        if source == "memory" and not (size and MEMORY.match(str(size))):
            out.append(f"spec.volumes[{i}].size: {size!r} for a memory volume "
                       "(allowed: a size with a unit, e.g. 8Gi)")
        if source == "block" and not (size and BLOCK_SIZE.match(str(size))):
            out.append(f"spec.volumes[{i}].size: {size!r} for a block volume (allowed: whole Gi, e.g. 50Gi)")
        # Stage Mount v1 (`source: "@stage"`) is rejected for new services: `source: stage` + stageConfig.name
        # (https://docs.snowflake.com/en/release-notes/bcr-bundles/2026_08/bcr-2449).
        if source.startswith("@"):
            out.append(f"spec.volumes[{i}].source: {source!r} is the deprecated stage mount v1 (allowed: source: stage "
                       f"with stageConfig: {{name: {source!r}}})")
        elif source == "stage" and not str((volume.get("stageConfig") or {}).get("name", "")).startswith("@"):
            out.append(f"spec.volumes[{i}].stageConfig.name: {(volume.get('stageConfig') or {}).get('name')!r} "
                       "(allowed: the stage as @DB.SCHEMA.STAGE)")
        elif source not in LOCAL_SOURCES and source != "stage":
            out.append(f"spec.volumes[{i}].source: {source!r} (allowed: local, memory, block, stage)")
    return out


def _is_stage(volume: dict) -> bool:
    source = str(volume.get("source", ""))
    return source == "stage" or source.startswith("@")


def _mounts(containers: list[dict], volumes: list[dict]) -> list[str]:
    by_name = {v.get("name"): v for v in volumes}
    out = []
    stage_mounts = 0
    for i, container in enumerate(containers):
        for j, mount in enumerate(container.get("volumeMounts") or []):
            volume = by_name.get(mount.get("name"))
            if volume is None:
                out.append(f"spec.containers[{i}].volumeMounts[{j}].name: {mount.get('name')!r} is not a declared "
                           f"volume (allowed: {', '.join(sorted(map(str, by_name))) or 'none declared'})")
            elif _is_stage(volume):
                stage_mounts += 1
    if stage_mounts > MAX_STAGE_MOUNTS:
        out.append(f"spec.containers: {stage_mounts} stage volume mounts (allowed: at most {MAX_STAGE_MOUNTS} per "
                   "service instance)")
    return out
