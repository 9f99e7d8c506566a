"""The `dev` stack, deployed for real into a private Docker Engine by the real program, checked against the running
containers: Ray nodes join, ports answer only on loopback, jobs run, training survives a killed worker container
and resumes, Prometheus scrapes every node, Jupyter answers with its token, and teardown keeps the protected volumes.

The tests run in file order against one deployment; the last one tears it down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from components.ray_auth import headers
from tests.local_real.deploy import Deployment

pytestmark = pytest.mark.real_docker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "jobs" / "examples"


# ------------------------------------------------------------------------------------------------ helpers


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def eventually(check, timeout_s: float, interval_s: float = 2.0, what: str = "condition"):
    """check() until it returns a truthy value; the last value or exception in the failure message."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 the service may still be starting
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"{what} not reached in {timeout_s:.0f} s; last: {last!r}")


def state_list(deployment: Deployment, resource: str, filters: list | None = None) -> list:
    """Ray's state API (as `ray list nodes/actors`), with the stack's token in the header."""
    from ray.util.state import StateApiClient
    from ray.util.state.common import ListApiOptions, StateResource

    client = StateApiClient(deployment.outputs["ray_dashboard_url"],
                            headers={"Content-Type": "application/json",
                                     **headers(deployment.outputs.get("ray_auth_token"))})
    options = ListApiOptions(timeout=10, filters=filters or [])
    return client.list(StateResource(resource), options, raise_on_missing_output=False)


def alive_nodes(deployment: Deployment) -> list:
    return [n for n in state_list(deployment, "nodes") if n.state == "ALIVE"]


def expected_node_count(outputs: dict[str, Any]) -> int:
    return sum(int(entry["min_nodes"]) for entry in outputs["ray_capacity"].values())


def container_ips(deployment: Deployment, names: list[str]) -> dict[str, str]:
    ips = {}
    for name in names:
        networks = deployment.mocks.api.call("GET", f"/containers/{name}/json")["NetworkSettings"]["Networks"]
        ips[name] = next(iter(networks.values()))["IPAddress"]
    return ips


def jobs_cli(deployment: Deployment, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args[:1], "--outputs", str(deployment.outputs_file), *args[1:]],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )


def host_addresses() -> list[str]:
    """This machine's own IPv4 addresses other than loopback (its network, and the engine's bridges)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return sorted({line.split()[3].split("/")[0] for line in out.splitlines()} - {"127.0.0.1"})


def connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


# -------------------------------------------------------------------------------------------------- tests


def test_every_ray_node_joins(deployment: Deployment) -> None:
    expected = expected_node_count(deployment.outputs)
    nodes = eventually(lambda: (n := alive_nodes(deployment)) and len(n) >= expected and n, 300,
                       what=f"{expected} ALIVE Ray nodes")
    assert len(nodes) == expected
    # Each node is one of the program's Ray containers (by its address on the stack's network), each exactly once.
    ips = container_ips(deployment, deployment.container_names("head") + deployment.container_names("worker"))
    assert sorted(n.node_ip for n in nodes) == sorted(ips.values()), (nodes, ips)
    assert sum(1 for n in nodes if n.is_head_node) == 1


def test_published_ports_answer_on_loopback_only(deployment: Deployment) -> None:
    bindings = {}
    for name in deployment.container_names():
        ports = deployment.mocks.api.call("GET", f"/containers/{name}/json")["NetworkSettings"]["Ports"] or {}
        for container_port, published in ports.items():
            for binding in published or []:
                bindings[(name, container_port)] = (binding["HostIp"], int(binding["HostPort"]))
    assert bindings, "no published ports"
    assert {ip for ip, _ in bindings.values()} == {"127.0.0.1"}, bindings
    # Every configured port is published by some container, except those of skipped containers.
    skipped_ports = {deployment.ports["grafana"]} if deployment.skipped else set()
    assert {p for _, p in bindings.values()} == set(deployment.ports.values()) - skipped_ports
    # MinIO's console has no stand-in process behind it (standins.py): the engine publishes it, nobody answers.
    silent = {deployment.ports["minio_console"]}
    for (name, container_port), (_, port) in sorted(bindings.items()):
        if port not in silent:
            eventually(lambda p=port: connects("127.0.0.1", p), 120, what=f"{name} {container_port} on 127.0.0.1:{port}")
        for address in host_addresses():
            assert not connects(address, port), f"{name} {container_port} answers on {address}:{port}"


def test_the_dashboard_takes_only_the_stacks_token(deployment: Deployment) -> None:
    token = deployment.outputs["ray_auth_token"]
    assert token, "dev runs Ray with token auth by default"
    jobs_api = f"{deployment.outputs['ray_dashboard_url']}/api/jobs/"
    assert http_get(jobs_api)[0] == 401
    assert http_get(jobs_api, headers("not-the-token"))[0] == 403
    assert http_get(jobs_api, headers(token))[0] == 200


def test_hello_world_job_succeeds(deployment: Deployment) -> None:
    result = jobs_cli(deployment, "submit", "--working-dir", str(EXAMPLES), "--", "python", "hello_world.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    expected = expected_node_count(deployment.outputs)
    assert f"{expected} nodes alive" in result.stdout
    assert result.stdout.count("hello from") == expected


def test_training_resumes_after_its_worker_container_crashes(deployment: Deployment) -> None:
    import boto3
    from ray.train.v2._internal.constants import CHECKPOINT_MANAGER_SNAPSHOT_FILENAME

    outputs = deployment.outputs
    credentials = outputs["credentials"]
    s3 = boto3.client("s3", endpoint_url=outputs["storage"]["endpoint"], region_name="us-east-1",
                      aws_access_key_id=credentials["minio_access_key"],
                      aws_secret_access_key=credentials["minio_secret_key"])
    bucket = outputs["storage"]["uri"].removeprefix("s3://").split("/")[0]
    name, epochs = f"resume-{uuid.uuid4().hex[:6]}", 12
    job_id = f"train-{name}"
    fast_polling = {"env_vars": {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}}  # Train's controller: default 2 s
    submitted = jobs_cli(
        deployment, "submit", "--no-wait", "--submission-id", job_id, "--working-dir", str(EXAMPLES),
        "--runtime-env-json", json.dumps(fast_polling), "--",
        "python", "train.py", "--epochs", str(epochs), "--epoch-seconds", "1", "--workers", "2",
        "--max-failures", "3", "--name", name,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr

    def registered() -> list:
        body = s3.get_object(Bucket=bucket, Key=f"train/{name}/{CHECKPOINT_MANAGER_SNAPSHOT_FILENAME}")["Body"]
        return json.loads(body.read()).get("checkpoint_results") or []

    eventually(registered, 300, interval_s=0.5, what="a checkpoint registered by Ray Train in the object store")

    # The worker container that runs a training worker, found through Ray's state API and the containers' IPs.
    actors = state_list(deployment, "actors", [("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
    node_ips = {n.node_id: n.node_ip for n in alive_nodes(deployment)}
    by_ip = {ip: name for name, ip in container_ips(deployment, deployment.container_names("worker")).items()}
    victims = sorted({by_ip[node_ips[a.node_id]] for a in actors if node_ips.get(a.node_id) in by_ip})
    assert victims, f"no training worker on a worker container: {actors}"
    victim = victims[0]
    # The container crashes: its main process is SIGKILLed from the host. (`docker kill` would not do: Docker
    # counts it as a manual stop and never applies the restart policy after it.)
    os.kill(deployment.mocks.api.call("GET", f"/containers/{victim}/json")["State"]["Pid"], signal.SIGKILL)

    followed = jobs_cli(deployment, "logs", job_id, "--follow", timeout=600)
    assert followed.returncode == 0, followed.stdout[-6000:] + followed.stderr[-2000:]
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"train/{name}/summary.json")["Body"].read())
    assert summary["last_epoch"] == epochs - 1
    assert summary["resumed_from_epochs"], f"the run restarted from scratch: {followed.stdout[-4000:]}"
    resumed = summary["resumed_from_epochs"][0]
    assert 0 <= resumed < epochs - 1
    assert f"resumed from checkpoint at epoch {resumed}" in followed.stdout
    state = deployment.mocks.api.call("GET", f"/containers/{victim}/json")
    assert state["RestartCount"] >= 1 and state["State"]["Running"], "the killed worker was not restarted"


def test_prometheus_scrapes_every_ray_node(deployment: Deployment) -> None:
    prometheus = deployment.outputs["prometheus_url"]
    expected = {n.node_ip for n in alive_nodes(deployment)}

    def ray_targets_up() -> set[str]:
        _, body = http_get(f"{prometheus}/api/v1/targets?state=active")
        targets = [t for t in json.loads(body)["data"]["activeTargets"] if t["scrapePool"] == "ray"]
        up = {t["labels"]["instance"].rsplit(":", 1)[0] for t in targets if t["health"] == "up"}
        return up if expected <= up else set()

    eventually(ray_targets_up, 240, interval_s=3, what=f"Prometheus targets up for every Ray node {sorted(expected)}")

    def ray_series() -> int:
        query = urllib.parse.quote('count({__name__=~"ray_.+"})')
        _, body = http_get(f"{prometheus}/api/v1/query?query={query}")
        result = json.loads(body)["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    assert eventually(ray_series, 120, interval_s=3, what="a ray_ metric in Prometheus") > 0


def test_jupyter_answers_with_its_token_and_reaches_the_head(deployment: Deployment) -> None:
    url, token = deployment.outputs["jupyter_url"], deployment.outputs["credentials"]["jupyter_token"]
    status, _ = eventually(lambda: (r := http_get(f"{url}/api/status", {"Authorization": f"token {token}"}))[0] == 200
                           and r, 120, what="Jupyter answering with its token")
    assert status == 200
    assert http_get(f"{url}/api/status")[0] in (401, 403)
    assert http_get(f"{url}/api/status", {"Authorization": "token wrong"})[0] in (401, 403)
    # From inside the notebook container, RAY_ADDRESS (as the stack set it) reaches the head's dashboard API.
    probe = (
        "import os, urllib.request; token = os.environ.get('RAY_AUTH_TOKEN');"
        "headers = {'Authorization': 'Bearer ' + token} if token else {};"
        "r = urllib.request.urlopen(urllib.request.Request(os.environ['RAY_ADDRESS'] + '/api/version', headers=headers));"
        "print(r.status, r.read().decode())"
    )
    jupyter = next(n for n in deployment.container_names() if n.endswith("-jupyter"))
    out = deployment.engine.docker("exec", jupyter, "python", "-c", probe, timeout=60)
    assert out.startswith("200 "), out
    assert json.loads(out[4:])["ray_version"] == deployment.outputs["ray_version"]


def test_teardown_removes_containers_and_networks_and_keeps_protected_volumes(deployment: Deployment) -> None:
    api = deployment.mocks.api
    protected = {r.revealed["name"] for r in deployment.recording.by_type("docker:index/volume:Volume") if r.protect}
    assert protected, "the stack protects no volume"
    kept = deployment.destroy()
    assert api.call("GET", "/containers/json", query={"all": "1"}) == []
    assert [n["Name"] for n in api.call("GET", "/networks") if n["Name"] not in ("host", "none", "bridge")] == []
    volumes = {v["Name"] for v in api.call("GET", "/volumes")["Volumes"] or []}
    assert volumes == protected, (volumes, kept)
    assert all(r.retain_on_delete for r in deployment.recording.by_type("docker:index/volume:Volume") if r.protect)
