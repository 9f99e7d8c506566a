"""Offline preview speed: wall time per stack, and how it grows with the number of workers (1, 8, 64).

Run: ./bin/venv python benchmarks/preview.py   (target: under 3 s per stack on a 2-core machine, linear growth)
Prints figures only; tests never assert on timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks.offline import preview  # noqa: E402
from stacks.preview import sdk_problems  # noqa: E402


def stacks() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def command_seconds(stack: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stacks.preview", stack, "--json"], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def in_process_seconds(stack: str, workers: int) -> tuple[float, int]:
    overrides = {"workers": json.dumps([{"name": "w", "replicas": workers, "cpus": 1, "memory_gb": 1}])}
    start = time.perf_counter()
    recording = preview(stack, overrides)
    sdk_problems(recording)
    return time.perf_counter() - start, len(recording.resources)


def main() -> None:
    print("offline preview, whole command (python -m stacks.preview STACK --json):")
    print(f"  {'stack':<12}{'seconds':>10}")
    for stack in stacks():
        print(f"  {stack:<12}{command_seconds(stack):>10.2f}")
    print()
    print("growth with workers (local stack, in process, after imports):")
    print(f"  {'workers':>8}{'resources':>11}{'seconds':>10}{'ms/resource':>13}")
    in_process_seconds("dev", 1)  # warm imports
    for workers in (1, 8, 64):
        seconds, resources = in_process_seconds("dev", workers)
        print(f"  {workers:>8}{resources:>11}{seconds:>10.2f}{1000 * seconds / resources:>13.1f}")


if __name__ == "__main__":
    main()
