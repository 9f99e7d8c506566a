"""An in-memory Compute Engine (and the bits of IAM / Resource Manager that Ray's GCP bootstrap touches).

`FakeApi` looks like a `googleapiclient` discovery resource (`api.instances().list(...).execute()`), so Ray's own
`GCPNodeProvider` and `bootstrap_gcp` run on it unchanged; every call is recorded as (path, arguments).
`FakeCompute` keeps instances the way the API returns them: labels (checked like GCE checks them), status,
an internal IP, a label fingerprint that `setLabels` must quote, and Ray's filter syntax for `list`.
A virtual clock lets a test schedule events (a worker whose insert was in flight appears one second later).
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

import httplib2
from googleapiclient.errors import HttpError

# https://cloud.google.com/compute/docs/labeling-resources#requirements
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
# The filter clauses Ray's provider (node.py) and our cleanup write; anything else is refused, not guessed.
LABEL_EQ = re.compile(r"\(labels\.([a-z0-9_-]+) = ([a-z0-9_-]+)\)")
STATUS_EQ = re.compile(r"\(status = ([A-Z]+)\)")
LABEL_ABSENT = re.compile(r"\(NOT labels\.([a-z0-9_-]+):\*\)")


def http_error(status: int, message: str) -> HttpError:
    return HttpError(httplib2.Response({"status": status}), message.encode())


class _Request:
    def __init__(self, api: FakeApi, path: str, kwargs: dict[str, Any]):
        self.api, self.path, self.kwargs = api, path, kwargs

    def execute(self, http: Any = None, num_retries: int = 0) -> Any:
        return self.api.call(self.path, self.kwargs)


class _Collection:
    def __init__(self, api: FakeApi, path: str):
        self._api, self._path = api, path

    def __getattr__(self, name: str) -> Callable[..., Any]:
        path = f"{self._path}.{name}"

        def member(**kwargs: Any) -> Any:
            # Collections are called without arguments (`projects()`), methods with them (`get(name=...)`).
            return _Request(self._api, path, kwargs) if kwargs else _Collection(self._api, path)
        return member


class _Http:
    credentials = None  # Ray wraps the client's http in a new AuthorizedHttp per call; nothing is sent


class FakeApi:
    """A discovery-style client whose calls go to `handler(path, kwargs)`; every call is recorded."""

    def __init__(self, handler: Callable[[str, dict[str, Any]], Any]):
        self._handler = handler
        self._http = _Http()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda: _Collection(self, name)

    def call(self, path: str, kwargs: dict[str, Any]) -> Any:
        with self._lock:
            self.calls.append((path, copy.deepcopy(kwargs)))
            return self._handler(path, kwargs)

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


def matches(instance: dict[str, Any], filter_expr: str) -> bool:
    """Ray's filter syntax: ANDed label equalities, ORed statuses, absent labels."""
    rest = LABEL_ABSENT.sub("", STATUS_EQ.sub("", LABEL_EQ.sub("", filter_expr)))
    if re.sub(r"[()\s]|AND|OR", "", rest):
        raise ValueError(f"filter syntax this fake does not know: {filter_expr!r}")
    labels = instance.get("labels", {})
    statuses = STATUS_EQ.findall(filter_expr)
    return (all(labels.get(k) == v for k, v in LABEL_EQ.findall(filter_expr))
            and (not statuses or instance["status"] in statuses)
            and not any(k in labels for k in LABEL_ABSENT.findall(filter_expr)))


class FakeCompute:
    """One project's zone of instances, as the Compute Engine API v1 shows them."""

    def __init__(self, project: str, zone: str, subnet_prefix: str = "10.10.0.", stop_s: float = 0):
        self.project, self.zone = project, zone
        self.stop_s = stop_s  # how long a stop takes: STOPPING, then TERMINATED
        self.instances: dict[str, dict[str, Any]] = {}
        self.now = 0.0
        self.events: list[tuple[float, Callable[[], None]]] = []  # (when, action) on the virtual clock
        self._ips = (f"{subnet_prefix}{i}" for i in itertools.count(2))
        self._ids = itertools.count(1000)
        self.api = FakeApi(self._handle)

    # -- the virtual clock -------------------------------------------------------------------------------
    def at(self, when: float, action: Callable[[], None]) -> None:
        self.events.append((when, action))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._fire()

    def _fire(self) -> None:
        due = [e for e in self.events if e[0] <= self.now]
        self.events = [e for e in self.events if e[0] > self.now]
        for _, action in sorted(due, key=lambda e: e[0]):
            action()

    # -- state ---------------------------------------------------------------------------------------------
    def add(self, body: dict[str, Any], status: str = "RUNNING") -> dict[str, Any]:
        """An instance as `instances.get` returns it, from an insert body."""
        labels = body.get("labels", {})
        for key, value in labels.items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(str(value)):
                raise http_error(400, f"Invalid label {key}={value!r}")
        if body["name"] in self.instances:
            raise http_error(409, f"The resource '{body['name']}' already exists")
        instance = copy.deepcopy(body)
        instance.update(id=str(next(self._ids)), status=status, zone=self.zone,
                        labelFingerprint=f"fp-{next(self._ids)}")
        nics = instance.setdefault("networkInterfaces", [{}])
        nics[0]["networkIP"] = next(self._ips)
        self.instances[body["name"]] = instance
        return instance

    def _get(self, name: str) -> dict[str, Any]:
        if name not in self.instances:
            raise http_error(404, f"The resource 'projects/{self.project}/zones/{self.zone}/instances/{name}' "
                                  "was not found")
        return self.instances[name]

    def _operation(self, kind: str, target: str) -> dict[str, Any]:
        return {"name": f"operation-{kind}-{target}-{next(self._ids)}", "status": "DONE", "operationType": kind}

    def _handle(self, path: str, kw: dict[str, Any]) -> Any:
        self._fire()
        if path == "zoneOperations.get":
            return {"name": kw["operation"], "status": "DONE"}
        if not path.startswith("instances.") or (kw.get("project"), kw.get("zone")) != (self.project, self.zone):
            raise http_error(400, f"{path} outside {self.project}/{self.zone}: {kw}")
        method = path.split(".", 1)[1]
        if method == "list":
            found = [copy.deepcopy(i) for i in self.instances.values() if matches(i, kw.get("filter", ""))]
            return {"items": found} if found else {}  # GCE omits `items` when nothing matches
        if method == "insert":
            body = kw["body"]
            if not re.match(r"^zones/[a-z0-9-]+/machineTypes/[a-z0-9-]+$|^https://", body["machineType"]):
                raise http_error(400, f"machineType must be a URL: {body['machineType']}")
            self.add(body)
            return self._operation("insert", body["name"])
        instance = self._get(kw["instance"])
        if method == "get":
            return copy.deepcopy(instance)
        if method == "delete":
            del self.instances[kw["instance"]]
            return self._operation("delete", kw["instance"])
        if method == "stop":
            instance["status"] = "STOPPING"
            self.at(self.now + self.stop_s, lambda: instance.update(status="TERMINATED"))
            self._fire()
            return self._operation("stop", kw["instance"])
        if method == "start":
            instance["status"] = "RUNNING"
            return self._operation("start", kw["instance"])
        if method == "setLabels":
            body = kw["body"]
            if body.get("labelFingerprint") != instance["labelFingerprint"]:
                raise http_error(412, "Labels fingerprint either invalid or resource labels have changed")
            for key, value in body["labels"].items():
                if not LABEL_KEY.match(key) or not LABEL_VALUE.match(str(value)):
                    raise http_error(400, f"Invalid label {key}={value!r}")
            instance["labels"] = dict(body["labels"])
            instance["labelFingerprint"] = f"fp-{next(self._ids)}"
            return self._operation("setLabels", kw["instance"])
        raise http_error(400, f"the fake Compute API has no {path}")

    # -- what tests read -----------------------------------------------------------------------------------
    def calls(self, method: str) -> list[dict[str, Any]]:
        return [kw for path, kw in self.api.calls if path == f"instances.{method}"]

    def inserted(self) -> list[dict[str, Any]]:
        """The bodies Ray sent to instances.insert, in order."""
        return [kw["body"] for kw in self.calls("insert")]

    def deleted(self) -> list[str]:
        return [kw["instance"] for kw in self.calls("delete")]


class ComputeRestAdapter:
    """The cleanup's ComputeClient (REST calls) on top of the fake, through the same recorded API."""

    def __init__(self, fake: FakeCompute):
        self.fake = fake

    def _run(self, method: str, **kw: Any) -> Any:
        return self.fake.api.call(f"instances.{method}", {"project": self.fake.project, "zone": self.fake.zone, **kw})

    def list_instances(self, project: str, zone: str, filter_expr: str) -> list[dict[str, Any]]:
        assert (project, zone) == (self.fake.project, self.fake.zone)
        return self._run("list", filter=filter_expr).get("items", [])

    def get_instance(self, project: str, zone: str, name: str) -> dict[str, Any] | None:
        try:
            return self._run("get", instance=name)
        except HttpError as e:
            if e.resp.status == 404:
                return None
            raise

    def delete_instance(self, project: str, zone: str, name: str) -> None:
        try:
            self._run("delete", instance=name)
        except HttpError as e:
            if e.resp.status != 404:
                raise

    def stop_instance(self, project: str, zone: str, name: str) -> None:
        self._run("stop", instance=name)
