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


def timed_search(workers: int, args: argparse.Namespace) -> float:
    trials = args.trials
    space = NB201Space()
    estimator = Train(
        space,
        load_dataset(args.dataset),
        epochs=args.epochs,
        subset=args.subset,
        net={"C": args.channels, "N": args.cells},
        seed=0,
    )
    cores = os.cpu_count() or 1
    threads = args.threads_per_worker or max(1, cores // workers)
    executor = ProcessPoolExecutor(workers=workers, threads_per_worker=threads)
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
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=float, default=0.08)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        help="torch threads in each worker (default: cores // workers, so the 1-worker run "
        "gets every core); 1 compares the executor's scaling at equal resources per worker",
    )
    args = parser.parse_args()
    one = timed_search(1, args)
    many = timed_search(args.workers, args)
    print(
        f"{args.trials} real-training trials on {args.dataset}, {args.epochs} epoch(s), subset "
        f"{args.subset}, NB201 C={args.channels} N={args.cells} ({os.cpu_count()} cores; "
        "times include starting the workers)"
    )
    print(f"  1 worker : {one:7.1f} s  ({60 * args.trials / one:5.1f} trials/min)")
    print(f"  {args.workers} workers: {many:7.1f} s  ({60 * args.trials / many:5.1f} trials/min)")
    print(f"  throughput ratio {args.workers} workers / 1 worker: {one / many:.2f}x")


if __name__ == "__main__":
    main()
