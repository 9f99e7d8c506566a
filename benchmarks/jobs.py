"""Job client benchmark: `./bin/jobs submit` against `ray job submit`, on one local Ray cluster.

Prints the wall time from command start to SUCCEEDED of a trivial job through both (same cluster, same
run, alternating order, several repetitions), their ratio (target: ours no slower, ratio <= 1), and the
time `./bin/jobs` takes to refuse a request no node type can ever meet (target: under 2 s).
It does so twice: on a cluster without auth, and on one with Ray's token authentication (as every stack runs),
and prints what auth costs the client (target: no meaningful slowdown). Figures only; nothing here asserts.

    ./bin/venv python benchmarks/jobs.py [--repetitions 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from components.ray_auth import node_env  # noqa: E402
from jobs.local_cluster import LocalCluster, NodeSpec  # noqa: E402

TRIVIAL = ["--", "echo", "hello"]


def timed(command: list[str], expect: int = 0, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if result.returncode != expect:
        raise SystemExit(f"{' '.join(command[:4])}... exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed


def run(token: str | None, repetitions: int) -> dict[str, list[float]]:
    """Timings on one fresh cluster: ours and `ray job submit` to SUCCEEDED, and ours refusing a request."""
    ours_base = [sys.executable, "-m", "jobs", "submit"]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # `ray job submit` reads the token from the environment, like any Ray client; ours from the outputs.
    ray_env = node_env(token) if token else {}
    with (
        tempfile.TemporaryDirectory(prefix="jobs-bench-") as scratch,  # removed afterwards, also on errors
        LocalCluster(NodeSpec("head", 2), [NodeSpec("worker", 2, {"worker": 1})], token=token) as cluster,
    ):
        outputs_file = Path(scratch) / "outputs.json"
        outputs_file.write_text(json.dumps(cluster.outputs(scratch)))
        ours = [*ours_base, "--outputs", str(outputs_file), *TRIVIAL]
        theirs = [ray_cli, "job", "submit", "--address", cluster.dashboard_url, *TRIVIAL]
        timed(ours), timed(theirs, env=ray_env)  # warm-up: first job on a fresh cluster starts its job agent machinery

        ours_s, theirs_s = [], []
        for repetition in range(repetitions):
            pair = [(ours, ours_s, None), (theirs, theirs_s, ray_env)]
            for command, sink, env in pair if repetition % 2 == 0 else reversed(pair):
                sink.append(timed(command, env=env))

        too_big = [*ours_base, "--outputs", str(outputs_file), "--entrypoint-num-cpus", "4096", *TRIVIAL]
        reject_s = [timed(too_big, expect=4) for _ in range(3)]
    return {"ours": ours_s, "theirs": theirs_s, "reject": reject_s}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()

    runs = {"without auth": run(None, args.repetitions), "with token auth": run(secrets.token_hex(32), args.repetitions)}
    for name, times in runs.items():
        ours_median, theirs_median = statistics.median(times["ours"]), statistics.median(times["theirs"])
        print(f"{name}: trivial job to SUCCEEDED, median of {args.repetitions} (min-max):")
        print(f"  python -m jobs submit : {spread(times['ours'])}")
        print(f"  ray job submit        : {spread(times['theirs'])}")
        print(f"  ratio ours/ray        : {ours_median / theirs_median:6.2f} (target <= 1.00)")
        print(f"  refuse an impossible request (CPU=4096), median of 3: {statistics.median(times['reject']):.2f} s "
              "(target < 2 s)")
    plain, token = (statistics.median(runs[name]["ours"]) for name in runs)
    print(f"token auth costs python -m jobs submit: {token - plain:+.2f} s ({token / plain:.2f}x; target: about 1.00x)")


if __name__ == "__main__":
    main()
