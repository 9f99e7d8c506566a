"""stacks/cost.py and `--cost`: every billable thing of every stack priced or named unknown, from the preview."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from stacks import cost
from stacks import preview as cli
from stacks.offline import preview

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
    assert after["unknown"] == ["node pool system: z9-imaginary-4 (on-demand, europe-west1)"]
    assert after["per_hour"]["max"] < before["per_hour"]["max"]  # left out of the total, named instead
    assert "z9-imaginary-4" in cost.text(after) and "unknown" in cost.text(after)


def test_raising_max_nodes_raises_max_cost_proportionally():
    small = cost.cost(document("gcpvm", worker_types=GCPVM_WORKERS % 2))
    large = cost.cost(document("gcpvm", worker_types=GCPVM_WORKERS % 8))

    def workers(result):
        return next(i for i in result["by_item"] if i["name"] == "node type cpu")

    assert workers(large)["per_hour"]["max"] == pytest.approx(4 * workers(small)["per_hour"]["max"])
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
    assert spot < flex < on_demand
    assert spot <= models["blended_worst_case"] <= on_demand
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
    spec = importlib.util.spec_from_file_location("preview_comment", ROOT / "scripts" / "preview_comment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_gpus_billed_apart_from_the_machine_are_unknown_not_free():
    doc = document("gcpvm")
    head = next(r for r in doc["resources"] if r["type"] == cost.GCE_INSTANCE)
    head["inputs"]["guestAccelerators"] = [{"count": 1, "type": "nvidia-tesla-t4"}]
    result = cost.cost(doc)
    assert result["unknown"] == ["vm head-vm: n2-standard-8 + 1 x nvidia-tesla-t4 (on-demand, us-west1)"]
    assert cost.cost(document("gke"))["unknown"] == []  # A3 Ultra's eight H200s are in its machine price


@pytest.mark.parametrize("stack, checked", [("gke", False), ("spcs", False), ("dev", True)])
def test_unchecked_prices_say_so_in_every_cost_output(stack, checked):
    """Figures nobody has compared with their source page must never read as fact (prices/*.yaml `checked`)."""
    result = cost.cost(document(stack))
    assert result["prices_checked"] is checked
    assert ("Prices UNCHECKED" in cost.text(result)) is not checked
