"""The baselines a one-shot result must beat: searches with real training given the same CPU time.

    python benchmarks/oneshot_baselines.py [--strategies random,evolution,default] [--seeds 3]
        [--minutes 1.8] [--epochs 2] [--subset 0.1] [--channels 8] [--cells 2]
        [--resolution 16] [--store benchmarks/out/oneshot_baselines.db] [--out FILE.json]

Each run is ``nasforge search --space nb201 --estimator train --dataset cifar10`` with one
worker (one torch thread, as `oneshot_search.py` runs each one-shot method), the same images
and network as the one-shot runs (16x16 CIFAR-10, ``--subset`` of the training images split
half for training and half for validation as the supernet's two halves, NB201 C=8 N=2) and a
budget of ``--minutes`` of training time, the wall time of the one-shot method it is compared
with. ``default`` is what ``nasforge search`` runs with real training when no strategy is
named (proxy-evolution with MeCo). The winner by validation accuracy is looked up in the NB201
table (200-epoch test accuracy on CIFAR-10 / CIFAR-100 / ImageNet16-120, report only); mean ±
std over seeds. Stored runs are reused (a finished one) or resumed. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.oneshot.run import NB201_TRUTHS, nb201_truths
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from oneshot_search import mean_std  # the benchmarks folder is the script's own


def search(args: argparse.Namespace, strategy: str, seed: int) -> dict[str, Any]:
    """One stored search; its winner, trial count and training minutes."""
    name = f"baseline-{strategy}-seed{seed}-m{args.minutes:g}-e{args.epochs}"
    if args.subset != 0.1:  # runs at the default share keep the names they were stored by
        name += f"-s{args.subset:g}"
    with Store(args.store) as store:
        run = store.find_run(name)
        status = None if run is None else run.effective_status
    if status != "finished":
        if status is None:
            chosen = [] if strategy == "default" else ["--strategy", strategy]
            command = [
                "search", "--space", "nb201", "--estimator", "train", "--dataset", "cifar10",
                *chosen, "--seed", str(seed), "--workers", "1", "--executor", "inprocess",
                "--budget-seconds", f"{args.minutes * 60:g}", "--epochs", str(args.epochs),
                "--subset", str(args.subset), "--val-fraction", "0.5",
                "--channels", str(args.channels), "--cells", str(args.cells),
                "--resolution", str(args.resolution), "--skip-test", "--search-only",
                "--store", args.store, "--name", name,
            ]  # fmt: skip
        else:
            command = ["resume", name, "--store", args.store]
        print("$ nasforge " + " ".join(command), flush=True)
        subprocess.run([sys.executable, "-m", "nasforge.cli", *command], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    with Store(args.store) as store:
        trials = [t for t in store.trials(store.get_run(name)) if t.state == "complete"]
    best = max(trials, key=lambda t: t.result.objective)
    ends = [t.finished for t in trials if t.finished is not None]
    return {
        "run": name,
        "arch": best.arch,
        "val_acc": best.result.objective,
        "trials": len(trials),
        "train_minutes": sum(t.result.cost for t in trials) / 60,
        "wall_minutes": (max(ends) - min(t.started for t in trials)) / 60,
        "nb201": nb201_truths(NB201Space().from_string(best.arch)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="random,evolution,default")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=1.8, help="training time per search")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=float, default=0.1)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--store", default="benchmarks/out/oneshot_baselines.db")
    parser.add_argument("--out", default=None, help="results JSON")
    args = parser.parse_args()
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    for strategy in args.strategies.split(","):
        for seed in range(args.seeds):
            row = search(args, strategy, seed)
            rows.setdefault(strategy, []).append(row)
            print(f"  {strategy} seed {seed}: {row['trials']} trials, {row['arch']} "
                  f"{row['nb201']}", flush=True)  # fmt: skip
    print(
        f"\nreal-training searches, CIFAR-10 at {args.resolution}x{args.resolution}, subset "
        f"{args.subset:g} (half train, half validation), C={args.channels} N={args.cells}, "
        f"{args.epochs} epochs per trial, {args.minutes:g} min of training each, {args.seeds} seeds"
    )
    print("| strategy | trials | CIFAR-10 | CIFAR-100 | ImageNet16-120 | wall min |")
    print("|---|---|---|---|---|---|")
    for strategy, found in rows.items():
        accs = " | ".join(mean_std([r["nb201"][d] for r in found]) for d in NB201_TRUTHS)
        trials = np.mean([r["trials"] for r in found])
        wall = np.mean([r["wall_minutes"] for r in found])
        print(f"| {strategy} | {trials:.0f} | {accs} | {wall:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"setup": vars(args), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
