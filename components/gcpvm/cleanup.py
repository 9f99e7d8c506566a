"""`pulumi destroy` leaves no worker VM behind: a dynamic resource whose delete stops the head and waits until
it is down (so its autoscaler launches nothing more), then deletes every VM labelled as a worker of this cluster
until repeated listings find none.

It depends on the head VM and the network, so Pulumi deletes it before them. Credentials are read inside
`delete`, at run time (Application Default Credentials, as the gcp provider uses); nothing secret is in its
inputs or in the pickled provider kept in state. The provider is pickled by reference to this module, so
the program's directory must be importable where `pulumi destroy` runs (it is: the same checkout).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.gcpvm.autoscaler_config import CLOUD_PLATFORM_SCOPE
from components.gcpvm.ray_tags import CLUSTER_LABEL, KIND_LABEL

COMPUTE_API = "https://compute.googleapis.com/compute/v1"
DEFAULT_TIMEOUT_S = 600
POLL_S = 5.0
SETTLE_S = 30.0  # no worker in two listings this far apart: nothing was in flight


class ComputeClient(Protocol):
    def list_instances(self, project: str, zone: str, filter_expr: str) -> list[dict[str, Any]]: ...
    def get_instance(self, project: str, zone: str, name: str) -> dict[str, Any] | None: ...  # None: not found
    def delete_instance(self, project: str, zone: str, name: str) -> None: ...
    def stop_instance(self, project: str, zone: str, name: str) -> None: ...


@dataclass(frozen=True)
class Target:
    project: str
    zone: str
    cluster_name: str
    head_name: str

    @property
    def worker_filter(self) -> str:
        """Ray's own filter syntax: this cluster's label and the worker kind, nothing else."""
        return f"(labels.{CLUSTER_LABEL} = {self.cluster_name}) AND (labels.{KIND_LABEL} = worker)"


def stop_head(client: ComputeClient, target: Target, deadline: float, poll_s: float, sleep, clock) -> None:
    """Stop the head and wait until it is TERMINATED: only then can its autoscaler launch nothing more."""
    client.stop_instance(target.project, target.zone, target.head_name)
    while True:
        head = client.get_instance(target.project, target.zone, target.head_name)
        if head is None or head.get("status") == "TERMINATED":
            return
        if clock() > deadline:
            raise TimeoutError(f"head VM {target.head_name!r} is still {head.get('status')} after the stop; "
                               "its autoscaler may still launch workers")
        sleep(poll_s)


def terminate_workers(client: ComputeClient, target: Target, timeout_s: float = DEFAULT_TIMEOUT_S,
                      poll_s: float = POLL_S, settle_s: float = SETTLE_S, sleep=time.sleep,
                      clock=time.monotonic) -> list[str]:
    """Stop the head (waiting until it is down), then delete this cluster's workers until two listings at least
    settle_s apart find none: an insert the autoscaler sent just before the stop shows up a little later.
    Returns the names deleted, in order."""
    deadline = clock() + timeout_s
    stop_head(client, target, deadline, poll_s, sleep, clock)
    deleted: list[str] = []
    empty_since: float | None = None
    while True:
        alive = [i for i in client.list_instances(target.project, target.zone, target.worker_filter)
                 if i.get("labels", {}).get(CLUSTER_LABEL) == target.cluster_name]
        now = clock()
        if not alive:
            empty_since = now if empty_since is None else empty_since
            if now - empty_since >= settle_s:
                return deleted
        else:
            empty_since = None
            if now > deadline:
                names = ", ".join(i["name"] for i in alive)
                raise TimeoutError(f"worker VMs of cluster {target.cluster_name!r} still exist after {timeout_s:g} s: "
                                   f"{names}")
            for instance in alive:
                if instance["name"] not in deleted:
                    client.delete_instance(target.project, target.zone, instance["name"])
                    deleted.append(instance["name"])
        sleep(poll_s)


class RestComputeClient:
    """The Compute Engine REST API with Application Default Credentials, found when first used."""

    def __init__(self) -> None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        self._session = AuthorizedSession(credentials)

    def _url(self, project: str, zone: str, suffix: str = "") -> str:
        return f"{COMPUTE_API}/projects/{project}/zones/{zone}/instances{suffix}"

    def _ok(self, response) -> None:
        if response.status_code != 404:  # already gone is what we want
            response.raise_for_status()

    def list_instances(self, project: str, zone: str, filter_expr: str) -> list[dict[str, Any]]:
        items, token = [], None
        while True:
            params = {"filter": filter_expr, **({"pageToken": token} if token else {})}
            response = self._session.get(self._url(project, zone), params=params)
            if response.status_code == 404:
                return items
            response.raise_for_status()
            body = response.json()
            items += body.get("items", [])  # stopped (TERMINATED) VMs included: they still exist
            token = body.get("nextPageToken")
            if not token:
                return items

    def get_instance(self, project: str, zone: str, name: str) -> dict[str, Any] | None:
        response = self._session.get(self._url(project, zone, f"/{name}"))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def delete_instance(self, project: str, zone: str, name: str) -> None:
        self._ok(self._session.delete(self._url(project, zone, f"/{name}")))

    def stop_instance(self, project: str, zone: str, name: str) -> None:
        self._ok(self._session.post(self._url(project, zone, f"/{name}/stop")))


def _target(props: dict[str, Any]) -> Target:
    return Target(props["project"], props["zone"], props["cluster_name"], props["head_name"])


class WorkerCleanupProvider(ResourceProvider):
    """Nothing happens on create or update; delete terminates the cluster's workers."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        t = _target(props)
        return CreateResult(id_=f"{t.project}/{t.zone}/{t.cluster_name}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Never a replacement: a replacement's delete would stop the head in the middle of `pulumi up`.
        changed = {k for k in set(olds) | set(news) if k != "__provider" and olds.get(k) != news.get(k)}
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        terminate_workers(RestComputeClient(), _target(props), float(props.get("timeout_s", DEFAULT_TIMEOUT_S)))


class WorkerCleanup(pulumi.dynamic.Resource):
    """Deleted before the head and network (it depends on them): terminates the autoscaler's workers."""

    def __init__(self, name: str, target: Target, opts: pulumi.ResourceOptions | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        props = {"project": target.project, "zone": target.zone, "cluster_name": target.cluster_name,
                 "head_name": target.head_name, "timeout_s": timeout_s}
        super().__init__(WorkerCleanupProvider(), name, props, opts)
