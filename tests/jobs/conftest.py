"""A real local Ray cluster for the job tests: a head and two worker raylets on loopback.

Started once per session by `jobs.local_cluster.LocalCluster` (its own ports, worker port ranges and temp
dirs, one process group per node) and torn down by killing exactly those processes, never `ray stop`, so
Ray clusters of other tests or of the user on the same machine are left alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite runs with --import-mode=importlib, which puts no test directory on sys.path: our helpers need it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobs_testing import BIG_NODE_TYPE, HEAD, WORKER, Cluster  # noqa: E402

from jobs.local_cluster import LocalCluster  # noqa: E402


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    storage = tmp_path_factory.mktemp("storage")
    local = LocalCluster(HEAD, [WORKER, WORKER])
    with local:  # stops every node even when start or a test fails
        outputs = local.outputs(str(storage), extra_capacity=BIG_NODE_TYPE)
        outputs_file = tmp_path_factory.mktemp("stack") / "outputs.json"
        outputs_file.write_text(json.dumps(outputs, indent=2))
        yield Cluster(local, outputs, outputs_file, storage)
