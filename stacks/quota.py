"""Regional Compute Engine quota a gke or gcpvm stack needs at maximum scale, checked against the project's.

  python -m stacks.quota STACK [--list]
Needs are derived from the cost items (stacks/cost.py), so they follow what the preview records: every node at
its maximum, vCPUs, GPUs and local SSD of its machine type (prices/gcp.yaml `machine_types`) and the GPUs
attached to it (`gpu_types`). bin/deploy runs it:
with gcloud credentials it compares with `gcloud compute regions describe` and stops with one error line per
short quota; without gcloud it says the check was skipped. Which metric each node counts against is cited next
to each rule below; what no source confirmed is listed in docs/first-deployment/gke.md ("Quotas").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

from stacks import cost
from stacks.errors import STACK_ERRORS, error_line
from stacks.offline import preview

# Metric names: the Compute API's Quota.metric enum (compute v1 discovery document, shipped with
# google-api-python-client) has CPUS, N2_CPUS, PREEMPTIBLE_CPUS, LOCAL_SSD_TOTAL_GB, PREEMPTIBLE_LOCAL_SSD_GB and
# no A3_CPUS (A3 vCPUs count as CPUS only). The H200 names follow its PREEMPTIBLE_NVIDIA_H100_GPUS pattern; the
# enum lists no H200 metric at all, so they are unverified (docs/first-deployment/gke.md).
STANDARD = {"PREEMPTIBLE_CPUS": "CPUS", "PREEMPTIBLE_LOCAL_SSD_GB": "LOCAL_SSD_TOTAL_GB"}  # else drop the prefix
# Some names and rules above are unconfirmed (docs/first-deployment/gke.md); where a project's quota is known to
# suffice under another name, this lets the deploy go on, saying so.
SKIP = "RAY_PLATFORM_SKIP_QUOTA_CHECK"


def _needs(document: dict) -> tuple[str, str, dict[str, int], dict[str, int]]:
    """(project, region, {metric: amount at max scale}, {PREEMPTIBLE_ metric: the part of it from spot VMs})."""
    table = cost.load_prices("gcp")
    machines, gpu_types = table.get("machine_types", {}), table.get("gpu_types", {})
    result: dict[str, int] = {}
    spot: dict[str, int] = {}
    region = ""
    for item in cost.machines(document):
        (machine, _), *attached = item.parts or (("", 0),)  # the GKE fee has no machine
        facts = machines.get(machine)
        if facts is None or not item.max:
            continue  # fees, and types cost.py already names as unknown
        region = item.region
        # Spot VMs count against preemptible quota: https://cloud.google.com/compute/docs/instances/create-use-spot
        # ("to prevent Spot VMs from consuming your quotas for standard VMs' CPUs, GPUs, and disks, ... request
        # preemptible quota"); so do flex-start VMs: https://cloud.google.com/blog/products/compute/introducing-
        # flex-start-vms-for-the-compute-engine-instance-api ("consume preemptible quota").
        prefix = "" if item.model == "on-demand" else "PREEMPTIBLE_"
        amounts = {f"{prefix}CPUS": facts["vcpus"]}
        if not prefix and facts.get("family"):  # per-family CPU quota (N2_CPUS) for standard VMs; spot: unverified
            amounts[f"{facts['family']}_CPUS"] = facts["vcpus"]
        if facts.get("gpus"):
            amounts[f"{prefix}{facts['gpu_metric']}"] = facts["gpus"]
        for gpu, count in attached:  # GPUs attached to the VM (N1 + T4) count like built-in ones
            if gpu in gpu_types:
                metric = f"{prefix}{gpu_types[gpu]['gpu_metric']}"
                amounts[metric] = amounts.get(metric, 0) + count
        if facts.get("local_ssd_gb"):  # bundled local SSD counted like attached local SSD: unverified for A3 Ultra
            amounts["PREEMPTIBLE_LOCAL_SSD_GB" if prefix else "LOCAL_SSD_TOTAL_GB"] = facts["local_ssd_gb"]
        for metric, amount in amounts.items():
            result[metric] = result.get(metric, 0) + amount * item.max
            if item.model == "spot":
                spot[metric] = spot.get(metric, 0) + amount * item.max
    project = next((r["inputs"]["project"] for r in document["resources"] if r["inputs"].get("project")), "")
    return project, region, dict(sorted(result.items())), spot


def needs(document: dict) -> tuple[str, str, dict[str, int]]:
    """(project, region, {quota metric: amount at max scale}) of a gke or gcpvm preview document."""
    project, region, required, _ = _needs(document)
    return project, region, required


def shortfalls(required: dict[str, int], quotas: list[dict], spot: dict[str, int] | None = None) -> list[str]:
    """One line per metric whose free quota (limit - usage) is below what the stack needs at max scale.

    `spot` is the part of each PREEMPTIBLE_ need that comes from spot VMs: where the region grants no such
    preemptible quota (absent or limit 0), those VMs use the standard quota instead
    (https://cloud.google.com/compute/docs/instances/create-use-preemptible, "Preemptible CPU quotas": "In regions
    where you don't have preemptible CPU quota, you can use standard CPU quota"). Flex-start has no such fallback
    in any source, so its part stays on the preemptible metric.
    """
    free = {q["metric"]: q["limit"] - q.get("usage", 0) for q in quotas}
    limits = {q["metric"]: q["limit"] for q in quotas}
    required = dict(required)
    for metric, amount in (spot or {}).items():
        if metric.startswith("PREEMPTIBLE_") and not limits.get(metric):
            standard = STANDARD.get(metric, metric.removeprefix("PREEMPTIBLE_"))
            required[standard] = required.get(standard, 0) + amount
            if required[metric] <= amount:
                del required[metric]
            else:
                required[metric] -= amount
    return [f"{metric}: the stack needs {amount} at maximum scale, {free.get(metric, 0):g} free"
            + ("" if metric in free else " (no such quota in this region)")
            for metric, amount in sorted(required.items()) if free.get(metric, 0) < amount]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.quota", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--list", action="store_true", help="only list the quota needed; do not call gcloud")
    args = parser.parse_args(argv)
    try:
        document = preview(args.stack).to_json()
    except STACK_ERRORS as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    if document.get("environment") not in ("gke", "gcpvm"):
        return 0
    project, region, required, spot = _needs(document)
    if args.list:
        print(f"Regional quota {args.stack} needs at maximum scale ({region}):")
        print("\n".join(f"  {metric}: {amount}" for metric, amount in required.items()))
        return 0
    if not shutil.which("gcloud"):
        print("warning: gcloud not found: regional quota not checked", file=sys.stderr)
        return 0
    run = subprocess.run(["gcloud", "compute", "regions", "describe", region, "--project", project, "--format=json"],
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        print(f"warning: `gcloud compute regions describe {region}` failed, quota not checked: "
              f"{run.stderr.strip().splitlines()[-1:] or ''}", file=sys.stderr)
        return 0
    short = shortfalls(required, json.loads(run.stdout).get("quotas", []), spot)
    if short and os.environ.get(SKIP) == "1":
        print(f"warning: {SKIP}=1: deploying although the quota check found, in {region}:\n"
              + "\n".join(f"  {line}" for line in short), file=sys.stderr)
    elif short:
        print(f"error: regional quota in {region} (project {project}) is too small for {args.stack} at maximum scale; "
              "request more (https://cloud.google.com/docs/quotas/view-manage) or lower max_nodes:\n"
              + "\n".join(f"  {line}" for line in short)
              + f"\n(if the project holds this quota under another metric name, {SKIP}=1 ./bin/deploy {args.stack} "
              "skips this check: docs/first-deployment/gke.md, Quotas)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
