"""A throwaway multi-node Ray cluster on loopback, and stack outputs that describe it.

Used by the job tests and the job benchmark, and handy for trying `./bin/jobs` without a stack:
one head and N worker raylets on loopback (127.0.0.x, one address per node), each `ray start --block`
in its own process group with its own ports, worker port range and temp dir, so it never touches another
Ray cluster on the machine (we never call `ray stop`, which would kill every Ray process of the user).

    ./bin/jobs local-cluster --outputs /tmp/outputs.json   # runs until Ctrl-C; says when a node dies
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.ray_auth import headers, node_env
from jobs import PROJECT_ROOT, client_wrapper
from jobs.cli import Parser
from stacks.contract import OUTPUT_KEYS

# Fast failure detection so a killed raylet is noticed in seconds, not the default ~30 s.
FAST_FAILURE_DETECTION = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
OBJECT_STORE_BYTES = 80 * 1024 * 1024
WORKER_PORTS_PER_NODE = 40


class PortTaken(RuntimeError):
    """A port we picked was taken by another process before Ray bound it."""


@dataclass
class NodeSpec:
    """One raylet: its node type name (as in ray_capacity), CPUs and custom resources."""

    node_type: str
    num_cpus: int
    resources: dict[str, float] = field(default_factory=dict)


@dataclass
class Node:
    spec: NodeSpec
    process: subprocess.Popen
    log_path: Path


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("", port))  # all addresses: Ray binds some ports on 0.0.0.0, others on the node IP
        except OSError:
            return False
    return True


class PortPicker:
    """Hands out free ports below the kernel's ephemeral range (32768+), never the same one twice.

    Ports from the ephemeral range (what binding port 0 gives) can be taken a moment later by some
    process's outgoing connection, and a raylet then fails with "Address already in use".
    """

    def __init__(self, start: int = 20000 + (os.getpid() % 97) * 100, end: int = 32000):
        self._next, self._end = start, end

    def take(self, count: int, consecutive: bool = False) -> list[int]:
        ports: list[int] = []
        while len(ports) < count:
            if self._next >= self._end:
                raise RuntimeError("no free ports left between 20000 and 32000")
            port, self._next = self._next, self._next + 1
            if _port_is_free(port):
                ports.append(port)
            elif consecutive:
                ports.clear()
        return ports


def _alive_nodes(dashboard_url: str, token: str | None = None) -> list[dict[str, Any]]:
    url = f"{dashboard_url}/api/v0/nodes?limit=1000&detail=true"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers(token)), timeout=5) as response:
        body = json.load(response)
    return [node for node in body["data"]["result"]["result"] if node["state"] == "ALIVE"]


class LocalCluster:
    """Start with `start()`, always `stop()` (or use it as a context manager)."""

    def __init__(self, head: NodeSpec, workers: list[NodeSpec], env: dict[str, str] | None = None,
                 token: str | None = None):
        """`token`: run with Ray's token authentication, as every stack does by default."""
        self.head_spec = head
        self.token = token
        self.worker_specs = workers
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))  # short: Unix socket paths max 107 chars
        self.nodes: list[Node] = []
        self.env = {
            **os.environ,
            **FAST_FAILURE_DETECTION,
            "RAY_USAGE_STATS_ENABLED": "0",
            # Ray 2.60 turns token auth on when ~/.ray/auth_token exists; a throwaway loopback cluster
            # should behave the same on every machine, so say it explicitly (disabled unless given a token).
            **node_env(token),
            # Job entrypoints say `python ...`: make that this interpreter, whatever PATH says.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            # What Ray's processes put in the temp dir (multiprocessing's pymp-* dirs, ...) outlives a killed
            # process: keep it inside our temp dir, which stop() removes.
            "TMPDIR": str(self.temp_dir),
            **(env or {}),
        }
        for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
            self.env.pop(name, None)
        self._ports = PortPicker()
        self._launched = 0  # nodes ever started: numbers their temp dirs and loopback addresses
        self.gcs_port, self.dashboard_port, self.client_port = self._ports.take(3)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def _node_args(self, node_ip: str, node_dir: Path) -> list[str]:
        node_manager, object_manager, agent_listen, agent_grpc, metrics, runtime_env = self._ports.take(6)
        worker_ports = self._ports.take(WORKER_PORTS_PER_NODE, consecutive=True)
        low, high = worker_ports[0], worker_ports[-1]
        return [
            f"--node-ip-address={node_ip}",
            f"--node-manager-port={node_manager}",
            f"--object-manager-port={object_manager}",
            f"--dashboard-agent-listen-port={agent_listen}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--min-worker-port={low}",
            f"--max-worker-port={high}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--temp-dir={node_dir}",  # one per node, as on separate machines (see _share_logs_with_head)
            "--disable-usage-stats",
            "--block",
        ]

    def _share_logs_with_head(self, node_dir: Path) -> None:
        """Point this node's session log dir at the head's.

        Nodes need temp dirs of their own (in a shared one their runtime-env agents unpack a job's
        working_dir into the same directory and delete it under each other, pulling the cwd from under a
        running driver: tests/jobs/test_working_dir_cause.py), but Ray's job agent reads a
        driver's log at the head's session path whichever node the driver ran on: on one machine that
        only works if every node writes its logs there. Ray names log files so that nodes do not collide.
        """
        head_dir = self.temp_dir / "0"
        session = Path(os.readlink(head_dir / "session_latest")).name
        (node_dir / session).mkdir()
        (node_dir / session / "logs").symlink_to(head_dir / session / "logs")

    def _node_ip(self) -> str:
        """A loopback address of its own for each node: Ray finds a node's agent (job logs, ...) by IP, and
        raylets sharing one IP get mixed up. 127.0.0.1 itself Ray replaces by the host's address."""
        return f"127.0.0.{self._launched + 1}"

    def _launch(self, spec: NodeSpec, role_args: list[str]) -> Node:
        resources = {**spec.resources, f"node_type:{spec.node_type}": 1}
        node_dir = self.temp_dir / str(self._launched)
        node_dir.mkdir()
        if self._launched:
            self._share_logs_with_head(node_dir)
        log_path = self.temp_dir / f"launch-{self._launched}-{spec.node_type}.log"
        command = [
            str(Path(sys.executable).parent / "ray"), "start", *role_args, *self._node_args(self._node_ip(), node_dir),
            f"--num-cpus={spec.num_cpus}", "--num-gpus=0", f"--resources={json.dumps(resources)}",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        node = Node(spec, process, log_path)
        self.nodes.append(node)
        self._launched += 1
        return node

    def start(self, timeout_s: float = 90, attempts: int = 3) -> LocalCluster:
        """Start the head, then the workers one by one; retry with fresh ports if a port was taken meanwhile."""
        for attempt in range(1, attempts + 1):
            try:
                self._launch(self.head_spec, self._head_args())
                self.wait_for_nodes(1, timeout_s)
                for spec in self.worker_specs:
                    self.add_worker(spec, timeout_s=timeout_s)
                return self
            except PortTaken:
                self.stop()
                if attempt == attempts:
                    raise
                self.temp_dir.mkdir()
                self._launched = 0
                self.gcs_port, self.dashboard_port, self.client_port = self._ports.take(3)
            except BaseException:
                self.stop()
                raise
        return self

    def _head_args(self) -> list[str]:
        return [
            "--head",
            f"--port={self.gcs_port}",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={self.client_port}",
            "--dashboard-host=127.0.0.1",
            "--include-dashboard=true",
        ]

    def add_worker(self, spec: NodeSpec, timeout_s: float = 60) -> Node:
        """Start one more worker raylet and wait until it is alive."""
        expected = len(self.alive_nodes()) + 1
        node = self._launch(spec, [f"--address={self.gcs_address}"])
        self.wait_for_nodes(expected, timeout_s)
        return node

    def alive_nodes(self) -> list[dict[str, Any]]:
        return _alive_nodes(self.dashboard_url, self.token)

    def wait_for_nodes(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process.poll() is not None:
                    log = node.log_path.read_text()[-3000:]
                    failure = PortTaken if "already in use" in log.lower() else RuntimeError
                    raise failure(f"ray start exited early:\n{log}")
            try:
                if len(self.alive_nodes()) >= count:
                    return
            except OSError:
                pass  # dashboard not up yet
            time.sleep(0.3)
        raise TimeoutError(f"{count} Ray nodes not alive after {timeout_s} s")

    def raylet_pid(self, node: Node) -> int:
        """The raylet process of one of our nodes (a descendant of its `ray start --block`)."""
        for pid in _process_tree(node.process.pid):
            if _process_name(pid) == "raylet":
                return pid
        raise RuntimeError(f"no raylet under ray start pid {node.process.pid}")

    def kill_node(self, node: Node, timeout_s: float = 30) -> None:
        """Kill a node hard, raylet first, as a lost machine would be; return once Ray counts it dead."""
        alive_before = len(self.alive_nodes())
        os.kill(self.raylet_pid(node), signal.SIGKILL)
        _kill_tree(node.process)
        self.nodes.remove(node)
        deadline = time.monotonic() + timeout_s
        while len(self.alive_nodes()) >= alive_before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"killed node still counted alive after {timeout_s} s")
            time.sleep(0.2)

    def capacity(self) -> dict[str, Any]:
        """ray_capacity for this cluster, read from the live nodes (memory is what Ray computed)."""
        capacity: dict[str, Any] = {}
        for node in self.alive_nodes():
            resources = {
                name: amount
                for name, amount in node["resources_total"].items()
                if not name.startswith("node:") and not name.startswith("node_type:")
                and name != "object_store_memory"
            }  # fmt: skip
            node_type = next(name.split(":", 1)[1] for name in node["resources_total"] if name.startswith("node_type:"))
            entry = capacity.setdefault(node_type, {"resources": resources, "min_nodes": 0, "max_nodes": 0})
            entry["min_nodes"] += 1
            entry["max_nodes"] += 1
        return capacity

    def outputs(self, storage_uri: str, extra_capacity: dict[str, Any] | None = None) -> dict[str, Any]:
        """Stack outputs in the contract's shape for this cluster (environment "local", direct access)."""
        import ray

        outputs: dict[str, Any] = dict.fromkeys(OUTPUT_KEYS)
        outputs.update(
            environment="local",
            ray_version=ray.__version__,
            ray_dashboard_url=self.dashboard_url,
            ray_client_address=f"ray://127.0.0.1:{self.client_port}",
            ray_capacity={**self.capacity(), **(extra_capacity or {})},
            storage={"uri": storage_uri, "endpoint": None},
            access={"mode": "direct"},
            ray_auth_token=self.token,
        )
        return outputs

    def stop(self) -> None:
        for node in reversed(self.nodes):
            _kill_tree(node.process)
        self.nodes.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        found: list[int] = []
        for task in tasks:
            found += [int(child) for child in (task / "children").read_text().split()]
        return found
    except OSError:
        return []


def _process_tree(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc), parents first."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL a `ray start --block`, its process group and every descendant."""
    pids = _process_tree(process.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and _process_name(pid) != ""]
        if not pids:
            break
        time.sleep(0.5)


def check_writable(path: Path) -> str | None:
    """Why the outputs file cannot be written there, or None (checked before minutes of cluster start-up)."""
    parent = path.parent
    if not parent.is_dir():
        return f"--outputs {path}: directory {parent} does not exist"
    if path.is_dir():
        return f"--outputs {path} is a directory; name a file"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"--outputs {path}: not writable"
    return None


def first_job_command(outputs: Path) -> str:
    """The hello-world job against this cluster, as a command that works pasted into any shell."""
    examples = PROJECT_ROOT / "jobs" / "examples"
    if Path.cwd().resolve() == PROJECT_ROOT:
        examples = examples.relative_to(PROJECT_ROOT)
    return shlex.join([client_wrapper(), "submit", "--outputs", str(outputs.resolve()), "--working-dir", str(examples),
                       "--", "python", "hello_world.py"])


def watch(cluster: LocalCluster, poll_s: float = 1.0) -> int:
    """Block until Ctrl-C (0) or the head dies (1); say so on stderr whenever a node dies."""
    while True:
        for node in list(cluster.nodes):
            if node.process.poll() is None:
                continue
            cluster.nodes.remove(node)
            lines = node.log_path.read_text(errors="replace").strip().splitlines() if node.log_path.exists() else []
            last = lines[-1] if lines else "(no output)"
            role = "head" if node.spec is cluster.head_spec else f"worker node ({node.spec.node_type})"
            print(f"error: the {role} died (exit code {node.process.returncode}): {last}", file=sys.stderr, flush=True)
            if node.spec is cluster.head_spec:
                return 1
        time.sleep(poll_s)


def build_parser() -> Parser:
    parser = Parser(prog="./bin/jobs local-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", required=True, type=Path, help="where to write the stack outputs JSON")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--storage", default=None, help="storage URI (default: a temp dir, removed on exit)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = check_writable(args.outputs)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.workers < 0:
        print(f"error: --workers must be 0 or more, got {args.workers}", file=sys.stderr)
        return 2
    # Stop on Ctrl-C and on SIGTERM, also when started in the background (where SIGINT may be ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="ray-platform-storage-") as scratch:
        workers = [NodeSpec("worker", 2, {"worker": 1})] * args.workers
        # With Ray's token authentication, as every stack runs; the token is in the outputs file.
        cluster = LocalCluster(NodeSpec("head", 2), workers, token=secrets.token_hex(32))
        try:
            with cluster:
                args.outputs.write_text(json.dumps(cluster.outputs(args.storage or scratch), indent=2))
                print(f"cluster up: {cluster.dashboard_url}; outputs in {args.outputs}; Ctrl-C to stop", flush=True)
                print(f"try, in another shell: {first_job_command(args.outputs)}", flush=True)
                return watch(cluster)
        except KeyboardInterrupt:
            return 0
        except (RuntimeError, TimeoutError) as exc:  # a node that did not come up: its log's last lines
            print(f"error: the cluster did not start: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        except OSError as exc:  # `ray` missing next to this Python, a port or temp dir we cannot use, ...
            print(f"error: the cluster did not start: {exc.strerror}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
