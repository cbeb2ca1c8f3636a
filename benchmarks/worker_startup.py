"""Worker start-up of the process pool for real training: bytes sent and seconds to ready.

    python benchmarks/worker_startup.py [--dataset cifar10] [--workers 2] [--repeats 3]

Builds the `Train` estimator the CLI builds (NB201 space, the dataset loaded in the driver) and
reports what starting a pool of ``--workers`` workers costs with it: the size of the pickled
estimator (the bytes sent to each worker, replacements included), the seconds from ``start()``
to the first worker that has loaded it and to all of them, and the resident memory of the
driver and of each worker once they are ready. Each repeat starts a fresh pool. "First ready" is
sampled every 5 ms from the pool's worker table (a private attribute, read only here), so it is
exact to about that. As a floor, the same is measured for an estimator that only imports torch:
what is left above it is the estimator's own cost (sending and loading the data). Measures,
does not assert.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import threading
import time

from nasforge.data.datasets import load_dataset
from nasforge.estimators.train import Train
from nasforge.executors.pool import ProcessPoolExecutor
from nasforge.spaces.nb201 import NB201Space


class TorchOnly:
    """Loading it imports torch and nothing else: the floor of a training worker's start-up."""

    name = "torch-only"
    objective_name = "none"

    def __getstate__(self) -> dict:
        return {"torch": True}

    def __setstate__(self, state: dict) -> None:
        import torch  # noqa: F401


def rss_mb(pid: str | int = "self") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def first_ready(pool: ProcessPoolExecutor, started: float, out: list[float]) -> None:
    """Record the seconds from ``started`` until any worker of ``pool`` is ready."""
    while not out:
        if any(getattr(w, "ready", False) for w in list(pool._workers)):
            out.append(time.perf_counter() - started)
            return
        time.sleep(0.005)


def one_start(estimator: object, workers: int) -> dict[str, float]:
    pool = ProcessPoolExecutor(workers=workers, threads_per_worker=1)
    seen: list[float] = []
    started = time.perf_counter()
    watcher = threading.Thread(target=first_ready, args=(pool, started, seen), daemon=True)
    watcher.start()
    try:
        pool.start(estimator)
        all_ready = time.perf_counter() - started
        watcher.join(timeout=1.0)
        workers_rss = [rss_mb(pid) for pid in pool.worker_pids]
        driver_rss = rss_mb()
    finally:
        pool.shutdown()
    return {
        "first": seen[0] if seen else all_ready,
        "all": all_ready,
        "driver_mb": driver_rss,
        "worker_mb": max(workers_rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    began = time.perf_counter()
    data = load_dataset(args.dataset, args.data_dir)
    loaded = time.perf_counter() - began
    estimator = Train(NB201Space(), data, epochs=1, net={"C": 8, "N": 1})
    began = time.perf_counter()
    payload = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    pickled = time.perf_counter() - began
    size = len(payload)
    del payload
    print(
        f"{args.dataset}: loaded in the driver in {loaded:.2f} s; Train pickles to "
        f"{size:,} bytes ({size / 2**20:.1f} MiB) in {pickled:.2f} s: the bytes sent to each "
        "worker"
    )
    floors = [one_start(TorchOnly(), args.workers) for _ in range(args.repeats)]
    print(
        f"  floor (an estimator that only imports torch): first ready "
        f"{statistics.median(r['first'] for r in floors):.2f} s, all "
        f"{statistics.median(r['all'] for r in floors):.2f} s (median of {len(floors)})",
        flush=True,
    )
    runs = []
    for repeat in range(args.repeats):
        run = one_start(estimator, args.workers)
        runs.append(run)
        print(
            f"  start {repeat + 1}: first worker ready {run['first']:.2f} s, all "
            f"{args.workers} ready {run['all']:.2f} s; RSS driver {run['driver_mb']:.0f} MB, "
            f"worker {run['worker_mb']:.0f} MB",
            flush=True,
        )
    print(
        f"median over {len(runs)} starts of {args.workers} workers: bytes sent per worker "
        f"{size:,}; first ready {statistics.median(r['first'] for r in runs):.2f} s; all ready "
        f"{statistics.median(r['all'] for r in runs):.2f} s; worker RSS "
        f"{statistics.median(r['worker_mb'] for r in runs):.0f} MB"
    )


if __name__ == "__main__":
    main()
