"""The smallest job: shipped with `--working-dir jobs/examples`, it says hello from the driver and from a
task on every node, and names the storage the stack gave it.

    ./bin/jobs submit --stack dev --working-dir jobs/examples -- python hello_world.py
"""

from __future__ import annotations

import os
import socket

import ray


@ray.remote(num_cpus=0)
def where() -> str:
    return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"


def main() -> None:
    ray.init()
    nodes = [node for node in ray.nodes() if node["Alive"]]
    print(f"hello world from the driver on {socket.gethostname()}; {len(nodes)} nodes alive")
    for node in nodes:
        strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        print("hello from", ray.get(where.options(scheduling_strategy=strategy).remote()))
    print(f"working dir: {os.getcwd()}")
    print(f"storage: {os.environ.get('RAY_PLATFORM_STORAGE_URI', '(none)')}")


if __name__ == "__main__":
    main()
