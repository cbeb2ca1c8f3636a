"""Does searching pay? A real-training search's final model vs random architectures, same recipe.

    python benchmarks/search_vs_random.py [--dataset fashion-mnist] [--minutes 30]
                                          [--seeds 3] [--final-epochs 6] [--final-subset 1.0]
                                          [--store benchmarks/out/search_vs_random.db]

1. A low-fidelity search over NB201 cells (regularized evolution, 2 worker processes, each trial
   ``--search-epochs`` epochs on ``--search-subset`` of the training split, C=8 N=1) for
   about ``--minutes`` of wall time (``--budget-seconds`` of training cost summed over the two
   workers; scoring each trial adds to the wall time).
2. ``nasforge train-final`` of its best cell over ``--seeds`` seeds (``--final-epochs`` on
   ``--final-subset``).
3. ``--seeds`` random NB201 cells (seeded), each trained once with exactly the same final recipe.

Prints test accuracy mean ± std of both and their difference. With ``--dataset cifar10`` the
searched cell and the random ones are also looked up in the NAS-Bench-201 table (200-epoch
CIFAR-10 test accuracy and the cell's percentile there). Measures, does not assert; an
interrupted search is continued with ``nasforge resume NAME --store STORE``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nasforge import final
from nasforge.spaces.nb201 import NB201Space


def nasforge(*args: str) -> str:
    command = [sys.executable, "-m", "nasforge.cli", *args]
    print("$ nasforge " + " ".join(args), flush=True)
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def random_cells(seeds: int, taken: str) -> list[str]:
    space, rng = NB201Space(), np.random.default_rng(12345)
    cells: list[str] = []
    while len(cells) < seeds:
        text = space.to_string(space.canonical(space.sample(rng)))
        if text != taken and text not in cells:
            cells.append(text)
    return cells


def nb201_lookup(cells: list[str]) -> list[tuple[float, float]]:
    """(200-epoch CIFAR-10 test accuracy, percentile among all 15,625 cells) per cell."""
    from nasforge.core import Candidate
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    space, bench = NB201Space(), NB201Benchmark("cifar10")
    table = np.array(
        [bench.evaluate(Candidate(a)).report["test_acc"] for a in space.enumerate()], dtype=float
    )
    rows = []
    for text in cells:
        acc = bench.evaluate(Candidate(space.from_string(text))).report["test_acc"]
        rows.append((acc, 100.0 * float(np.mean(table <= acc))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall time of the search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--search-epochs", type=int, default=2)
    parser.add_argument("--search-subset", type=float, default=0.1)
    parser.add_argument("--final-epochs", type=int, default=6)
    parser.add_argument("--final-subset", type=float, default=1.0)
    parser.add_argument("--store", default="benchmarks/out/search_vs_random.db")
    parser.add_argument("--name", default=None, help="run name (default: from the dataset)")
    args = parser.parse_args()
    name = args.name or f"search-vs-random-{args.dataset}"
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # 2 workers: the summed training cost grows about twice as fast as wall time
    nasforge(
        "search", "--space", "nb201", "--estimator", "train", "--dataset", args.dataset,
        "--strategy", "evolution", "--population", "10", "--sample", "3", "--workers", "2",
        "--budget-seconds", f"{args.minutes * 60 * 2:g}", "--budget", "100000",
        "--epochs", str(args.search_epochs), "--subset", str(args.search_subset),
        "--channels", "8", "--cells", "1", "--store", args.store, "--name", name,
    )  # fmt: skip
    searched = json.loads(
        nasforge(
            "train-final",
            name,
            "--store",
            args.store,
            "--top-k",
            "1",
            "--seeds",
            str(args.seeds),
            "--epochs",
            str(args.final_epochs),
            "--subset",
            str(args.final_subset),
            "--json",
        )
    )["architectures"][0]
    best = searched["arch"]

    with final.open_store(args.store) as store:
        _, cfg, _ = final.load_run(store, name)
    baseline = []
    for seed, cell in enumerate(random_cells(args.seeds, best)):
        space, trainer = final.make_trainer(cfg, seed, args.final_epochs, args.final_subset, None)
        _, result = final.train_once(trainer, space, cell)
        baseline.append(result.report["test_acc"])
        print(f"random cell {seed}: test {result.report['test_acc']:.2f}  {cell}", flush=True)

    ours = [run["test_acc"] for run in searched["runs"]]
    print()
    recipe = f"{args.final_epochs} epochs on {args.final_subset:g} of the training split"
    print(f"{args.dataset}: final recipe {recipe}, {args.seeds} seeds")
    print(f"search: about {args.minutes:g} min of wall time")
    print("| architecture | test accuracy mean ± std |")
    print("|---|---|")
    print(f"| searched: {best} | {np.mean(ours):.2f} ± {np.std(ours, ddof=1):.2f} |")
    spread = np.std(baseline, ddof=1)
    print(f"| random cells (one per seed) | {np.mean(baseline):.2f} ± {spread:.2f} |")
    print(f"difference: {np.mean(ours) - np.mean(baseline):+.2f} points")
    if args.dataset == "cifar10":
        looked = nb201_lookup([best, *random_cells(args.seeds, best)])
        acc, pct = looked[0]
        print(f"NB201 table, searched cell: 200-epoch test {acc:.2f} (percentile {pct:.1f})")
        for (acc, pct), cell in zip(looked[1:], random_cells(args.seeds, best), strict=True):
            print(f"NB201 table, random cell: {acc:.2f} (percentile {pct:.1f})  {cell}")
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
