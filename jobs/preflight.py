"""Capacity preflight: will the entrypoint's resource request ever be met, and is it met now?

Ray leaves a job whose entrypoint resources no node can offer PENDING forever, without a word. We compare
the request with the stack's `ray_capacity` (what each node type can ever offer, autoscaler maximum
included), which needs no network, and then with the nodes alive now (dashboard state API over HTTP, so it
works where the Ray client cannot reach the cluster, e.g. SPCS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stacks.contract import max_per_node

GIB = 1024**3


def requested_resources(
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: int | None = None,
    resources: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The entrypoint request in Ray's resource names, only what is actually asked for."""
    request = {"CPU": num_cpus, "GPU": num_gpus, "memory": memory, **(resources or {})}
    return {name: float(amount) for name, amount in request.items() if amount}


def format_amount(resource: str, amount: float) -> str:
    if resource == "memory":
        return f"{amount / GIB:g} GiB" if amount >= GIB / 10 else f"{amount:g} bytes"
    return f"{amount:g}"


def format_resources(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={format_amount(name, amount)}" for name, amount in resources.items())


def fits(request: Mapping[str, float], offer: Mapping[str, float]) -> bool:
    return all(float(offer.get(name, 0)) >= amount for name, amount in request.items())


def never_fits(request: Mapping[str, float], capacity: Mapping[str, Any]) -> str | None:
    """Why no node type in `ray_capacity` can ever run this request, or None if one can (or none is known)."""
    if not request or not capacity:
        return None
    possible = {name: kind for name, kind in capacity.items() if kind.get("max_nodes", 0) > 0}
    if any(fits(request, kind.get("resources", {})) for kind in possible.values()):
        return None
    best = max_per_node(capacity)
    for name, amount in request.items():
        if best.get(name, 0) < amount:
            offered = format_amount(name, best[name]) if name in best else "none"
            return (
                f"entrypoint asks for {name}={format_amount(name, amount)} but the largest node type offers "
                f"{name}={offered} (ray_capacity); Ray would leave this job PENDING forever"
            )
    kinds = "; ".join(f"{name}: {format_resources(kind.get('resources', {}))}" for name, kind in possible.items())
    return (
        f"entrypoint asks for {format_resources(request)} on one node, but no node type offers all of it "
        f"together ({kinds}) (ray_capacity); Ray would leave this job PENDING forever"
    )


def fits_now(request: Mapping[str, float], alive_totals: list[Mapping[str, float]]) -> bool:
    """Whether some node alive now has (in total, busy or not) what the request needs."""
    return not request or any(fits(request, totals) for totals in alive_totals)


def alive_node_totals(client: Any, timeout_s: float = 5.0) -> list[dict[str, float]]:
    """resources_total of every ALIVE node, from the dashboard's state API.

    Goes through the JobSubmissionClient's own request helper so it carries exactly the same headers
    (Snowflake token, Ray's token auth), cookies and TLS settings as the job calls (private API: Ray is pinned).
    """
    response = client._do_request("GET", "/api/v0/nodes?limit=10000&detail=true", timeout=timeout_s)
    response.raise_for_status()
    nodes = response.json()["data"]["result"]["result"]
    return [node.get("resources_total", {}) for node in nodes if node.get("state") == "ALIVE"]
