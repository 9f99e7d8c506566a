"""NCCL all-reduce bandwidth across the H200 workers of a `gke` Ray cluster, over GPUDirect RDMA.

One Ray actor per GPU (8 per node, spread over `--nodes` H200 workers) joins a torch.distributed NCCL group and
times all-reduces of growing sizes; rank 0 prints a table like nccl-tests' `all_reduce_perf`:
size, time, algorithm bandwidth and bus bandwidth (algbw * 2(n-1)/n, the figure comparable across world sizes).

    ./bin/jobs submit --stack gke --working-dir jobs/examples \\
        --runtime-env-json '{"pip": ["torch==2.8.0"], "env_vars": {"NCCL_DEBUG": "INFO"}}' \\
        -- python nccl_allreduce.py --nodes 2 --min-size 1M --max-size 8G

Expected on a3-ultragpu-8g (8 x H200, 8 x 400 Gb/s CX-7 RoCE NICs per node), two nodes, 8 GiB messages:
a bus bandwidth of about 340-380 GB/s (the NICs' line rate is 8 x 50 GB/s = 400 GB/s; Google reports figures
in this range for A3 Ultra with the gIB NCCL plugin). One node alone runs over NVLink and shows more
(roughly 450-480 GB/s). Tens of GB/s across nodes mean NCCL did not use RDMA: check that the pods carry the
`networking.gke.io/interfaces` annotation and that the job's log shows `NCCL INFO NET/gIB` (set NCCL_DEBUG=INFO).
If it shows `NET/Socket`, the NCCL inside the pip torch did not load the gIB plugin: add
`"LD_PRELOAD": "/usr/local/gib/lib64/libnccl.so.2"` to env_vars (assumption: the installer's NCCL path).

The pure parts (sizes, bandwidths, the table) import without torch, so they are tested anywhere.
"""

from __future__ import annotations

import argparse
import re
import time

GPUS_PER_NODE = 8
BYTES_PER_ELEMENT = 4  # float32
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
GB = 1e9  # bandwidths in GB/s (10^9), as nccl-tests prints them
SIZE = re.compile(r"^(\d+)([KMG]?)(i?B)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`1M`, `512K`, `8G`, `8GiB`, `4096` -> bytes (binary units, like nccl-tests' -b/-e)."""
    match = SIZE.match(text.strip())
    if not match:
        raise ValueError(f"size {text!r} is not a byte count (allowed: e.g. 4096, 512K, 1M, 8G)")
    return int(match.group(1)) * UNITS[match.group(2).upper()]


def sizes(min_bytes: int, max_bytes: int, factor: int = 2) -> list[int]:
    """Message sizes from min to max, multiplying by factor (whole float32 elements)."""
    if min_bytes < BYTES_PER_ELEMENT or max_bytes < min_bytes or factor < 2:
        raise ValueError(f"sizes: min {min_bytes}, max {max_bytes}, factor {factor} "
                         f"(allowed: {BYTES_PER_ELEMENT} <= min <= max, factor >= 2)")
    out, size = [], min_bytes
    while size <= max_bytes:
        out.append(size - size % BYTES_PER_ELEMENT)
        size *= factor
    return out


def alg_bandwidth(size_bytes: int, seconds: float) -> float:
    """Algorithm bandwidth in GB/s: the message size over the time one all-reduce takes."""
    if seconds <= 0:
        raise ValueError(f"seconds: {seconds} (allowed: > 0)")
    return size_bytes / seconds / GB


def bus_bandwidth(size_bytes: int, seconds: float, world_size: int) -> float:
    """Bus bandwidth in GB/s: algbw * 2(n-1)/n, what each link carries in a ring all-reduce (nccl-tests' busbw)."""
    if world_size < 1:
        raise ValueError(f"world_size: {world_size} (allowed: >= 1)")
    return alg_bandwidth(size_bytes, seconds) * 2 * (world_size - 1) / world_size


def human(size_bytes: int) -> str:
    for unit in ("G", "M", "K"):
        if size_bytes >= UNITS[unit] and size_bytes % UNITS[unit] == 0:
            return f"{size_bytes // UNITS[unit]}{unit}"
    return str(size_bytes)


def format_table(rows: list[tuple[int, float]], world_size: int) -> str:
    """rows: (size in bytes, seconds per all-reduce) -> the table, with the average bus bandwidth last."""
    lines = [f"{'size':>8} {'time (us)':>12} {'algbw (GB/s)':>13} {'busbw (GB/s)':>13}"]
    busbws = []
    for size, seconds in rows:
        busbw = bus_bandwidth(size, seconds, world_size)
        busbws.append(busbw)
        lines.append(f"{human(size):>8} {seconds * 1e6:>12.1f} {alg_bandwidth(size, seconds):>13.2f} {busbw:>13.2f}")
    if busbws:
        lines.append(f"# world size {world_size}, average bus bandwidth: {sum(busbws) / len(busbws):.2f} GB/s, "
                     f"largest message: {busbws[-1]:.2f} GB/s")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- the job (needs Ray, torch, GPUs)


def _worker_class():
    import ray

    @ray.remote(num_gpus=1)
    class AllReduceWorker:
        def address(self) -> tuple[str, int]:
            import socket

            with socket.socket() as s:
                s.bind(("", 0))
                return ray.util.get_node_ip_address(), s.getsockname()[1]

        def run(self, rank: int, world: int, master: tuple[str, int], message_sizes: list[int], iters: int,
                warmup: int) -> list[tuple[int, float]]:
            import torch
            import torch.distributed as dist

            dist.init_process_group("nccl", init_method=f"tcp://{master[0]}:{master[1]}", rank=rank, world_size=world)
            device = torch.device("cuda", 0)  # Ray sets CUDA_VISIBLE_DEVICES to this actor's one GPU
            rows = []
            for size in message_sizes:
                tensor = torch.ones(size // BYTES_PER_ELEMENT, dtype=torch.float32, device=device)
                for _ in range(warmup):
                    dist.all_reduce(tensor)
                torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(iters):
                    dist.all_reduce(tensor)
                torch.cuda.synchronize()
                rows.append((size, (time.perf_counter() - start) / iters))
            dist.destroy_process_group()
            return rows

    return AllReduceWorker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2, help="H200 workers to spread over (8 GPUs each)")
    parser.add_argument("--min-size", default="1M")
    parser.add_argument("--max-size", default="8G")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    message_sizes = sizes(parse_size(args.min_size), parse_size(args.max_size))

    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    ray.init()
    world = args.nodes * GPUS_PER_NODE
    # One bundle of 8 GPUs per node, each on a different node: the measured traffic crosses the RDMA NICs.
    group = placement_group([{"GPU": GPUS_PER_NODE}] * args.nodes, strategy="STRICT_SPREAD")
    ray.get(group.ready())
    worker = _worker_class()
    actors = [worker.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        placement_group=group, placement_group_bundle_index=rank // GPUS_PER_NODE)).remote() for rank in range(world)]
    master = ray.get(actors[0].address.remote())
    results = ray.get([a.run.remote(rank, world, master, message_sizes, args.iters, args.warmup)
                       for rank, a in enumerate(actors)])
    print(format_table(results[0], world))


if __name__ == "__main__":
    main()
