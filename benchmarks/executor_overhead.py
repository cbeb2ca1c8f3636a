"""Per-trial overhead of the executors, and how throughput scales with pool workers.

    python benchmarks/executor_overhead.py [--trials 500] [--workers 2] [--scaling]

Overhead: N trials that do nothing, at most ``slots`` in flight (as the experiment keeps them);
per trial, the round trip (submit -> outcome received) minus the time spent inside
``evaluate``. Printed for the worker pool and, for comparison, the in-process executor, with
the pool's one-off start-up (workers that load torch, and workers that do not).

``--scaling``: trials that train an NB201 cell network for a few SGD steps on random 32x32
images; throughput with 1 worker vs ``--workers`` workers (threads split among them), so the
speed-up of running trials in parallel on this machine is visible. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from nasforge.core import Candidate, Result
from nasforge.executors.base import Job
from nasforge.executors.inprocess import InProcessExecutor
from nasforge.executors.pool import ProcessPoolExecutor, available_cpus


class NoOp:
    """Returns at once: all that is measured is the executor."""

    name = "noop"
    objective_name = "zero"

    def evaluate(self, candidate: Candidate) -> Result:
        return Result(0.0)


class NoOpWithTorch(NoOp):
    """The same, but loading it imports torch, as a training estimator's worker does."""

    def __setstate__(self, state: dict) -> None:
        import torch  # noqa: F401

        self.__dict__.update(state)

    def __getstate__(self) -> dict:
        return {"torch": True}


class TinyTraining:
    """A few SGD steps of an NB201 network on random data: real CPU work for scaling runs."""

    name = "tiny-training"
    objective_name = "loss"

    def __init__(self, steps: int = 2, batch: int = 16):
        self.steps, self.batch = steps, batch

    def evaluate(self, candidate: Candidate) -> Result:
        import torch

        from nasforge.spaces.nb201 import NB201Space

        torch.manual_seed(0)
        model = NB201Space().build(candidate.arch)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        images, labels = torch.randn(self.batch, 3, 32, 32), torch.randint(0, 10, (self.batch,))
        loss = torch.tensor(0.0)
        for _ in range(self.steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        return Result(-loss.item())


def drive(executor, candidates: list[Candidate]) -> tuple[list[float], float]:
    """Run every candidate with at most ``slots`` in flight; (overheads in s, wall time in s)."""
    submitted: dict[int, float] = {}
    overheads: list[float] = []
    queue = list(enumerate(candidates))[::-1]
    started = time.perf_counter()
    while queue or submitted:
        while queue and len(submitted) < executor.slots:
            number, candidate = queue.pop()
            submitted[number] = time.perf_counter()
            executor.submit(Job(number, candidate))
        for outcome in executor.wait(timeout=60):
            received = time.perf_counter()
            if outcome.error:
                raise RuntimeError(f"trial {outcome.number} failed: {outcome.error}")
            overheads.append(received - submitted.pop(outcome.number) - outcome.seconds)
    return overheads, time.perf_counter() - started


def describe(label: str, overheads: list[float], wall: float) -> str:
    ms = sorted(1000 * x for x in overheads)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    return (
        f"{label:<28} median {statistics.median(ms):7.3f} ms   p90 {p90:7.3f} ms   "
        f"max {ms[-1]:7.2f} ms   {len(ms) / wall:8.0f} trials/s"
    )


def overhead(trials: int, workers: int) -> None:
    candidates = [Candidate(i) for i in range(trials)]
    for estimator, what in ((NoOp(), "no torch"), (NoOpWithTorch(), "loading torch")):
        started = time.perf_counter()
        pool = ProcessPoolExecutor(workers=workers)
        pool.start(estimator)
        print(f"pool start-up, {workers} workers ({what}): {time.perf_counter() - started:.2f} s")
        with pool:  # measured on the workers that loaded torch, as a real run's do
            if what == "loading torch":
                drive(pool, candidates[:20])  # warm-up
                result = drive(pool, candidates)
    print(f"per-trial overhead over {trials} no-op trials (round trip - time in evaluate):")
    print(describe(f"pool, {workers} workers", *result))
    inprocess = InProcessExecutor(slots=workers)
    inprocess.start(NoOp())
    print(describe(f"inprocess, {workers} slots", *drive(inprocess, candidates)))


def scaling(trials: int, workers: int) -> None:
    from nasforge.spaces.nb201 import NB201Space

    space, rng = NB201Space(), np.random.default_rng(0)
    candidates = [Candidate(space.sample(rng)) for _ in range(trials)]
    print(f"scaling: {trials} tiny training trials, {available_cpus()} CPUs")
    configs = [(1, None), (1, 1), (workers, None)]  # None: the default split of the CPUs
    rates: dict[tuple[int, int], float] = {}
    for count, threads in configs:
        with ProcessPoolExecutor(workers=count, threads_per_worker=threads) as pool:
            key = (count, pool.threads_per_worker)
            if key in rates:
                continue
            pool.start(TinyTraining())
            drive(pool, candidates[: 2 * count])  # warm-up: first-call costs in each worker
            _, wall = drive(pool, candidates)
        rates[key] = trials / wall
        print(f"  {count} worker(s) x {key[1]} thread(s): {rates[key]:.2f} trials/s ({wall:.1f} s)")
    best = (workers, max(1, available_cpus() // workers))
    for key, rate in rates.items():
        if key[0] == 1 and best != key:
            speedup = rates[best] / rate
            print(f"  {best[0]} workers vs {key[0]} x {key[1]} thread(s): {speedup:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scaling", action="store_true", help="also measure the speed-up")
    parser.add_argument("--scaling-trials", type=int, default=16)
    args = parser.parse_args()
    overhead(args.trials, args.workers)
    if args.scaling:
        scaling(args.scaling_trials, args.workers)


if __name__ == "__main__":
    main()
