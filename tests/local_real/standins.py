"""Stand-ins for the upstream images no registry here can serve, built offline and tagged with the upstream names,
so the project's own Dockerfiles in images/ build UNCHANGED on top of them and the stack's image references
resolve.

Everything starts from a minimal Debian bookworm made by `debootstrap` (Python 3.11, as the `-py311` images), with
the machine's CA bundle copied in and pip/requests pointed at it (the package index is reached through a TLS
proxy). Each stand-in mimics its upstream's layout: user, HOME, PATH, working dir, entrypoint and command.

- rayproject/ray:<ver>-py311-cpu: user 1000:100 `ray`, HOME /home/ray, Python in /home/ray/anaconda3 (a venv,
  first on PATH), `ray[default]` installed, no entrypoint, CMD bash.
- quay.io/jupyter/minimal-notebook:python-3.11: user 1000:100 `jovyan`, HOME /home/jovyan, Python in /opt/conda,
  ENTRYPOINT tini -g --, CMD start-notebook.py (Jupyter Server, which honours JUPYTER_TOKEN).
- prom/prometheus: Debian's own `prometheus` package; user nobody, WORKDIR /prometheus, ENTRYPOINT /bin/prometheus.
- minio/minio: NOT MinIO (no binary is obtainable): moto's S3-compatible server on MinIO's API port 9000, behind
  MinIO's entrypoint and its `server` command; nothing on the console port 9001; any credentials are accepted.
- minio/mc: a small `mc` speaking S3 (boto3) for the three subcommands the stack runs: `alias set`,
  `mb --ignore-existing`, `ready local`.

Grafana has no stand-in: its container is skipped, with the reason printed (see SKIPPED_IMAGES).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from components.local.monitoring import GRAFANA_IMAGE, PROMETHEUS_IMAGE
from components.local.object_store import MC_IMAGE, MINIO_IMAGE
from components.versions import RAY_VERSION
from tests.local_real.engine import Engine

DEBIAN = "ray-platform-standin/debian:bookworm"
RAY_BASE = f"rayproject/ray:{RAY_VERSION}-py311-cpu"
JUPYTER_BASE = "quay.io/jupyter/minimal-notebook:python-3.11"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MIRROR = "http://deb.debian.org/debian"
MOTO = "moto[s3,server]==5.2.*"

SKIPPED_IMAGES = {
    GRAFANA_IMAGE: "Grafana is not obtainable here (no registry, no Debian package) and no honest stand-in exists: "
                   "its container is not created and nothing about Grafana is proven",
}

_CA_ENV = (f"PIP_CERT={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE} SSL_CERT_FILE={CA_BUNDLE} "
           "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180")
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

RAY_DOCKERFILE = f"""\
FROM {DEBIAN}
ENV TZ=America/Los_Angeles LC_ALL=C.UTF-8 LANG=C.UTF-8 {_CA_ENV} PATH=/home/ray/anaconda3/bin:{_SYSTEM_PATH}
RUN useradd -ms /bin/bash -d /home/ray ray --uid 1000 --gid 100 && usermod -aG sudo ray \\
    && echo 'ray ALL=NOPASSWD: ALL' >> /etc/sudoers \\
    && python3 -m venv /home/ray/anaconda3 && chown -R 1000:100 /home/ray
USER 1000
ENV HOME=/home/ray
WORKDIR /home/ray
RUN pip install --no-cache-dir "ray[default]=={RAY_VERSION}"
CMD ["/bin/bash"]
"""

# Upstream's start-notebook.py execs `jupyter lab` with the server options from its config; Jupyter Server
# (which JupyterLab runs on) serves the same API, token check included, for a fraction of the download.
START_NOTEBOOK = """\
#!/opt/conda/bin/python
import os
os.execvp("jupyter", ["jupyter", "server", "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8888",
                      "--ServerApp.open_browser=False", "--ServerApp.root_dir=/home/jovyan"])
"""
JUPYTER_DOCKERFILE = f"""\
FROM {DEBIAN}
ENV LC_ALL=C.UTF-8 LANG=C.UTF-8 {_CA_ENV} CONDA_DIR=/opt/conda SHELL=/bin/bash NB_USER=jovyan NB_UID=1000 \\
    NB_GID=100 PATH=/opt/conda/bin:{_SYSTEM_PATH}
COPY start-notebook.py /usr/local/bin/start-notebook.py
RUN useradd -m -s /bin/bash -N -u 1000 -g 100 jovyan && python3 -m venv /opt/conda \\
    && chmod 755 /usr/local/bin/start-notebook.py && chown -R 1000:100 /opt/conda /home/jovyan
USER 1000
ENV HOME=/home/jovyan
WORKDIR /home/jovyan
RUN pip install --no-cache-dir "jupyter_server>=2.14,<3" && mkdir -p /home/jovyan/work
EXPOSE 8888
ENTRYPOINT ["tini", "-g", "--"]
CMD ["start-notebook.py"]
"""

PROMETHEUS_DOCKERFILE = f"""\
FROM {DEBIAN}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
"""

# MinIO's entrypoint runs `minio "$@"` when the first argument is not a program; `minio server DIR ...` is the
# only command the stack gives, and the stand-in answers it with moto's S3 server on MinIO's API port.
MINIO_ENTRYPOINT = """\
#!/bin/sh
if [ "$1" = "server" ]; then
  echo "stand-in for MinIO: moto S3 server on :9000 (no console, credentials not checked)" >&2
  exec /opt/moto/bin/moto_server -H 0.0.0.0 -p 9000
fi
exec "$@"
"""

MC = """\
#!/opt/moto/bin/python
\"\"\"Stand-in for MinIO's `mc`: `alias set NAME URL USER PASSWORD`, `mb [--ignore-existing] NAME/BUCKET`,
`ready local`. Aliases are kept in ~/.mc-standin.json like mc keeps them in ~/.mc/config.json.\"\"\"
import json, os, sys, urllib.request
import boto3

STORE = os.path.expanduser("~/.mc-standin.json")


def client(alias):
    a = json.load(open(STORE))[alias]
    return boto3.client("s3", endpoint_url=a["url"], aws_access_key_id=a["user"],
                        aws_secret_access_key=a["password"], region_name="us-east-1")


args = sys.argv[1:]
if args[:2] == ["alias", "set"]:
    name, url, user, password = args[2:6]
    aliases = json.load(open(STORE)) if os.path.exists(STORE) else {}
    aliases[name] = {"url": url, "user": user, "password": password}
    json.dump(aliases, open(STORE, "w"))
    client(name).list_buckets()  # like mc, fail while the server does not answer
    print(f"Added `{name}` successfully.")
elif args[:1] == ["mb"]:
    ignore = "--ignore-existing" in args or "-p" in args
    alias, _, bucket = [a for a in args[1:] if not a.startswith("-")][0].partition("/")
    s3 = client(alias)
    if bucket in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        if not ignore:
            sys.exit(f"mc: bucket {bucket} already exists")
    else:
        s3.create_bucket(Bucket=bucket)
    print(f"Bucket created successfully `{alias}/{bucket}`.")
elif args[:2] == ["ready", "local"]:
    urllib.request.urlopen("http://127.0.0.1:9000/", timeout=3)
else:
    sys.exit(f"mc stand-in: unsupported command {args!r}")
"""
MINIO_DOCKERFILE = f"""\
FROM {DEBIAN}
ENV LC_ALL=C.UTF-8 LANG=C.UTF-8 {_CA_ENV} PATH=/opt/moto/bin:{_SYSTEM_PATH}
RUN python3 -m venv /opt/moto && /opt/moto/bin/pip install --no-cache-dir "{MOTO}" && mkdir -p /data
COPY docker-entrypoint.sh /usr/bin/docker-entrypoint.sh
COPY mc /usr/bin/mc
RUN chmod 755 /usr/bin/docker-entrypoint.sh /usr/bin/mc
EXPOSE 9000
ENTRYPOINT ["/usr/bin/docker-entrypoint.sh"]
CMD ["minio"]
"""
MC_DOCKERFILE = f"""\
FROM {MINIO_IMAGE}
ENTRYPOINT ["mc"]
"""

# (tag, Dockerfile, extra files in the build context); in build order.
STANDINS: list[tuple[str, str, dict[str, str]]] = [
    (RAY_BASE, RAY_DOCKERFILE, {}),
    (JUPYTER_BASE, JUPYTER_DOCKERFILE, {"start-notebook.py": START_NOTEBOOK}),
    (PROMETHEUS_IMAGE, PROMETHEUS_DOCKERFILE, {}),
    (MINIO_IMAGE, MINIO_DOCKERFILE, {"docker-entrypoint.sh": MINIO_ENTRYPOINT, "mc": MC}),
    (MC_IMAGE, MC_DOCKERFILE, {}),
]


def build_debian(engine: Engine, work: Path) -> None:
    """A minimal bookworm from Debian's mirror, with this machine's CA bundle, imported as DEBIAN."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    rootfs = work / "rootfs"
    result = subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates,tini,sudo",
         "bookworm", str(rootfs), MIRROR],
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"debootstrap failed: {(result.stderr or result.stdout).strip().splitlines()[-5:]}")
    shutil.copyfile(CA_BUNDLE, rootfs / CA_BUNDLE.relative_to("/"))
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "-H", engine.host, "import", "--change", 'CMD ["/bin/bash"]', "-", DEBIAN],
                   stdin=tar.stdout, check=True, capture_output=True, timeout=600)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


def build_standins(engine: Engine, log=print) -> None:
    """Build every stand-in into `engine` (a few minutes: Debian, then pip installs from the index)."""
    with tempfile.TemporaryDirectory(prefix="rp-standins-") as tmp:
        work = Path(tmp)
        log(f"stand-in: debootstrap bookworm -> {DEBIAN}")
        build_debian(engine, work)
        for tag, dockerfile, files in STANDINS:
            log(f"stand-in: {tag}")
            context = work / tag.replace("/", "_").replace(":", "_")
            context.mkdir()
            (context / "Dockerfile").write_text(dockerfile)
            for name, text in files.items():
                (context / name).write_text(text)
            # The engine has no default bridge (engine.py): build steps use the host's network.
            engine.docker("build", "--network=host", "-t", tag, str(context), timeout=1200)
