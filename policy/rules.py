"""The security rules every stack keeps, as plain functions over resources.

No `pulumi_policy` import here: `policy/__main__.py` wraps these for `pulumi preview --policy-pack policy`,
and the tests run them over every stack's offline preview. A rule returns its violations as messages that
say what is wrong and how to fix it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

RAY_PORTS = {6379: "GCS", 8265: "dashboard/Jobs API", 10001: "Ray client", 8080: "metrics"}
ADMIN_SNOWFLAKE_ROLES = {"ACCOUNTADMIN", "SECURITYADMIN", "ORGADMIN"}
BROAD_GCP_ROLES = {"roles/owner", "roles/editor"}
STATEFUL_LABEL = "ray-platform.stateful"
STATEFUL_TYPES = {
    "gcp:storage/bucket:Bucket",
    "snowflake:index/database:Database",
    "snowflake:index/stage:Stage",
    "snowflake:index/stageInternal:StageInternal",
}
SECRET_NAME = re.compile(r"(password|passphrase|token|secret|private_?key|api_?key|access_?key)(_?data|_?value)?$", re.I)
# Inputs that name or point at a secret rather than hold one (a Secret Manager secret's id, for instance).
REFERENCE_SUFFIX = re.compile(r"(id|name|ref|arn|path)$", re.I)
REFERENCE_INPUTS = {("gcp:secretmanager/secretVersion:SecretVersion", "secret"),
                    ("gcp:secretmanager/secretIamMember:SecretIamMember", "secretId")}
SECRET_MASK = "[secret]"


@dataclass
class Subject:
    """One resource as a policy sees it (built from a CrossGuard PolicyResource or a recorded preview)."""

    type: str
    name: str
    props: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    provider: str | None = None  # name of the explicit provider; None or "default" when ambient
    provider_props: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[..., list[str]]
    stack: bool = False  # stack rules see every resource at once
    crossguard: bool = True  # False: only the offline preview can judge it (see secrets_are_secret)


# ------------------------------------------------------------------------------------------- helpers


def _is_internet(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _ports(spec: str) -> range:
    low, _, high = str(spec).partition("-")
    return range(int(low), int(high or low) + 1)


def _service_account(member: str) -> bool:
    return str(member).startswith("serviceAccount:")


def _labels(props: dict) -> dict[str, str]:
    labels = props.get("labels") or {}
    if isinstance(labels, list):  # docker: [{label, value}]
        return {item.get("label"): item.get("value") for item in labels if isinstance(item, dict)}
    return dict(labels)


# --------------------------------------------------------------------------------------------- rules


def no_ray_ports_to_internet(s: Subject, config: dict) -> list[str]:
    if s.type != "gcp:compute/firewall:Firewall" or s.props.get("direction", "INGRESS") != "INGRESS":
        return []
    if not any(_is_internet(c) for c in s.props.get("sourceRanges") or []):
        return []
    found = []
    for allow in s.props.get("allows") or []:
        ports = allow.get("ports")
        if allow.get("protocol") in ("all",) or not ports and allow.get("protocol") in ("tcp", "all"):
            found += sorted(RAY_PORTS)
        for spec in ports or []:
            found += [p for p in RAY_PORTS if p in _ports(spec)]
    return [f"firewall opens Ray port {p} ({RAY_PORTS[p]}) to the internet (0.0.0.0/0): restrict sourceRanges "
            "to the subnet or Google's IAP range 35.235.240.0/20" for p in sorted(set(found))]


def docker_ports_on_loopback(s: Subject, config: dict) -> list[str]:
    if s.type != "docker:index/container:Container":
        return []
    if config.get("allow-docker-all-interfaces"):  # the stack's opt-in, in its policy pack config
        return []
    out = []
    for port in s.props.get("ports") or []:
        ip = port.get("ip", "0.0.0.0")  # Docker's default is every interface
        if ipaddress.ip_address(ip).is_unspecified:
            out.append(f"port {port.get('external', port.get('internal'))} is published on all interfaces ({ip}): "
                       "bind it to 127.0.0.1, or opt in with the pack config allow-docker-all-interfaces: true")
    return out


def gke_private_cluster(s: Subject, config: dict) -> list[str]:
    if s.type != "gcp:container/cluster:Cluster":
        return []
    out = []
    if not (s.props.get("privateClusterConfig") or {}).get("enablePrivateNodes"):
        out.append("GKE cluster nodes are not private: set privateClusterConfig.enablePrivateNodes")
    blocks = ((s.props.get("masterAuthorizedNetworksConfig") or {}).get("cidrBlocks")) or []
    if not blocks:
        out.append("GKE control plane has no authorized networks: set masterAuthorizedNetworksConfig.cidrBlocks")
    elif any(_is_internet(b.get("cidrBlock", "")) for b in blocks):
        out.append("GKE control plane is authorized for 0.0.0.0/0: list only the networks that run pulumi/kubectl")
    if not (s.props.get("workloadIdentityConfig") or {}).get("workloadPool"):
        out.append("GKE Workload Identity is off: set workloadIdentityConfig.workloadPool to PROJECT.svc.id.goog")
    return out


def no_broad_roles_for_service_accounts(s: Subject, config: dict) -> list[str]:
    if not re.match(r"^gcp:[a-z]+/[a-zA-Z]*(iAM|IAM|Iam)(Member|Binding)", s.type):
        return []
    role = str(s.props.get("role", ""))
    members = s.props.get("members") or [s.props.get("member", "")]
    if not any(_service_account(m) for m in members):
        return []
    if role in BROAD_GCP_ROLES or role.endswith(".admin") or role == "roles/resourcemanager.projectIamAdmin":
        return [f"service account granted {role}: grant the narrowest predefined role it needs instead"]
    return []


def buckets_uniform_and_private(s: Subject, config: dict) -> list[str]:
    if s.type == "gcp:storage/bucket:Bucket":
        out = []
        if not s.props.get("uniformBucketLevelAccess"):
            out.append("bucket without uniform bucket-level access: set uniformBucketLevelAccess=True")
        if s.props.get("publicAccessPrevention") != "enforced":
            out.append("bucket does not enforce public access prevention: set publicAccessPrevention='enforced'")
        return out
    if s.type.startswith("gcp:storage/bucketIAM"):
        members = s.props.get("members") or [s.props.get("member", "")]
        public = [m for m in members if m in ("allUsers", "allAuthenticatedUsers")]
        return [f"bucket IAM grants {m}: buckets are never public" for m in public]
    return []


def stateful_resources_protected(s: Subject, config: dict) -> list[str]:
    stateful = s.type in STATEFUL_TYPES or _labels(s.props).get(STATEFUL_LABEL) == "true"
    if stateful and not (s.protect or s.retain_on_delete):
        return ["stateful resource is neither protected nor retained on delete: set protect=True "
                "(or retain_on_delete=True) so a pulumi destroy cannot lose its data"]
    return []


def kubernetes_explicit_provider(s: Subject, config: dict) -> list[str]:
    if s.type.startswith("kubernetes:") and s.provider in (None, "default"):
        return ["Kubernetes resource uses the ambient kubeconfig: pass the cluster's explicit provider"]
    return []


def spcs_services(s: Subject, config: dict) -> list[str]:
    if s.type != "snowflake:index/service:Service":
        return []
    out = []
    role = str(s.provider_props.get("role", "")).upper()
    if role in ADMIN_SNOWFLAKE_ROLES or s.provider in (None, "default"):
        out.append(f"service owned by {role or 'the ambient login role'}: create services with a provider whose "
                   "role is a dedicated, non-admin role")
    text = (s.props.get("fromSpecification") or {}).get("text") or ""
    spec = yaml.safe_load(text) if text and text != SECRET_MASK else {}
    for endpoint in ((spec or {}).get("spec") or {}).get("endpoints") or []:
        if endpoint.get("public") and str(endpoint.get("protocol", "HTTP")).upper() != "HTTP":
            out.append(f"public endpoint {endpoint.get('name')!r} uses {endpoint.get('protocol')}: only HTTP "
                       "endpoints may be public (SPCS ingress authenticates HTTP only)")
    return out


RAY_WITHOUT_AUTH = ("Ray runs without token authentication ({detail}): whoever reaches its dashboard runs code as "
                    "the cluster (CVE-2023-48022); set ray_auth: token (the default)")


def _auth_modes(text: str) -> list[str]:
    return re.findall(r"RAY_AUTH_MODE[=:]\s*['\"]?(\w+)", text)


STAGE_FILES = "pulumi-python:dynamic/spcs:StageFiles"


def _spec_without_auth(text: str, where: str = "") -> list[str]:
    """An SPCS spec (or the app's spec template) with a Ray container not in token mode."""
    if not text or text == SECRET_MASK:
        return []
    # Templates hold `{{ var }}` placeholders, which YAML reads as a mapping: a plain stand-in keeps them parseable.
    spec = yaml.safe_load(re.sub(r"\{\{[^}]*\}\}", "x", text)) or {}
    for container in (spec.get("spec") or {}).get("containers") or []:
        mode = (container.get("env") or {}).get("RAY_AUTH_MODE", "unset")
        if str(container.get("name", "")).startswith("ray-") and mode != "token":
            return [RAY_WITHOUT_AUTH.format(detail=f"{where}container {container['name']} RAY_AUTH_MODE {mode}")]
    return []


def ray_runs_with_token_auth(s: Subject, config: dict) -> list[str]:
    """Every Ray process runs with RAY_AUTH_MODE=token, said explicitly (unset, Ray decides by itself)."""
    if s.type == "docker:index/container:Container" and "ray-platform.node" in _labels(s.props):
        envs = s.props.get("envs")
        if envs == SECRET_MASK:  # the offline preview hides a list holding a secret; CrossGuard sees it whole
            return []
        modes = [e.split("=", 1)[1] for e in envs or [] if str(e).startswith("RAY_AUTH_MODE=")]
        if modes != ["token"]:
            return [RAY_WITHOUT_AUTH.format(detail=f"container environment RAY_AUTH_MODE={modes[0] if modes else 'unset'}")]
    elif s.type == "kubernetes:ray.io/v1:RayCluster":
        mode = ((s.props.get("spec") or {}).get("authOptions") or {}).get("mode", "unset")
        if mode != "token":
            return [RAY_WITHOUT_AUTH.format(detail=f"RayCluster authOptions.mode {mode}")]
    elif s.type == "snowflake:index/service:Service":
        return _spec_without_auth((s.props.get("fromSpecification") or {}).get("text") or "")
    elif s.type == STAGE_FILES:  # the Native App's specs, uploaded for its start procedure to create services from
        files = s.props.get("files")
        for path, text in sorted(files.items()) if isinstance(files, dict) else []:
            if str(path).startswith("specs/"):
                found = _spec_without_auth(str(text), f"{path}: ")
                if found:
                    return found
    elif s.type == "gcp:compute/instance:Instance":
        script = str(s.props.get("metadataStartupScript") or "")
        if "ray start" in script:  # the head, and the autoscaler config for every worker inside its script
            modes = _auth_modes(script)
            if not modes or set(modes) != {"token"}:
                return [RAY_WITHOUT_AUTH.format(detail=f"startup script RAY_AUTH_MODE {sorted(set(modes)) or 'unset'}")]
    return []


def spcs_grants_not_to_admin(s: Subject, config: dict) -> list[str]:
    if s.type == "snowflake:index/grantOwnership:GrantOwnership":
        role = str(s.props.get("accountRoleName", "")).strip('"').upper()
        if role in ADMIN_SNOWFLAKE_ROLES:
            return [f"ownership granted to {role}: services and their objects must not be owned by an admin role"]
    return []


def _secret_named(key: str) -> bool:
    return bool(SECRET_NAME.search(key)) and not REFERENCE_SUFFIX.search(key)


def _plain_secrets(value: Any, path: str, token: str = "") -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if (_secret_named(key) and (token, where) not in REFERENCE_INPUTS and isinstance(item, str) and item
                    and item != SECRET_MASK):
                yield where
            else:
                yield from _plain_secrets(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str) and "=" in item and _secret_named(item.split("=", 1)[0]):
                if item.split("=", 1)[1]:
                    yield f"{path}[{i}] ({item.split('=', 1)[0]})"
            else:
                yield from _plain_secrets(item, f"{path}[{i}]")


def secrets_are_secret(s: Subject, config: dict) -> list[str]:
    return [f"input {where} looks like a secret but is plain text: wrap it in pulumi.Output.secret "
            "(or set it with pulumi config set --secret)" for where in _plain_secrets(s.props, "", s.type)]


def _allow_pattern(pattern: str) -> re.Pattern:
    """Binary Authorization's allow-list glob: `*` within one path segment, `**` across segments."""
    parts = [re.escape(p).replace(r"\*", "[^/]*") for p in pattern.split("**")]
    return re.compile("^" + ".*".join(parts) + "$")


def images_by_digest_under_binauthz(subjects: list[Subject], config: dict) -> list[tuple[str, str]]:
    policies = [s for s in subjects if s.type == "gcp:binaryauthorization/policy:Policy"
                and (s.props.get("defaultAdmissionRule") or {}).get("enforcementMode") == "ENFORCED_BLOCK_AND_AUDIT_LOG"]
    if not policies:
        return []
    allowed = [_allow_pattern(p.get("namePattern", "")) for s in policies
               for p in s.props.get("admissionWhitelistPatterns") or []]
    out = []
    for s in subjects:
        if s.type.startswith("kubernetes:"):
            for image in _images(s.props):
                if "@sha256:" not in image and not any(a.match(image) for a in allowed):
                    out.append((s.name, f"image {image!r} is referenced by tag while Binary Authorization enforces: "
                                        "use the digest (name@sha256:...) the build returned"))
    return out


def _images(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                yield item
            else:
                yield from _images(item)
    elif isinstance(value, list):
        for item in value:
            yield from _images(item)


RULES = [
    Rule("no-ray-ports-to-internet", "No firewall rule opens Ray ports (6379, 8265, 10001, 8080) to 0.0.0.0/0",
         no_ray_ports_to_internet),
    Rule("docker-ports-on-loopback", "No Docker port is published on all interfaces unless the stack opts in",
         docker_ports_on_loopback),
    Rule("gke-private-cluster", "GKE clusters are private, with authorized networks and Workload Identity",
         gke_private_cluster),
    Rule("no-broad-roles-for-service-accounts", "No owner/editor/admin roles for service accounts",
         no_broad_roles_for_service_accounts),
    Rule("buckets-uniform-and-private", "Buckets use uniform access and are never public",
         buckets_uniform_and_private),
    Rule("stateful-resources-protected", "Stateful resources are protected or retained on delete",
         stateful_resources_protected),
    Rule("kubernetes-explicit-provider", "Kubernetes resources use an explicit provider",
         kubernetes_explicit_provider),
    Rule("spcs-services", "SPCS public endpoints are HTTP only; services are not owned by admin roles",
         spcs_services),
    Rule("spcs-no-admin-ownership", "SPCS objects are not granted to admin roles", spcs_grants_not_to_admin),
    Rule("ray-token-auth", "Every Ray process runs with Ray's token authentication (RAY_AUTH_MODE=token)",
         ray_runs_with_token_auth),
    # CrossGuard hands policies secret values already unwrapped (pulumi_policy/deserialize.py), so inside
    # `pulumi preview` a secret cannot be told from plain text; the offline preview can, and tests run it there.
    Rule("secrets-are-secret", "Password-, token- and key-named inputs are secrets", secrets_are_secret,
         crossguard=False),
    Rule("images-by-digest-under-binauthz", "Container images by digest where Binary Authorization enforces",
         images_by_digest_under_binauthz, stack=True),
]


def evaluate(subjects: list[Subject], config: dict | None = None) -> list[tuple[str, str, str]]:
    """(rule, resource name, message) for every violation in a stack."""
    config = config or {}
    out = []
    for rule in RULES:
        if rule.stack:
            out += [(rule.name, name, message) for name, message in rule.check(subjects, config)]
        else:
            out += [(rule.name, s.name, message) for s in subjects for message in rule.check(s, config)]
    return out
