"""`python -m jobs` end to end against the real local cluster: submit, follow, logs, list, stop, errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from jobs_testing import EXAMPLES, REPO_ROOT, Cluster, client_env, run_jobs

from jobs import EXIT_INTERRUPTED, EXIT_JOB_FAILED, EXIT_NEVER_FITS, EXIT_USAGE
from jobs.local_cluster import NodeSpec

TCP_PROXY = Path(__file__).with_name("tcp_proxy.py")


def wait_for_status(cluster: Cluster, job_id: str, wanted: str, timeout_s: float = 60) -> None:
    client = cluster.client()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if str(client.get_job_status(job_id)) == wanted:
                return
        except RuntimeError:  # not submitted yet
            pass
        assert time.monotonic() < deadline, f"job {job_id} never reached {wanted}"
        time.sleep(0.3)


def test_hello_world_with_working_dir_succeeds(cluster: Cluster) -> None:
    result = cluster.jobs("submit", "--working-dir", str(EXAMPLES), "--", "python", "hello_world.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello world from the driver" in result.stdout
    assert result.stdout.count("hello from ") == len(cluster.local.alive_nodes())
    assert f"storage: {cluster.storage}" in result.stdout  # the stack's storage reached the job
    assert "SUCCEEDED" in result.stderr


def test_two_jobs_with_entrypoint_cpus_both_run(cluster: Cluster) -> None:
    ids = [f"cpus-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for job_id in ids:
        submitted = cluster.jobs(
            "submit", "--no-wait", "--submission-id", job_id, "--entrypoint-num-cpus", "2",
            "--metadata-json", '{"case": "2A"}', "--", "python", "-c", "print('job done')",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert submitted.stdout.strip() == job_id
    for job_id in ids:
        followed = cluster.jobs("logs", job_id, "--follow")
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert "job done" in followed.stdout
    client = cluster.client()
    for job_id in ids:
        info = client.get_job_info(job_id)
        assert (str(info.status), info.metadata["case"]) == ("SUCCEEDED", "2A")
        assert supervisor_resources(cluster, job_id)["CPU"] == 2  # the entrypoint really reserved 2 CPUs


def supervisor_resources(cluster: Cluster, job_id: str) -> dict[str, float]:
    """What the job's supervisor actor (which runs the entrypoint) asked the scheduler for."""
    url = f"{cluster.local.dashboard_url}/api/v0/actors?detail=true&limit=10000"
    with urllib.request.urlopen(url, timeout=10) as response:
        actors = json.load(response)["data"]["result"]["result"]
    (actor,) = [actor for actor in actors if actor.get("name", "").endswith(job_id)]
    return actor["required_resources"]


def test_overprovisioned_request_fails_fast_with_clear_message(cluster: Cluster) -> None:
    largest = max(kind["resources"]["CPU"] for kind in cluster.outputs["ray_capacity"].values())
    started = time.monotonic()
    result = cluster.jobs("submit", "--entrypoint-num-cpus", str(int(largest) * 16), "--", "echo", "never")
    elapsed = time.monotonic() - started
    assert elapsed < 5
    assert result.returncode == EXIT_NEVER_FITS
    assert result.stderr.strip() == (
        f"error: entrypoint asks for CPU={int(largest) * 16} but the largest node type offers CPU={largest:g} "
        "(ray_capacity); Ray would leave this job PENDING forever"
    )
    assert "Traceback" not in result.stderr
    assert not any(job.entrypoint == "echo never" for job in cluster.client().list_jobs())


def test_request_that_needs_a_new_node_is_submitted_and_waits(cluster: Cluster) -> None:
    waiting, stopped = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("autoscale", "pending-stop"))
    for job_id, entrypoint in ((waiting, "echo big"), (stopped, "sleep 600")):
        result = cluster.jobs(
            "submit", "--no-wait", "--submission-id", job_id, "--entrypoint-resources", '{"bigmem": 1}', "--",
            entrypoint,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "waiting for the autoscaler: no node running now offers bigmem=1" in result.stderr
    assert f"{waiting}: PENDING" in cluster.jobs("status", waiting).stdout
    stop = cluster.jobs("stop", stopped)  # Ray can only stop it once it is scheduled: the command says so
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"stop requested; job {stopped} is still PENDING" in stop.stderr

    big_node = cluster.local.add_worker(NodeSpec("big", 1, {"bigmem": 1}))  # what the autoscaler would do
    try:
        followed = cluster.jobs("logs", waiting, "--follow")
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert "big" in followed.stdout
        wait_for_status(cluster, stopped, "STOPPED", timeout_s=120)  # the queued stop ends it once scheduled
    finally:
        cluster.local.kill_node(big_node)


def test_failed_job_exits_non_zero(cluster: Cluster) -> None:
    result = cluster.jobs("submit", "--", "python -c 'import sys; print(\"bad input\"); sys.exit(7)'")
    assert result.returncode == EXIT_JOB_FAILED
    assert "bad input" in result.stdout
    assert "FAILED" in result.stderr


def test_ctrl_c_leaves_job_running_then_stop_logs_and_list(cluster: Cluster) -> None:
    job_id = f"long-{uuid.uuid4().hex[:8]}"
    follower = subprocess.Popen(
        [sys.executable, "-m", "jobs", "submit", "--outputs", str(cluster.outputs_file), "--submission-id", job_id,
         "--", "python", "-u", "-c", "import time\nfor i in range(300): print('tick', i); time.sleep(0.5)"],
        cwd=REPO_ROOT, env=client_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_status(cluster, job_id, "RUNNING")
        follower.send_signal(signal.SIGINT)
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == EXIT_INTERRUPTED, stdout + stderr
    assert f"follow it with: ./bin/jobs logs {job_id} --follow --outputs {cluster.outputs_file}" in stderr
    assert str(cluster.client().get_job_status(job_id)) == "RUNNING"  # stdin is no TTY: not asked, not stopped

    logs = cluster.jobs("logs", job_id)
    assert logs.returncode == 0 and "tick 1" in logs.stdout
    listed = cluster.jobs("list")
    assert listed.returncode == 0
    assert any(line.startswith(job_id) and "RUNNING" in line for line in listed.stdout.splitlines())

    stopped = cluster.jobs("stop", job_id)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"job {job_id}: STOPPED" in stopped.stderr
    assert str(cluster.client().get_job_status(job_id)) == "STOPPED"
    status = cluster.jobs("status", job_id)
    assert f"{job_id}: STOPPED" in status.stdout


def test_unknown_job_is_a_one_line_error(cluster: Cluster) -> None:
    result = cluster.jobs("status", "no-such-job")
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("error: ") and "no-such-job does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_dashboard_urls_are_clear_errors(cluster: Cluster, tmp_path: Path) -> None:
    malformed = cluster.write_outputs(tmp_path / "malformed.json", ray_dashboard_url="127.0.0.1:8265")
    result = run_jobs("submit", "--outputs", str(malformed), "--", "echo", "hi")
    assert result.returncode == EXIT_USAGE
    assert "ray_dashboard_url must be an http(s) URL with a host, got '127.0.0.1:8265'" in result.stderr

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    unreachable = cluster.write_outputs(tmp_path / "dead.json", ray_dashboard_url=f"http://127.0.0.1:{dead_port}")
    result = run_jobs("list", "--outputs", str(unreachable))
    assert result.returncode == EXIT_USAGE
    expected = f"error: cannot reach the Ray dashboard at http://127.0.0.1:{dead_port} (nothing answers there)"
    assert result.stderr.strip() == expected


def test_outputs_without_contract_keys_are_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    partial = {key: value for key, value in cluster.outputs.items() if key not in ("ray_capacity", "access")}
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(partial))
    result = run_jobs("submit", "--outputs", str(path), "--", "echo", "hi")
    assert result.returncode == EXIT_USAGE
    assert "lacks the stack outputs ray_capacity, access" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_pulumi_cli_is_a_clear_error(tmp_path: Path) -> None:
    result = run_jobs("submit", "--stack", "dev", "--", "echo", "hi", env=client_env(PATH=str(tmp_path)))
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("error: the Pulumi CLI is not on PATH")
    assert len(result.stderr.strip().splitlines()) == 1


def fake_pulumi(directory: Path, outputs_file: Path) -> Path:
    """A `pulumi` that knows one stack, `dev`, and answers like the real CLI for any other."""
    script = directory / "pulumi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "stack = sys.argv[sys.argv.index('--stack') + 1]\n"
        "if stack != 'dev':\n"
        "    sys.exit(print(f\"error: no stack named '{stack}' found\", file=sys.stderr) or 255)\n"
        f"print(open({str(outputs_file)!r}).read())\n"
    )
    script.chmod(0o755)
    return directory


def test_stack_outputs_come_from_pulumi(cluster: Cluster, tmp_path: Path) -> None:
    env = client_env(PATH=str(fake_pulumi(tmp_path, cluster.outputs_file)), PULUMI_BACKEND_URL=f"file://{tmp_path}")
    result = run_jobs("submit", "--stack", "dev", "--", "echo", "via-pulumi", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "via-pulumi" in result.stdout

    unknown = run_jobs("list", "--stack", "nope", env=env)
    assert unknown.returncode == EXIT_USAGE
    assert unknown.stderr.strip() == "error: cannot read outputs of stack 'nope': no stack named 'nope' found"


def test_port_forward_access_runs_the_forward_only_for_the_command(cluster: Cluster, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
    access = {
        "mode": "port-forward",
        "command": [sys.executable, str(TCP_PROXY), f"{local_port}:127.0.0.1:{cluster.local.dashboard_port}",
                    "--delay", "0.5"],
        "local_dashboard_url": f"http://127.0.0.1:{local_port}",
    }  # fmt: skip
    # The stack's own dashboard URL is private (unroutable from here): only the forward can reach it.
    outputs = cluster.write_outputs(tmp_path / "private.json", access=access, ray_dashboard_url="http://10.255.255.1:8265")
    result = run_jobs("submit", "--outputs", str(outputs), "--", "echo", "through-the-forward")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "through-the-forward" in result.stdout
    with socket.socket() as sock:  # the forward is gone again
        assert sock.connect_ex(("127.0.0.1", local_port)) != 0


def test_submission_id_errors_are_the_server_reason_or_refused_before_sending(cluster: Cluster) -> None:
    job_id = f"dup-{uuid.uuid4().hex[:8]}"
    first = cluster.jobs("submit", "--no-wait", "--submission-id", job_id, "--", "echo", "first")
    assert first.returncode == 0, first.stdout + first.stderr
    again = cluster.jobs("submit", "--no-wait", "--submission-id", job_id, "--", "echo", "again")
    assert again.returncode == EXIT_USAGE
    assert again.stderr == (f"error: the Ray Jobs API refused the request (HTTP 500): Job with submission_id {job_id} "
                            "already exists. Please use a different submission_id\n")  # fmt: skip

    slashed = f"team/{uuid.uuid4().hex[:8]}"
    refused = cluster.jobs("submit", "--no-wait", "--submission-id", slashed, "--", "echo", "never")
    assert refused.returncode == EXIT_USAGE and refused.stderr.startswith(f"error: --submission-id '{slashed}': '/'")
    assert slashed not in {job.submission_id for job in cluster.client().list_jobs()}  # nothing was sent


def test_ray_address_without_scheme_reaches_the_dashboard(cluster: Cluster) -> None:
    # Ray's SDK took this for a GCS address and waited 35 s for a GCS there before failing.
    bare = cluster.local.dashboard_url.removeprefix("http://")
    result = run_jobs("list", env=client_env(RAY_ADDRESS=bare))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("SUBMISSION ID") and result.stderr == ""


def test_ray_address_only_judges_requests_by_the_live_nodes(cluster: Cluster) -> None:
    env = client_env(RAY_ADDRESS=cluster.local.dashboard_url)
    most = max(node["resources_total"]["CPU"] for node in cluster.local.alive_nodes())
    refused = run_jobs("submit", "--entrypoint-num-cpus", str(int(most) + 1), "--", "echo", "too-big", env=env)
    assert refused.returncode == EXIT_NEVER_FITS, refused.stdout + refused.stderr
    assert refused.stderr == (
        f"error: entrypoint asks for CPU={int(most) + 1} but no node of this cluster offers that now (most on one "
        f"node: CPU={most:g}); with only RAY_ADDRESS, what it can scale to is unknown (no ray_capacity), so Ray "
        "could leave it PENDING forever: nothing was submitted (name the cluster with --stack or --outputs to "
        "check against what its autoscaler can add)\n"
    )
    assert not any(job.entrypoint == "echo too-big" for job in cluster.client().list_jobs())
    fits = run_jobs("submit", "--entrypoint-num-cpus", str(int(most)), "--", "echo", "fits", env=env)
    assert fits.returncode == 0 and "fits" in fits.stdout and "waiting for the autoscaler" not in fits.stderr
