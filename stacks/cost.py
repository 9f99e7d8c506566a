"""What a stack costs per hour, from what its offline preview records (`./bin/preview STACK --cost`).

Billable things are read from the recorded resources, never from copies of stack config, so a change to a
stack flows through: GKE node pools and the cluster fee, the gcpvm head VM and the autoscaler's node types
(from the cluster.yaml the head's startup script carries), SPCS compute pools and warehouses, local Docker
nodes (zero). Prices come from the dated tables in prices/. A type missing from a table is "unknown": it is
named and left out of the totals, never counted as zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

PRICES_DIR = Path(__file__).resolve().parent.parent / "prices"
RAY_CONFIG_MARK = "RAY_PLATFORM_CLUSTER_CONFIG_END"  # heredoc around the autoscaler config (components/gcpvm/startup.py)
NODE_POOL = "gcp:container/nodePool:NodePool"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
COMPUTE_CLASS = "kubernetes:cloud.google.com/v1:ComputeClass"
GCE_INSTANCE = "gcp:compute/instance:Instance"
COMPUTE_POOL = "snowflake:index/computePool:ComputePool"
WAREHOUSE = "snowflake:index/warehouse:Warehouse"
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

    @property
    def per_hour(self) -> tuple[float, float] | None:
        return None if self.price is None else (self.min * self.price, self.max * self.price)


def load_prices(provider: str) -> dict[str, Any]:
    return yaml.safe_load((PRICES_DIR / f"{provider}.yaml").read_text())


def _gcp_price(table: dict, sku: str, model: str, region: str) -> tuple[float | None, str]:
    for entry in table["entries"]:
        if entry["sku"] == sku and entry["model"] == model and entry["region"] in (region, "*"):
            return float(entry["price"]), entry["unit"]
    return None, "node-hour"


def _accelerators(config: dict, sku: str, table: dict) -> str:
    """Attached GPUs not bundled in the machine type's price, as "N x TYPE" (a3/a2/g2 prices include theirs)."""
    bundled = (table.get("machine_types") or {}).get(sku, {}).get("gpus")
    extra = [f"{a.get('count', a.get('acceleratorCount', 1))} x {a.get('type', a.get('acceleratorType', '?'))}"
             for a in config.get("guestAccelerators") or config.get("guest_accelerators") or []]
    return "" if bundled or not extra else " + " + ", ".join(extra)


def _gcp_item(name: str, sku: str, model: str, region: str, low: int, high: int, config: dict, table: dict) -> Item:
    """A GCE machine; separately billed GPUs are not in the table yet, so such an item is unknown, never cheaper."""
    gpus = _accelerators(config, sku, table)
    price, unit = (None, "node-hour") if gpus else _gcp_price(table, sku, model, region)
    return Item(name, "gcp", sku + gpus, model, region, int(low), int(high), price, unit)


def _pool_model(config: dict) -> str:
    return "spot" if config.get("spot") or config.get("preemptible") else \
        "flex-start" if config.get("flexStart") else "on-demand"


def _gke(resources: list[dict], table: dict) -> list[Item]:
    items = []
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
    return items


def _autoscaler_config(script: str) -> dict | None:
    parts = script.split(RAY_CONFIG_MARK)
    if len(parts) < 3:
        return None
    return yaml.safe_load(parts[1].split("\n", 1)[1])


def _gcpvm(resources: list[dict], table: dict) -> list[Item]:
    items = []
    for r in resources:
        if r["type"] != GCE_INSTANCE:
            continue
        inputs = r["inputs"]
        config = _autoscaler_config(inputs.get("metadataStartupScript") or "") or {}
        region = (config.get("provider") or {}).get("region") or inputs.get("zone", "").rsplit("-", 1)[0]
        model = "spot" if (inputs.get("scheduling") or {}).get("preemptible") else "on-demand"
        items.append(_gcp_item(f"vm {r['name']}", inputs["machineType"], model, region, 1, 1, inputs, table))
        head = config.get("head_node_type")
        for name, node in (config.get("available_node_types") or {}).items():
            if name == head:
                continue  # the head is the VM above, not one the autoscaler launches
            node_config = node.get("node_config") or {}
            model = "spot" if (node_config.get("scheduling") or {}).get("preemptible") else "on-demand"
            items.append(_gcp_item(f"node type {name}", node_config.get("machineType", "?"), model, region,
                                   node.get("min_workers", 0), node.get("max_workers", config.get("max_workers", 0)),
                                   node_config, table))
    return items


def _spcs(resources: list[dict], table: dict, credit_price: float) -> list[Item]:
    credits = {e["sku"]: float(e["credits"]) for e in table["entries"]}
    items = []
    for r in resources:
        inputs = r["inputs"]
        if r["type"] == COMPUTE_POOL:
            sku, low, high, kind = inputs["instanceFamily"], inputs.get("minNodes", 1), inputs.get("maxNodes", 1), "pool"
        elif r["type"] == WAREHOUSE:
            # A warehouse bills only while it runs (auto-suspend): none at minimum, one cluster at most.
            sku, kind = f"warehouse-{inputs.get('warehouseSize', 'XSMALL').upper()}", "warehouse"
            low, high = 0, int(inputs.get("maxClusterCount", 1))
        else:
            continue
        rate = credits.get(sku)
        items.append(Item(f"{kind} {inputs.get('name', r['name'])}", "snowflake", sku, "on-demand", "*",
                          int(low), int(high), None if rate is None else rate * credit_price, "node-hour"))
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
    """The `cost` object of `--json`: currency, totals at min/max scale, one entry per billable item."""
    environment, resources = document.get("environment", "local"), document.get("resources", [])
    provider = "gcp" if environment in ("gke", "gcpvm") else "snowflake" if environment.startswith("spcs") else "local"
    if provider == "gcp":
        table = load_prices("gcp")
        items = _gke(resources, table) if environment == "gke" else _gcpvm(resources, table)
    elif provider == "snowflake":
        table = load_prices("snowflake")
        items = _spcs(resources, table, credit_price if credit_price is not None else table["credit_price"]["price"])
    else:
        table = load_prices("local")
        items = _local(document)
    known = [i.per_hour for i in items if i.price is not None]
    result = {
        "currency": table["currency"],
        "per_hour": {"min": round(sum(p[0] for p in known), 2), "max": round(sum(p[1] for p in known), 2)},
        "by_item": [{**asdict(i), "per_hour": None if i.per_hour is None else
                     {"min": round(i.per_hour[0], 4), "max": round(i.per_hour[1], 4)}} for i in items],
        "unknown": [f"{i.name}: {i.sku} ({i.model}, {i.region})" for i in items if i.price is None],
        "prices_as_of": table["as_of"],
        "prices_checked": table.get("checked") is True,
        "source": f"prices/{provider}.yaml",
    }
    if environment.startswith("spcs"):
        result["credit_price"] = credit_price if credit_price is not None else table["credit_price"]["price"]
    if environment == "gke":
        models = _compute_class_models(resources, items)
        if models:
            result["provisioning_models"] = models
    return result


def text(result: dict[str, Any]) -> str:
    """The `--cost` table."""
    rows = [("ITEM", "TYPE", "MODEL", "MIN", "MAX", "PER NODE-HOUR", "MIN/H", "MAX/H")]
    for i in result["by_item"]:
        price = "unknown" if i["price"] is None else f"{i['price']:.4f}"
        totals = ("?", "?") if i["per_hour"] is None else (f"{i['per_hour']['min']:.2f}", f"{i['per_hour']['max']:.2f}")
        rows.append((i["name"], i["sku"], i["model"], str(i["min"]), str(i["max"]), price, *totals))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    currency, total = result["currency"], result["per_hour"]
    lines += ["", f"Total per hour: {total['min']:.2f} {currency} at minimum scale, {total['max']:.2f} {currency} "
              f"at maximum (prices as of {result['prices_as_of']}, {result['source']})"]
    if not result["prices_checked"]:
        lines.append(f"Prices UNCHECKED: estimates not yet compared with their source pages ({result['source']}); "
                     "confirm them before budgeting.")
    if "credit_price" in result:
        lines.append(f"Snowflake credit price: {result['credit_price']:.2f} {currency} (--credit-price to change)")
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
