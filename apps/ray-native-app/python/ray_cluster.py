"""The app's stored procedures (Snowpark Python, imported by setup_script.sql): create the compute pools and
services from the spec files shipped in this version, report status, logs and endpoints, scale, tear down.

Every handler takes the Snowpark session first; nothing here imports Snowpark, so the same code runs under
tests with a fake session. Spec files come from catalog.json, written at deploy time from the renderer the
`spcs` stack uses (components/spcs/specs.py): a head spec per family, a worker spec template per family.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from typing import Any

SERVICES_SCHEMA = "services"
APP_ROLE = "app_user"
GROUP = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
RESOURCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESERVED_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")  # Ray derives these from the node
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
MAX_NODES = 100
AUTO_SUSPEND_SECS = 3600  # an idle pool suspends after an hour
EGRESS_REFERENCE = "egress_eai"
GRAFANA_PASSWORD_BYTES = 24


# ------------------------------------------------------------------------------------------- helpers


def load_catalog() -> dict:
    """catalog.json sits beside this module in the procedure's import directory."""
    directory = sys._xoptions.get("snowflake_import_directory") or os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(directory, "catalog.json")) as handle:
        return json.load(handle)


def rows(session: Any, statement: str) -> list[dict]:
    return [{str(k).lower(): v for k, v in row.as_dict().items()} for row in session.sql(statement).collect()]


def run(session: Any, statement: str) -> None:
    session.sql(statement).collect()


def app_name(session: Any) -> str:
    return str(rows(session, "SELECT CURRENT_DATABASE() AS name")[0]["name"])


def pool_name(app: str, group: str) -> str:
    """Compute pools are account-level: the app's name keeps two installs apart."""
    return f"{app}_{group}_POOL".upper().replace("-", "_")


def service_name(group: str) -> str:
    return f"{SERVICES_SCHEMA}.RAY_{group.upper().replace('-', '_')}"


def quoted(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse(request: Any) -> dict:
    return json.loads(request) if isinstance(request, str) else dict(request or {})


def problems(request: dict, catalog: dict) -> list[str]:
    """Every problem with a start request, as `key: problem (allowed: ...)`."""
    out = []
    head = (request.get("head") or {}).get("instance_family")
    if head not in catalog["head"]:
        out.append(f"head.instance_family: {head!r} (allowed: {', '.join(sorted(catalog['head']))})")
    workers = request.get("workers") or []
    names = [w.get("name") for w in workers]
    for i, w in enumerate(workers):
        key = f"workers[{i}]"
        if not GROUP.match(str(w.get("name", ""))) or w.get("name") == "head":
            out.append(f"{key}.name: {w.get('name')!r} (allowed: lower case letters, digits and '-', not 'head')")
        if names.count(w.get("name")) > 1:
            out.append(f"{key}.name: {w.get('name')!r} is used twice (allowed: unique names)")
        if w.get("instance_family") not in catalog["worker"]:
            out.append(f"{key}.instance_family: {w.get('instance_family')!r} "
                       f"(allowed: {', '.join(sorted(catalog['worker']))})")
        out += custom_problems(key, w, catalog)
        low, high, least = w.get("min_nodes", 1), w.get("max_nodes", 1), catalog["min_pool_nodes"]
        if not (isinstance(low, int) and isinstance(high, int) and least <= low <= high <= MAX_NODES):
            out.append(f"{key}: min_nodes {low}, max_nodes {high} (allowed: {least} <= min <= max <= {MAX_NODES}; "
                       "a compute pool's MIN_NODES must be greater than 0, an idle pool suspends instead)")
    warehouse = request.get("warehouse")
    if warehouse is not None and not IDENTIFIER.match(str(warehouse)):
        out.append(f"warehouse: {warehouse!r} (allowed: a warehouse name granted to the app)")
    return out


def custom_problems(key: str, group: dict, catalog: dict) -> list[str]:
    """A custom group (with `resources`, optionally `image`): custom Ray resources steer work onto it."""
    resources, image = group.get("resources"), group.get("image")
    if resources is None and image is None:
        return []
    out = []
    if not (isinstance(resources, dict) and resources and all(
            RESOURCE.match(str(k)) and k not in RESERVED_RESOURCES and isinstance(v, int | float) and v > 0
            for k, v in resources.items())):
        out.append(f"{key}.resources: {resources!r} (allowed: a non-empty object of custom resource names "
                   f"to positive numbers, e.g. {{\"etl\": 1}}; not {', '.join(RESERVED_RESOURCES)})")
    if image is not None and image not in catalog["custom_images"]:
        out.append(f"{key}.image: {image!r} (allowed: {', '.join(sorted(catalog['custom_images'])) or 'none shipped'}, "
                   "or unset for the Ray image)")
    return out


def egress_clause(session: Any) -> str:
    """The bound external access integration, if the consumer bound one to the reference."""
    bound = rows(session, f"SELECT SYSTEM$GET_ALL_REFERENCES('{EGRESS_REFERENCE}') AS refs")
    refs = json.loads(bound[0]["refs"] or "[]") if bound else []
    return f" EXTERNAL_ACCESS_INTEGRATIONS = (reference('{EGRESS_REFERENCE}'))" if refs else ""


def require_token(session: Any, catalog: dict, name: str) -> None:
    """Specs with Ray's token read it through the `ray_auth_token` reference: without a bound SECRET no Ray
    container could start, so say so before creating anything."""
    reference = catalog.get("ray_token_reference")
    if not reference:
        return
    bound = rows(session, f"SELECT SYSTEM$GET_ALL_REFERENCES('{reference}') AS refs")
    if not (bound and json.loads(bound[0]["refs"] or "[]")):
        raise ValueError(f"{name}: reference {reference} is not bound (allowed: a generic-string SECRET holding Ray's "
                         f"token, bound with register_reference('{reference}', 'ADD', SYSTEM$REFERENCE('SECRET', "
                         "'<db.schema.secret>', 'PERSISTENT', 'READ', 'USAGE')))")


def create_pool(app: str, group: str, family: str, low: int, high: int) -> str:
    return (f"CREATE COMPUTE POOL IF NOT EXISTS {pool_name(app, group)} MIN_NODES = {low} MAX_NODES = {high} "
            f"INSTANCE_FAMILY = {family} AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = {AUTO_SUSPEND_SECS}")


# ------------------------------------------------------------------------------------------- handlers


def checked(name: str, request: Any, catalog: dict) -> dict:
    request = parse(request)
    found = problems(request, catalog)
    if found:
        raise ValueError(f"{name}: " + "; ".join(found))
    return request


def service_tail(session: Any, request: dict) -> str:
    tail = egress_clause(session)
    if request.get("warehouse"):
        tail += f" QUERY_WAREHOUSE = {request['warehouse']}"
    return tail


def create_group(session: Any, app: str, catalog: dict, w: dict, head_dns: str, tail: str) -> None:
    """A worker group's pool and service, its spec template filled with the head's DNS name (and for a custom
    group, its image and custom resources)."""
    group, low, high, family = w["name"], w.get("min_nodes", 1), w.get("max_nodes", 1), w["instance_family"]
    values = {catalog["head_host_var"]: head_dns}
    spec = catalog["worker"][family]
    if w.get("resources"):
        spec = catalog["custom_worker"][family]
        values[catalog["image_var"]] = catalog["custom_images"].get(w.get("image"), catalog["images"][family])
        values[catalog["resources_var"]] = json.dumps(w["resources"], sort_keys=True, separators=(",", ":"))
    using = ", ".join(f"{k} => {quoted(v)}" for k, v in values.items())
    run(session, create_pool(app, group, family, low, high))
    run(session, f"CREATE SERVICE IF NOT EXISTS {service_name(group)} IN COMPUTE POOL {pool_name(app, group)} "
                 f"FROM SPECIFICATION_TEMPLATE_FILE = {quoted(spec)} USING ({using}) "
                 f"MIN_INSTANCES = {low} MAX_INSTANCES = {high}{tail}")


def drop_group(session: Any, app: str, group: str) -> None:
    run(session, f"DROP SERVICE IF EXISTS {service_name(group)}")
    run(session, f"DROP COMPUTE POOL IF EXISTS {pool_name(app, group)}")


def start_cluster(session: Any, request: Any, catalog: dict | None = None) -> str:
    """Head first (workers need its DNS name), then a pool and a service per worker group."""
    catalog = catalog or load_catalog()
    request = checked("start_cluster", request, catalog)
    require_token(session, catalog, "start_cluster")
    app = app_name(session)
    tail = service_tail(session, request)
    if catalog.get("grafana_secret"):
        run(session, f"CREATE SECRET IF NOT EXISTS {catalog['grafana_secret']} TYPE = GENERIC_STRING "
                     f"SECRET_STRING = {quoted(secrets.token_urlsafe(GRAFANA_PASSWORD_BYTES))}")
    head_family = request["head"]["instance_family"]
    run(session, create_pool(app, "head", head_family, 1, 1))
    run(session, f"CREATE SERVICE IF NOT EXISTS {service_name('head')} IN COMPUTE POOL {pool_name(app, 'head')} "
                 f"FROM SPECIFICATION_FILE = {quoted(catalog['head'][head_family])} "
                 f"MIN_INSTANCES = 1 MAX_INSTANCES = 1{tail}")
    head_dns = head_dns_name(session)
    for w in request.get("workers") or []:
        create_group(session, app, catalog, w, head_dns, tail)
    # The consumer's roles reach the public endpoints through the app role.
    run(session, f"GRANT SERVICE ROLE {service_name('head')}!ALL_ENDPOINTS_USAGE TO APPLICATION ROLE {APP_ROLE}")
    return json.dumps({"head": service_name("head"), "head_dns_name": head_dns,
                       "workers": [service_name(w["name"]) for w in request.get("workers") or []]})


def resize_cluster(session: Any, request: Any, catalog: dict | None = None) -> str:
    """Brings a running cluster to `request` (start_cluster's shape): a group with the same instance family is
    scaled in place, one with another family is recreated, new groups are created and groups left out dropped;
    the warehouse is set on every service. The head stays (its family changes by stop and start)."""
    catalog = catalog or load_catalog()
    request = checked("resize_cluster", request, catalog)
    require_token(session, catalog, "resize_cluster")
    app = app_name(session)
    pools = {str(p["name"]).upper(): p for p in rows(session, f"SHOW COMPUTE POOLS LIKE '{app}\\_%'")}
    head_pool = pools.get(pool_name(app, "head"))
    if head_pool is None:
        raise ValueError("resize_cluster: no cluster running (allowed: start_cluster first)")
    if head_pool.get("instance_family") != request["head"]["instance_family"]:
        raise ValueError(f"resize_cluster: head.instance_family {request['head']['instance_family']!r}, running "
                         f"{head_pool.get('instance_family')!r} (allowed: the running one; stop and start to change it)")
    running = {str(s["name"]).upper() for s in rows(session, f"SHOW SERVICES IN SCHEMA {SERVICES_SCHEMA}")}
    tail, head_dns, changes = service_tail(session, request), head_dns_name(session), []
    wanted = {w["name"]: w for w in request.get("workers") or []}
    for group, w in wanted.items():
        pool = pools.get(pool_name(app, group))
        if pool is not None and pool.get("instance_family") == w["instance_family"]:
            scale_group(session, group, w.get("min_nodes", 1), w.get("max_nodes", 1), catalog)
            changes.append(f"scaled {group}")
            continue
        if pool is not None:
            drop_group(session, app, group)
        create_group(session, app, catalog, w, head_dns, tail)
        changes.append(f"{'recreated' if pool is not None else 'created'} {group}")
    for service in sorted(running - {service_name(g).split(".")[1] for g in [*wanted, "head"]}):
        group = service.removeprefix("RAY_").lower().replace("_", "-")
        drop_group(session, app, group)
        changes.append(f"dropped {group}")
    if request.get("warehouse"):
        for group in ["head", *wanted]:
            run(session, f"ALTER SERVICE {service_name(group)} SET QUERY_WAREHOUSE = {request['warehouse']}")
    return json.dumps({"changes": changes})


def head_dns_name(session: Any) -> str:
    found = rows(session, f"SHOW SERVICES LIKE 'RAY_HEAD' IN SCHEMA {SERVICES_SCHEMA}")
    if not found:
        raise RuntimeError(f"{service_name('head')} was not created")
    return str(found[0]["dns_name"])


def stop_cluster(session: Any) -> str:
    """Drops the app's services, then its compute pools (a pool with services cannot be dropped)."""
    app = app_name(session)
    dropped = []
    for service in rows(session, f"SHOW SERVICES IN SCHEMA {SERVICES_SCHEMA}"):
        run(session, f"DROP SERVICE IF EXISTS {SERVICES_SCHEMA}.{service['name']}")
        dropped.append(service["name"])
    for pool in rows(session, f"SHOW COMPUTE POOLS LIKE '{app}\\\\_%'"):
        run(session, f"ALTER COMPUTE POOL {pool['name']} STOP ALL")
        run(session, f"DROP COMPUTE POOL IF EXISTS {pool['name']}")
        dropped.append(pool["name"])
    return json.dumps({"dropped": dropped})


def scale_group(session: Any, group: str, min_nodes: int, max_nodes: int, catalog: dict | None = None) -> str:
    least = (catalog or load_catalog())["min_pool_nodes"]
    if not GROUP.match(group) or not least <= min_nodes <= max_nodes <= MAX_NODES:
        raise ValueError(f"scale_group: {group!r} {min_nodes}..{max_nodes} (allowed: a worker group, "
                         f"{least} <= min <= max <= {MAX_NODES})")
    app = app_name(session)
    run(session, f"ALTER COMPUTE POOL {pool_name(app, group)} SET MIN_NODES = {min_nodes} MAX_NODES = {max_nodes}")
    run(session, f"ALTER SERVICE {service_name(group)} SET MIN_INSTANCES = {min_nodes} "
                 f"MAX_INSTANCES = {max_nodes}")
    return json.dumps({"group": group, "min_nodes": min_nodes, "max_nodes": max_nodes})


def cluster_status(session: Any) -> str:
    services = []
    for service in rows(session, f"SHOW SERVICES IN SCHEMA {SERVICES_SCHEMA}"):
        containers = rows(session, f"SHOW SERVICE CONTAINERS IN SERVICE {SERVICES_SCHEMA}.{service['name']}")
        services.append({"name": service["name"], "status": service.get("status"),
                         "compute_pool": service.get("compute_pool"),
                         "containers": [{"instance": c.get("instance_id"), "container": c.get("container_name"),
                                         "status": c.get("status")} for c in containers]})
    return json.dumps({"services": services}, default=str)


def service_logs(session: Any, group: str, container: str, lines: int) -> str:
    if not GROUP.match(group) or not GROUP.match(container):
        raise ValueError(f"service_logs: {group!r}/{container!r} (allowed: a node group and a container name)")
    found = rows(session, f"SELECT SYSTEM$GET_SERVICE_LOGS('{service_name(group)}', 0, '{container}', "
                          f"{int(lines)}) AS logs")
    return str(found[0]["logs"]) if found else ""


def service_containers(session: Any) -> Any:
    """Every container of the app's services with its status (what the deploy waits on), as one table."""
    values = []
    for service in rows(session, f"SHOW SERVICES IN SCHEMA {SERVICES_SCHEMA}"):
        for c in rows(session, f"SHOW SERVICE CONTAINERS IN SERVICE {SERVICES_SCHEMA}.{service['name']}"):
            fields = (service["name"], c.get("instance_id"), c.get("container_name"), c.get("status"), c.get("message"))
            values.append("(" + ", ".join(quoted(str(v if v is not None else "")) for v in fields) + ")")
    columns = "service_name, instance_id, container_name, status, message"
    if not values:
        return session.sql(f"SELECT {', '.join(f'NULL::STRING AS {c}' for c in columns.split(', '))} WHERE FALSE")
    return session.sql(f"SELECT * FROM (VALUES {', '.join(values)}) AS t({columns})")


def service_endpoints(session: Any) -> Any:
    """SHOW ENDPOINTS of the head service: name, port, protocol, is_public, ingress_url."""
    return session.sql(f"SHOW ENDPOINTS IN SERVICE {service_name('head')}")


def cluster_options(session: Any) -> str:
    catalog = load_catalog()
    return json.dumps({"head": sorted(catalog["head"]), "worker": sorted(catalog["worker"]),
                       "monitoring": catalog["monitoring"], "jupyter": catalog["jupyter"], "raydp": catalog["raydp"]})
