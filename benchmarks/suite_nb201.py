"""The search-strategy suite on NAS-Bench-201: every non-model-based strategy vs. random search.

    python benchmarks/suite_nb201.py [--datasets cifar10,cifar100,imagenet16-120]
                                     [--strategies random,evolution,grid,...] [--seeds 100]
                                     [--budget 100] [--workers 2] [--json out.json]

Objective: 12-epoch validation accuracy. Reported: 200-epoch test accuracy of each run's
best-by-objective cell, mean ± std over seeds 0..N-1, with ms per ask (the strategy's own
overhead) and the wall time. Strategies are built here from a local registry (the factory only
knows random and evolution yet); runs are spread over processes, each parsing the tables once
and running torch single-threaded. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from typing import Any

import numpy as np

from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space

#: name -> (module, class, options); options are the strategies' own defaults unless given
REGISTRY: dict[str, tuple[str, str, dict[str, Any]]] = {
    "random": ("nasforge.strategies.random", "RandomSearch", {}),
    "evolution": ("nasforge.strategies.evolution", "RegularizedEvolution", {}),
    "grid": ("nasforge.strategies.grid", "GridSearch", {}),
    "tournament": ("nasforge.strategies.tournament", "TournamentEvolution", {}),
    "genetic": ("nasforge.strategies.genetic", "GeneticAlgorithm", {}),
    "local": ("nasforge.strategies.local", "LocalSearch", {}),
    "reinforce": ("nasforge.strategies.reinforce", "Reinforce", {}),
    "ppo": ("nasforge.strategies.reinforce", "PPO", {}),
    "mcts": ("nasforge.strategies.mcts", "MCTS", {}),
}


def make_strategy(name: str, space: Any, seed: int) -> Any:
    module, cls, options = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(space, seed=seed, **options)


@cache
def _benchmark(dataset: str) -> tuple[NB201Space, NB201Benchmark]:
    space = NB201Space()
    return space, NB201Benchmark(dataset, space=space)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core already; tiny tensors


def run_one(job: tuple[str, str, int, int]) -> dict[str, Any]:
    name, dataset, seed, budget = job
    space, estimator = _benchmark(dataset)
    experiment = Experiment(
        space, make_strategy(name, space, seed), estimator, budget, progress=False
    )
    started = time.perf_counter()
    history = experiment.run()
    best = history.best.result  # type: ignore[union-attr]
    return {
        "strategy": name,
        "dataset": dataset,
        "seed": seed,
        "objective": best.objective,
        "test_acc": best.report["test_acc"],
        "ask_ms": 1000 * experiment.ask_seconds / len(history.trials),
        "seconds": time.perf_counter() - started,
    }


def summarise(runs: list[dict[str, Any]], names: list[str], datasets: list[str]) -> dict:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        table[name] = {}
        for dataset in datasets:
            rows = [r for r in runs if r["strategy"] == name and r["dataset"] == dataset]
            acc = np.array([r["test_acc"] for r in rows])
            table[name][dataset] = {
                "mean": float(acc.mean()),
                "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "objective": float(np.mean([r["objective"] for r in rows])),
                "ask_ms": float(np.mean([r["ask_ms"] for r in rows])),
                "max_ask_ms": float(np.max([r["ask_ms"] for r in rows])),
                "seconds": float(np.mean([r["seconds"] for r in rows])),
                "runs": len(rows),
            }
    return table


def format_table(table: dict, datasets: list[str], seeds: int, budget: int) -> str:
    lines = [
        f"NB201, objective 12-epoch validation accuracy; 200-epoch test accuracy of the "
        f"best-by-objective cell, mean ± std over {seeds} seeds, {budget} evaluations",
        "",
        "| strategy | " + " | ".join(datasets) + " | beats random | ms per ask | s per run |",
        "|---|" + "---:|" * (len(datasets) + 3),
    ]
    for name, row in table.items():
        cells = [f"{row[d]['mean']:.2f} ± {row[d]['std']:.2f}" for d in datasets]
        beats = sum(row[d]["mean"] > table["random"][d]["mean"] for d in datasets)
        ask = np.mean([row[d]["ask_ms"] for d in datasets])
        seconds = np.mean([row[d]["seconds"] for d in datasets])
        verdict = "-" if name == "random" else f"{beats}/{len(datasets)}"
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {verdict} | {ask:.2f} | {seconds:.3f} |"
        )
    optimum = [_benchmark(d)[1].optimum() for d in datasets]
    lines.append(
        "| optimum (best objective) | " + " | ".join(f"{o[1]:.2f}" for o in optimum) + " | | | |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cifar10,cifar100,imagenet16-120")
    parser.add_argument("--strategies", default=",".join(REGISTRY))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", default=None, help="also write every run and the summary here")
    args = parser.parse_args()
    datasets = args.datasets.split(",")
    names = ["random"] + [s for s in args.strategies.split(",") if s != "random"]
    for name in names:
        if name not in REGISTRY:
            parser.error(f"unknown strategy {name!r}; accepted: {', '.join(REGISTRY)}")
    jobs = [(n, d, s, args.budget) for d in datasets for s in range(args.seeds) for n in names]
    started = time.perf_counter()
    if args.workers <= 1:
        _init_worker()
        runs = [run_one(job) for job in jobs]
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init_worker) as pool:
            runs = list(pool.map(run_one, jobs, chunksize=8))
    wall = time.perf_counter() - started
    table = summarise(runs, names, datasets)
    print(format_table(table, datasets, args.seeds, args.budget))
    print(f"\nwall time {wall:.1f} s on {args.workers} worker(s), {len(jobs)} runs")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"summary": table, "runs": runs, "wall_seconds": wall}, out, indent=1)


if __name__ == "__main__":
    main()
