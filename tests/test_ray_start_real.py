"""Real Ray: a head and a worker started with the exact `ray start` arguments and auth environment the containers
run (components/ray_node.py, components/ray_auth.py) form one cluster, and only Ray's token opens it: the
dashboard refuses a job without it (401) or with a wrong one (403), and a worker with a wrong token cannot join."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from components.ray_auth import headers, node_env, node_env_from_file
from components.ray_node import HeadPorts, RayNode, head_start_args, worker_start_args
from jobs import EXIT_AUTH
from stacks.config import load
from stacks.contract import OUTPUT_KEYS
from stacks.local import _worker_node
from tests.ray_nodes import free_ports, worker_port_base


def sharing_one_machine(ports: list[int], worker_range: tuple[int, int]) -> list[str]:
    """Two raylets on one machine must not share their agents' ports (each container has its own)."""
    agent, agent_grpc, runtime_env = ports
    return [f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--min-worker-port={worker_range[0]}", f"--max-worker-port={worker_range[1]}"]


def post_job(url: str, request_headers: dict[str, str]) -> int:
    """POST /api/jobs/ as any HTTP client would; the status code the dashboard answers."""
    body = json.dumps({"entrypoint": "echo should-not-run"}).encode()
    request = urllib.request.Request(f"{url}/api/jobs/", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **request_headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def jobs_client(outputs_file: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m jobs` as a user runs it, with no Ray auth variables of its own unless given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    return subprocess.run([sys.executable, "-m", "jobs", args[0], "--outputs", str(outputs_file), *args[1:]],
                          cwd=Path(__file__).resolve().parent.parent, env={**clean, **env}, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_head_and_worker_from_the_container_commands_form_one_cluster_that_only_the_token_opens(ray_nodes, tmp_path):
    cfg = load({"ray-platform:workers": '[{"name": "w", "cpus": 2, "memory_gb": 1, "resources": {"tuner": 2}}]'})
    assert cfg.ray_auth == "token"  # the default
    token = secrets.token_hex(32)
    gcs, dashboard, client, head_metrics, worker_metrics, *agents = free_ports(18)
    head_args = head_start_args(RayNode(cpus=1, memory_gb=1), HeadPorts(gcs, dashboard, client, head_metrics),
                                node_ip="127.0.0.1")
    worker_args = worker_start_args(_worker_node(cfg.workers[0]), f"127.0.0.1:{gcs}", metrics_port=worker_metrics,
                                    node_ip="127.0.0.1")
    assert head_args[-1] == worker_args[-1] == "--block"  # as the containers run them
    base = worker_port_base(200)
    ray_nodes.start(head_args + sharing_one_machine(agents[0:3], (base, base + 49))
                    + [f"--temp-dir={ray_nodes.temp_dir()}"], env=node_env(token))
    address = f"http://127.0.0.1:{dashboard}"
    ray_nodes.wait_alive(address, 1, headers=headers(token))
    ray_nodes.start(worker_args + sharing_one_machine(agents[3:6], (base + 50, base + 99)), env=node_env(token))

    nodes = ray_nodes.wait_alive(address, 2, headers=headers(token))
    by_role = {n.is_head_node: n.resources_total for n in nodes}
    # gcpvm's way: the token in a file only the container user reads, named by RAY_AUTH_TOKEN_PATH.
    token_file = tmp_path / "ray_auth_token"
    token_file.write_text(token)
    token_file.chmod(0o400)
    from_file = worker_start_args(_worker_node(cfg.workers[0]), f"127.0.0.1:{gcs}", metrics_port=agents[12],
                                  node_ip="127.0.0.1")
    ray_nodes.start(from_file + sharing_one_machine(agents[9:12], (base + 150, base + 199)),
                    env=node_env_from_file(str(token_file)))
    assert len(ray_nodes.wait_alive(address, 3, headers=headers(token))) == 3
    assert by_role[True]["CPU"] == 1
    assert by_role[False]["CPU"] == 2 and by_role[False]["tuner"] == 2
    assert by_role[False]["memory"] == 1024**3

    # The Jobs API: no token, a wrong token, and the token in the header a proxy leaves alone.
    assert post_job(address, {}) == 401
    assert post_job(address, headers(secrets.token_hex(32))) == 403
    assert post_job(address, {"X-Ray-Authorization": token}) == 403  # the header wants "Bearer <token>" too

    # The job client: with the stack's token a job runs; without one, or with a wrong one, one clear error line.
    outputs = {**dict.fromkeys(OUTPUT_KEYS), "environment": "local", "ray_dashboard_url": address,
               "access": {"mode": "direct"}, "ray_capacity": {}, "ray_auth_token": token}
    stack = tmp_path / "outputs.json"
    stack.write_text(json.dumps(outputs))
    ran = jobs_client(stack, "submit", "--", sys.executable, "-c", "print('ran-with-token')")
    assert ran.returncode == 0 and "ran-with-token" in ran.stdout, ran.stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**outputs, "ray_auth_token": secrets.token_hex(32)}))
    refused = jobs_client(wrong, "submit", "--", "echo", "never")
    assert refused.returncode == EXIT_AUTH and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: the cluster requires a token: the token from the stack output ray_auth_token is not the cluster's "
        "(403 Forbidden; the cluster's is `pulumi stack output ray_auth_token --show-secrets`)")
    anonymous = tmp_path / "anonymous.json"
    anonymous.write_text(json.dumps({**outputs, "ray_auth_token": None}))
    missing = jobs_client(anonymous, "list")
    assert missing.returncode == EXIT_AUTH and "error: the cluster requires a token: none was sent" in missing.stderr
    from_env = jobs_client(anonymous, "list", RAY_AUTH_TOKEN=token)  # a token from the environment also works
    assert from_env.returncode == 0, from_env.stderr

    # A worker with a wrong token is refused by the GCS: `ray start` gives up with InvalidAuthToken.
    intruder = ray_nodes.start(worker_args + sharing_one_machine(agents[6:9], (base + 100, base + 149)),
                               env=node_env(secrets.token_hex(32)))
    assert intruder.wait(timeout=180) != 0
    assert "InvalidAuthToken" in ray_nodes.processes[-1][1].read_text()
    assert len(ray_nodes.wait_alive(address, 3, headers=headers(token))) == 3
