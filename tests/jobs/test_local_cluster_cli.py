"""`./bin/jobs local-cluster` (jobs.local_cluster) as a user runs it: bad --outputs, a dying node, cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs_testing import REPO_ROOT, client_env

from jobs.local_cluster import _process_tree


def local_cluster(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.local_cluster", *args], cwd=REPO_ROOT, env=client_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def test_unwritable_outputs_is_one_error_line_before_any_cluster_starts(tmp_path: Path) -> None:
    for bad, reason in ((tmp_path / "missing-dir" / "out.json", "does not exist"), (tmp_path, "is a directory")):
        process = local_cluster("--outputs", str(bad))
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, stdout + stderr
        assert stderr.startswith(f"error: --outputs {bad}") and reason in stderr
        assert len(stderr.strip().splitlines()) == 1 and stdout == ""  # nothing started, nothing said "cluster up"


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def test_a_dying_node_is_reported_and_nothing_is_left_behind(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    process = local_cluster("--outputs", str(outputs), "--workers", "1")
    try:
        deadline = time.monotonic() + 180
        while not outputs.exists() or not outputs.read_text().endswith("}"):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.5)
        storage = Path(json.loads(outputs.read_text())["storage"]["uri"])
        assert storage.is_dir()
        tree = _process_tree(process.pid)
        temp_dirs = {arg.split("=", 1)[1] for pid in tree for arg in command_line(pid) if arg.startswith("--temp-dir=")}
        cluster_dir = {Path(path).parent for path in temp_dirs}
        assert len(cluster_dir) == 1 and all(path.is_dir() for path in cluster_dir)
        assert len(temp_dirs) == 2  # head and worker each have their own (see test_working_dir_cause.py)
        # The worker's raylet dies as on a lost machine: its `ray start --block` notices and exits.
        (raylet,) = [pid for pid in tree if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet"
                     and "--node_ip_address=127.0.0.2" in command_line(pid)]  # fmt: skip
        signal_sent = time.monotonic()
        os.kill(raylet, signal.SIGKILL)
        # The message comes within seconds; read stderr line by line until it does.
        line = ""
        while "died" not in line:
            assert time.monotonic() - signal_sent < 60, "no message about the dead node"
            line = process.stderr.readline()
        assert line.startswith("error: the worker node (worker) died (exit code")
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    # Run from the repository root: the next step, pasted as printed, is the hello-world job on this cluster.
    hint = f"./bin/jobs submit --outputs {outputs} --working-dir jobs/examples -- python hello_world.py"
    assert f"try, in another shell: {hint}" in stdout.splitlines()
    assert not storage.exists()  # the default storage temp dir is removed
    assert not any(path.exists() for path in cluster_dir)  # and so are the nodes' temp dirs


def test_job_benchmark_runs_and_leaves_no_temp_dir(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the benchmark's own temp files land here (its cluster's dirs go to /tmp, see above)
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, "benchmarks/jobs.py", "--repetitions", "1"], cwd=REPO_ROOT,
        env=client_env(TMPDIR=str(scratch)), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio ours/ray" in result.stdout
    assert list(scratch.iterdir()) == []
