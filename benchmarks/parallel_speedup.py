"""Throughput of a real-training search with 1 worker vs. k workers (the pool executor).

    python benchmarks/parallel_speedup.py [--dataset fashion-mnist] [--trials 12] [--workers 2]

Both runs search the same NB201 space with random search (same seed, so the same cells) and
train each cell for real; 1 worker gets every core as torch threads, k workers split them.
Prints trials per minute and the ratio. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import os
import time

from nasforge.data.datasets import load_dataset
from nasforge.estimators.train import Train
from nasforge.executors.pool import ProcessPoolExecutor
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.random import RandomSearch


def timed_search(workers: int, trials: int, dataset: str) -> float:
    space = NB201Space()
    estimator = Train(
        space, load_dataset(dataset), epochs=1, subset=0.08, net={"C": 8, "N": 1}, seed=0
    )
    cores = os.cpu_count() or 1
    executor = ProcessPoolExecutor(workers=workers, threads_per_worker=max(1, cores // workers))
    experiment = Experiment(
        space,
        RandomSearch(space, seed=0),
        estimator,
        trials,
        executor=executor,
        deterministic=False,
        progress=False,
    )
    started = time.perf_counter()
    history = experiment.run()
    seconds = time.perf_counter() - started
    assert len(history.completed) == trials, [t.error for t in history.failed]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    one = timed_search(1, args.trials, args.dataset)
    many = timed_search(args.workers, args.trials, args.dataset)
    print(f"{args.trials} real-training trials on {args.dataset} ({os.cpu_count()} cores)")
    print(f"  1 worker : {one:7.1f} s  ({60 * args.trials / one:5.1f} trials/min)")
    print(f"  {args.workers} workers: {many:7.1f} s  ({60 * args.trials / many:5.1f} trials/min)")
    print(f"  throughput ratio {args.workers} workers / 1 worker: {one / many:.2f}x")


if __name__ == "__main__":
    main()
