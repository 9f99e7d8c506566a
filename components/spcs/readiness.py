"""Waiting until the cluster's services are READY and the head's public endpoints are provisioned, as a
dynamic resource on snowflake-connector-python (pulumi-snowflake has neither a wait nor the ingress URLs).

`ServiceEndpoints` polls, on create and whenever a spec changes: every container of every listed service
READY (`SHOW SERVICE CONTAINERS IN SERVICE`), then every public endpoint with an ingress host instead of
"Endpoints provisioning in progress..." (`SHOW ENDPOINTS IN SERVICE`). It gives up after `timeout_s` with
what is still pending, and at once when a container FAILED. Its output `urls` maps endpoint names to URLs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.spcs.sql import SnowflakeSqlProvider, register

HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.[a-z]{2,}$")
READY, FAILED = "READY", "FAILED"
TIMEOUT_S = 1800  # image pulls on a fresh GPU pool and ingress provisioning take minutes each
POLL_S = 15


def public_urls(rows: Sequence[dict[str, Any]] | None) -> dict[str, str | None]:
    """`SHOW ENDPOINTS` rows -> public endpoint name -> https URL (None while still provisioning)."""
    out: dict[str, str | None] = {}
    for row in rows or []:
        if str(row.get("is_public", "")).lower() != "true":
            continue
        host = str(row.get("ingress_url") or "").strip()
        out[str(row.get("name"))] = f"https://{host}" if HOSTNAME.match(host) else None
    return out


def not_ready(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Containers that are not READY, as `service/container[instance]: STATUS (message)`."""
    return [f"{r.get('service_name', '?')}/{r.get('container_name', '?')}[{r.get('instance_id', '?')}]: "
            f"{r.get('status', '?')} ({r.get('message', '')})" for r in rows if str(r.get("status")).upper() != READY]


class ServiceEndpointsProvider(SnowflakeSqlProvider):
    """Props: connection, containers (statements listing service containers), endpoints (a statement listing
    endpoints), revision (changes when a spec does), timeout_s."""

    def __init__(self, connect: Any = None, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None):
        super().__init__(connect)
        self._sleep, self._clock = sleep, clock  # tests only: a fake clock

    def wait(self, props: dict[str, Any]) -> dict[str, str | None]:
        sleep, clock = self._sleep or time.sleep, self._clock or time.monotonic
        cur = self.cursor(props["connection"])
        deadline = clock() + float(props["timeout_s"])
        while True:
            rows = [row for statement in props["containers"] for row in self.rows(cur, statement)]
            failed = [r for r in rows if str(r.get("status")).upper() == FAILED]
            if failed:
                raise RuntimeError("service containers FAILED: " + "; ".join(not_ready(failed)) +
                                   " (see SYSTEM$GET_SERVICE_LOGS for their logs, fix, and run `pulumi up` again)")
            waiting = not_ready(rows) if rows else ["no containers listed yet"]
            if not waiting:
                urls = public_urls(self.rows(cur, props["endpoints"]))
                waiting = [f"endpoint {n}: provisioning" for n, url in urls.items() if url is None]
                if not urls:
                    waiting = ["no public endpoints listed yet"]
                if not waiting:
                    return urls
            if clock() >= deadline:
                raise RuntimeError(f"not ready after {int(float(props['timeout_s']))} s: " + "; ".join(waiting) +
                                   " (nothing was undone: run `pulumi up` again to keep waiting)")
            sleep(POLL_S)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["endpoints"], outs={**props, "urls": self.wait(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("containers", "endpoints", "revision") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "urls": self.wait(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """`pulumi refresh` re-reads the URLs without waiting (an endpoint may have been re-provisioned)."""
        urls = public_urls(self.rows(self.cursor(props["connection"]), props["endpoints"]))
        return ReadResult(id_=id_, outs={**props, "urls": urls})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        return None  # reading changes nothing


class ServiceEndpoints(Resource, module="spcs", name="ServiceEndpoints"):
    """Created once the services are READY and their endpoints provisioned; `urls`: endpoint name -> URL."""

    urls: Output[dict[str, str | None]]

    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: ServiceEndpointsProvider | None = None):
        register(self, provider or ServiceEndpointsProvider(), name,
                 {"timeout_s": TIMEOUT_S, **props, "urls": None}, opts)
