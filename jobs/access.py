"""How the client reaches a cluster's dashboard, from the `access` stack output.

- `direct`: the `ray_dashboard_url` answers as is (local Docker, a public gcpvm head).
- `port-forward`: run `access.command` (kubectl port-forward, an IAP tunnel, `ssh -N -L`) for the duration
  of one command, wait until `access.local_dashboard_url` answers, stop it afterwards.
- `snowflake`: SPCS public ingress; every request carries `Authorization: Snowflake Token="..."`.

Every mode adds Ray's token (jobs/auth.py) where the stack has one.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from jobs import JobsError, auth, snowflake

FORWARD_READY_TIMEOUT_S = 30.0


@dataclass
class Endpoint:
    """A dashboard URL the client can use now, and the headers every request to it needs."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


def url_answers(url: str, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextmanager
def open_endpoint(outputs: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Iterator[Endpoint]:
    """The dashboard endpoint for these outputs, with whatever it takes to reach it kept up meanwhile."""
    environ = os.environ if environ is None else environ
    access = outputs.get("access") or {"mode": "direct"}
    url = outputs["ray_dashboard_url"].rstrip("/")
    mode = access["mode"]
    ray_token = auth.request_headers(outputs, environ)
    if mode == "direct":
        yield Endpoint(url, ray_token)
    elif mode == "snowflake":
        yield Endpoint(url, {**snowflake.headers(access, url, environ), **ray_token})
    elif mode == "port-forward":
        local_url = access["local_dashboard_url"].rstrip("/")
        timeout_s = float(access.get("ready_timeout_s", FORWARD_READY_TIMEOUT_S))
        with port_forward(access["command"], local_url, timeout_s) as forwarded_url:
            yield Endpoint(forwarded_url, ray_token)
    else:
        raise JobsError(f"unknown access mode {mode!r}")


@contextmanager
def port_forward(command: list[str], local_url: str, timeout_s: float = FORWARD_READY_TIMEOUT_S) -> Iterator[str]:
    """Run a port-forward command until the block ends; yield the local URL it serves.

    A forward already up with this very command is reused. Anything else on the local port (a local Ray
    cluster on 8265, say) is left alone: the forward moves to a free port instead.
    """
    port = urlparse(local_url).port or 80
    if url_answers(local_url):
        if is_this_forward(listener_command(port), command):
            yield local_url  # e.g. the same `kubectl port-forward` kept open in another shell
            return
        free = free_local_port()
        moved = move_local_port(command, port, free)
        if moved is None:
            raise JobsError(
                f"local port {port} is taken by another program and the forward command has no local port to move "
                f"({shlex.join(command)}); stop what listens on {port} and try again"
            )
        command, local_url = moved, local_url.replace(f":{port}", f":{free}", 1)
    with tempfile.TemporaryFile() as log:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise JobsError(f"cannot start the port-forward command {command[0]!r}: {exc.strerror}") from exc
        try:
            _wait_until_answers(process, local_url, timeout_s, log)
            yield local_url
        finally:
            _stop(process)


def listener_command(port: int) -> list[str] | None:
    """The command line of the process (of ours) listening on a local TCP port, if one can be seen."""
    import psutil  # a dependency of ray[default]; only needed when the port is taken

    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
                   for conn in process.net_connections(kind="tcp")):  # fmt: skip
                return process.info["cmdline"]
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return None


def is_this_forward(listener: list[str] | None, command: list[str]) -> bool:
    """Whether the listener runs this forward command (its program may be named by another path or run by an
    interpreter, as gcloud is: compare the arguments)."""
    if not listener:
        return False
    args = command[1:]
    return any(listener[start : start + len(args)] == args for start in range(len(listener) - len(args) + 1))


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def move_local_port(command: list[str], old: int, new: int) -> list[str] | None:
    """The forward command with its local port `old` replaced by `new`, or None when it names none.

    The forms our stacks print: `kubectl port-forward ... 8265:8265` and `ssh -L 8265:127.0.0.1:8265`
    (LOCAL:...), `gcloud compute start-iap-tunnel ... --local-host-port=127.0.0.1:8265`.
    """
    moved, changed = [], False
    for arg in command:
        if arg.startswith(f"{old}:"):
            arg, changed = f"{new}:{arg.split(':', 1)[1]}", True
        elif arg.startswith("--local-host-port=") and arg.endswith(f":{old}"):
            arg, changed = f"{arg.rsplit(':', 1)[0]}:{new}", True
        moved.append(arg)
    return moved if changed else None


def _wait_until_answers(process: subprocess.Popen, url: str, timeout_s: float, log: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not url_answers(url, timeout_s=0.2):
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise JobsError(f"port-forward {process.args[0]!r} exited with code {process.returncode}: {tail[0]}")
        if time.monotonic() > deadline:
            raise JobsError(f"port-forward did not open {url} within {timeout_s:.0f} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    """Stop the forward and anything it started (it runs in its own session, so its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):  # SIGKILL catches stragglers such as an ssh under gcloud
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    process.wait()
