"""scripts/refresh_prices.py against recorded Cloud Billing Catalog API records (tests/data/cloudbilling_skus.json),
served by a local HTTP server with paging: prices are the arithmetic of those records, entries it cannot price are
listed and left alone, `--write` keeps everything else, API errors are one line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.modules import load_module

ROOT = Path(__file__).resolve().parent.parent
RECORDED = json.loads((ROOT / "tests" / "data" / "cloudbilling_skus.json").read_text())
COMPUTE = "6F81-5844-456A"
SKUS = {s["skuId"]: s for pages in RECORDED["services"].values() for page in pages for s in page}

TABLE = """\
# Test table in the shape of prices/gcp.yaml.
currency: USD
as_of: "2026-01-01"
entries:
  # General purpose N4D: recorded Iowa SKUs.
  - {sku: n4d-standard-8, model: on-demand, region: us-central1, price: 0.40, unit: node-hour,
     as_of: "2026-01-01", source: "https://cloud.google.com/compute/vm-instance-pricing"}
  - {sku: n4d-standard-8, model: spot, region: us-central1, price: 0.2, unit: node-hour,
     as_of: "2026-01-02", source: "https://cloud.google.com/spot-vms/pricing", checked: false, note: "an estimate"}
  - {sku: n4d-standard-8, model: flex-start, region: us-central1, price: 0.3, unit: node-hour,
     as_of: "2026-01-03", source: "https://cloud.google.com/products/dws/pricing"}
  - {sku: n4d-standard-8, model: on-demand, region: europe-west1, price: 0.45, unit: node-hour,
     as_of: "2026-01-04", source: "https://cloud.google.com/compute/vm-instance-pricing"}
  # One A100 bundled in the machine type.
  - {sku: a2-highgpu-1g, model: on-demand, region: us-west1, price: 4.0, unit: node-hour,
     as_of: "2026-01-05", source: "https://cloud.google.com/compute/gpus-pricing"}
  - {sku: t2d-standard-4, model: on-demand, region: asia-southeast1, price: 0.17, unit: node-hour,
     as_of: "2026-01-06", source: "https://cloud.google.com/compute/vm-instance-pricing"}
  - {sku: gke-cluster-management, model: on-demand, region: "*", price: 0.10, unit: cluster-hour,
     as_of: "2026-01-07", source: "https://cloud.google.com/kubernetes-engine/pricing"}
  - {sku: cloud-nat-gateway, model: on-demand, region: "*", price: 0.0014, cap: 0.044, cap_vms: 32, unit: vm-hour,
     as_of: "2026-01-08", source: "https://cloud.google.com/nat/pricing"}
  - {sku: cloud-build-private-pool-e2-highcpu-32, price: 0.016, unit: build-minute, as_of: "2026-01-10",
     source: "https://cloud.google.com/build/pricing"}
  - sku: n4a-standard-4  # block style
    model: on-demand
    region: us-central1
    price: 0.2
    unit: node-hour
    as_of: "2026-01-09"
    source: "https://cloud.google.com/compute/vm-instance-pricing"
# Counts per machine type.
machine_types:
  n4d-standard-8: {vcpus: 8, memory_gib: 32}
  a2-highgpu-1g: {vcpus: 12, memory_gib: 85, gpus: 1, gpu_metric: NVIDIA_A100_GPUS}
  t2d-standard-4: {vcpus: 4, memory_gib: 16}
  n4a-standard-4: {vcpus: 4, memory_gib: 16}
"""
PRICED = {0, 1, 4, 9}  # entry indexes the recorded SKUs price
UNPRICED = {2: "no flex-start SKU", 3: "in europe-west1", 5: "IDR, not USD", 6: "no on-demand SKU",
            7: "per VM served up to a cap", 8: "no catalog mapping"}


def rate(sku_id: str) -> float:
    price = SKUS[sku_id]["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"]
    return int(price["units"]) + price["nanos"] / 1e9


# What each priced entry costs, from the recorded records (skuId: count).
EXPECTED = {
    0: {"FF75-7D01-4303": 8, "19B3-529B-52CC": 32},  # N4D Instance Core / Ram running in Iowa
    1: {"D3A9-FA60-688D": 8, "3581-AC70-6B1B": 32},  # Spot Preemptible N4D ...
    4: {"2922-40C5-B19F": 12, "2390-DCAF-DA38": 85, "039F-D0DA-4055": 1},  # A2 Core, A2 Ram, A100 in Americas
    9: {"36AC-06EF-9B3D": 4, "2F59-FB4B-2285": 16},  # N4A Instance Core / Ram running in Iowa
}


def expected(index: int) -> float:
    return sum(count * rate(sku) for sku, count in EXPECTED[index].items())


refresh = load_module("refresh_prices", ROOT / "scripts" / "refresh_prices.py")


class Catalog:
    """A local Cloud Billing Catalog API serving the recorded pages (nextPageToken "page-N"), or an error."""

    def __init__(self, status: int = 200):
        self.status, self.requests = status, []
        catalog = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                catalog.requests.append((url.path, query, self.headers.get("Authorization")))
                if catalog.status == "html":  # what a proxy's login page answers
                    return self._send(200, None, b"<html><body>Sign in to continue</body></html>")
                if catalog.status != 200:
                    return self._send(catalog.status, RECORDED["errors"][str(catalog.status)])
                service = url.path.split("/")[3]
                pages = RECORDED["services"][service]
                n = int(query.get("pageToken", "page-0").split("-")[1])
                body = {"skus": pages[n]}
                if n + 1 < len(pages):
                    body["nextPageToken"] = f"page-{n + 1}"
                self._send(200, body)

            def _send(self, status, body, data=None):
                data = data or json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catalog():
    server = Catalog()
    yield server
    server.close()


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", "recorded-test-key")
    path = tmp_path / "gcp.yaml"
    path.write_text(TABLE)
    return path


def run(args, catalog, capsys):
    code = refresh.main(args, base_url=catalog.url)
    out, err = capsys.readouterr()
    return code, out, err


def test_prices_are_the_arithmetic_of_the_recorded_skus(table, catalog, capsys):
    code, out, err = run(["gcp", "--table", str(table)], catalog, capsys)
    assert (code, err) == (0, "")
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    entries = yaml.safe_load(TABLE)["entries"]
    for i in PRICED:
        label = refresh._label(entries[i])
        assert float(rows[label][-2]) == pytest.approx(expected(i), abs=1e-6), label
    assert table.read_text() == TABLE  # a dry run writes nothing
    assert "Nothing written" in out


def test_paging_follows_next_page_token_in_usd_with_the_api_key(table, catalog, capsys):
    run(["gcp", "--table", str(table)], catalog, capsys)
    compute = [q for path, q, _ in catalog.requests if COMPUTE in path]
    assert [q.get("pageToken") for q in compute] == [None, "page-1", "page-2"]
    assert all(q["currencyCode"] == "USD" and q["key"] == "recorded-test-key" for q in compute)


def test_entries_it_cannot_price_are_listed_with_the_reason_and_left_alone(table, catalog, capsys):
    code, out, _ = run(["gcp", "--table", str(table), "--write"], catalog, capsys)
    assert code == 0
    before, after = yaml.safe_load(TABLE)["entries"], yaml.safe_load(table.read_text())["entries"]
    listed = out.split("Not priced from the catalog")[1]
    for i, reason in UNPRICED.items():
        line = next(x for x in listed.splitlines() if x.strip().startswith(refresh._label(before[i]) + ":"))
        assert reason in line, line
        assert after[i] == before[i]
    assert len(after) == len(before)


def test_write_updates_priced_entries_and_keeps_comments_order_and_the_rest(table, catalog, capsys):
    run(["gcp", "--table", str(table), "--write"], catalog, capsys)
    text = table.read_text()
    old_lines, new_lines = TABLE.splitlines(), text.splitlines()
    comments = [x for x in old_lines if x.lstrip().startswith("#") or "# block style" in x]
    assert [x for x in new_lines if x in comments] == comments  # every comment, in order
    assert new_lines[-4:] == old_lines[-4:]  # machine_types as it was
    after = yaml.safe_load(text)
    for i in PRICED:
        entry = after["entries"][i]
        assert entry["price"] == pytest.approx(expected(i), abs=1e-6)
        assert entry["checked"] is True and entry["source"].startswith(refresh.CATALOG_URL)
        assert all(sku in entry["note"] for sku in EXPECTED[i])  # the review can see which SKUs
        assert list(entry)[:5] == ["sku", "model", "region", "price", "unit"]  # keys keep their order
    assert after["entries"][9]["as_of"] == after["entries"][0]["as_of"] != "2026-01-09"
    assert after["as_of"] == "2026-01-03"  # the oldest entry left as it was (flex-start)


@pytest.mark.parametrize("status, words", [(403, ["HTTP 403", "Cloud Billing API has not been used", "enable"]),
                                           (400, ["HTTP 400", "API key not valid", "GOOGLE_API_KEY"])])
def test_an_api_error_is_one_line_and_exit_1(table, capsys, status, words):
    server = Catalog(status)
    try:
        code, out, err = run(["gcp", "--table", str(table), "--write"], server, capsys)
    finally:
        server.close()
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert all(w in err for w in words), err
    assert "recorded-test-key" not in err and "console.developers" not in err
    assert table.read_text() == TABLE


def test_an_answer_that_is_not_json_is_one_line_and_exit_1(table, capsys):
    server = Catalog("html")
    try:
        code, out, err = run(["gcp", "--table", str(table)], server, capsys)
    finally:
        server.close()
    assert (code, out) == (1, "") and len(err.splitlines()) == 1 and "not the catalog's JSON" in err


def test_without_credentials_it_says_what_to_set(table, catalog, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_API_KEY")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = run(["gcp", "--table", str(table)], catalog, capsys)
    assert code == 1 and catalog.requests == []
    assert err.startswith("error: no credentials") and "GOOGLE_API_KEY" in err and "gcloud auth login" in err


def test_a_gcloud_access_token_is_used_when_no_api_key_is_set(table, catalog, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_API_KEY")
    gcloud = tmp_path / "bin" / "gcloud"
    gcloud.parent.mkdir()
    gcloud.write_text('#!/bin/sh\n[ "$*" = "auth print-access-token" ] && echo ya29.recorded-token\n')
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", f"{gcloud.parent}{os.pathsep}{os.environ['PATH']}")
    assert run(["gcp", "--table", str(table)], catalog, capsys)[0] == 0
    assert {auth for _, _, auth in catalog.requests} == {"Bearer ya29.recorded-token"}
    assert all("key" not in q for _, q, _ in catalog.requests)


def test_every_entry_of_the_shipped_table_is_priced_or_listed(catalog, capsys, monkeypatch, tmp_path):
    """prices/gcp.yaml itself: nothing in the recording matches its machine types, so each one is listed."""
    monkeypatch.setenv("GOOGLE_API_KEY", "recorded-test-key")
    shipped = tmp_path / "gcp.yaml"
    shipped.write_text((ROOT / "prices" / "gcp.yaml").read_text())
    code, out, _ = run(["gcp", "--table", str(shipped), "--write"], catalog, capsys)
    assert code == 0
    assert shipped.read_text() == (ROOT / "prices" / "gcp.yaml").read_text() and "Nothing written" in out
    for entry in yaml.safe_load(shipped.read_text())["entries"]:
        assert f"\n  {refresh._label(entry)}" in out or f"\n{refresh._label(entry)} " in out, entry


@pytest.mark.parametrize("args", [["aws"], ["snowflake", "--write"], ["gcp", "--table", "/nonexistent.yaml"]])
def test_bad_arguments_exit_2(args, capsys):
    try:
        code = refresh.main(args)
    except SystemExit as e:  # argparse
        code = e.code
    assert code == 2
    assert "error:" in capsys.readouterr().err


def test_snowflake_is_a_checklist_of_every_entry_and_its_pdf(capsys):
    assert refresh.main(["snowflake"]) == 0
    out = capsys.readouterr().out
    table = yaml.safe_load((ROOT / "prices" / "snowflake.yaml").read_text())
    assert "no price API" in out and refresh.SNOWFLAKE_PDF in out
    for entry in table["entries"]:
        assert f"[ ] {entry['sku']}: {entry['credits']} " in out
    assert f"credit price: {table['credit_price']['price']} " in out


def test_the_preview_never_imports_the_script():
    """No network at preview time: the cost code never reaches the catalog or this script."""
    code = ("import sys, runpy\nsys.argv = ['stacks.preview', 'gcpvm', '--cost']\n"
            "try:\n    runpy.run_module('stacks.preview', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if 'refresh' in m))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Total per hour" in done.stdout, done.stderr[-2000:]
    assert "LOADED []" in done.stdout
    sources = "".join(p.read_text() for p in (ROOT / "stacks").rglob("*.py"))
    assert "refresh_prices" not in sources and "cloudbilling" not in sources


def test_a_tiered_or_foreign_currency_sku_is_no_flat_usd_rate():
    """Recorded: VPN egress has three tiers, the T2D Singapore record is in IDR: neither gives one hourly USD rate."""
    with pytest.raises(refresh.Unpriced, match="3 price tiers"):
        refresh.unit_price(SKUS["02EE-77CE-ACCD"])
    with pytest.raises(refresh.Unpriced, match="IDR, not USD"):
        refresh.unit_price(SKUS["9E37-EAF4-1576"])
    assert refresh.unit_price(SKUS["039F-D0DA-4055"]) == (pytest.approx(2.933908), "h")


def test_gpu_worker_entries_without_recorded_skus_are_listed_not_guessed(catalog, capsys, monkeypatch, tmp_path):
    """N1, G2 + L4 and the T4 (gcpvm GPU workers): no real catalog record of their SKUs exists to test a mapping
    with, so each entry is listed as not priced, saying what to compare by hand, and left as it is."""
    monkeypatch.setenv("GOOGLE_API_KEY", "recorded-test-key")
    shipped = tmp_path / "gcp.yaml"
    shipped.write_text((ROOT / "prices" / "gcp.yaml").read_text())
    code, out, _ = run(["gcp", "--table", str(shipped), "--write"], catalog, capsys)
    assert code == 0 and shipped.read_text() == (ROOT / "prices" / "gcp.yaml").read_text()
    for sku, words in (("n1-standard-8", "N1 Predefined Instance Core"), ("g2-standard-8", "Nvidia L4 GPU"),
                       ("nvidia-tesla-t4", "Nvidia Tesla T4 GPU running in")):
        for model in ("on-demand", "spot"):
            line = next(li for li in out.splitlines() if li.startswith(f"  {sku} {model} us-west1: "))
            assert "no recorded catalog record" in line and words in line and "by hand" in line, line
