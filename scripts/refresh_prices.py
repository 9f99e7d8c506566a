"""Refresh the price tables in prices/ from their providers; a maintainer runs this, the preview never does.

  ./bin/venv python scripts/refresh_prices.py gcp [--write]   # Google's Cloud Billing Catalog API
  ./bin/venv python scripts/refresh_prices.py snowflake       # a checklist: Snowflake has no price API

gcp: reads prices/gcp.yaml, fetches the catalog's SKUs (API key from GOOGLE_API_KEY, else an access token from
`gcloud auth print-access-token`), computes each entry's price from them and prints old, new and the change.
A machine type costs vCPUs x its Core SKU + memory GiB x its Ram SKU (+ GPUs x the GPU SKU + local SSD GiB x the
local SSD SKU), counts from the table's `machine_types`, SKUs picked by provisioning model and region. `--write`
rewrites price, as_of, source, checked and note of each entry it could price, in place (comments and order kept),
and sets the table's `as_of` to its oldest entry's. An entry it cannot price is listed with the reason and left as
it is, never dropped or zeroed. Exit codes: 0 ok, 1 nothing fetched or an API error, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOG_URL = "https://cloudbilling.googleapis.com/v1"
# Service ids of the catalog (GET /v1/services lists them): Compute Engine and Kubernetes Engine as
# https://cloud.google.com/skus names them; Networking (Cloud NAT) as Cyclenerd/google-cloud-pricing-cost-calculator
# build/skus.sh fetches it.
COMPUTE, GKE, NETWORKING = "6F81-5844-456A", "CCD8-9BF1-090E", "E505-1604-58F8"
HOURS_PER_MONTH = 730  # Google's monthly prices are 730 hours: https://cloud.google.com/compute/all-pricing
# How each provisioning model is spelled in SKU descriptions and usage types, e.g. "N4D Instance Core running in
# Iowa" (OnDemand), "Spot Preemptible N4D Instance Core running in Iowa" (Preemptible), "H200 141GB GPU attached
# to Spot Preemptible VMs running in ...", "Nvidia Tesla A100 GPU attached to DWS Defined Duration VMs running
# in ..." (flex-start is the Dynamic Workload Scheduler's "DWS Defined Duration"). Recorded examples:
# tests/data/cloudbilling_skus.json.
MODELS = {"on-demand": ("OnDemand", ""), "spot": ("Preemptible", "Spot Preemptible"),
          "flex-start": (None, "DWS Defined Duration")}
# Variants of a family's SKU that are not its plain price; a description naming one is skipped unless it is the
# model's own mark ("Preemptible" is part of "Spot Preemptible").
VARIANTS = ("Spot Preemptible", "Preemptible", "DWS", "Commitment", "Reserved", "Custom", "Sole Tenancy",
            "Calendar", "Capacity Optimized", "Extended", "Premium", "Flex Start")
# GPU machine types: their Core/Ram family and GPU as the catalog names them. a2: recorded SKUs in
# tests/data/cloudbilling_skus.json. a3-ultragpu: "H200 141GB GPU running in <place>" is the GPU SKU in public SKU
# lists; "A3Ultra" as its Core/Ram family is UNCONFIRMED: if the catalog names it otherwise, the entry is listed
# as not priced, never priced from another family.
GPU_MACHINES = {"a2-highgpu-": ("A2", "Nvidia Tesla A100 GPU"), "a3-ultragpu-": ("A3Ultra", "H200 141GB GPU")}
# Kinds of SKU with no recorded Billing Catalog record to test a mapping against (tests/data/cloudbilling_skus.json
# holds only real records; none of these was found in any public recording): their entries are listed as not
# priced, with what to compare by hand, rather than priced by an untested guess at the SKU's wording.
UNRECORDED = {"n1-": ("N1 ('N1 Predefined Instance Core/Ram running in ...')",
                      "https://cloud.google.com/compute/vm-instance-pricing"),
              "g2-": ("G2 and its L4 ('G2 Instance Core/Ram', 'Nvidia L4 GPU running in ...')",
                      "https://cloud.google.com/compute/gpus-pricing")}
# Entries that are not machine types: (service, description pattern, region in serviceRegions, usage unit the
# entry is billed in). The GKE fee: "Regional Kubernetes Clusters" in "global" (infracost/infracost
# internal/resources/google/container_cluster.go). Cloud NAT: "Networking Cloud Nat Data Processing" (per GiB) and
# "Networking Cloud NAT IP Usage" (per hour), both "global", as https://cloud.google.com/skus/sku-groups/nat-gateway
# lists them (Cyclenerd/google-cloud-pricing-cost-calculator build/mapping.csv maps the same names).
FIXED = {"gke-cluster-management": (GKE, r"^Regional Kubernetes Clusters$", "global", "h"),
         "cloud-nat-data": (NETWORKING, r"^Networking Cloud Nat Data Processing$", "global", "GiBy"),
         "cloud-nat-ip": (NETWORKING, r"^Networking Cloud NAT IP Usage$", "global", "h")}
# Entries whose price the catalog cannot give as one figure: why, for the list of entries to check by hand.
BY_HAND = {"cloud-nat-gateway": "priced per VM served up to a cap per gateway, which the one catalog SKU "
                                "('Networking Cloud Nat Gateway Uptime') does not spell out: compare price, cap "
                                "and cap_vms with https://cloud.google.com/nat/pricing"}
HOURLY = {"h": 1.0, "GiBy.h": 1.0, "mo": 1 / HOURS_PER_MONTH, "GiBy.mo": 1 / HOURS_PER_MONTH, "GiBy": 1.0}
SNOWFLAKE_PDF = "https://www.snowflake.com/legal-files/CreditConsumptionTable.pdf"


class Unpriced(Exception):
    """Why one entry cannot be priced from the catalog."""


class CatalogError(Exception):
    """The catalog could not be read at all: one line for the user."""


def _token() -> tuple[str, str]:
    """("key", API key) or ("bearer", access token); CatalogError when neither can be had."""
    if os.environ.get("GOOGLE_API_KEY"):
        return "key", os.environ["GOOGLE_API_KEY"]
    if shutil.which("gcloud"):
        done = subprocess.run(["gcloud", "auth", "print-access-token"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return "bearer", done.stdout.strip()
    raise CatalogError("no credentials for the Cloud Billing Catalog API: set GOOGLE_API_KEY to an API key of a "
                       "project with the Cloud Billing API enabled, or run `gcloud auth login`")


def _hint(status: int) -> str:
    if status == 403:
        return ("enable the Cloud Billing API in your project (`gcloud services enable cloudbilling.googleapis.com`) "
                "or set GOOGLE_API_KEY to a key allowed to call it")
    if status in (400, 401):
        return "set GOOGLE_API_KEY to a valid API key, or unset it and run `gcloud auth login`"
    return "try again later"


def fetch_skus(service: str, auth: tuple[str, str], base_url: str = CATALOG_URL) -> list[dict]:
    """Every SKU of one catalog service in USD, following nextPageToken."""
    skus, token = [], ""
    for _ in range(1000):  # a bound, not a limit: the Compute catalog is a few pages of 5000
        query = {"currencyCode": "USD", "pageSize": "5000", **({"pageToken": token} if token else {})}
        headers = {}
        if auth[0] == "key":
            query["key"] = auth[1]
        else:
            headers["Authorization"] = f"Bearer {auth[1]}"
        request = urllib.request.Request(f"{base_url}/services/{service}/skus?{urllib.parse.urlencode(query)}",
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                page = json.load(response)
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", {}).get("message", "")
            except ValueError:
                message = ""
            # The first sentence only: Google's messages go on with console URLs that carry the project number.
            message = message.split(". ")[0].rstrip(".") or e.reason
            raise CatalogError(f"the Cloud Billing Catalog API answered HTTP {e.code} for service {service} "
                               f"({message}): {_hint(e.code)}") from None
        except (urllib.error.URLError, TimeoutError) as e:
            raise CatalogError(f"cannot reach the Cloud Billing Catalog API ({getattr(e, 'reason', e)}): "
                               "check this machine's network") from None
        except ValueError:  # a proxy's or captive portal's page, not the API
            raise CatalogError(f"the answer for service {service} is not the catalog's JSON: check this machine's "
                               "network or proxy") from None
        skus += page.get("skus", [])
        token = page.get("nextPageToken", "")
        if not token:
            return skus
    raise CatalogError(f"the catalog kept paging for service {service}: try again later")


def unit_price(sku: dict) -> tuple[float, str]:
    """(USD per usage unit, usage unit) of a SKU with one flat rate."""
    expression = sku["pricingInfo"][0]["pricingExpression"]
    rates = expression.get("tieredRates") or []
    if len(rates) != 1:
        raise Unpriced(f"'{sku['description']}' has {len(rates)} price tiers, not one rate")
    price = rates[0]["unitPrice"]
    if price.get("currencyCode", "USD") != "USD":
        raise Unpriced(f"'{sku['description']}' is priced in {price['currencyCode']}, not USD")
    return int(price.get("units") or 0) + price.get("nanos", 0) / 1e9, expression.get("usageUnit", "")


def _pick(skus: list[dict], pattern: str, model: str, region: str | None) -> dict:
    """The one SKU of this description, model and region (several with one price count as one)."""
    usage, mark = MODELS[model]
    skip = [v for v in VARIANTS if v not in mark]
    found = [s for s in skus
             if re.search(pattern, s["description"]) and (not mark or mark in s["description"])
             and not any(v in s["description"] for v in skip)
             and (usage is None or s.get("category", {}).get("usageType") == usage)
             and (region is None or region in s.get("serviceRegions", []))]
    where = f" in {region}" if region else ""
    if not found:
        raise Unpriced(f"no {model} SKU matches /{pattern}/{where}")
    if len({json.dumps(s["pricingInfo"][0]["pricingExpression"]["tieredRates"]) for s in found}) > 1:
        raise Unpriced(f"{len(found)} {model} SKUs with different prices match /{pattern}/{where}: "
                       + ", ".join(s["description"] for s in found))
    return found[0]


def _component(skus: list[dict], pattern: str, model: str, region: str | None, gib: bool) -> tuple[float, dict]:
    """USD per hour (per GiB-hour when gib) of one SKU, and the SKU."""
    sku = _pick(skus, pattern, model, region)
    price, unit = unit_price(sku)
    if unit not in HOURLY or unit.startswith("GiBy") != gib or unit == "GiBy":
        raise Unpriced(f"'{sku['description']}' is billed per {unit or '?'}, not per {'GiB-' if gib else ''}hour")
    return price * HOURLY[unit], sku


def machine_price(entry: dict, facts: dict, skus: list[dict]) -> tuple[float, str]:
    """A machine type's USD per node-hour and how it was computed."""
    sku, model, region = entry["sku"], entry["model"], entry["region"]
    if model not in MODELS:
        raise Unpriced(f"model {model!r} is not one of {', '.join(MODELS)}")
    family, gpu = next((v for k, v in GPU_MACHINES.items() if sku.startswith(k)), (sku.split("-")[0].upper(), None))
    if facts.get("gpus") and not gpu:
        raise Unpriced(f"which catalog GPU {sku} carries is not known (add it to GPU_MACHINES in this script)")
    if not facts.get("vcpus") or not facts.get("memory_gib"):
        raise Unpriced(f"machine_types.{sku} needs vcpus and memory_gib")
    # " AMD"/" Arm": "N2D AMD Instance Core", "T2A Arm Instance Core"; DWS SKUs may drop "Instance".
    parts = [("vCPU", facts["vcpus"], rf"\b{family}( AMD| Arm)?( Instance)? Core\b", False),
             ("GiB", facts["memory_gib"], rf"\b{family}( AMD| Arm)?( Instance)? Ram\b", True)]
    if facts.get("gpus"):
        parts.append(("GPU", facts["gpus"], rf"^{re.escape(gpu)} ", False))
    if facts.get("local_ssd_gb"):
        parts.append(("GiB local SSD", facts["local_ssd_gb"], r"^SSD backed Local Storage\b", True))
    total, terms = 0.0, []
    for label, count, pattern, per_gib in parts:
        per_hour, picked = _component(skus, pattern, model, region, per_gib)
        total += count * per_hour
        terms.append(f"{count} {label} x {_number(per_hour)} ({picked.get('skuId', picked['description'])})")
    return total, " + ".join(terms)


def fixed_price(entry: dict, catalogs: dict[str, list[dict]]) -> tuple[float, str]:
    service, pattern, region, unit = FIXED[entry["sku"]]
    sku = _pick(catalogs[service], pattern, entry["model"], region)
    price, got = unit_price(sku)
    if got != unit:
        raise Unpriced(f"'{sku['description']}' is billed per {got or '?'}, expected {unit}")
    return price, f"{sku['description']} ({sku.get('skuId', '?')})"


def services_for(table: dict) -> list[str]:
    machines = table.get("machine_types") or {}
    wanted = {COMPUTE for e in table["entries"] if e["sku"] in machines}
    wanted |= {FIXED[e["sku"]][0] for e in table["entries"] if e["sku"] in FIXED}
    return sorted(wanted)


def price_entries(table: dict, catalogs: dict[str, list[dict]]) -> tuple[list, list]:
    """(priced: [(index, price, how, service)], unpriced: [(index, reason)]) for every entry of the table."""
    machines, gpus = table.get("machine_types") or {}, table.get("gpu_types") or {}
    priced, unpriced = [], []
    for i, entry in enumerate(table["entries"]):
        entry = {"model": "on-demand", "region": "*", **entry}  # the defaults stacks/cost.py reads them with
        try:
            unrecorded = next((v for k, v in UNRECORDED.items() if entry["sku"].startswith(k)), None)
            if entry["sku"] in gpus:
                unrecorded = (f"the GPU ('{gpus[entry['sku']].get('catalog', entry['sku'])} running in ...', "
                              "per GPU-hour)", "https://cloud.google.com/compute/gpus-pricing")
            if unrecorded:
                raise Unpriced(f"no recorded catalog record of {unrecorded[0]} SKUs to test a mapping with: compare "
                               f"with {unrecorded[1]} by hand")
            if entry["sku"] in machines:
                price, how = machine_price(entry, machines[entry["sku"]], catalogs[COMPUTE])
                service = COMPUTE
            elif entry["sku"] in FIXED:
                price, how = fixed_price(entry, catalogs)
                service = FIXED[entry["sku"]][0]
            elif entry["sku"] in BY_HAND:
                raise Unpriced(BY_HAND[entry["sku"]])
            else:
                raise Unpriced("no catalog mapping for this sku (not in machine_types, nor FIXED in this script): "
                               "check it against its source page by hand")
        except Unpriced as e:
            unpriced.append((i, str(e)))
        else:
            priced.append((i, round(price, 6), how, service))
    return priced, unpriced


def _number(value: float) -> str:
    """A price as YAML/humans read it: no exponent, no trailing zeros."""
    text = format(Decimal(str(round(value, 6))).normalize(), "f")
    return text if "." in text or text.isdigit() else "0"


def _label(entry: dict) -> str:
    return f"{entry['sku']} {entry.get('model', '')} {entry.get('region', '')}".strip()


def rewrite(text: str, updates: dict[int, dict[str, str]], top: dict[str, str]) -> str:
    """The table's text with these entries' keys set to these YAML scalars, everything else as it was.

    Works on the composed node tree's character offsets, so comments, order and flow style stay; a key an entry
    lacks is appended to it. `top`: top-level keys to change (only ones that exist)."""
    root = yaml.compose(text)
    edits = []  # (start, end, new text), applied from the end backwards
    keys = {k.value: (k, v) for k, v in root.value}
    for key, scalar in top.items():
        if key in keys:
            value = keys[key][1]
            edits.append((value.start_mark.index, value.end_mark.index, scalar))
    for index, changes in updates.items():
        node = keys["entries"][1].value[index]
        present = {k.value: v for k, v in node.value}
        indent = " " * node.value[0][0].start_mark.column  # where this entry's keys start, flow or block
        added = ""
        for key, scalar in changes.items():
            if key in present:
                edits.append((present[key].start_mark.index, present[key].end_mark.index, scalar))
            else:
                added += f"{',' if node.flow_style else ''}\n{indent}{key}: {scalar}"
        if added:
            last = node.value[-1][1].end_mark.index
            edits.append((last, last, added))
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def refresh_gcp(table_path: Path, write: bool, base_url: str) -> int:
    text = table_path.read_text()
    table = yaml.safe_load(text)
    services = services_for(table)
    catalogs = {}
    try:
        auth = _token() if services else None
        for service in services:
            catalogs[service] = fetch_skus(service, auth, base_url)
    except CatalogError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if services and not any(catalogs.values()):
        print("error: the Cloud Billing Catalog API returned no SKUs: check that GOOGLE_API_KEY's project can "
              "read the catalog, then run again", file=sys.stderr)
        return 1
    priced, unpriced = price_entries(table, catalogs)
    entries = table["entries"]
    rows = [("ENTRY", "OLD", "NEW", "CHANGE")]
    for i, price, _, _ in priced:
        old = float(entries[i].get("price", 0))
        change = "new" if not old else f"{(price - old) / old * 100:+.1f}%"
        rows.append((_label(entries[i]), _number(old), _number(price), change))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if unpriced:
        print(f"\nNot priced from the catalog ({len(unpriced)}; left as they are, check them by hand):")
        for i, reason in unpriced:
            print(f"  {_label(entries[i])}: {reason}")
    if write and not priced:
        print("\nNothing written: no entry could be priced from the catalog.")
        return 0
    if not write:
        print(f"\nNothing written. `--write` updates {table_path.name} in place; review it with `git diff prices/`.")
        return 0
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    updates = {i: {"price": _number(price), "as_of": f'"{today}"',
                   "source": json.dumps(f"{CATALOG_URL}/services/{service}/skus"),
                   "checked": "true", "note": json.dumps(f"computed: {how}")}
               for i, price, how, service in priced}
    dates = [today if i in updates else str(e.get("as_of", today)) for i, e in enumerate(entries)]
    new_text = rewrite(text, updates, {"as_of": f'"{min(dates)}"'})
    check = yaml.safe_load(new_text)["entries"]
    if [e["sku"] for e in check] != [e["sku"] for e in entries] or any(
            abs(float(check[i]["price"]) - price) > 1e-9 for i, price, _, _ in priced):
        print(f"error: rewriting {table_path} did not give the prices computed; nothing written", file=sys.stderr)
        return 1
    table_path.write_text(new_text)
    print(f"\nWrote {len(priced)} entries to {table_path}; review with `git diff prices/`.")
    return 0


def checklist_snowflake(table_path: Path) -> int:
    """Snowflake publishes credits only in a PDF, with no price API: print what to compare, line by line."""
    table = yaml.safe_load(table_path.read_text())
    sources = sorted({e["source"] for e in table["entries"]} | {table["credit_price"]["source"]})
    print("Snowflake has no price API: compare each line with its source and edit "
          f"{table_path.relative_to(ROOT) if table_path.is_relative_to(ROOT) else table_path} by hand "
          "(credits, as_of, checked).")
    print(f"Sources: {', '.join(sources)}\n")
    credit = table["credit_price"]
    print(f"[ ] credit price: {credit['price']} {credit['unit']} ({credit.get('edition', '?')}), "
          f"as of {credit['as_of']}: {credit['source']}")
    for e in table["entries"]:
        checked = "checked" if e.get("checked") is True else "UNCHECKED"
        print(f"[ ] {e['sku']}: {e['credits']} {e['unit']}, as of {e['as_of']}, {checked}: {e['source']}")
    return 0


def main(argv: list[str] | None = None, base_url: str = CATALOG_URL) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("provider", choices=["gcp", "snowflake"])
    parser.add_argument("--write", action="store_true", help="gcp: rewrite the priced entries in the table")
    parser.add_argument("--table", type=Path, help="the price table (default prices/PROVIDER.yaml)")
    args = parser.parse_args(argv)
    table = args.table or ROOT / "prices" / f"{args.provider}.yaml"
    if not table.is_file():
        print(f"error: --table {table}: no such file (allowed: an existing prices/*.yaml)", file=sys.stderr)
        return 2
    if args.provider == "snowflake":
        if args.write:
            print(f"error: --write: Snowflake has no price API to write from (allowed with: gcp); see "
                  f"{SNOWFLAKE_PDF}", file=sys.stderr)
            return 2
        return checklist_snowflake(table)
    return refresh_gcp(table, args.write, base_url)


if __name__ == "__main__":
    sys.exit(main())
