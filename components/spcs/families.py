"""SPCS compute pool instance families: what one node offers its containers (Snowflake's published sizes).

Pure data, no Pulumi import: specs, config validation and the Native App all size containers from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Requests are validated against what a node has left after Snowflake's own components, less than the table
# below (https://docs.snowflake.com/en/release-notes/bcr-bundles/2024_06/bcr-1648); Snowflake's Ray samples
# request 80% of a node's memory. Every container of a service instance together requests at most this share.
REQUESTABLE = 0.8
# CREATE COMPUTE POOL: MIN_NODES "must be greater than 0" (https://docs.snowflake.com/en/sql-reference/sql/create-compute-pool);
# an idle pool scales to zero by suspending (AUTO_SUSPEND_SECS), not by MIN_NODES 0. Apps' pools alike.
MIN_POOL_NODES = 1


@dataclass(frozen=True)
class InstanceFamily:
    name: str
    vcpus: int
    memory_gib: int
    gpus: int = 0
    gpu_model: str | None = None

    @property
    def has_gpu(self) -> bool:
        return self.gpus > 0

    @property
    def requestable_cpu(self) -> float:
        return round(self.vcpus * REQUESTABLE, 2)

    @property
    def requestable_memory_gib(self) -> float:
        return round(self.memory_gib * REQUESTABLE, 2)


_TABLE = [
    InstanceFamily("CPU_X64_XS", 1, 6),
    InstanceFamily("CPU_X64_S", 3, 13),
    InstanceFamily("CPU_X64_M", 6, 28),
    InstanceFamily("CPU_X64_L", 28, 116),
    InstanceFamily("HIGHMEM_X64_S", 6, 58),
    InstanceFamily("HIGHMEM_X64_M", 28, 240),
    InstanceFamily("HIGHMEM_X64_L", 124, 984),
    InstanceFamily("GPU_NV_S", 6, 27, 1, "A10G"),
    InstanceFamily("GPU_NV_M", 44, 178, 4, "A10G"),
    InstanceFamily("GPU_NV_L", 92, 1112, 8, "A100"),
    # Azure regions
    InstanceFamily("GPU_NV_XS", 3, 26, 1, "T4"),
    InstanceFamily("GPU_NV_SM", 32, 424, 1, "A10"),
    InstanceFamily("GPU_NV_2M", 68, 858, 2, "A10"),
    InstanceFamily("GPU_NV_3M", 44, 424, 2, "A100"),
    InstanceFamily("GPU_NV_SL", 92, 858, 4, "A100"),
]
FAMILIES: dict[str, InstanceFamily] = {f.name: f for f in _TABLE}


def family(name: str) -> InstanceFamily:
    """The family by name, or a ValueError listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a known instance family (allowed: {', '.join(FAMILIES)})") from None
