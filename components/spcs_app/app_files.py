"""The Native App's files as uploaded: the repo's sources plus what is rendered at deploy time.

Pure (no Pulumi import). Service specs come from components/spcs/specs.py, the renderer the `spcs` stack
uses: one head spec per head instance family, one worker spec *template* per worker family whose head
address is `{{ head_host }}` (the start procedure fills it in with `USING (head_host => ...)` once the head
service has a DNS name). `manifest.yml` gets exactly the images the specs run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.ray_auth import TOKEN_ENV
from components.spcs.families import MIN_POOL_NODES, InstanceFamily
from components.spcs.spec_lint import lint
from components.spcs.specs import (
    HeadSpec,
    Monitoring,
    SecretEnv,
    StageMount,
    WorkerSpec,
    render_custom_worker_template,
    render_head_spec,
    render_raydp_head_spec,
    render_worker_spec,
)

HEAD_HOST_VAR = "head_host"
HEAD_HOST = "{{ " + HEAD_HOST_VAR + " }}"  # Snowflake's spec template syntax
# Custom worker groups: the start procedure fills in their image and Ray custom resources (a JSON object).
IMAGE_VAR, RESOURCES_VAR = "image", "resources"
CATALOG = "python/catalog.json"  # what the start procedure may create: families, spec files, features
MANIFEST = "manifest.yml"
# The app's own schema and objects, created by setup_script.sql (services cannot live in a versioned schema).
SERVICES_SCHEMA = "services"
APP_STAGES = [StageMount("artifacts", f"@{SERVICES_SCHEMA}.artifacts", "/artifacts"),
              StageMount("logs", f"@{SERVICES_SCHEMA}.logs", "/raydplogs")]
APP_GRAFANA_SECRET = SecretEnv(f"{SERVICES_SCHEMA}.grafana_admin_password", "GF_SECURITY_ADMIN_PASSWORD")
# Ray's token: a SECRET the consumer owns and binds to this reference (manifest.yml `references`), so the token
# is never in the app's files, its SQL or query history; every Ray container reads it into RAY_AUTH_TOKEN.
RAY_TOKEN_REFERENCE = "ray_auth_token"
APP_RAY_TOKEN = SecretEnv(RAY_TOKEN_REFERENCE, TOKEN_ENV, reference=True)
REQUIRED_MANIFEST_KEYS = ("manifest_version", "artifacts", "privileges", "references")
REQUIRED_ARTIFACTS = ("setup_script", "readme", "default_streamlit", "container_services")
PRIVILEGES = ("BIND SERVICE ENDPOINT", "CREATE COMPUTE POOL", "CREATE WAREHOUSE")
# manifest.yml: an app offering GPU families sets artifacts.container_services.uses_gpu; configuration.trace_level
# is one of these strings (https://docs.snowflake.com/en/developer-guide/native-apps/manifest-reference).
TRACE_LEVELS = ("OFF", "ALWAYS", "ON_EVENT")
EXCLUDED = ("__pycache__", ".pyc")


@dataclass(frozen=True)
class AppImages:
    """Image paths as specs name them (`/db/schema/repo/name:tag`)."""

    ray: str  # spcs-ray, or spcs-raydp with RayDP
    ray_cuda: str | None = None  # for GPU families
    prometheus: str | None = None
    grafana: str | None = None
    custom: tuple[str, ...] = ()  # the provider's own images a custom worker group may run

    def listed(self) -> list[str]:
        return sorted({i for i in (self.ray, self.ray_cuda, self.prometheus, self.grafana, *self.custom) if i})


@dataclass(frozen=True)
class AppShape:
    """What the app can run: the families a consumer may pick for the head and for worker groups."""

    head_families: list[InstanceFamily]
    worker_families: list[InstanceFamily]
    images: AppImages
    raydp: bool = False
    monitoring: bool = True
    jupyter: bool = True
    logs_volume_gib: int = 50
    stages: list[StageMount] = field(default_factory=lambda: list(APP_STAGES))
    env: dict[str, str] = field(default_factory=lambda: {"RAY_PLATFORM_STORAGE_URI": APP_STAGES[0].stage,
                                                         "RAY_PLATFORM_STORAGE_MOUNT": APP_STAGES[0].mount_path})
    grafana_secret: SecretEnv = APP_GRAFANA_SECRET
    ray_token: SecretEnv | None = APP_RAY_TOKEN  # None: the provider's explicit `ray_auth: disabled`

    def __post_init__(self) -> None:
        if not self.head_families or not self.worker_families:
            raise ValueError("an app needs at least one head and one worker family (allowed: e.g. CPU_X64_M)")
        if any(f.has_gpu for f in self.worker_families) and not self.images.ray_cuda:
            raise ValueError("GPU worker families need images.ray_cuda "
                             "(allowed: the spcs-ray-cuda or spcs-raydp-cuda image path)")
        if self.monitoring and not (self.images.prometheus and self.images.grafana):
            raise ValueError("monitoring needs images.prometheus and images.grafana (allowed: their image paths)")


def spec_path(kind: str, family: InstanceFamily) -> str:
    """Relative to the version's root; the start procedure names the same path."""
    return f"specs/{kind}-{family.name.lower()}.yaml"


def head_spec(shape: AppShape, family: InstanceFamily) -> HeadSpec:
    monitoring = None
    if shape.monitoring:
        monitoring = Monitoring(shape.images.prometheus, shape.images.grafana, shape.grafana_secret)
    return HeadSpec(family=family, image=shape.images.ray, stages=list(shape.stages), monitoring=monitoring,
                    jupyter=shape.jupyter, env=dict(shape.env), logs_volume_gib=shape.logs_volume_gib,
                    ray_token=shape.ray_token)


def worker_spec(shape: AppShape, family: InstanceFamily, head_host: str = HEAD_HOST) -> WorkerSpec:
    image = shape.images.ray_cuda if family.has_gpu else shape.images.ray
    return WorkerSpec(family=family, image=image, head_host=head_host, stages=list(shape.stages), env=dict(shape.env),
                      ray_token=shape.ray_token)


def spec_files(shape: AppShape) -> dict[str, str]:
    """Every spec the app ships, by path; each passes the SPCS linter (placeholder substituted)."""
    render_head = render_raydp_head_spec if shape.raydp else render_head_spec
    families = {spec_path("head", f): f for f in shape.head_families} | {spec_path("worker", f): f
                                                                          for f in shape.worker_families}
    files = {spec_path("head", f): render_head(head_spec(shape, f)) for f in shape.head_families}
    files |= {spec_path("worker", f): render_worker_spec(worker_spec(shape, f)) for f in shape.worker_families}
    for f in shape.worker_families:
        families[spec_path("custom-worker", f)] = f
        template = WorkerSpec(family=f, image="{{ " + IMAGE_VAR + " }}", head_host=HEAD_HOST, stages=list(shape.stages),
                              env=dict(shape.env), ray_token=shape.ray_token)
        files[spec_path("custom-worker", f)] = render_custom_worker_template(template, "{{ " + RESOURCES_VAR + " }}")
    for path, text in files.items():
        sample = fill_template(text, "ray-head.lint.invalid").replace("{{ " + IMAGE_VAR + " }}", shape.images.ray)
        problems = lint(sample.replace("{{ " + RESOURCES_VAR + " }}", '{"etl": 1}'), families[path])
        if problems:
            raise ValueError(f"{path}: the spec breaks SPCS rules:\n  " + "\n  ".join(problems))
    return files


def fill_template(text: str, head_host: str) -> str:
    """What Snowflake does with `USING (head_host => '...')`."""
    return text.replace(HEAD_HOST, head_host)


def catalog(shape: AppShape) -> dict:
    """Read by the start procedure (python/ray_cluster.py) to check a request and find its spec files."""
    return {
        "head": {f.name: "/" + spec_path("head", f) for f in shape.head_families},
        "worker": {f.name: "/" + spec_path("worker", f) for f in shape.worker_families},
        "custom_worker": {f.name: "/" + spec_path("custom-worker", f) for f in shape.worker_families},
        # A custom group runs one of these, or by default the Ray image of its family.
        "images": {f.name: worker_spec(shape, f).image for f in shape.worker_families},
        "custom_images": {i.rsplit("/", 1)[-1]: i for i in shape.images.custom},
        "head_host_var": HEAD_HOST_VAR,
        "image_var": IMAGE_VAR,
        "resources_var": RESOURCES_VAR,
        "monitoring": shape.monitoring,
        "jupyter": shape.jupyter,
        "raydp": shape.raydp,
        "grafana_secret": shape.grafana_secret.object_name if shape.monitoring else None,
        # start_cluster refuses to start until the consumer bound a SECRET to this reference; None: auth off.
        "ray_token_reference": shape.ray_token.object_name if shape.ray_token else None,
        "min_pool_nodes": MIN_POOL_NODES,
    }


def render_manifest(base: str, images: list[str], version: str, label: str, uses_gpu: bool = False) -> str:
    """The repo's manifest.yml with the version and exactly the images the specs run."""
    document = yaml.safe_load(base)
    document["version"] = {"name": version, "label": label}
    document["artifacts"]["container_services"] = {"images": sorted(images), "uses_gpu": uses_gpu}
    problems = manifest_problems(document, uses_gpu)
    if problems:
        raise ValueError("manifest.yml: " + "; ".join(problems))
    return yaml.safe_dump(document, sort_keys=False)


def manifest_problems(document: dict, uses_gpu: bool = False) -> list[str]:
    """Keys a Native App with containers needs, as `key: problem (allowed: ...)`; `uses_gpu`: GPU families offered."""
    out = [f"{key}: missing (allowed: see Snowflake's manifest reference)" for key in REQUIRED_MANIFEST_KEYS
           if key not in document]
    artifacts = document.get("artifacts") or {}
    out += [f"artifacts.{key}: missing (allowed: see Snowflake's manifest reference)" for key in REQUIRED_ARTIFACTS
            if key not in artifacts]
    granted = {next(iter(p)) if isinstance(p, dict) else p for p in document.get("privileges") or []}
    out += [f"privileges: {p} missing (allowed: {', '.join(PRIVILEGES)})" for p in PRIVILEGES if p not in granted]
    for i, image in enumerate((artifacts.get("container_services") or {}).get("images") or []):
        if not str(image).startswith("/") or ":" not in str(image):
            out.append(f"artifacts.container_services.images[{i}]: {image!r} (allowed: /db/schema/repo/name:tag)")
    if uses_gpu and (artifacts.get("container_services") or {}).get("uses_gpu") is not True:
        out.append("artifacts.container_services.uses_gpu: not true while GPU instance families are offered "
                   "(allowed: true)")
    trace = (document.get("configuration") or {}).get("trace_level", "OFF")
    if trace not in TRACE_LEVELS:  # a bare OFF in YAML reads as false
        out.append(f"configuration.trace_level: {trace!r} (allowed: the strings {', '.join(TRACE_LEVELS)}; quote OFF)")
    return out


def source_files(app_dir: Path) -> dict[str, str]:
    """The app's files kept in the repo (manifest.yml is rendered from the one there)."""
    return {p.relative_to(app_dir).as_posix(): p.read_text() for p in sorted(app_dir.rglob("*"))
            if p.is_file() and not any(x in p.as_posix() for x in EXCLUDED) and p.name != MANIFEST}


def app_files(app_dir: Path, shape: AppShape, version: str, label: str) -> dict[str, str]:
    """Everything uploaded for one version/patch, by path relative to the version's root."""
    files = source_files(app_dir)
    files[MANIFEST] = render_manifest((app_dir / MANIFEST).read_text(), shape.images.listed(), version, label,
                                      uses_gpu=any(f.has_gpu for f in [*shape.head_families, *shape.worker_families]))
    files |= spec_files(shape)
    files[CATALOG] = json.dumps(catalog(shape), indent=2, sort_keys=True) + "\n"
    return dict(sorted(files.items()))


def files_digest(files: dict[str, str]) -> str:
    """Names and contents: the same files give the same digest, so nothing is uploaded twice."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return h.hexdigest()[:16]
