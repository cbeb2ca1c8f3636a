"""Model-based strategies (BO, BANANAS, TPE) against random search and regularized evolution on
NAS-Bench-201, over many seeds.

    python benchmarks/model_based_nb201.py [--datasets cifar10,cifar100,imagenet16-120]
        [--strategies random,evolution,bo,bananas,tpe] [--seeds 100] [--budget 100]
        [--workers 2] [--out benchmarks/out]

The protocol of ``nasforge.compare`` (strategies from ``factory.make_strategy`` at their
defaults, one ``Experiment`` per seed 0..N-1 with the table estimator, random search always
included), plus the per-ask timings the search-strategy issue sets a bar for. Objective: 12-epoch
validation accuracy. Reported: mean ± std over seeds of the 200-epoch test accuracy of each run's
best-by-objective cell; milliseconds per ask (mean over the run; mean of the last ten asks, made
with 90-99 observations; the slowest single ask); total wall time. Writes
``model_based_nb201.json`` to ``--out``. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import factory
from nasforge.experiment import Experiment

DATASETS = "cifar10,cifar100,imagenet16-120"
STRATEGIES = "random,evolution,bo,bananas,tpe"


@lru_cache(maxsize=4)
def _estimator(dataset: str) -> tuple[Any, Any]:
    """One space and table estimator per process and dataset (tables are parsed once)."""
    space = factory.make_space("nb201")
    return space, factory.make_estimator("benchmark", space, dataset)


def run_one(dataset: str, name: str, seed: int, budget: int) -> dict[str, Any]:
    space, estimator = _estimator(dataset)
    strategy = factory.make_strategy(name, space, seed)
    ask_times: list[float] = []
    ask = strategy.ask

    def timed_ask() -> Any:
        started = time.perf_counter()
        try:
            return ask()
        finally:
            ask_times.append(time.perf_counter() - started)

    strategy.ask = timed_ask
    history = Experiment(space, strategy, estimator, budget, progress=False).run()
    best = history.best
    return {
        "dataset": dataset,
        "strategy": name,
        "seed": seed,
        "final": best.result.report["test_acc"],
        "objective": best.result.objective,
        "ask_ms": 1000 * float(np.mean(ask_times)),
        "ask_ms_last10": 1000 * float(np.mean(ask_times[-10:])),
        "ask_ms_max": 1000 * float(np.max(ask_times)),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    finals = np.array([r["final"] for r in runs])
    return {
        "mean": float(finals.mean()),
        "std": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
        "objective": float(np.mean([r["objective"] for r in runs])),
        "ask_ms": float(np.mean([r["ask_ms"] for r in runs])),
        "ask_ms_last10": float(np.mean([r["ask_ms_last10"] for r in runs])),
        "ask_ms_max": float(np.max([r["ask_ms_max"] for r in runs])),
        "runs": len(runs),
        "finals": finals.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    datasets, names = args.datasets.split(","), args.strategies.split(",")
    if "random" not in names:
        names.insert(0, "random")
    for name in names:  # fail fast on a bad name
        factory.strategy_class(name)
    jobs = [(d, n, s, args.budget) for d in datasets for n in names for s in range(args.seeds)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        runs = list(pool.map(run_one, *zip(*jobs, strict=True), chunksize=10))
    wall = time.perf_counter() - started
    table = {
        d: {
            n: summarise([r for r in runs if r["dataset"] == d and r["strategy"] == n])
            for n in names
        }
        for d in datasets
    }
    lines = [
        f"NB201, objective 12-epoch val acc, {args.budget} evaluations, {args.seeds} seeds: "
        "200-epoch test acc of the best-by-objective cell (mean ± std)",
        "",
        "| strategy | " + " | ".join(datasets) + " | ms/ask mean | last 10 | max |",
        "|---|" + "---:|" * (len(datasets) + 3),
    ]
    for n in names:
        cells = [f"{table[d][n]['mean']:.2f} ± {table[d][n]['std']:.2f}" for d in datasets]
        ask = np.mean([table[d][n]["ask_ms"] for d in datasets])
        last = np.mean([table[d][n]["ask_ms_last10"] for d in datasets])
        worst = max(table[d][n]["ask_ms_max"] for d in datasets)
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {ask:.2f} | {last:.2f} | {worst:.0f} |")
    lines += ["", f"total wall time: {wall:.1f} s with {args.workers} workers"]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": vars(args), "wall_seconds": wall, "table": table}
    (out / "model_based_nb201.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
