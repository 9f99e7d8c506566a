"""Open the stack's storage from inside a job, on every environment (shipped with the examples' working_dir).

`./bin/jobs submit` passes the stack's `storage` output as RAY_PLATFORM_STORAGE_URI (and
RAY_PLATFORM_STORAGE_ENDPOINT / RAY_PLATFORM_STORAGE_MOUNT); see jobs/storage.py. This turns that into a
pyarrow filesystem and a base path, which is what Ray Train and Tune take as `storage_filesystem` and
`storage_path`. Credentials come from the node's environment (AWS_* for MinIO/S3, ADC for GCS).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs

URI_ENV = "RAY_PLATFORM_STORAGE_URI"
ENDPOINT_ENV = "RAY_PLATFORM_STORAGE_ENDPOINT"
MOUNT_ENV = "RAY_PLATFORM_STORAGE_MOUNT"


def resolve(uri: str | None = None, endpoint: str | None = None) -> tuple[pyarrow.fs.FileSystem, str]:
    """(filesystem, base path inside it) for a storage URI; default: the one the job was given."""
    uri = uri or os.environ.get(URI_ENV)
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV)
    if not uri:
        raise SystemExit(f"no storage: pass --storage URI or set {URI_ENV} (./bin/jobs submit sets it)")
    if uri.startswith("@"):  # a Snowflake stage, mounted into the SPCS containers
        mount = os.environ.get(MOUNT_ENV)
        if not mount:
            raise SystemExit(f"storage {uri} is a Snowflake stage; {MOUNT_ENV} must say where it is mounted")
        return pyarrow.fs.LocalFileSystem(), os.path.abspath(mount)
    parsed = urlparse(uri)
    path = f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme == "s3":
        options: dict[str, Any] = {}
        if endpoint:
            endpoint_url = urlparse(endpoint)
            options = {"endpoint_override": endpoint_url.netloc, "scheme": endpoint_url.scheme or "http"}
            options["region"] = os.environ.get("AWS_REGION", "us-east-1")  # MinIO ignores it; pyarrow wants one
        return pyarrow.fs.S3FileSystem(**options), path
    if parsed.scheme in ("gs", "gcs"):
        return pyarrow.fs.GcsFileSystem(), path
    if parsed.scheme in ("", "file"):
        return pyarrow.fs.LocalFileSystem(), os.path.abspath(parsed.path if parsed.scheme else uri)
    raise SystemExit(f"unsupported storage URI {uri!r}: use a path, s3://, gs:// or a Snowflake stage")


def write_json(filesystem: pyarrow.fs.FileSystem, path: str, value: Any) -> None:
    filesystem.create_dir(os.path.dirname(path), recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(json.dumps(value, indent=2, sort_keys=True).encode())


def read_json(filesystem: pyarrow.fs.FileSystem, path: str) -> Any:
    with filesystem.open_input_stream(path) as stream:
        return json.loads(stream.read())
