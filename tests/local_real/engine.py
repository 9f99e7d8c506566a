"""A private Docker Engine for the real-engine tests: its own data-root, exec-root, socket and pidfile under one
temp dir, started by the test session and stopped by its PID (never `systemctl`, never another engine's files).

It runs with no default bridge (`--bridge=none`, so no `docker0` that could clash with another engine on the
machine) and its own address pool (address_pool); user-defined networks, NAT and published ports work as usual. Storage:
overlay2 where the kernel allows it, vfs otherwise; without usable iptables, `--iptables=false` (published ports
then go through docker-proxy, which still binds only the address asked for).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# Tried in order until one engine answers.
ATTEMPTS = (
    ["--storage-driver=overlay2"],
    ["--storage-driver=vfs"],
    ["--storage-driver=vfs", "--iptables=false"],
)


def address_pool(pid: int) -> str:
    """Networks of this engine come from a /16 of its own (by the test's PID), so two test sessions on one machine
    (each with its own engine) never give their bridges the same subnet."""
    return f"base=10.{160 + pid % 64}.0.0/16,size=24"


class EngineUnavailable(RuntimeError):
    """No engine could start here; the message says why."""


class DockerError(RuntimeError):
    pass


class Engine:
    """A running dockerd and a `docker` CLI bound to its socket."""

    def __init__(self, root: Path, process: subprocess.Popen, flags: list[str]):
        self.root = root
        self.process = process
        self.flags = flags
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 600, check: bool = True) -> str:
        """Run the docker CLI against this engine; returns stdout, raises DockerError with stderr on failure."""
        binary = input if isinstance(input, bytes) else None
        result = subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, timeout=timeout,
            input=binary if binary is not None else (input.encode() if input is not None else None),
        )
        out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
        if check and result.returncode != 0:
            tail = (err.strip() or out.strip()).splitlines()[-20:]
            raise DockerError(f"docker {' '.join(args[:3])}: exit {result.returncode}: " + "\n".join(tail))
        return out

    def stop(self) -> None:
        """SIGTERM by PID (dockerd stops its containers), SIGKILL if it lingers, then remove the temp dir."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def start(timeout_s: float = 60) -> Engine:
    """Start a private dockerd; raises EngineUnavailable with the reason when none can run here."""
    missing = [b for b in ("dockerd", "docker", "containerd", "runc") if shutil.which(b) is None]
    if missing:
        raise EngineUnavailable(f"{', '.join(missing)} not installed (Debian: apt-get install docker.io)")
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root here (rootless Docker is not set up)")
    reasons = []
    for flags in ATTEMPTS:
        root = Path(tempfile.mkdtemp(prefix="rp-dockerd-", dir="/tmp"))  # short: containerd's socket lives below
        log = root / "dockerd.log"
        command = [
            "dockerd", f"--data-root={root / 'data'}", f"--exec-root={root / 'exec'}", f"--pidfile={root / 'dockerd.pid'}",
            f"-H=unix://{root / 'docker.sock'}", "--bridge=none", f"--default-address-pool={address_pool(os.getpid())}",
            *flags,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        engine = Engine(root, process, flags)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            if engine.socket.exists():
                try:
                    engine.docker("info", "--format", "{{.ServerVersion}}", timeout=10)
                    return engine
                except (DockerError, subprocess.TimeoutExpired):
                    pass
            time.sleep(0.5)
        lines = [line for line in log.read_text(errors="replace").splitlines() if "level=error" in line or "failed" in line]
        reasons.append(f"{' '.join(flags)}: {(lines or ['did not answer in time'])[-1][:300]}")
        engine.stop()
    raise EngineUnavailable("no Docker engine could start: " + " | ".join(reasons))


def _unmount_below(root: Path) -> None:
    """Mounts a killed engine may leave (overlay layers, netns, shm) would make the temp dir unremovable."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for point in sorted((m for m in mounts if m.startswith(str(root) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
