"""Ray 2.60's own autoscaler (`StandardAutoscaler` + `GCPNodeProvider`) on the gcpvm stack, offline.

The head VM is seeded into a fake Compute Engine from the stack's recorded preview (name, labels, network,
metadata), and the autoscaler reads the cluster YAML exactly as the head's startup script writes it. SSH is
a recording process runner; Ray's raylets are simulated the way the head's monitor reports them (LoadMetrics):
a worker joins once its `ray start` ran, with its node type's resources.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fake_gcp import FakeCompute
from ray.autoscaler._private import providers
from ray.autoscaler._private.autoscaler import StandardAutoscaler
from ray.autoscaler._private.gcp import node_provider
from ray.autoscaler._private.load_metrics import LoadMetrics
from ray.autoscaler._private.util import format_info_string
from ray.autoscaler.tags import TAG_RAY_NODE_KIND, TAG_RAY_NODE_STATUS, TAG_RAY_USER_NODE_TYPE

from components.gcpvm.machines import shape
from components.gcpvm.startup import HEREDOC_END
from stacks.offline import Recording

INSTANCE = "gcp:compute/instance:Instance"
SHELL_WRAPPER = re.compile(r"^source ~/.bashrc; export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore && ")
WAIT_S = 30  # bound on background launches and node updaters


def cluster_yaml_of(startup_script: str) -> str:
    """The autoscaler config as the head's startup script writes it to disk."""
    match = re.search(rf"<<'{HEREDOC_END}'\n(.*?)\n{HEREDOC_END}\n", startup_script, re.S)
    assert match, "the startup script writes no cluster config"
    return match.group(1) + "\n"


def head_body(inputs: dict[str, Any], zone: str) -> dict[str, Any]:
    """The head VM as instances.get returns it, from the Pulumi Instance's recorded inputs."""
    metadata = [{"key": k, "value": v} for k, v in sorted(inputs.get("metadata", {}).items())]
    metadata.append({"key": "startup-script", "value": inputs["metadataStartupScript"]})
    return {
        "name": inputs["name"],
        "machineType": f"zones/{zone}/machineTypes/{inputs['machineType']}",
        "labels": dict(inputs.get("labels", {})),
        "tags": {"items": list(inputs.get("tags", []))},
        "networkInterfaces": [dict(nic) for nic in inputs["networkInterfaces"]],
        "metadata": {"items": metadata},
        "serviceAccounts": [dict(inputs["serviceAccount"])],
    }


class RecordingRunner:
    """Stands in for `subprocess` under Ray's SSH command runner: records (node IP, remote command), answers
    the few questions Ray's docker runner asks, runs nothing."""

    def __init__(self, memory_kb: Callable[[str], int]):
        self.memory_kb = memory_kb  # of the VM at an IP, for Ray's /dev/shm sizing
        self.commands: list[tuple[str, str]] = []

    def _record(self, cmd: list[str]) -> tuple[str, str]:
        at = next(i for i, part in enumerate(cmd) if "@" in part and not part.startswith("-"))
        ip = cmd[at].split("@", 1)[1]
        remote = " ".join(cmd[at + 1:])
        self.commands.append((ip, remote))
        return ip, remote

    def check_call(self, cmd: list[str], **_: Any) -> int:
        self._record(cmd)
        return 0

    def check_output(self, cmd: list[str], **_: Any) -> bytes:
        ip, remote = self._record(cmd)
        if "command -v docker" in remote:
            return b"/usr/bin/docker"
        if ".Config.Env" in remote:
            return b'["PATH=/usr/bin", "HOME=/home/ray"]'
        if "/proc/meminfo" in remote:
            return f"MemTotal: {self.memory_kb(ip)} kB\nMemAvailable: {self.memory_kb(ip)} kB".encode()
        return b""  # docker inspect of a container that does not run yet, docker info, ...

    def on(self, ip: str) -> list[str]:
        """The commands run on one node, in order, without the login shell around each."""
        return [SHELL_WRAPPER.sub("", shlex.split(remote)[-1]) for node_ip, remote in self.commands if node_ip == ip]


class FakeGcs:
    """The GCS calls the autoscaler makes: draining nodes before it deletes them."""

    def __init__(self) -> None:
        self.drained: list[bytes] = []

    def drain_nodes(self, node_ids, timeout=None):
        self.drained += list(node_ids)
        return list(node_ids)


class Harness:
    def __init__(self, recording: Recording, monkeypatch, tmp_path: Path):
        head = recording.get(INSTANCE, "head-vm").inputs
        self.yaml_text = cluster_yaml_of(head["metadataStartupScript"])
        self.config = yaml.safe_load(self.yaml_text)
        provider = self.config["provider"]
        self.compute = FakeCompute(provider["project_id"], provider["availability_zone"])
        self.head = self.compute.add(head_body(head, provider["availability_zone"]))
        self.head_name = head["name"]
        # Ray's provider builds its API clients here; it gets the fake Compute API and nothing else.
        monkeypatch.setattr(node_provider, "construct_clients_from_provider_config",
                            lambda _config: (None, None, self.compute.api, None))
        providers._clear_provider_cache()
        # The one change to the config as written: where the head keeps the workers' SSH key (Ray hashes the key
        # into each worker's launch config, so it must exist).
        key = tmp_path / "ssh_key.pem"
        key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")

        def read_config() -> dict[str, Any]:
            config = yaml.safe_load(self.yaml_text)
            config["auth"]["ssh_private_key"] = str(key)
            return config
        self.runner = RecordingRunner(self._memory_kb)
        self.gcs = FakeGcs()
        self.load_metrics = LoadMetrics()
        self.waiting: list[dict[str, float]] = []
        self.busy: set[str] = set()  # IPs whose resources are all in use
        self.idle_s: dict[str, float] = {}  # per joined node IP
        self.joined: dict[str, str] = {}  # IP -> node type
        self.autoscaler = StandardAutoscaler(read_config, self.load_metrics, self.gcs, process_runner=self.runner,
                                             update_interval_s=0)
        self.join(self.ip(self.head_name), self.config["head_node_type"])  # the head's raylet

    def _memory_kb(self, ip: str) -> int:
        instance = next(i for i in self.compute.instances.values() if i["networkInterfaces"][0]["networkIP"] == ip)
        return int(shape(instance["machineType"].rsplit("/", 1)[1]).memory_gb * 1024**2)

    def ip(self, name: str) -> str:
        return self.compute.instances[name]["networkInterfaces"][0]["networkIP"]

    def join(self, ip: str, node_type: str) -> None:
        self.joined[ip] = node_type
        self.idle_s.setdefault(ip, 0.0)
        self.report()

    def report(self) -> None:
        """What the monitor reads from the GCS each round: every raylet's resources, idle time and the demand."""
        for ip, node_type in self.joined.items():
            resources = {k: float(v) for k, v in self.config["available_node_types"][node_type]["resources"].items()}
            available = {} if ip in self.busy else dict(resources)
            self.load_metrics.update(ip, hashlib.sha1(ip.encode()).digest()[:28], resources, available,
                                     self.idle_s[ip], waiting_bundles=list(self.waiting))

    def demand(self, bundles: list[dict[str, float]]) -> None:
        """Tasks waiting for resources: every node that is up is busy, these bundles queue."""
        self.waiting = bundles
        self.busy = set(self.joined)
        self.report()

    def finish(self) -> None:
        """The queued work is done: nothing waits, every node is free (and idle from now)."""
        self.waiting, self.busy = [], set()
        self.report()

    def request_resources(self, bundles: list[dict[str, float]]) -> None:
        """What `ray.autoscaler.sdk.request_resources` leaves in the GCS for the monitor."""
        self.load_metrics.set_resource_requests(bundles)

    def step(self) -> None:
        """One autoscaler round, then wait for its launches and node updaters; workers whose `ray start`
        ran join the cluster."""
        failures = self.autoscaler.num_failures
        self.report()
        self.autoscaler.update()
        assert self.autoscaler.num_failures == failures, "the autoscaler's update raised (see the log)"
        deadline = time.monotonic() + WAIT_S
        while self.autoscaler.pending_launches.value and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.autoscaler.pending_launches.value, "launches still pending"
        for updater in list(self.autoscaler.updaters.values()):
            updater.join(WAIT_S)
            assert not updater.is_alive(), f"updater of {updater.node_id} still running"
        for instance in list(self.compute.instances.values()):
            labels = instance["labels"]
            ip = instance["networkInterfaces"][0]["networkIP"]
            if (labels.get(TAG_RAY_NODE_KIND) == "worker" and labels.get(TAG_RAY_NODE_STATUS) == "up-to-date"
                    and ip not in self.joined and any("ray start" in c for c in self.runner.on(ip))):
                self.join(ip, labels[TAG_RAY_USER_NODE_TYPE])

    def rounds(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def workers(self) -> dict[str, dict[str, Any]]:
        return {n: i for n, i in self.compute.instances.items() if i["labels"].get(TAG_RAY_NODE_KIND) == "worker"}

    def status(self) -> str:
        """What `ray status` prints: the monitor's load metrics and the autoscaler's summary."""
        return format_info_string(self.load_metrics.summary(), self.autoscaler.summary())
