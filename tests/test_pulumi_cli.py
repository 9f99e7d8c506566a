"""Installing the Pulumi CLI with the SDK's own installer, its download served by a local HTTPS server.

`PulumiCommand.install` fetches https://get.pulumi.com/install.sh with urllib, which honours `https_proxy` and
`SSL_CERT_FILE`: the test runs a local proxy that answers CONNECT with TLS for get.pulumi.com (a certificate from
a throwaway CA) and serves a fake installer, so the SDK's real download and install code runs unchanged.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = next(line.split("==")[1] for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.startswith("pulumi=="))
# The fake installer takes the real one's flags, logs them, and installs a `pulumi` that prints the version.
GOOD_INSTALLER = f"""#!/bin/bash
echo "install.sh $*" >> "$INSTALL_LOG"
[ "$1 $2 $4 $5" = "--no-edit-path --install-root --version {VERSION}" ] || exit 3
mkdir -p "$3/bin"
printf '#!/bin/bash\\necho "pulumi $*" >> "$INSTALL_LOG"\\n' > "$3/bin/pulumi"
printf '[ "$1" != version ] || echo v{VERSION}\\n' >> "$3/bin/pulumi"
chmod +x "$3/bin/pulumi"
"""
FAILING_INSTALLER = """#!/bin/bash
mkdir -p "$4/bin" && echo half > "$4/bin/pulumi-half"
echo "error: could not download https://get.pulumi.com/releases/sdk/pulumi-v0-linux-x64.tar.gz"
exit 1
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A throwaway CA and a get.pulumi.com certificate it signed."""
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=ray-platform test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
             "-subj", "/CN=get.pulumi.com", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:get.pulumi.com\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "leaf.pem", "-days", "1", "-extfile", "ext.cnf", cwd=d)
    return d


class Proxy(socketserver.ThreadingTCPServer):
    """An HTTPS proxy that is get.pulumi.com: CONNECT, then TLS, then GET /install.sh answered from `body`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, certs: Path):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(certs / "leaf.pem", certs / "leaf.key")
        self.status, self.body, self.requests = 200, GOOD_INSTALLER.encode(), []


class ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request = self.rfile.readline().decode()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.server.requests.append(" ".join(request.split()[:2]))  # method and target
        if not request.startswith("CONNECT get.pulumi.com:443"):
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        with self.server.tls.wrap_socket(self.connection, server_side=True) as tls:
            Installer(tls, self.client_address, self.server)


class Installer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(f"GET https://get.pulumi.com{self.path}")
        body = self.server.body if self.server.status == 200 else b"oops"
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def proxy(certs):
    server = Proxy(certs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tmp_path: Path, certs: Path, proxy_port: int) -> dict[str, str]:
    """No `pulumi` on PATH; downloads go through the local proxy, trusting only the test CA."""
    bin_dir = tmp_path / "path"
    bin_dir.mkdir(exist_ok=True)
    for name in ("mkdir", "chmod", "bash"):
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(shutil.which(name))
    return {"PATH": str(bin_dir), "HOME": str(tmp_path), "https_proxy": f"http://127.0.0.1:{proxy_port}",
            "SSL_CERT_FILE": str(certs / "ca.pem"), "INSTALL_LOG": str(tmp_path / "install.log")}


def run_install(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    (tmp_path / "requirements.txt").write_text(f"ray==2.60.0\npulumi=={VERSION}\n")
    # This checkout's module, run in a project folder of the test's own (where .tools/ lands).
    return subprocess.run([sys.executable, "-m", "stacks.pulumi_cli", ".tools/pulumi"], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)


def tools_left(tmp_path: Path) -> list[str]:
    """Everything under .tools/ (rglob of a missing folder is empty)."""
    return sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / ".tools").rglob("*"))


def test_installs_the_pinned_cli_with_pulumis_installer_then_reuses_it(tmp_path, certs, proxy):
    env = env_for(tmp_path, certs, proxy.server_address[1])
    first = run_install(tmp_path, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ".tools/pulumi/bin/pulumi"
    assert f"Installing the Pulumi CLI {VERSION} into .tools/pulumi" in first.stderr
    assert proxy.requests == ["CONNECT get.pulumi.com:443", "GET https://get.pulumi.com/install.sh"]
    log = (tmp_path / "install.log").read_text().splitlines()
    assert log[0].startswith("install.sh --no-edit-path --install-root ") and log[0].endswith(f"--version {VERSION}")
    assert tools_left(tmp_path) == [".tools/pulumi", ".tools/pulumi/bin", ".tools/pulumi/bin/pulumi"]  # no staging left

    second = run_install(tmp_path, env_for(tmp_path, certs, closed_port()))  # no download possible now
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == ".tools/pulumi/bin/pulumi" and "Installing" not in second.stderr
    assert len(proxy.requests) == 2


def test_a_failing_download_is_one_error_and_leaves_nothing(tmp_path, certs, proxy):
    proxy.status = 500
    result = run_install(tmp_path, env_for(tmp_path, certs, proxy.server_address[1]))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: could not download the Pulumi installer (https://get.pulumi.com/install.sh): Internal Server Error; "
        "check the network or proxy (https_proxy), or install the Pulumi CLI yourself: "
        "https://www.pulumi.com/docs/iac/download-install/")
    assert tools_left(tmp_path) == []


def test_an_unreachable_download_is_one_error_and_leaves_nothing(tmp_path, certs):
    result = run_install(tmp_path, env_for(tmp_path, certs, closed_port()))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: could not download the Pulumi installer (https://get.pulumi.com/install.sh): ")
    assert "Connection refused" in last
    assert tools_left(tmp_path) == []


def test_a_failing_installer_is_one_error_and_leaves_nothing_half_installed(tmp_path, certs, proxy):
    proxy.body = FAILING_INSTALLER.encode()
    result = run_install(tmp_path, env_for(tmp_path, certs, proxy.server_address[1]))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: the Pulumi installer failed (exit 1: error: could not download "
        "https://get.pulumi.com/releases/sdk/pulumi-v0-linux-x64.tar.gz); or install the Pulumi CLI yourself: "
        "https://www.pulumi.com/docs/iac/download-install/")
    assert tools_left(tmp_path) == []


def test_a_cli_on_path_is_used_as_it_is(tmp_path, certs):
    env = env_for(tmp_path, certs, closed_port())
    (Path(env["PATH"]) / "pulumi").write_text("#!/bin/bash\necho v3.0.0\n")
    (Path(env["PATH"]) / "pulumi").chmod(0o755)
    result = run_install(tmp_path, env)
    assert result.returncode == 0 and result.stdout.strip() == f"{env['PATH']}/pulumi"
    assert tools_left(tmp_path) == []


def test_bin_deploy_installs_the_cli_and_runs_pulumi_up_with_it(tmp_path, certs, proxy):
    from tests.test_bin import GIB, project

    proj, env = project(tmp_path, {"NCPU": 4, "MemTotal": 8 * GIB})
    env.update({k: v for k, v in env_for(tmp_path, certs, proxy.server_address[1]).items() if k != "PATH"})
    for name in ("mkdir", "chmod"):
        if not (Path(env["PATH"]) / name).exists():
            (Path(env["PATH"]) / name).symlink_to(shutil.which(name))
    result = subprocess.run(["bash", "bin/deploy", "dev", "--yes"], cwd=proj, env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    assert (proj / ".tools" / "pulumi" / "bin" / "pulumi").exists()
    assert (tmp_path / "install.log").read_text().splitlines()[-1] == "pulumi up --stack dev --yes"
    assert ".tools/pulumi/bin/pulumi stack output --stack dev" in result.stdout
    assert os.access(proj / ".tools" / "pulumi" / "bin" / "pulumi", os.X_OK)
