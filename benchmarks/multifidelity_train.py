"""Multi-fidelity search with real training: Hyperband / ASHA vs random search at full fidelity.

    python benchmarks/multifidelity_train.py [--dataset digits] [--seconds 90] [--epochs 9]
                                             [--strategies random,hyperband,asha] [--seeds 1]

Every strategy searches the NAS-Bench-201 space with a small network (C=8, N=1) trained by SGD
(``nasforge.estimators.train.Train``) under the same budget of *training seconds*
(``Budget(seconds=...)``: the summed cost of finished trials). Fidelity is epochs: random search
trains every cell for ``--epochs``; the multi-fidelity strategies train most cells for fewer
epochs and only promising ones for all of them. Under an evaluation budget this would be
pointless (a 1-epoch trial would cost as much budget as a full one); under a cost budget it buys
more architectures for the same compute.

Reported per run: the best validation accuracy among *full-fidelity* trials (the architecture a
user would pick; a short run's number is not comparable with a full one's), the report-only test
accuracy of that architecture, trials run (by fidelity), distinct architectures tried, and wall
time (cost counts training only; wall adds validation, test scoring and building networks).
Measures, does not assert. Timings are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from nasforge.data.datasets import load_dataset
from nasforge.estimators.train import Train
from nasforge.experiment import Budget, Experiment
from nasforge.history import History
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.asha import ASHA
from nasforge.strategies.bohb import BOHB
from nasforge.strategies.hyperband import Hyperband, SuccessiveHalving
from nasforge.strategies.random import RandomSearch

MULTI_FIDELITY = {"sh": SuccessiveHalving, "hyperband": Hyperband, "asha": ASHA, "bohb": BOHB}


def make_strategy(name: str, space: NB201Space, seed: int, epochs: int, eta: int):
    if name == "random":
        return RandomSearch(space, seed=seed)
    return MULTI_FIDELITY[name](space, seed=seed, min_fidelity=1, max_fidelity=epochs, eta=eta)


def summarise(history: History, epochs: int) -> dict[str, object]:
    full = [
        t
        for t in history.completed
        if t.candidate.fidelity is None or t.candidate.fidelity >= epochs
    ]
    best = max(full, key=lambda t: t.result.objective) if full else None  # type: ignore[union-attr]
    by_fidelity = Counter(
        epochs if t.candidate.fidelity is None else int(t.candidate.fidelity)
        for t in history.trials
    )
    return {
        "val": None if best is None else best.result.objective,  # type: ignore[union-attr]
        "test": None if best is None else best.result.report["test_acc"],  # type: ignore[union-attr]
        "arch": None if best is None else best.arch,
        "trials": len(history.trials),
        "failed": len(history.failed),
        "archs": len({t.arch for t in history.trials}),
        "by_fidelity": dict(sorted(by_fidelity.items())),
        "cost": history.total_cost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="digits, mnist or fashion-mnist")
    parser.add_argument("--seconds", type=float, default=90.0, help="training seconds per run")
    parser.add_argument("--epochs", type=int, default=9, help="full fidelity (max epochs)")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--subset", type=float, default=1.0, help="fraction of train images")
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    parser.add_argument("--strategies", default="random,hyperband,asha")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()

    space = NB201Space()
    estimator = Train(
        space,
        load_dataset(args.dataset),
        epochs=args.epochs,
        subset=args.subset,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        net={"C": 8, "N": 1},
        threads=args.threads,
    )
    print(
        f"{args.dataset}: {len(estimator.train_idx)} train / {len(estimator.val_idx)} val "
        f"images; budget {args.seconds:g} training seconds per run; full fidelity "
        f"{args.epochs} epochs, eta {args.eta}"
    )
    rows = []
    started = time.perf_counter()
    for name in args.strategies.split(","):
        for seed in range(args.seeds):
            strategy = make_strategy(name, space, seed, args.epochs, args.eta)
            experiment = Experiment(
                space, strategy, estimator, Budget(seconds=args.seconds), progress=True
            )
            wall = time.perf_counter()
            history = experiment.run()
            row = summarise(history, args.epochs)
            row.update(strategy=name, seed=seed, wall=time.perf_counter() - wall)
            rows.append(row)

    print()
    print(
        "| strategy | seed | best val acc (full fidelity) | its test acc | trials | archs "
        "| trials by epochs | cost s | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        val = "-" if r["val"] is None else f"{r['val']:.2f}"
        test = "-" if r["test"] is None else f"{r['test']:.2f}"
        print(
            f"| {r['strategy']} | {r['seed']} | {val} | {test} | {r['trials']} | {r['archs']} "
            f"| {r['by_fidelity']} | {r['cost']:.0f} | {r['wall']:.0f} |"
        )
    if args.seeds > 1:
        print()
        for name in args.strategies.split(","):
            vals = [r["val"] for r in rows if r["strategy"] == name and r["val"] is not None]
            tests = [r["test"] for r in rows if r["strategy"] == name and r["test"] is not None]
            if vals:
                print(
                    f"{name}: val {np.mean(vals):.2f} ± {np.std(vals):.2f}, "
                    f"test {np.mean(tests):.2f} ± {np.std(tests):.2f} over {len(vals)} seeds"
                )
    for r in rows:
        print(f"{r['strategy']} seed {r['seed']} chose {r['arch']}")
    print(f"total wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
