"""The output contract every stack exports, and the reading of it that `jobs/` relies on.

Pure Python (no Pulumi import) so that both the stacks (which produce the outputs) and the
job client (which consumes them) share one definition of the keys and the capacity shape.
"""

from __future__ import annotations

from typing import Any

ENVIRONMENTS = ("local", "gke", "gcpvm", "spcs")

# Every stack exports every one of these keys; a value is None where an environment has no such thing.
OUTPUT_KEYS = (
    "environment",  # one of ENVIRONMENTS
    "ray_version",  # e.g. "2.60.0": client and cluster must match
    "ray_dashboard_url",  # dashboard and Jobs REST API base URL, e.g. "http://127.0.0.1:8265"
    "ray_client_address",  # "ray://host:port", or None where the Ray client cannot reach the cluster
    "ray_capacity",  # see CAPACITY below
    "grafana_url",
    "prometheus_url",
    "jupyter_url",
    "storage",  # {"uri": "s3://bucket" | "gs://bucket" | "@db.schema.stage" | "/path", "endpoint": url|None, ...}
    "access",  # {"mode": "direct" | "port-forward" | "snowflake", ...}
    "ray_auth_token",  # Ray's token (a Pulumi secret); None only where the stack runs Ray without auth
)

ACCESS_MODES = ("direct", "port-forward", "snowflake")

# ray_capacity: the most each node type can ever offer, the autoscaler's maximum included.
#   {"<node type>": {"resources": {"CPU": 4, "GPU": 1, "memory": 17179869184, "<custom>": 1},
#                    "min_nodes": 0, "max_nodes": 2}}
# "memory" is in bytes (as Ray counts it); a node type with max_nodes == 0 can never offer anything.
# access examples:
#   {"mode": "direct"}
#   {"mode": "port-forward", "command": ["kubectl", "port-forward", "svc/ray-head", "8265:8265"],
#    "local_dashboard_url": "http://127.0.0.1:8265"}
#   {"mode": "snowflake", "token_env": "SNOWFLAKE_TOKEN", "account": "...", "user": "..."}


def missing_keys(outputs: dict[str, Any]) -> list[str]:
    """Contract keys absent from a stack's outputs (a key present with value None is fine)."""
    return [key for key in OUTPUT_KEYS if key not in outputs]


def max_per_node(capacity: dict[str, Any]) -> dict[str, float]:
    """The largest amount of each resource that any single node type that can exist offers."""
    best: dict[str, float] = {}
    for node_type in capacity.values():
        if node_type.get("max_nodes", 0) <= 0:
            continue
        for resource, amount in node_type.get("resources", {}).items():
            best[resource] = max(best.get(resource, 0), float(amount))
    return best
