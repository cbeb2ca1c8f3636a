"""Search on NAS-Bench-301 (the DARTS space, surrogate of CIFAR-10), through `nasforge benchmark`.

    python benchmarks/nb301_strategies.py [--seeds 30] [--budget 100] [--hours 140]
                                          [--out benchmarks/out]

Two comparisons, each run by the `nasforge benchmark` command itself:

1. By evaluations (the issue's protocol): random search vs. regularized evolution (plus any
   ``--strategies``), ``--budget`` evaluations at the full 98 epochs, ``--seeds`` seeds.
2. By simulated training time (``--budget-seconds``, the surrogate's predicted runtime): the same
   strategies against the multi-fidelity schedulers (SH, Hyperband, ASHA, BOHB) choosing epochs
   1..98, with the anytime curve of each against simulated time (``*_time.png``).

Objective: predicted validation accuracy at the evaluated epoch. Reported: the 98-epoch predicted
validation accuracy of each run's best-by-objective cell (NB301 predicts no test accuracy).
Prints the Markdown tables; measures, does not assert.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

MULTI_FIDELITY = "sh,hyperband,asha,bohb"


def benchmark(*args: str) -> None:
    command = [sys.executable, "-m", "nasforge.cli", "benchmark", "--space", "darts", *args]
    print("$ nasforge " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True)
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", type=int, default=100, help="evaluations (comparison 1)")
    parser.add_argument(
        "--hours", type=float, default=140.0, help="simulated hours per run (comparison 2)"
    )
    parser.add_argument("--strategies", default="random,evolution")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["--seeds", str(args.seeds)]
    if args.workers:
        common += ["--workers", str(args.workers)]
    started = time.perf_counter()
    benchmark(
        "--strategies",
        args.strategies,
        "--budget",
        str(args.budget),
        "--out",
        str(out / "nb301_evaluations.json"),
        *common,
    )
    benchmark(
        "--strategies",
        f"{args.strategies},{MULTI_FIDELITY}",
        "--budget-seconds",
        f"{args.hours * 3600:g}",
        "--out",
        str(out / "nb301_budget_seconds.json"),
        *common,
    )
    print(f"total wall time: {time.perf_counter() - started:.1f} s (tables, CSV, plots in {out}/)")


if __name__ == "__main__":
    main()
