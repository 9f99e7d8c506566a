"""Autotuner in the shape of the gcpvm seed's `autotuner.distributed`: `tune --samples N` or `sweep`.

The seed tunes OpenROAD flow parameters; here a pure-Python stand-in for a flow run (a smooth "PPA cost"
of the same kind of parameters) keeps it runnable on every environment with nothing but Ray Tune.
The config file uses the autotuner's format: {"PARAM": {"type": "int"|"float", "minmax": [lo, hi], "step": s}}.
`tune` samples each parameter at random within minmax (on the step grid when step > 0); `sweep` runs the
full grid of minmax by step (a parameter with step 0 stays at the middle of its range).

Results go to the stack's storage: Tune's experiment directory under <storage>/autotune/<name>/, plus
best.json (best parameters and cost) and trials.json (every trial) next to it.

    ./bin/jobs submit --stack dev --entrypoint-num-cpus 1 --working-dir jobs/examples -- \
        python autotune.py --config autotune.json tune --samples 8
    ./bin/jobs submit --stack dev --working-dir jobs/examples -- python autotune.py --config sweep.json sweep
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import platform_storage


def flow_cost(config: dict[str, float]) -> float:
    """Stand-in for one flow run: lower is better; best near 55 % utilisation, density 0.65, 1.1 ns clock."""
    utilisation = float(config.get("CORE_UTILIZATION", 55))
    density = float(config.get("PLACE_DENSITY", 0.65))
    clock = float(config.get("CLK_PERIOD_NS", 1.1))
    area = (utilisation - 55) ** 2 / 400
    congestion = 4 * (density - 0.65) ** 2 + 0.1 * math.sin(utilisation / 7) ** 2
    timing = (clock - 1.1) ** 2 + 0.05 / clock
    return round(area + congestion + timing, 6)


def grid_values(spec: dict[str, Any]) -> list[float]:
    low, high = spec["minmax"]
    step = spec.get("step", 0)
    if not step:
        middle = (low + high) / 2
        return [round(middle) if spec["type"] == "int" else middle]
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    values = [low + i * step for i in range(count)]
    return [int(v) if spec["type"] == "int" else round(v, 10) for v in values]


def search_space(config: dict[str, Any], mode: str) -> dict[str, Any]:
    """Tune's param_space for `tune` (random sampling) or `sweep` (grid)."""
    from ray import tune

    space: dict[str, Any] = {}
    for name, spec in config.items():
        if spec["type"] not in ("int", "float") or len(spec.get("minmax", [])) != 2:
            raise SystemExit(f"config {name}: need type int|float and minmax [lo, hi], got {spec}")
        low, high = spec["minmax"]
        step = spec.get("step", 0)
        if mode == "sweep":
            space[name] = tune.grid_search(grid_values(spec))
        elif spec["type"] == "int":
            space[name] = tune.qrandint(low, high, step or 1)
        else:
            space[name] = tune.quniform(low, high, step) if step else tune.uniform(low, high)
    return space


def trial(config: dict[str, float]) -> None:
    """One "flow run": a few stages, reporting the cost so far (Tune keeps the last)."""
    from ray import tune

    cost = flow_cost(config)
    for stage, share in enumerate((4.0, 2.0, 1.0), start=1):
        time.sleep(0.05)
        tune.report({"cost": round(cost * share, 6), "stage": stage})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ray Tune autotuner on a pure-Python flow stand-in")
    parser.add_argument("--config", required=True, help="parameter JSON (autotuner format)")
    parser.add_argument("--storage", help="storage URI (default: RAY_PLATFORM_STORAGE_URI)")
    parser.add_argument("--name", default=None, help="experiment name (default: autotune-<mode>-<time>)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials at once (0: as many as fit)")
    modes = parser.add_subparsers(dest="mode", required=True)
    tune_mode = modes.add_parser("tune", help="random search")
    tune_mode.add_argument("--samples", type=int, default=4)
    modes.add_parser("sweep", help="grid over minmax by step")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with open(args.config) as handle:
        config = json.load(handle)
    filesystem, base = platform_storage.resolve(args.storage)
    name = args.name or f"autotune-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"

    import ray
    from ray import tune

    ray.init()
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": args.cpus_per_trial}),
        param_space=search_space(config, args.mode),
        tune_config=tune.TuneConfig(
            metric="cost",
            mode="min",
            num_samples=args.samples if args.mode == "tune" else 1,
            max_concurrent_trials=args.max_concurrent or None,
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=f"{base}/autotune", storage_filesystem=filesystem, verbose=0
        ),
    )
    results = tuner.fit()
    trials = [
        {"config": {key: result.config[key] for key in config}, "cost": result.metrics.get("cost")}
        for result in results
        if result.error is None
    ]
    if not trials:
        raise SystemExit(f"all {len(results)} trials failed")
    best = results.get_best_result()
    summary = {
        "mode": args.mode,
        "trials": len(trials),
        "failed_trials": len(results) - len(trials),
        "best_config": {key: best.config[key] for key in config},
        "best_cost": best.metrics["cost"],
    }
    platform_storage.write_json(filesystem, f"{base}/autotune/{name}/best.json", summary)
    platform_storage.write_json(filesystem, f"{base}/autotune/{name}/trials.json", trials)
    print(f"best parameters: {json.dumps(summary['best_config'], sort_keys=True)} cost={summary['best_cost']}")
    print(f"results: {base}/autotune/{name}/best.json ({len(trials)} trials)")


if __name__ == "__main__":
    main()
