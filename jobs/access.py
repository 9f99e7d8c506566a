"""How the client reaches a cluster's dashboard, from the `access` stack output.

- `direct`: the `ray_dashboard_url` answers as is (local Docker, a public gcpvm head).
- `port-forward`: run `access.command` (kubectl port-forward, an IAP tunnel, `ssh -N -L`) for the duration
  of one command, wait until `access.local_dashboard_url` answers, stop it afterwards.
- `snowflake`: SPCS public ingress; every request carries `Authorization: Snowflake Token="..."`.

Every mode adds Ray's token (jobs/auth.py) where the stack has one.
"""

from __future__ import annotations

import os
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
        with port_forward(access["command"], local_url, float(access.get("ready_timeout_s", FORWARD_READY_TIMEOUT_S))):
            yield Endpoint(local_url, ray_token)
    else:
        raise JobsError(f"unknown access mode {mode!r}")


@contextmanager
def port_forward(command: list[str], local_url: str, timeout_s: float = FORWARD_READY_TIMEOUT_S) -> Iterator[None]:
    """Run a port-forward command until the block ends; reuse a forward that is already up."""
    if url_answers(local_url):
        yield  # someone already forwards this port (e.g. a long-lived kubectl port-forward)
        return
    with tempfile.TemporaryFile() as log:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise JobsError(f"cannot start the port-forward command {command[0]!r}: {exc.strerror}") from exc
        try:
            _wait_until_answers(process, local_url, timeout_s, log)
            yield
        finally:
            _stop(process)


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
