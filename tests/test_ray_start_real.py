"""Real Ray: a head and a worker started with the exact `ray start` arguments and auth environment the containers
run (components/ray_node.py, components/ray_auth.py) form one cluster, and only Ray's token opens it: the
dashboard refuses a job without it (401) or with a wrong one (403), and a worker with a wrong token cannot join."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

from components.ray_auth import headers, node_env
from components.ray_node import HeadPorts, RayNode, head_start_args, worker_start_args
from stacks.config import load
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


def test_head_and_worker_from_the_container_commands_form_one_cluster_that_only_the_token_opens(ray_nodes):
    cfg = load({"ray-platform:workers": '[{"name": "w", "cpus": 2, "memory_gb": 1, "resources": {"tuner": 2}}]'})
    assert cfg.ray_auth == "token"  # the default
    token = secrets.token_hex(32)
    gcs, dashboard, client, head_metrics, worker_metrics, *agents = free_ports(14)
    head_args = head_start_args(RayNode(cpus=1, memory_gb=1), HeadPorts(gcs, dashboard, client, head_metrics),
                                node_ip="127.0.0.1")
    worker_args = worker_start_args(_worker_node(cfg.workers[0]), f"127.0.0.1:{gcs}", metrics_port=worker_metrics,
                                    node_ip="127.0.0.1")
    assert head_args[-1] == worker_args[-1] == "--block"  # as the containers run them
    base = worker_port_base(150)
    ray_nodes.start(head_args + sharing_one_machine(agents[0:3], (base, base + 49))
                    + [f"--temp-dir={ray_nodes.temp_dir()}"], env=node_env(token))
    address = f"http://127.0.0.1:{dashboard}"
    ray_nodes.wait_alive(address, 1, headers=headers(token))
    ray_nodes.start(worker_args + sharing_one_machine(agents[3:6], (base + 50, base + 99)), env=node_env(token))

    nodes = ray_nodes.wait_alive(address, 2, headers=headers(token))
    by_role = {n.is_head_node: n.resources_total for n in nodes}
    assert by_role[True]["CPU"] == 1
    assert by_role[False]["CPU"] == 2 and by_role[False]["tuner"] == 2
    assert by_role[False]["memory"] == 1024**3

    # The Jobs API: no token, a wrong token, and the token in the header a proxy leaves alone.
    assert post_job(address, {}) == 401
    assert post_job(address, headers(secrets.token_hex(32))) == 403
    assert post_job(address, {"X-Ray-Authorization": token}) == 403  # the header wants "Bearer <token>" too

    # A worker with a wrong token is refused by the GCS: `ray start` gives up with InvalidAuthToken.
    intruder = ray_nodes.start(worker_args + sharing_one_machine(agents[6:9], (base + 100, base + 149)),
                               env=node_env(secrets.token_hex(32)))
    assert intruder.wait(timeout=180) != 0
    assert "InvalidAuthToken" in ray_nodes.processes[-1][1].read_text()
    assert len(ray_nodes.wait_alive(address, 2, headers=headers(token))) == 2
