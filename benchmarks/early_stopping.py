"""What early stopping saves: the same real-training search with no rule, the median rule and
learning-curve extrapolation, over several seeds.

    python benchmarks/early_stopping.py [--quick] [--dataset digits] [--trials 24] [--epochs 9]
                                        [--seeds 3] [--rules none,median,curve]

Random search over NAS-Bench-201 cells (a small network, C=8 N=1) trained by SGD with a cosine
schedule (`nasforge.estimators.train.Train`). Random search ignores results, so with one seed
every rule sees exactly the same architectures in the same order: the runs differ only in which
trials the rule cut short. Reported per rule (mean ± std over seeds):

* training seconds (the summed trial cost: SGD, plus with a rule the per-epoch validation and
  the rule's own time), epochs trained, trials stopped;
* the saving: 1 - seconds / seconds without a rule, per seed, then averaged;
* final quality: the best validation accuracy among fully trained trials (what the search would
  pick) and the report-only test accuracy of that pick.

The claim to check: a rule saves >= 30% of training time at equal final quality. Measures, does
not assert. Timings are noisy on a shared machine; epochs trained are not.
"""

from __future__ import annotations

import argparse
import statistics
import time

from nasforge.data.datasets import load_dataset
from nasforge.estimators.early_stopping import make_stopper
from nasforge.estimators.train import Train
from nasforge.experiment import Experiment
from nasforge.history import History
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.random import RandomSearch


def summarise(history: History, epochs: int) -> dict[str, float]:
    done = [t.result for t in history.completed]
    full = [r for r in done if not r.metrics.get("stopped_early")]  # type: ignore[union-attr]
    best = max(full, key=lambda r: r.objective)  # type: ignore[union-attr]
    return {
        "seconds": history.total_cost,
        "epochs": sum(r.metrics["epochs"] for r in done),  # type: ignore[union-attr]
        "planned": epochs * len(done),
        "stopped": len(done) - len(full),
        "val": best.objective,  # type: ignore[union-attr]
        "test": best.report["test_acc"],  # type: ignore[union-attr]
    }


def _ms(values: list[float], digits: int = 2) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 trials of 6 epochs, 2 seeds")
    parser.add_argument("--dataset", default="digits", help="digits, mnist or fashion-mnist")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--subset", type=float, default=1.0, help="fraction of train images")
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    parser.add_argument("--rules", default="none,median,curve")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.seeds = 12, 6, 2

    space = NB201Space()
    data = load_dataset(args.dataset)
    rules = args.rules.split(",")
    rows: dict[str, list[dict[str, float]]] = {rule: [] for rule in rules}
    started = time.perf_counter()
    for seed in range(args.seeds):
        for rule in rules:
            estimator = Train(
                space,
                data,
                epochs=args.epochs,
                subset=args.subset,
                val_fraction=args.val_fraction,
                batch_size=args.batch_size,
                net={"C": 8, "N": 1},
                threads=args.threads,
                seed=seed,
                early_stopping=make_stopper(rule),
            )
            history = Experiment(
                space, RandomSearch(space, seed=seed), estimator, args.trials, progress=False
            ).run()
            row = summarise(history, args.epochs)
            rows[rule].append(row)
            print(
                f"seed {seed} {rule:>6}: {row['seconds']:6.1f} s, {row['epochs']:.0f}/"
                f"{row['planned']:.0f} epochs, {row['stopped']:.0f} stopped, best val "
                f"{row['val']:.2f}, its test {row['test']:.2f}",
                flush=True,
            )

    print(
        f"\n{args.dataset}: {len(estimator.train_idx)} train / {len(estimator.val_idx)} val "
        f"images; random search, {args.trials} trials of {args.epochs} epochs, NB201 C=8 N=1, "
        f"{args.seeds} seeds; wall {time.perf_counter() - started:.0f} s\n"
    )
    print(
        "| rule | training s | saving vs none | epochs trained | stopped trials "
        "| best val acc | its test acc |"
    )
    print("|---|---|---|---|---|---|---|")
    base = rows.get("none")
    for rule, runs in rows.items():
        saving = (
            _ms([1 - r["seconds"] / b["seconds"] for r, b in zip(runs, base, strict=True)])
            if base
            else "n/a"
        )
        print(
            f"| {rule} | {_ms([r['seconds'] for r in runs], 1)} | {saving} "
            f"| {_ms([r['epochs'] / r['planned'] for r in runs])} "
            f"| {_ms([r['stopped'] for r in runs], 1)} | {_ms([r['val'] for r in runs])} "
            f"| {_ms([r['test'] for r in runs])} |"
        )


if __name__ == "__main__":
    main()
