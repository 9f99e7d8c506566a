"""Pulumi mocks that create the `local` stack's resources for real in a Docker Engine, through the Engine API.

The REAL program (stacks/ + components/) runs under these mocks: each resource it registers is created in the
test's engine exactly as declared, and the mocks answer with the engine's real ids. FIELDS below is the one
place that says how every pulumi-docker (and pulumi-random) input field the stack uses is carried out; a field
not in it (or a nested key not listed for its field) fails the deployment, so a new field is never ignored.

Teardown follows `pulumi state unprotect --all` + `pulumi destroy`: everything is deleted in reverse order of
creation, except resources marked retain_on_delete, which leave state but stay in the engine.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import secrets
import socket
import string
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from pulumi.runtime import mocks as pulumi_mocks

from stacks.offline import PROJECT_DIR, mask
from tests.local_real.engine import Engine

# --------------------------------------------------------------------------------- the Engine API client


class ApiError(RuntimeError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Api:
    """The Docker Engine HTTP API on a unix socket (what pulumi-docker's provider talks to, via Docker's Go SDK)."""

    def __init__(self, engine: Engine):
        self.path = str(engine.socket)

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None, raw: bytes | None = None,
             timeout: float = 120, ok: tuple[int, ...] = (200, 201, 204, 304)) -> Any:
        url = "/v1.41" + path + ("?" + urlencode(query) if query else "")
        headers = {"Content-Type": "application/x-tar" if raw is not None else "application/json"}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn = _UnixConnection(self.path, timeout)
        try:
            conn.request(method, url, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.status not in ok:
            raise ApiError(f"{method} {path}: {response.status} {payload.decode(errors='replace').strip()}")
        if payload and response.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(payload)
        return payload


# ------------------------------------------------------------------------------------------ the mapping


def _duration_ns(value: str) -> int:
    """A Go duration ("10s", "1m30s", "500ms") in nanoseconds, as the Engine API takes health-check times."""
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return int(sum(float(n) * units[u] for n, u in parts))


def _nested(field_name: str, value: Any, allowed: set[str]) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        unknown = set(item) - allowed
        if unknown:
            raise UnmappedField(f"{field_name}.{sorted(unknown)[0]} (mapped: {', '.join(sorted(allowed))})")


class UnmappedField(RuntimeError):
    pass


@dataclass
class Spec:
    """What one resource becomes: an Engine API request body being assembled, plus steps after creation."""

    body: dict = field(default_factory=dict)
    host: dict = field(default_factory=dict)
    endpoints: dict = field(default_factory=dict)
    uploads: list[dict] = field(default_factory=list)
    attach: bool = False
    must_run: bool = True
    build: dict = field(default_factory=dict)


def _ports(spec: Spec, ports: list[dict]) -> None:
    _nested("ports", ports, {"internal", "external", "ip", "protocol"})
    for p in ports:
        key = f"{int(p['internal'])}/{p.get('protocol', 'tcp')}"
        spec.body.setdefault("ExposedPorts", {})[key] = {}
        spec.host.setdefault("PortBindings", {}).setdefault(key, []).append(
            {"HostIp": p.get("ip", "0.0.0.0"), "HostPort": str(int(p["external"]))})


def _networks(spec: Spec, networks: list[dict]) -> None:
    _nested("networksAdvanced", networks, {"name", "aliases"})
    spec.host["NetworkMode"] = networks[0]["name"]
    for n in networks:
        spec.endpoints[n["name"]] = {"Aliases": list(n.get("aliases") or [])}


def _volumes(spec: Spec, volumes: list[dict]) -> None:
    _nested("volumes", volumes, {"volumeName", "containerPath", "readOnly"})
    spec.host["Mounts"] = [{"Type": "volume", "Source": v["volumeName"], "Target": v["containerPath"],
                            "ReadOnly": bool(v.get("readOnly", False))} for v in volumes]


def _healthcheck(spec: Spec, check: dict) -> None:
    _nested("healthcheck", check, {"tests", "interval", "timeout", "retries", "startPeriod"})
    spec.body["Healthcheck"] = {
        "Test": list(check["tests"]), "Retries": int(check.get("retries", 0)),
        **{key: _duration_ns(check[name]) for name, key in
           (("interval", "Interval"), ("timeout", "Timeout"), ("startPeriod", "StartPeriod")) if name in check},
    }


def _uploads(spec: Spec, uploads: list[dict]) -> None:
    _nested("uploads", uploads, {"file", "content", "executable"})
    spec.uploads = uploads


def _build(spec: Spec, build: dict) -> None:
    _nested("build", build, {"context", "args", "dockerfile"})
    spec.build = build


Apply = Callable[[Spec, Any], None]

# type -> field -> (how it is carried out, what does it). THE mapping: nothing outside it is accepted.
FIELDS: dict[str, dict[str, tuple[str, Apply]]] = {
    "pulumi:providers:docker": {
        "host": ("must be the test engine's socket (the test points hosts[].url at it); every resource of "
                 "this provider is created there", lambda s, v: s.body.update(host=v)),
    },
    "docker:index/network:Network": {
        "name": ("POST /networks/create Name", lambda s, v: s.body.update(Name=v)),
        "driver": ("Driver", lambda s, v: s.body.update(Driver=v)),
    },
    "docker:index/volume:Volume": {
        "name": ("POST /volumes/create Name", lambda s, v: s.body.update(Name=v)),
        "labels": ("Labels {label: value}", lambda s, v: (_nested("labels", v, {"label", "value"}), s.body.update(
            Labels={item["label"]: item["value"] for item in v}))),
    },
    "docker:index/image:Image": {
        "imageName": ("the tag: docker build -t", lambda s, v: s.body.update(tag=v)),
        "build": ("docker build: context (relative to the project, like `pulumi up` run there), args as "
                  "--build-arg, dockerfile as -f; build steps use --network=host (the engine has no default "
                  "bridge)", _build),
        "skipPush": ("true is the only value accepted: nothing is pushed", lambda s, v: _require(v is True, "skipPush", v)),
        "buildOnPreview": ("ignored: this is an `up`, not a preview", lambda s, v: None),
    },
    "docker:index/container:Container": {
        "name": ("POST /containers/create?name=", lambda s, v: s.body.update(_name=v)),
        "image": ("Image", lambda s, v: s.body.update(Image=v)),
        "command": ("Cmd", lambda s, v: s.body.update(Cmd=list(v))),
        "entrypoints": ("Entrypoint", lambda s, v: s.body.update(Entrypoint=list(v))),
        "envs": ("Env (KEY=value list, secrets in the clear as the provider sends them)",
                 lambda s, v: s.body.update(Env=list(v))),
        "labels": ("Labels {label: value}", lambda s, v: (_nested("labels", v, {"label", "value"}), s.body.update(
            Labels={item["label"]: item["value"] for item in v}))),
        "ports": ("ExposedPorts + HostConfig.PortBindings [{HostIp: ip, HostPort: external}]", _ports),
        "networksAdvanced": ("HostConfig.NetworkMode = first network; NetworkingConfig aliases", _networks),
        "volumes": ("HostConfig.Mounts type=volume (Source, Target, ReadOnly)", _volumes),
        "healthcheck": ("Healthcheck Test/Interval/Timeout/Retries/StartPeriod (durations in ns)", _healthcheck),
        "uploads": ("PUT /containers/ID/archive: a tar of each file (0644, 0755 if executable) before start",
                    _uploads),
        "restart": ("HostConfig.RestartPolicy.Name", lambda s, v: s.host.update(RestartPolicy={"Name": v})),
        "shmSize": ("HostConfig.ShmSize: MB -> bytes", lambda s, v: s.host.update(ShmSize=int(v) * 1024 * 1024)),
        "mustRun": ("true: after start the container must be running (checked for 15 s, like the provider)",
                    lambda s, v: setattr(s, "must_run", bool(v))),
        "attach": ("true: wait for the container to exit, and fail on a non-zero status",
                   lambda s, v: setattr(s, "attach", bool(v))),
    },
    "random:index/randomPassword:RandomPassword": {
        "length": ("length of `result`", lambda s, v: s.body.update(length=int(v))),
        "special": ("false: letters and digits only; true adds punctuation", lambda s, v: s.body.update(special=v)),
    },
}


def _require(condition: bool, name: str, value: Any) -> None:
    if not condition:
        raise UnmappedField(f"{name}={value!r} is not carried out by the test engine")


def spec_for(typ: str, inputs: dict[str, Any]) -> Spec:
    """The Engine request for one resource's inputs, through FIELDS; UnmappedField for anything not in it."""
    fields = FIELDS.get(typ)
    if fields is None:
        raise UnmappedField(f"resource type {typ} is not mapped (mapped: {', '.join(FIELDS)})")
    unknown = sorted(set(inputs) - set(fields))
    if unknown:
        raise UnmappedField(f"{typ}.{unknown[0]} is not mapped (mapped: {', '.join(fields)})")
    spec = Spec()
    for key, value in inputs.items():
        fields[key][1](spec, value)
    return spec


def describe() -> str:
    """FIELDS as text, for the README and for a failing test's message."""
    return "\n".join(f"{t}.{f}: {how}" for t, fields in FIELDS.items() for f, (how, _) in fields.items())


# ------------------------------------------------------------------------------------------- the mocks


@dataclass
class Created:
    type: str
    name: str
    id: str
    inputs: dict


@dataclass
class Skipped:
    type: str
    name: str
    reason: str


class DockerEngineMocks(pulumi_mocks.Mocks):
    """Creates each registered resource in `engine` and answers with its real id."""

    def __init__(self, engine: Engine, skip_images: dict[str, str] | None = None, log=print):
        self.engine = engine
        self.api = Api(engine)
        self.skip_images = dict(skip_images or {})
        self.log = log
        self.created: list[Created] = []
        self.skipped: list[Skipped] = []
        self.errors: list[str] = []
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._provider_id = f"engine-{engine.pid}"

    def call(self, args: pulumi_mocks.MockCallArgs):
        raise UnmappedField(f"function {args.token} is not mapped")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if not args.custom:
            return args.name, {}
        try:
            return self._create(args)
        except Exception as exc:
            # The SDK would log and swallow nothing useful: keep the reason for the test to report.
            self.errors.append(f"{args.typ}::{args.name}: {exc}")
            raise

    def _create(self, args: pulumi_mocks.MockResourceArgs):
        inputs = mask(args.inputs, reveal=True)
        spec = spec_for(args.typ, inputs)
        if args.typ.startswith("docker:index/") and args.provider and args.provider.split("::")[-1] != self._provider_id:
            raise UnmappedField(f"{args.name}: provider {args.provider} is not the test engine")
        handler = getattr(self, "_" + args.typ.split(":")[-1].split("/")[-1].lower())
        resource_id, outputs = handler(args.name, spec)
        if resource_id is None:
            return f"skipped-{args.name}", {**inputs, **outputs}
        with self._lock:
            self.created.append(Created(args.typ, args.name, resource_id, inputs))
            self.timings[f"{args.typ}::{args.name}"] = time.monotonic()
        return resource_id, {**inputs, **outputs}

    # one handler per resource type (the suffix of its token, lower-cased)

    def _docker(self, name: str, spec: Spec):
        if spec.body.get("host") != self.engine.host:
            raise UnmappedField(f"provider {name}: host {spec.body.get('host')!r} is not the test engine "
                                f"({self.engine.host})")
        return self._provider_id, {}

    def _network(self, name: str, spec: Spec):
        made = self.api.call("POST", "/networks/create", {**spec.body, "CheckDuplicate": True})
        return made["Id"], {}

    def _volume(self, name: str, spec: Spec):
        made = self.api.call("POST", "/volumes/create", spec.body)
        return made["Name"], {"mountpoint": made.get("Mountpoint", "")}

    def _image(self, name: str, spec: Spec):
        build, tag = spec.build, spec.body["tag"]
        command = ["build", "--network=host", "-t", tag]
        for key, value in sorted((build.get("args") or {}).items()):
            command += ["--build-arg", f"{key}={value}"]
        context = PROJECT_DIR / build["context"]
        if build.get("dockerfile"):
            command += ["-f", str(context / build["dockerfile"])]
        self.log(f"engine: docker build {tag} from {build['context']}")
        self.engine.docker(*command, str(context), timeout=1800)
        image_id = self.api.call("GET", f"/images/{quote(tag, safe='')}/json")["Id"]
        return image_id, {"repoDigest": "", "baseImageName": tag}

    def _container(self, name: str, spec: Spec):
        image = spec.body["Image"]
        if image in self.skip_images:
            self.skipped.append(Skipped("docker:index/container:Container", name, self.skip_images[image]))
            self.log(f"engine: SKIPPED container {spec.body['_name']}: {self.skip_images[image]}")
            return None, {}
        body = {k: v for k, v in spec.body.items() if not k.startswith("_")}
        body["HostConfig"] = spec.host
        body["NetworkingConfig"] = {"EndpointsConfig": spec.endpoints}
        made = self.api.call("POST", "/containers/create", body, query={"name": spec.body["_name"]})
        cid = made["Id"]
        for upload in spec.uploads:
            path = Path(upload["file"])
            self.api.call("PUT", f"/containers/{cid}/archive", raw=_tar(path.name, upload["content"],
                                                                          upload.get("executable", False)),
                          query={"path": str(path.parent)})
        self.api.call("POST", f"/containers/{cid}/start")
        if spec.attach:
            status = self.api.call("POST", f"/containers/{cid}/wait", timeout=600)["StatusCode"]
            if status != 0:
                raise RuntimeError(f"container {spec.body['_name']} exited {status}: {self.logs(cid)[-800:]}")
        elif spec.must_run:
            deadline = time.monotonic() + 15
            while not self.api.call("GET", f"/containers/{cid}/json")["State"]["Running"]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"container {spec.body['_name']} is not running: {self.logs(cid)[-800:]}")
                time.sleep(0.5)
        self.log(f"engine: container {spec.body['_name']} started")
        return cid, {}

    def _randompassword(self, name: str, spec: Spec):
        alphabet = string.ascii_letters + string.digits + ("!@#%&*()-_=+[]{}<>:?" if spec.body.get("special", True) else "")
        value = "".join(secrets.choice(alphabet) for _ in range(spec.body["length"]))
        return f"random-{name}", {"result": value}

    # ----------------------------------------------------------------------------------------- helpers

    def logs(self, container: str) -> str:
        raw = self.api.call("GET", f"/containers/{container}/logs", query={"stdout": 1, "stderr": 1, "tail": 200})
        return _demux(raw)

    def destroy(self, retained: set[str]) -> list[str]:
        """`pulumi destroy` after `pulumi state unprotect --all`: reverse order of creation; resources named in
        `retained` (type::name with retain_on_delete) leave state but stay in the engine. Returns what stayed."""
        kept = []
        for item in reversed(self.created):
            ref = f"{item.type}::{item.name}"
            if ref in retained:
                kept.append(ref)
                continue
            if item.type == "docker:index/container:Container":
                self.api.call("DELETE", f"/containers/{item.id}", query={"force": "true", "v": "false"}, ok=(204, 404))
            elif item.type == "docker:index/network:Network":
                self.api.call("DELETE", f"/networks/{item.id}", ok=(204, 404))
            elif item.type == "docker:index/volume:Volume":
                self.api.call("DELETE", f"/volumes/{item.id}", ok=(204, 404))
            # Images stay local (the provider's Image is not removed from the host on delete either);
            # random values and providers exist only in state.
        self.created = []
        return kept


def _tar(name: str, content: str, executable: bool) -> bytes:
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o755 if executable else 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _demux(raw: bytes) -> str:
    """Docker's multiplexed log stream (8-byte frame headers) as text."""
    out, i = [], 0
    while i + 8 <= len(raw):
        size = int.from_bytes(raw[i + 4:i + 8], "big")
        out.append(raw[i + 8:i + 8 + size])
        i += 8 + size
    return b"".join(out).decode(errors="replace") if out else raw.decode(errors="replace")

