"""Data-parallel training with checkpoints in the stack's storage, resuming from the last one when a worker is lost.

Why Ray Train (V2, `DataParallelTrainer`) and not hand-made actors: it already restarts the whole worker
group when one worker dies (`FailureConfig(max_failures=...)`), waits for a replacement node, and hands the
new group the latest reported checkpoint (`ray.train.get_checkpoint()`), with checkpoints written to
`RunConfig(storage_path, storage_filesystem)` = the stack's storage (local path, MinIO `s3://`, `gs://`).
That is exactly the seed's "a new Ray worker can resume from the last checkpoint". To run anywhere without
torch, the model is a numpy linear regression; gradients are averaged across workers by a tiny async actor
(one per attempt, so a restarted group never sees a half-finished round of the lost one).

Every epoch rank 0 saves a checkpoint; after a restart each worker prints
`resumed from checkpoint at epoch K`, and the final summary (<storage>/train/<name>/summary.json) lists
every epoch the run resumed from.

    ./bin/jobs submit --stack dev --working-dir jobs/examples -- python train.py --epochs 20 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

import numpy as np
import platform_storage

FEATURES = 8


def make_shard(rank: int, world_size: int, rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """This worker's slice of one fixed synthetic dataset (same seed everywhere, so shards never overlap)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES))
    true_weights = np.arange(1, FEATURES + 1, dtype=float)
    y = x @ true_weights + rng.normal(scale=0.1, size=rows)
    return x[rank::world_size], y[rank::world_size]


def gradient(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    error = x @ weights - y
    return 2 * x.T @ error / len(y), float(np.mean(error**2))


class GradientAverager:
    """allreduce(mean) for one training attempt: each round waits for every rank's contribution."""

    def __init__(self, world_size: int):
        import asyncio

        self.world_size = world_size
        self.rounds: dict[int, list[np.ndarray]] = {}
        self.done: dict[int, asyncio.Event] = {}
        self.results: dict[int, np.ndarray] = {}

    async def allreduce(self, round_id: int, value: np.ndarray) -> np.ndarray:
        import asyncio

        contributions = self.rounds.setdefault(round_id, [])
        event = self.done.setdefault(round_id, asyncio.Event())
        contributions.append(value)
        if len(contributions) == self.world_size:
            self.results[round_id] = np.mean(contributions, axis=0)
            self.results.pop(round_id - 2, None)  # keep memory flat
            event.set()
        await event.wait()
        return self.results[round_id]


def train_loop(config: dict[str, Any]) -> None:
    import ray
    import ray.train
    from ray.train.collective import broadcast_from_rank_zero
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    x, y = make_shard(rank, world_size)
    weights, start_epoch, resumes = np.zeros(FEATURES), 0, []

    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            weights = np.load(os.path.join(directory, "weights.npy"))
            with open(os.path.join(directory, "state.json")) as handle:
                state = json.load(handle)
        start_epoch, resumes = state["epoch"] + 1, state["resumes"] + [state["epoch"]]
        print(f"rank {rank}: resumed from checkpoint at epoch {state['epoch']}", flush=True)

    averager_name = None
    if rank == 0:  # a fresh averager per attempt, next to rank 0, which keeps it alive by holding its handle
        averager_name = f"gradient-averager-{os.getpid()}-{time.time_ns()}"
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        averager = (
            ray.remote(GradientAverager)
            .options(name=averager_name, num_cpus=0, scheduling_strategy=here)
            .remote(world_size)
        )
        ray.get(averager.__ray_ready__.remote())
    averager_name = broadcast_from_rank_zero(averager_name)
    if rank != 0:
        averager = ray.get_actor(averager_name)

    for epoch in range(start_epoch, config["epochs"]):
        local_gradient, loss = gradient(weights, x, y)
        weights = weights - config["lr"] * ray.get(averager.allreduce.remote(epoch, local_gradient))
        time.sleep(config["epoch_seconds"])  # stands in for real work per epoch
        metrics = {"epoch": epoch, "loss": loss, "resumes": resumes}
        if rank == 0:
            with tempfile.TemporaryDirectory() as directory:
                np.save(os.path.join(directory, "weights.npy"), weights)
                with open(os.path.join(directory, "state.json"), "w") as handle:
                    json.dump({"epoch": epoch, "resumes": resumes}, handle)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))
            print(f"epoch {epoch}: loss {loss:.5f} (checkpoint saved)", flush=True)
        else:
            ray.train.report(metrics)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="data-parallel numpy training with checkpoints and resume")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epoch-seconds", type=float, default=0.5, help="simulated work per epoch")
    parser.add_argument("--worker-resources", type=json.loads, default={"CPU": 1}, help='JSON, e.g. {"CPU": 1}')
    parser.add_argument("--max-failures", type=int, default=3, help="worker group restarts allowed")
    parser.add_argument("--storage", help="storage URI (default: RAY_PLATFORM_STORAGE_URI)")
    parser.add_argument("--name", default=None, help="run name (default: train-<time>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    filesystem, base = platform_storage.resolve(args.storage)
    name = args.name or f"train-{time.strftime('%Y%m%d-%H%M%S')}"

    import ray.train
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    trainer = DataParallelTrainer(
        train_loop,
        train_loop_config={"epochs": args.epochs, "lr": args.lr, "epoch_seconds": args.epoch_seconds},
        scaling_config=ray.train.ScalingConfig(num_workers=args.workers, resources_per_worker=args.worker_resources),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=f"{base}/train",
            storage_filesystem=filesystem,
            failure_config=ray.train.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    summary = {
        "epochs": args.epochs,
        "last_epoch": result.metrics["epoch"],
        "final_loss": result.metrics["loss"],
        "resumed_from_epochs": result.metrics["resumes"],
        "checkpoint": result.checkpoint.path if result.checkpoint else None,
    }
    platform_storage.write_json(filesystem, f"{base}/train/{name}/summary.json", summary)
    print(f"training done: {json.dumps(summary, sort_keys=True)}")


if __name__ == "__main__":
    main()
