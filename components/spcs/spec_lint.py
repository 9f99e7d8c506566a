"""Checks an SPCS service specification against the rules Snowflake enforces only at CREATE SERVICE time.

`lint(text_or_dict)` returns every problem as `path: problem (allowed: ...)`; an empty list means the spec
passes. Pure (no Pulumi import); the stack refuses to register a service whose spec has problems.
"""

from __future__ import annotations

import re

import yaml

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)$")
CPU = re.compile(r"^\d+(\.\d+)?m?$")
BLOCK_SIZE = re.compile(r"^\d+Gi$")
GPU = "nvidia.com/gpu"
MAX_STAGE_MOUNTS = 8
HTTP_PROTOCOLS = ("HTTP", "HTTPS")
PROTOCOLS = ("HTTP", "HTTPS", "TCP")
LOCAL_SOURCES = ("local", "memory", "block")


def lint(spec: str | dict) -> list[str]:
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
    return problems


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
                   "(allowed: public endpoints with protocol HTTP or HTTPS only; keep TCP private)")
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
        if source not in LOCAL_SOURCES and source != "stage" and not source.startswith("@"):
            out.append(f"spec.volumes[{i}].source: {source!r} (allowed: local, memory, block, stage, @STAGE)")
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
