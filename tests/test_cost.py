"""stacks/cost.py and `--cost`: every billable thing of every stack priced or named unknown, from the preview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stacks import cost
from stacks import preview as cli
from stacks.offline import preview
from tests.modules import load_module

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
BILLABLE = (cost.NODE_POOL, cost.GCE_INSTANCE, cost.COMPUTE_POOL, cost.WAREHOUSE)
GCPVM_WORKERS = '[{"name":"cpu","machine_type":"n2-standard-8","disk_gb":100,"min_workers":0,"max_workers":%d}]'


def document(stack: str, **overrides: str) -> dict:
    return preview(stack, overrides).to_json()


@pytest.mark.parametrize("stack", STACKS)
def test_every_billable_thing_is_priced_or_named_unknown(stack):
    doc = document(stack)
    result = cost.cost(doc)
    names = {i["name"].rsplit(" ", 1)[-1] for i in result["by_item"]}
    for r in doc["resources"]:
        if r["type"] in BILLABLE:
            assert r["inputs"].get("name", r["name"]) in names or r["name"] in names, r["name"]
    for name in doc["outputs"].get("ray_capacity") or {}:
        if doc["environment"] in ("local", "gcpvm") and name != "head":
            assert name in names, name
    for item in result["by_item"]:
        assert item["min"] <= item["max"], item
        if item["price"] is None:
            assert any(u.startswith(item["name"] + ":") for u in result["unknown"])
    assert 0 <= result["per_hour"]["min"] <= result["per_hour"]["max"]
    assert result["prices_as_of"] and result["source"].startswith("prices/")


def test_a_type_missing_from_the_table_is_unknown_never_zero():
    doc = document("gke")
    pool = next(r for r in doc["resources"] if r["type"] == cost.NODE_POOL and r["name"] == "gke-system")
    before = cost.cost(doc)
    pool["inputs"]["nodeConfig"]["machineType"] = "z9-imaginary-4"
    after = cost.cost(doc)
    assert set(after["unknown"]) - set(before["unknown"]) == {"node pool system: z9-imaginary-4 (on-demand, europe-west1)"}
    assert after["per_hour"]["max"] < before["per_hour"]["max"]  # left out of the total, named instead
    assert "z9-imaginary-4" in cost.text(after) and "unknown" in cost.text(after)


def test_raising_max_nodes_raises_max_cost_proportionally():
    small = cost.cost(document("gcpvm", worker_types=GCPVM_WORKERS % 2))
    large = cost.cost(document("gcpvm", worker_types=GCPVM_WORKERS % 8))

    def workers(result):
        return next(i for i in result["by_item"] if i["name"] == "node type cpu")

    # per_hour is rounded to 4 decimals and catalog prices carry 6: compare to that rounding
    assert workers(large)["per_hour"]["max"] == pytest.approx(4 * workers(small)["per_hour"]["max"], abs=5e-4)
    assert large["per_hour"]["min"] == small["per_hour"]["min"]
    assert large["per_hour"]["max"] - small["per_hour"]["max"] == pytest.approx(6 * workers(small)["price"], abs=0.01)


def test_spot_and_flex_start_cost_less_than_on_demand():
    entries = yaml.safe_load((cost.PRICES_DIR / "gcp.yaml").read_text())["entries"]
    prices = {(e["sku"], e["region"], e["model"]): e["price"] for e in entries}
    pairs = [(k, prices[(k[0], k[1], "on-demand")]) for k in prices if k[2] != "on-demand"]
    assert pairs
    for key, on_demand in pairs:
        assert prices[key] < on_demand, key


def test_every_price_entry_is_dated_with_unit_and_source():
    for path in cost.PRICES_DIR.glob("*.yaml"):
        table = yaml.safe_load(path.read_text())
        assert table["currency"] == "USD" and table["as_of"]
        for entry in table["entries"]:
            assert entry["unit"] and entry["as_of"] and entry["source"], (path.name, entry)
            if path.name == "gcp.yaml":
                assert entry["region"], entry


def test_gke_shows_each_provisioning_model_and_the_blended_worst_case():
    result = cost.cost(document("gke"))
    models = result["provisioning_models"]
    spot, flex, on_demand = (models["max_per_hour"][m] for m in ("spot", "flex-start", "on-demand"))
    assert max(spot, flex) < on_demand  # both are documented discounts; how they compare depends on the region
    assert min(spot, flex) <= models["blended_worst_case"] <= on_demand
    pools = [i for i in result["by_item"] if i["name"].removeprefix("node pool ") in models["order"]]
    assert models["nodes_at_max"] == sum(i["max"] for i in pools)
    assert models["blended_worst_case"] == pytest.approx(sum(i["per_hour"]["max"] for i in pools), abs=0.01)


def test_credit_price_scales_snowflake_cost():
    doc = document("spcs")
    base, doubled = cost.cost(doc), cost.cost(doc, credit_price=4.0)
    assert doubled["per_hour"]["max"] == pytest.approx(2 * base["per_hour"]["max"], abs=0.02)
    assert doubled["credit_price"] == 4.0


def test_cli_cost_and_json_cost_object(capsys):
    assert cli.main(["gke", "--cost"]) == 0
    out = capsys.readouterr().out
    assert "Total per hour:" in out and "blended worst case" in out and "a3-ultragpu-8g" in out
    assert cli.main(["spcs", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)["cost"]
    assert {"currency", "per_hour", "by_item", "prices_as_of", "source"} <= obj.keys()
    assert set(obj["per_hour"]) == {"min", "max"}


def _comment_module():
    return load_module("preview_comment", ROOT / "scripts" / "preview_comment.py")


def test_pr_comment_shows_cost_before_after_and_delta():
    comment = _comment_module()
    base, head = document("gcpvm", worker_types=GCPVM_WORKERS % 4), document("gcpvm", worker_types=GCPVM_WORKERS % 8)
    price = next(i["price"] for i in cost.cost(head)["by_item"] if i["name"] == "node type cpu")
    before, after = cost.cost(base)["per_hour"], cost.cost(head)["per_hour"]
    line = comment.cost_line(base, head)  # a base JSON from before `cost` existed is priced from its resources
    assert after["max"] - before["max"] == pytest.approx(4 * price, abs=0.01)
    assert f"max {before['max']:.2f} → {after['max']:.2f} (+{after['max'] - before['max']:.2f})" in line
    assert f"min {before['min']:.2f} → {after['min']:.2f} (+0.00)" in line
    assert comment.cost_line({**base, "cost": cost.cost(base)}, head) == line
    assert "(new stack)" in comment.cost_line(None, head)
    unchecked = {**head, "cost": {**cost.cost(head), "unchecked": ["n2-standard-8 (on-demand, us-west1)"]}}
    assert comment.cost_line(base, unchecked).endswith("; UNCHECKED estimates: n2-standard-8 (on-demand, us-west1)")


GPU_WORKERS = json.dumps([
    {"name": "t4", "machine_type": "n1-standard-8", "accelerator_type": "nvidia-tesla-t4", "accelerator_count": 2,
     "min_workers": 1, "max_workers": 3},
    {"name": "t4-spot", "machine_type": "n1-standard-8", "accelerator_type": "nvidia-tesla-t4", "accelerator_count": 2,
     "min_workers": 1, "max_workers": 3, "spot": True},
    {"name": "l4", "machine_type": "g2-standard-8", "min_workers": 0, "max_workers": 2},
    {"name": "l4-spot", "machine_type": "g2-standard-8", "min_workers": 0, "max_workers": 2, "spot": True}])


def test_gpus_billed_apart_cost_the_machine_plus_each_gpu_at_both_scales():
    result = cost.cost(document("gcpvm", worker_types=GPU_WORKERS))
    items = {i["name"].removeprefix("node type "): i for i in result["by_item"]}
    entries = {(e["sku"], e["model"]): e for e in yaml.safe_load((cost.PRICES_DIR / "gcp.yaml").read_text())["entries"]
               if e["region"] == "us-west1"}
    for name, model in (("t4", "on-demand"), ("t4-spot", "spot")):
        item = items[name]
        assert (item["sku"], item["model"]) == ("n1-standard-8 + 2 x nvidia-tesla-t4", model)
        machine, gpu = entries[("n1-standard-8", model)], entries[("nvidia-tesla-t4", model)]
        assert gpu["unit"] == "gpu-hour"
        assert item["price"] == pytest.approx(machine["price"] + 2 * gpu["price"])
        assert item["per_hour"] == {"min": pytest.approx(item["price"], abs=1e-4),
                                    "max": pytest.approx(3 * item["price"], abs=1e-4)}
    for name, model in (("l4", "on-demand"), ("l4-spot", "spot")):  # the L4 is in the g2 machine's price
        assert (items[name]["sku"], items[name]["model"]) == ("g2-standard-8", model)
        assert items[name]["price"] == entries[("g2-standard-8", model)]["price"]
    assert items["t4-spot"]["price"] < items["t4"]["price"] and items["l4-spot"]["price"] < items["l4"]["price"]
    assert not [u for u in result["unknown"] if u.startswith("node type ")]
    assert result["per_hour"]["max"] == pytest.approx(sum(i["per_hour"]["max"] for i in result["by_item"]), abs=0.01)
    text = cost.text(result)
    assert "n1-standard-8 + 2 x nvidia-tesla-t4" in text and f"{items['t4']['price']:.4f}" in text


def test_a_gpu_missing_from_the_table_keeps_the_machine_unknown_never_machine_only():
    doc = document("gcpvm")
    head = next(r for r in doc["resources"] if r["type"] == cost.GCE_INSTANCE)
    head["inputs"]["guestAccelerators"] = [{"count": 1, "type": "nvidia-tesla-p4"}]  # no entry for the P4
    result = cost.cost(doc)
    assert [u for u in result["unknown"] if u.startswith("vm ")] == [
        "vm head-vm: n2-standard-8 + 1 x nvidia-tesla-p4 (on-demand, us-west1; no entry for nvidia-tesla-p4)"]
    assert next(i for i in result["by_item"] if i["name"] == "vm head-vm")["per_hour"] is None
    workers = document("gcpvm", worker_types=GPU_WORKERS.replace("n1-standard-8", "n1-standard-4", 1))
    unknown = [u for u in cost.cost(workers)["unknown"] if u.startswith("node type ")]
    assert unknown == ["node type t4: n1-standard-4 + 2 x nvidia-tesla-t4 (on-demand, us-west1; no entry for "
                       "n1-standard-4)"]  # the T4s have a price, the machine has none: still unknown
    gke = cost.cost(document("gke"))["unknown"]
    assert not [u for u in gke if u.startswith("node pool ")]  # A3 Ultra's eight H200s are in its machine price


def test_a_gpu_entry_counts_among_the_figures_a_cost_rests_on(monkeypatch):
    def change(provider, table):
        if provider == "gcp":
            for entry in table["entries"]:
                if entry["sku"] == "nvidia-tesla-t4":
                    entry.update(checked=False, as_of="2019-05-05")
    _with_prices(monkeypatch, change)
    result = cost.cost(document("gcpvm", worker_types=GPU_WORKERS))
    assert {"nvidia-tesla-t4 (on-demand, us-west1)", "nvidia-tesla-t4 (spot, us-west1)"} <= set(result["unchecked"])
    assert result["prices_as_of"] == "2019-05-05"


def _with_prices(monkeypatch, change):
    """Run cost() against a copy of the real tables, changed by `change(provider, table)`."""
    real = cost.load_prices

    def load(provider):
        table = real(provider)
        change(provider, table)
        return table

    monkeypatch.setattr(cost, "load_prices", load)


def _mark_all(checked):
    def change(provider, table):
        for entry in table["entries"] + ([table["credit_price"]] if "credit_price" in table else []):
            entry["checked"] = checked
    return change


@pytest.mark.parametrize("stack", ["gke", "gcpvm", "spcs"])
def test_unchecked_prices_say_so_in_every_cost_output(stack, monkeypatch):
    """Figures nobody has compared with their source must never read as fact (`checked` per entry in prices/)."""
    _with_prices(monkeypatch, _mark_all(True))
    clean = cost.cost(document(stack))
    assert clean["prices_checked"] and clean["unchecked"] == [] and "UNCHECKED" not in cost.text(clean)
    _with_prices(monkeypatch, _mark_all(False))
    result = cost.cost(document(stack))
    assert not result["prices_checked"] and "Prices UNCHECKED" in cost.text(result)
    priced = {i["sku"] for i in result["by_item"] if i["price"] is not None}
    assert priced and all(any(u.startswith(sku) for u in result["unchecked"]) for sku in priced)


def test_a_credit_price_set_by_the_user_is_not_an_unchecked_estimate(monkeypatch):
    _with_prices(monkeypatch, lambda p, t: t.get("credit_price", {}).update(checked=False))
    doc = document("spcs")
    assert "credit_price" in cost.cost(doc)["unchecked"]
    assert "credit_price" not in cost.cost(doc, credit_price=3.0)["unchecked"]


def _replace_entries(table, entries):
    """Put these entries in place of the table's own for the same skus (the real ones would match first)."""
    skus = {e["sku"] for e in entries}
    table["entries"] = [e for e in table["entries"] if e["sku"] not in skus] + entries


def _gcp_entry(sku):
    entries = yaml.safe_load((cost.PRICES_DIR / "gcp.yaml").read_text())["entries"]
    return next((e for e in entries if e["sku"] == sku), None)


def test_nat_gateways_bill_per_vm_they_serve_up_to_the_cap():
    """gke: the gvnic-0 NAT serves every node (the cluster's network), gvnic-1's only the H200 nodes
    (their additional network); https://cloud.google.com/nat/pricing: price x VMs up to cap_vms, a flat cap above."""
    gateway, address = _gcp_entry("cloud-nat-gateway"), _gcp_entry("cloud-nat-ip")
    result = cost.cost(document("gke"))
    items = {i["name"]: i for i in result["by_item"]}
    pools = [i for i in result["by_item"] if i["name"].startswith("node pool ")]
    h200 = [i for i in pools if i["sku"] == "a3-ultragpu-8g"]
    assert (items["nat ray-gvnic-0-nat"]["min"], items["nat ray-gvnic-0-nat"]["max"]) == \
        (sum(i["min"] for i in pools), sum(i["max"] for i in pools))
    assert items["nat ray-gvnic-1-nat"]["max"] == sum(i["max"] for i in h200) < items["nat ray-gvnic-0-nat"]["max"]
    assert items["nat ray-gvnic-0-nat"]["per_hour"]["max"] == \
        pytest.approx(gateway["price"] * items["nat ray-gvnic-0-nat"]["max"])
    assert items["nat ray-gvnic-0-nat addresses"]["per_hour"]["max"] == pytest.approx(address["price"])

    def gcpvm_nat(workers):
        found = cost.cost(document("gcpvm", worker_types=GCPVM_WORKERS % workers))
        return next(i for i in found["by_item"] if i["sku"] == "cloud-nat-gateway")

    at_cap, over = gcpvm_nat(gateway["cap_vms"] - 1), gcpvm_nat(gateway["cap_vms"])  # the head is one more VM
    assert at_cap["max"] == gateway["cap_vms"] and over["max"] == gateway["cap_vms"] + 1
    assert at_cap["per_hour"]["max"] == pytest.approx(gateway["cap_vms"] * gateway["price"])  # 32 VMs: 0.0448
    assert over["per_hour"]["max"] == pytest.approx(gateway["cap"])  # more than 32: the flat 0.044
    assert over["per_hour"]["min"] == pytest.approx(gateway["price"])  # the head alone


def test_prices_as_of_is_the_oldest_figure_the_stack_uses(monkeypatch):
    def change(provider, table):
        if provider == "gcp":
            next(e for e in table["entries"] if e["sku"] == "n2-standard-8")["as_of"] = "2020-01-02"
            next(e for e in table["entries"] if e["sku"] == "a3-ultragpu-8g")["as_of"] = "2019-01-01"  # gke only
    _with_prices(monkeypatch, change)
    assert cost.cost(document("gcpvm"))["prices_as_of"] == "2020-01-02"
    assert "prices as of 2020-01-02" in cost.text(cost.cost(document("gcpvm")))


def test_what_bills_by_use_is_listed_apart_never_in_the_hourly_totals(monkeypatch):
    _with_prices(monkeypatch, lambda p, t: p == "gcp" and _replace_entries(t, [
        {"sku": "cloud-nat-data", "model": "on-demand", "region": "*", "price": 0.045, "unit": "GiB"},
        {"sku": "cloud-build-private-pool-e2-highcpu-32", "model": "on-demand", "region": "europe-west1",
         "price": 0.1, "unit": "build-minute"}]))
    result = cost.cost(document("gke"))
    by_use = {u["name"]: u for u in result["billed_by_use"]}
    assert by_use["build pool ray-pool"]["price"] == 0.1 and by_use["build pool ray-pool"]["unit"] == "build-minute"
    assert {"nat ray-gvnic-0-nat data", "nat ray-gvnic-1-nat data"} <= by_use.keys()
    hourly = sum(i["per_hour"]["max"] for i in result["by_item"] if i["per_hour"])
    assert result["per_hour"]["max"] == pytest.approx(hourly, abs=0.01)
    assert "Billed by use, not in the totals: " in cost.text(result) and "per build-minute" in cost.text(result)
    pool = next(r for r in document("gke")["resources"] if r["type"] == cost.WORKER_POOL)
    assert pool["inputs"]["workerConfig"]["machineType"] == "e2-highcpu-32"  # the entry priced above is the pool's


def test_credit_price_comes_from_the_stack_config_and_the_flag_overrides_it(capsys):
    def max_cost(*argv):
        assert cli.main(["spcs", "--json", *argv]) == 0
        return json.loads(capsys.readouterr().out)["cost"]

    default, configured = max_cost(), max_cost("--set", "credit_price_usd=4")
    assert configured["credit_price"] == 4.0
    assert configured["per_hour"]["max"] == pytest.approx(default["per_hour"]["max"] * 4 / default["credit_price"], abs=0.02)
    assert max_cost("--set", "credit_price_usd=4", "--credit-price", "3")["credit_price"] == 3.0


@pytest.mark.parametrize("value, message", [
    ("0", "ray-platform:credit_price_usd: 0 is out of range (allowed: > 0.0)"),
    ("two", "ray-platform:credit_price_usd: 'two' has the wrong type (allowed: a number)"),
])
def test_a_bad_credit_price_is_one_error_line(value, message, capsys):
    assert cli.main(["spcs", "--cost", "--set", f"credit_price_usd={value}"]) == 2
    assert message in capsys.readouterr().err


def test_credit_price_is_a_key_of_snowflake_stacks_only(capsys):
    assert cli.main(["gke", "--cost", "--set", "credit_price_usd=3"]) == 2
    assert "ray-platform:credit_price_usd: unknown key" in capsys.readouterr().err


def test_every_entry_says_whether_its_figure_was_read_in_its_source():
    """`checked: true` only for a figure read in the cited source; an estimate must say what was searched."""
    for path in cost.PRICES_DIR.glob("*.yaml"):
        table = yaml.safe_load(path.read_text())
        assert "checked" not in table, f"{path.name}: per-entry `checked`, not one for the whole table"
        for entry in table["entries"] + [table[k] for k in ("credit_price",) if k in table]:
            assert isinstance(entry.get("checked"), bool), (path.name, entry)
            if entry["checked"] is False:
                assert entry.get("note"), (path.name, entry)
    machines = yaml.safe_load((cost.PRICES_DIR / "gcp.yaml").read_text())["machine_types"]
    assert all(isinstance(m.get("memory_gib"), int) and m["memory_gib"] > 0 for m in machines.values()), machines


def test_the_readme_sample_is_what_gke_prints_today():
    """The README's `--cost` sample is the real output, so a price or model change updates it (or fails here)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```text\n", readme.index("Sample (`./bin/preview gke --cost`)")) + len("```text\n")
    sample = readme[start:readme.index("```", start)].rstrip("\n")
    assert sample == cost.text(cost.cost(document("gke")))


def test_the_gcpvm_gpu_sample_is_what_the_preview_prints_today():
    """docs/gcpvm.md's GPU worker sample is the real output of the command it shows."""
    doc = (ROOT / "docs" / "gcpvm.md").read_text()
    command = doc[doc.index("Sample (`./bin/preview gcpvm --cost --set '"):]
    workers = command.split("worker_types=", 1)[1].split("'`)", 1)[0]
    start = doc.index("```text\n", doc.index(workers)) + len("```text\n")
    sample = doc[start:doc.index("```", start)].rstrip("\n")
    assert "nvidia-tesla-t4" in workers and sample == cost.text(cost.cost(document("gcpvm", worker_types=workers)))
