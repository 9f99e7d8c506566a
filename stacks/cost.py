"""What a stack costs per hour, from what its offline preview records (`./bin/preview STACK --cost`).

Billable things are read from the recorded resources, never from copies of stack config, so a change to a
stack flows through: GKE node pools and the cluster fee, the gcpvm head VM and the autoscaler's node types
(from the cluster.yaml the head's startup script carries), Cloud NAT gateways and their addresses (per VM they
serve), SPCS compute pools and warehouses, local Docker nodes (zero). What is billed by use, not by the hour
(NAT data processed, Cloud Build private pool minutes), is listed apart with its unit price. Prices come from
the dated tables in prices/ (a VM with GPUs billed apart: its machine type + count x each GPU's per-gpu-hour
entry); an entry not compared with its source says `checked: false` and the output says so.
A type missing from a table is "unknown": it is named and left out of the totals, never counted as zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from stacks.offline import Recording

PRICES_DIR = Path(__file__).resolve().parent.parent / "prices"
RAY_CONFIG_MARK = "RAY_PLATFORM_CLUSTER_CONFIG_END"  # heredoc around the autoscaler config (components/gcpvm/startup.py)
NODE_POOL = "gcp:container/nodePool:NodePool"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
COMPUTE_CLASS = "kubernetes:cloud.google.com/v1:ComputeClass"
GCE_INSTANCE = "gcp:compute/instance:Instance"
COMPUTE_POOL = "snowflake:index/computePool:ComputePool"
WAREHOUSE = "snowflake:index/warehouse:Warehouse"
NETWORK = "gcp:compute/network:Network"
ROUTER = "gcp:compute/router:Router"
ROUTER_NAT = "gcp:compute/routerNat:RouterNat"
WORKER_POOL = "gcp:cloudbuild/workerPool:WorkerPool"
CREDIT_PRICE_KEY = "ray-platform:credit_price_usd"
# One NAT address serves 64512 source ports (1024-65535); with static port allocation each VM takes
# minPortsPerVm of them, 64 by default: https://cloud.google.com/nat/docs/ports-and-addresses
NAT_PORTS_PER_IP, NAT_DEFAULT_PORTS_PER_VM = 64512, 64
MODELS = ("spot", "flex-start", "on-demand")  # the GKE provisioning models, cheapest first


@dataclass
class Item:
    """One billable thing: a node pool, node type, compute pool, warehouse or fee."""

    name: str
    provider: str
    sku: str
    model: str
    region: str
    min: int
    max: int
    price: float | None  # USD per unit-hour; None: not in the price table
    unit: str
    cap: float | None = None  # a flat USD per hour once the count passes cap_over (a Cloud NAT gateway)
    cap_over: int | None = None
    # The table entries the price adds up, with counts: the machine type, then each GPU billed apart from it.
    parts: tuple[tuple[str, int], ...] = ()

    @property
    def per_hour(self) -> tuple[float, float] | None:
        if self.price is None:
            return None
        return self._hourly(self.min), self._hourly(self.max)

    def _hourly(self, count: int) -> float:
        if self.cap is not None and self.cap_over is not None and count > self.cap_over:
            return self.cap
        return count * self.price


@dataclass
class Usage:
    """Billed by use, not by the hour: a unit price, never in the hourly totals."""

    name: str
    sku: str
    region: str
    price: float | None
    unit: str


def load_prices(provider: str) -> dict[str, Any]:
    return yaml.safe_load((PRICES_DIR / f"{provider}.yaml").read_text())


def _entry(table: dict, sku: str, model: str, region: str) -> dict | None:
    for entry in table["entries"]:
        if entry["sku"] == sku and entry.get("model", "on-demand") == model and entry.get("region", "*") in (region, "*"):
            return entry
    return None


def _gcp_price(table: dict, sku: str, model: str, region: str) -> tuple[float | None, str]:
    entry = _entry(table, sku, model, region)
    return (None, "node-hour") if entry is None else (float(entry["price"]), entry["unit"])


def _checked(table: dict, entry: dict) -> bool:
    """An entry's figure was compared with its source (`checked` per entry, else the table's)."""
    return entry.get("checked", table.get("checked")) is True


def _accelerators(config: dict, sku: str, table: dict) -> list[tuple[str, int]]:
    """Attached GPUs not bundled in the machine type's price, as (type, count); a3/a2/g2 prices include theirs.
    The autoscaler's node configs name the type by URL (projects/P/zones/Z/acceleratorTypes/TYPE)."""
    if (table.get("machine_types") or {}).get(sku, {}).get("gpus"):
        return []
    return [(str(a.get("type", a.get("acceleratorType", "?"))).rsplit("/", 1)[-1],
             int(a.get("count", a.get("acceleratorCount", 1))))
            for a in config.get("guestAccelerators") or config.get("guest_accelerators") or []]


def _gcp_item(name: str, sku: str, model: str, region: str, low: int, high: int, config: dict, table: dict) -> Item:
    """A GCE machine: its machine type plus count x each GPU billed apart (per gpu-hour), unknown unless the
    table has every part, never the machine alone."""
    gpus = _accelerators(config, sku, table)
    parts = ((sku, 1), *gpus)
    entries = [_entry(table, part, model, region) for part, _ in parts]
    price = None if None in entries else sum(count * float(e["price"])
                                             for (_, count), e in zip(parts, entries, strict=True))
    label = sku + (" + " + ", ".join(f"{count} x {gpu}" for gpu, count in gpus) if gpus else "")
    unit = "node-hour" if entries[0] is None else entries[0]["unit"]
    return Item(name, "gcp", label, model, region, int(low), int(high), price, unit, parts=parts)


def _spot(config: dict) -> bool:
    """Spot or preemptible scheduling, as GCE spells either (provisioningModel SPOT is what gcpvm sets)."""
    scheduling = config.get("scheduling") or {}
    return bool(scheduling.get("preemptible")) or scheduling.get("provisioningModel") == "SPOT"


def _pool_model(config: dict) -> str:
    return "spot" if config.get("spot") or config.get("preemptible") else \
        "flex-start" if config.get("flexStart") else "on-demand"


def _gke(resources: list[dict], table: dict) -> tuple[list[Item], list[tuple[set[str] | None, int, int]]]:
    """Node pools and the cluster fee, and each pool's nodes with the networks they have an interface in."""
    items, vms = [], []
    cluster_networks = {r["inputs"].get("network") for r in resources if r["type"] == GKE_CLUSTER}
    for r in resources:
        if r["type"] == GKE_CLUSTER:
            price, unit = _gcp_price(table, "gke-cluster-management", "on-demand", "*")
            items.append(Item(f"cluster {r['name']}", "gcp", "gke-cluster-management", "on-demand",
                              r["inputs"].get("location", ""), 1, 1, price, unit))
        elif r["type"] == NODE_POOL:
            inputs = r["inputs"]
            scaling, config = inputs.get("autoscaling") or {}, inputs.get("nodeConfig") or {}
            zones = max(1, len(inputs.get("nodeLocations") or []))
            low = scaling.get("totalMinNodeCount", scaling.get("minNodeCount", 0) * zones)
            high = scaling.get("totalMaxNodeCount", scaling.get("maxNodeCount", 0) * zones)
            if not scaling:
                low = high = inputs.get("nodeCount", inputs.get("initialNodeCount", 0)) * zones
            region, model = inputs.get("location", ""), _pool_model(config)
            sku = config.get("machineType", "e2-medium")  # GKE's default machine type
            items.append(_gcp_item(f"node pool {inputs.get('name', r['name'])}", sku, model, region, low, high,
                                   config, table))
            extra = ((inputs.get("networkConfig") or {}).get("additionalNodeNetworkConfigs") or [])
            networks = {_network_name(n, resources) for n in cluster_networks | {a.get("network") for a in extra}}
            vms.append((networks, int(low), int(high)))
    return items, vms


def _network_name(ref: str | None, resources: list[dict]) -> str | None:
    """A network's name from a reference to it: its name, its self link, or the id the preview's mocks gave it."""
    for r in resources:
        if r["type"] == NETWORK and ref:
            name = r["inputs"].get("name", r["name"])
            if ref in (name, r["name"]) or ref.endswith(f"/networks/{name}") or ref.startswith(f"{r['name']}-"):
                return name
    return ref


def _nat(resources: list[dict], vms: list[tuple[set[str] | None, int, int]], table: dict) -> list[Item]:
    """Each Cloud NAT gateway, billed per VM it serves up to a cap, and its addresses
    (https://cloud.google.com/nat/pricing). A VM counts when it has an interface in the gateway's network;
    VMs whose networks the preview cannot tell (None) count for every gateway, so the figure errs high."""
    routers = {r["inputs"].get("name", r["name"]): r["inputs"].get("network") for r in resources if r["type"] == ROUTER}
    items = []
    for r in resources:
        if r["type"] != ROUTER_NAT:
            continue
        inputs = r["inputs"]
        network = _network_name(routers.get(inputs.get("router")), resources)
        served = [(low, high) for networks, low, high in vms if networks is None or network in networks]
        low, high = sum(v[0] for v in served), sum(v[1] for v in served)
        name, region = inputs.get("name", r["name"]), inputs.get("region", "")
        entry = _entry(table, "cloud-nat-gateway", "on-demand", region)
        capped = entry is not None and entry.get("cap") is not None
        items.append(Item(f"nat {name}", "gcp", "cloud-nat-gateway", "on-demand", region, low, high,
                          None if entry is None else float(entry["price"]), "vm-hour",
                          float(entry["cap"]) if capped else None, int(entry["cap_vms"]) if capped else None))
        ports = inputs.get("minPortsPerVm") or NAT_DEFAULT_PORTS_PER_VM
        if inputs.get("natIpAllocateOption") == "MANUAL_ONLY":
            ips_low = ips_high = len(inputs.get("natIps") or [])
        else:  # AUTO_ONLY: Google adds addresses as the VMs' ports need them
            ips_low, ips_high = (ceil(n * ports / NAT_PORTS_PER_IP) for n in (low, high))
        price, unit = _gcp_price(table, "cloud-nat-ip", "on-demand", region)
        items.append(Item(f"nat {name} addresses", "gcp", "cloud-nat-ip", "on-demand", region, ips_low, ips_high,
                          price, unit if price is not None else "ip-hour"))
    return items


def _usage(resources: list[dict], table: dict) -> list[Usage]:
    """What bills by use: data through each NAT gateway, build minutes on a Cloud Build private pool."""
    found = []
    for r in resources:
        inputs = r["inputs"]
        if r["type"] == ROUTER_NAT:
            sku, region, name = "cloud-nat-data", inputs.get("region", ""), f"nat {inputs.get('name', r['name'])} data"
        elif r["type"] == WORKER_POOL:
            machine = (inputs.get("workerConfig") or {}).get("machineType", "e2-standard-2")  # the API's default
            sku, region = f"cloud-build-private-pool-{machine}", inputs.get("location", "")
            name = f"build pool {inputs.get('name', r['name'])}"
        else:
            continue
        entry = _entry(table, sku, "on-demand", region)
        found.append(Usage(name, sku, region, None if entry is None else float(entry["price"]),
                           "?" if entry is None else entry["unit"]))
    return found


def _autoscaler_config(script: str) -> dict | None:
    parts = script.split(RAY_CONFIG_MARK)
    if len(parts) < 3:
        return None
    return yaml.safe_load(parts[1].split("\n", 1)[1])


def _gcpvm(resources: list[dict], table: dict) -> tuple[list[Item], list[tuple[set[str] | None, int, int]]]:
    """The head VM and the autoscaler's node types; all of them in the stack's one network."""
    items = []
    for r in resources:
        if r["type"] != GCE_INSTANCE:
            continue
        inputs = r["inputs"]
        config = _autoscaler_config(inputs.get("metadataStartupScript") or "") or {}
        region = (config.get("provider") or {}).get("region") or inputs.get("zone", "").rsplit("-", 1)[0]
        model = "spot" if _spot(inputs) else "on-demand"
        items.append(_gcp_item(f"vm {r['name']}", inputs["machineType"], model, region, 1, 1, inputs, table))
        head = config.get("head_node_type")
        for name, node in (config.get("available_node_types") or {}).items():
            if name == head:
                continue  # the head is the VM above, not one the autoscaler launches
            node_config = node.get("node_config") or {}
            model = "spot" if _spot(node_config) else "on-demand"
            items.append(_gcp_item(f"node type {name}", node_config.get("machineType", "?"), model, region,
                                   node.get("min_workers", 0), node.get("max_workers", config.get("max_workers", 0)),
                                   node_config, table))
    return items, [(None, i.min, i.max) for i in items]


def machines(document: dict[str, Any]) -> list[Item]:
    """A gke or gcpvm stack's GCE machines (node pools, the head VM, node types), priced or not, with their parts:
    what stacks/quota.py counts."""
    resources, table = document.get("resources", []), load_prices("gcp")
    return (_gke if document.get("environment") == "gke" else _gcpvm)(resources, table)[0]


def _spcs(resources: list[dict], table: dict, credit_price: float) -> list[Item]:
    credits = {e["sku"]: float(e["credits"]) for e in table["entries"]}
    items = []
    for r in resources:
        inputs = r["inputs"]
        if r["type"] == COMPUTE_POOL:
            sku, kind, unit = inputs["instanceFamily"], "pool", "node-hour"
            low, high = inputs.get("minNodes", 1), inputs.get("maxNodes", 1)
        elif r["type"] == WAREHOUSE:
            # A warehouse bills only while it runs (auto-suspend): none at minimum, one cluster at most.
            sku, kind, unit = f"warehouse-{inputs.get('warehouseSize', 'XSMALL').upper()}", "warehouse", "cluster-hour"
            low, high = 0, int(inputs.get("maxClusterCount", 1))
        else:
            continue
        rate = credits.get(sku)
        items.append(Item(f"{kind} {inputs.get('name', r['name'])}", "snowflake", sku, "on-demand", "*",
                          int(low), int(high), None if rate is None else rate * credit_price, unit))
    return items


def _local(document: dict) -> list[Item]:
    capacity = document.get("outputs", {}).get("ray_capacity") or {}
    price = float(load_prices("local")["entries"][0]["price"])
    return [Item(f"node type {name}", "local", "docker-container", "on-demand", "*",
                 int(node.get("min_nodes", 0)), int(node.get("max_nodes", 0)), price, "node-hour")
            for name, node in capacity.items()]


def _compute_class_models(resources: list[dict], items: list[Item]) -> dict[str, Any] | None:
    """GKE: the compute class's pools, were every node of them provisioned by one model, and the blend."""
    classes = [r for r in resources if r["type"] == COMPUTE_CLASS]
    if not classes:
        return None
    table = load_prices("gcp")
    rules = [rule for c in classes for rule in c["inputs"].get("spec", {}).get("priorities", [])]
    order = [p for rule in rules for p in rule.get("nodepools", [])]
    pools = set(order)
    members = [i for i in items if i.name.removeprefix("node pool ") in pools]
    if not members:
        return None
    nodes = sum(i.max for i in members)
    sku, region = members[0].sku, members[0].region
    by_model = {}
    for model in MODELS:
        price, _ = _gcp_price(table, sku, model, region)
        by_model[model] = None if price is None else round(nodes * price, 2)
    blended = None if any(i.price is None for i in members) else round(sum(i.per_hour[1] for i in members), 2)
    return {"nodes_at_max": nodes, "sku": sku, "max_per_hour": by_model, "blended_worst_case": blended,
            "order": order}


def cost(document: dict[str, Any], credit_price: float | None = None) -> dict[str, Any]:
    """The `cost` object of `--json`: currency, totals at min/max scale, one entry per billable item, what is
    billed by use, and which of the prices used were never compared with their source."""
    environment, resources = document.get("environment", "local"), document.get("resources", [])
    provider = "gcp" if environment in ("gke", "gcpvm") else "snowflake" if environment.startswith("spcs") else "local"
    usage: list[Usage] = []
    table = load_prices(provider)
    if provider == "gcp":
        items, vms = _gke(resources, table) if environment == "gke" else _gcpvm(resources, table)
        items += _nat(resources, vms, table)
        usage = _usage(resources, table)
    elif provider == "snowflake":
        items = _spcs(resources, table, credit_price if credit_price is not None else table["credit_price"]["price"])
    else:
        items = _local(document)
    known = [i.per_hour for i in items if i.price is not None]
    used = _used(provider, table, items, usage, credit_price)
    unchecked = sorted({label for label, entry in used if not _checked(table, entry)})
    result = {
        "currency": table["currency"],
        "per_hour": {"min": round(sum(p[0] for p in known), 2), "max": round(sum(p[1] for p in known), 2)},
        "by_item": [{**_public(i), "per_hour": None if i.per_hour is None else
                     {"min": round(i.per_hour[0], 4), "max": round(i.per_hour[1], 4)}} for i in items],
        "billed_by_use": [asdict(u) for u in usage],
        "unknown": [f"{i.name}: {i.sku} ({i.model}, {i.region}{_missing(table, i)})" for i in items if i.price is None]
        + [f"{u.name}: {u.sku} ({u.region})" for u in usage if u.price is None],
        # The oldest figure used: a table assembled today may hold figures read months ago.
        "prices_as_of": min((str(e.get("as_of", table["as_of"])) for _, e in used), default=table["as_of"]),
        "prices_checked": not unchecked,
        "unchecked": unchecked,
        "source": f"prices/{provider}.yaml",
    }
    if environment.startswith("spcs"):
        result["credit_price"] = credit_price if credit_price is not None else table["credit_price"]["price"]
    if environment == "gke":
        models = _compute_class_models(resources, items)
        if models:
            result["provisioning_models"] = models
    return result


def _public(item: Item) -> dict[str, Any]:
    """An item as --json shows it: `parts` is how its price was found, already named by its sku label."""
    return {k: v for k, v in asdict(item).items() if k != "parts"}


def _missing(table: dict, item: Item) -> str:
    """Which entries a machine with GPUs billed apart lacks (the label alone names both parts)."""
    if len(item.parts) < 2:
        return ""
    absent = [sku for sku, _ in item.parts if _entry(table, sku, item.model, item.region) is None]
    return f"; no entry for {' and '.join(absent)}" if absent else ""


def _used(provider: str, table: dict, items: list[Item], usage: list[Usage],
          credit_price: float | None) -> list[tuple[str, dict]]:
    """(label, table entry) for every figure this stack's cost rests on."""
    if provider == "local":
        return [("docker-container", table["entries"][0])]
    if provider == "snowflake":
        found = {e["sku"]: e for e in table["entries"]}
        used = [(i.sku, found[i.sku]) for i in items if i.sku in found]
        if credit_price is None:  # a price set in the stack or on the command line is the user's own
            used.append(("credit_price", table["credit_price"]))
        return used
    keys = [(sku, i.model, i.region) for i in items for sku, _ in (i.parts or ((i.sku, 1),))]
    keys += [(u.sku, "on-demand", u.region) for u in usage]
    return [(f"{sku} ({model}, {region})", entry) for sku, model, region in keys
            if (entry := _entry(table, sku, model, region)) is not None]


def credit_price(recording: Recording, given: float | None = None) -> float | None:
    """The Snowflake credit price to use: the one given (--credit-price), else the stack's `credit_price_usd`
    (validated by the config model when the program ran), else None: the table's default."""
    configured = recording.config.get(CREDIT_PRICE_KEY)
    return given if given is not None else None if configured is None else float(configured)


def text(result: dict[str, Any]) -> str:
    """The `--cost` table."""
    rows = [("ITEM", "TYPE", "MODEL", "MIN", "MAX", "PRICE", "PER", "MIN/H", "MAX/H")]
    for i in result["by_item"]:
        price = "unknown" if i["price"] is None else f"{i['price']:.4f}"
        totals = ("?", "?") if i["per_hour"] is None else (f"{i['per_hour']['min']:.2f}", f"{i['per_hour']['max']:.2f}")
        per = i["unit"] + (f" ({i['cap']:.3f}/h over {i['cap_over']})" if i.get("cap") is not None else "")
        rows.append((i["name"], i["sku"], i["model"], str(i["min"]), str(i["max"]), price, per, *totals))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    currency, total = result["currency"], result["per_hour"]
    lines += ["", f"Total per hour: {total['min']:.2f} {currency} at minimum scale, {total['max']:.2f} {currency} "
              f"at maximum (prices as of {result['prices_as_of']}, {result['source']})"]
    used = [u for u in result.get("billed_by_use", []) if u["price"] is not None]
    if used:
        lines.append("Billed by use, not in the totals: " + "; ".join(
            f"{u['name']} {u['price']:.4f} {currency} per {u['unit']}" for u in used))
    if result.get("unchecked"):
        lines.append(f"Prices UNCHECKED (estimates not compared with their source, {result['source']}): "
                     f"{', '.join(result['unchecked'])}; confirm them before budgeting.")
    if "credit_price" in result:
        lines.append(f"Snowflake credit price: {result['credit_price']:.2f} {currency} "
                     "(stack config credit_price_usd, or --credit-price, to change)")
    models = result.get("provisioning_models")
    if models:
        worst = models["blended_worst_case"]
        per = ", ".join(f"{m} {'unknown' if v is None else f'{v:.2f}'}" for m, v in models["max_per_hour"].items())
        lines.append(f"Compute class ({' > '.join(models['order'])}), {models['nodes_at_max']} x {models['sku']} at max: "
                     f"{per} {currency}/h; blended worst case (every pool at its max) "
                     f"{'unknown' if worst is None else f'{worst:.2f}'}")
    if result["unknown"]:
        lines.append("Not in the price table (left out of the totals): " + "; ".join(result["unknown"]))
    return "\n".join(lines)
