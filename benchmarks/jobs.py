"""Job client benchmark: `./bin/jobs submit` against `ray job submit`, on one local Ray cluster.

Prints the wall time from command start to SUCCEEDED of a trivial job through both (same cluster, same
run, alternating order, several repetitions), their ratio (target: ours no slower, ratio <= 1), and the
time `./bin/jobs` takes to refuse a request no node type can ever meet (target: under 2 s).
Figures only; nothing here asserts.

    .venv/bin/python benchmarks/jobs.py [--repetitions 5]     # .venv: made by ./bin/jobs or ./bin/deploy
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from jobs.local_cluster import LocalCluster, NodeSpec  # noqa: E402

TRIVIAL = ["--", "echo", "hello"]


def timed(command: list[str], expect: int = 0) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != expect:
        raise SystemExit(f"{' '.join(command[:4])}... exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()

    ours_base = [sys.executable, "-m", "jobs", "submit"]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    with (
        tempfile.TemporaryDirectory(prefix="jobs-bench-") as scratch,  # removed afterwards, also on errors
        LocalCluster(NodeSpec("head", 2), [NodeSpec("worker", 2, {"worker": 1})]) as cluster,
    ):
        outputs_file = Path(scratch) / "outputs.json"
        outputs_file.write_text(json.dumps(cluster.outputs(scratch)))
        ours = [*ours_base, "--outputs", str(outputs_file), *TRIVIAL]
        theirs = [ray_cli, "job", "submit", "--address", cluster.dashboard_url, *TRIVIAL]
        timed(ours), timed(theirs)  # warm-up: first job on a fresh cluster starts its job agent machinery

        ours_s, theirs_s = [], []
        for repetition in range(args.repetitions):
            pair = [(ours, ours_s), (theirs, theirs_s)]
            for command, sink in pair if repetition % 2 == 0 else reversed(pair):
                sink.append(timed(command))

        too_big = [*ours_base, "--outputs", str(outputs_file), "--entrypoint-num-cpus", "4096", *TRIVIAL]
        reject_s = [timed(too_big, expect=4) for _ in range(3)]

    ours_median, theirs_median = statistics.median(ours_s), statistics.median(theirs_s)
    print(f"trivial job to SUCCEEDED, median of {args.repetitions} (min-max):")
    print(f"  python -m jobs submit : {ours_median:6.2f} s ({min(ours_s):.2f}-{max(ours_s):.2f})")
    print(f"  ray job submit        : {theirs_median:6.2f} s ({min(theirs_s):.2f}-{max(theirs_s):.2f})")
    print(f"  ratio ours/ray        : {ours_median / theirs_median:6.2f} (target <= 1.00)")
    print(f"refuse an impossible request (CPU=4096), median of 3: {statistics.median(reject_s):.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
