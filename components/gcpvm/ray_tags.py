"""What Ray's GCP node provider and autoscaler read from a VM: its name and its labels.

The head is created by Pulumi, not by `ray up`, so it must carry what `ray up` would put on it
(ray/autoscaler/_private/commands.py, get_or_create_head_node). The label names are Ray's own
(ray/autoscaler/tags.py; tests/gcpvm/test_autoscaler_harness.py checks them against the installed wheel).
"""

from __future__ import annotations

CLUSTER_LABEL = "ray-cluster-name"  # set by Ray's GCP node provider on every VM it creates
KIND_LABEL = "ray-node-type"  # "worker" on autoscaler-launched VMs, "head" on ours
USER_TYPE_LABEL = "ray-user-node-type"  # the node type in available_node_types; Ray counts nodes per type by it
STATUS_LABEL = "ray-node-status"
NAME_LABEL = "ray-node-name"
STATUS_UP_TO_DATE = "up-to-date"
# Ray's GCP provider finds a VM's API (Compute or TPU) from the last part of its name: `<name>-<8 hex>-compute`
# (ray/autoscaler/_private/gcp/node.py, GCPNodeType.name_to_type).
COMPUTE_SUFFIX = "compute"


def head_vm_name(cluster_name: str) -> str:
    """The head VM's name: ends like the names Ray gives VMs, so Ray's provider can look the head up by it."""
    return f"{cluster_name}-head-{COMPUTE_SUFFIX}"


def head_labels(cluster_name: str, head_type: str) -> dict[str, str]:
    """The labels `ray up` puts on a head it launched: without the node type, Ray's scheduler sees no head and
    launches a VM of the head's type every round (and deletes it the next)."""
    return {
        CLUSTER_LABEL: cluster_name,
        KIND_LABEL: "head",
        USER_TYPE_LABEL: head_type,
        # Ray's node updater never runs on our head: its startup script brought it up to date.
        STATUS_LABEL: STATUS_UP_TO_DATE,
        NAME_LABEL: f"ray-{cluster_name}-head",
    }
