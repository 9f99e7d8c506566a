"""Hand the stack's `storage` output to a job as environment variables (through runtime_env env_vars).

Jobs (and the examples in jobs/examples) read where to keep checkpoints and results from these variables,
so one script runs unchanged on every environment:

    RAY_PLATFORM_STORAGE_URI       "/shared/path", "s3://bucket/prefix", "gs://bucket/prefix" or "@db.schema.stage"
    RAY_PLATFORM_STORAGE_ENDPOINT  S3 endpoint URL as the cluster sees it (`storage.cluster_endpoint`, else
                                   `storage.endpoint`; MinIO on the local stack); unset for AWS S3 / GCS
    RAY_PLATFORM_STORAGE_MOUNT     where a Snowflake stage is mounted in the containers (`storage.cluster_mount`)

Credentials are never passed this way (runtime_env is visible in the dashboard): the nodes carry them
(MinIO keys in the local stack's containers, workload identity on GKE, the VM service account on gcpvm).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

STORAGE_URI_ENV = "RAY_PLATFORM_STORAGE_URI"
STORAGE_ENDPOINT_ENV = "RAY_PLATFORM_STORAGE_ENDPOINT"
STORAGE_MOUNT_ENV = "RAY_PLATFORM_STORAGE_MOUNT"


def storage_env_vars(storage: Mapping[str, Any] | None) -> dict[str, str]:
    """The env vars for a `storage` output (empty when the stack has no storage)."""
    if not storage or not storage.get("uri"):
        return {}
    env = {STORAGE_URI_ENV: str(storage["uri"])}
    # Jobs run inside the cluster: prefer the endpoint/mount as seen from there (the local stack's MinIO is
    # `endpoint` from the host but `cluster_endpoint` from the Ray containers).
    endpoint = storage.get("cluster_endpoint") or storage.get("endpoint")
    mount = storage.get("cluster_mount") or storage.get("mount_path")
    if endpoint:
        env[STORAGE_ENDPOINT_ENV] = str(endpoint)
    if mount:
        env[STORAGE_MOUNT_ENV] = str(mount)
    return env


def with_storage_env(runtime_env: Mapping[str, Any], storage: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of runtime_env with the storage env vars added; values the user set win."""
    merged = copy.deepcopy(dict(runtime_env))
    env_vars = storage_env_vars(storage)
    if env_vars:
        merged["env_vars"] = {**env_vars, **merged.get("env_vars", {})}
    return merged
