"""Does searching pay? A real-training search's final model vs random architectures, same recipe.

    python benchmarks/search_vs_random.py [--dataset fashion-mnist] [--minutes 30]
                                          [--seeds 3] [--final-epochs 5] [--final-subset 1.0]
                                          [--strategy default|NAME] [--option KEY=VALUE ...]
                                          [--search-seed 0] [--winner CELL]
                                          [--store benchmarks/out/search_vs_random.db]

1. A low-fidelity search over NB201 cells (``--strategy``: ``default`` is what ``nasforge
   search`` runs when no strategy is named, `config.DEFAULT_TRAIN_SEARCH`, with the user's
   ``--option`` values laid over its options; ``evolution`` is this script's earlier run,
   regularized evolution with population 10 and sample 3; any other name with its
   ``--option`` values; ``--search-seed`` seeds the search; 2 worker processes, each trial
   ``--search-epochs`` epochs on ``--search-subset`` of the training split, C=8 N=1, the test
   set not scored: ``--skip-test``) for about ``--minutes`` of wall time (``--budget-seconds``
   of training cost summed over the two workers).
2. Its best cell is retrained with ``--seeds`` seeds (``--final-epochs`` on ``--final-subset``),
   exactly as ``nasforge train-final`` does (`final.make_trainer` and `final.train_once`).
3. ``--seeds`` random NB201 cells (seeded), each trained once with that same final recipe.
   Steps 2 and 3 share ``--final-workers`` one-thread worker processes (2). A random cell's
   training is kept in ``benchmarks/out/search_vs_random-random-cells.json`` (by dataset,
   cell, seed and recipe), so the next search seed's comparison reuses it instead of training
   the same cell again.

``--winner CELL`` skips step 1 and retrains ``CELL`` as the search's winner: for a search
whose store is gone but whose winner was recorded (the configuration is rebuilt from the same
flags the search is run with, which is all the final recipe reads).

Prints test accuracy mean ± std of both and their difference, and writes them to
``benchmarks/out/search_vs_random-DATASET[-STRATEGY...].json`` (after the run name). With
``--dataset cifar10`` the searched cell and the random ones are also looked up in the
NAS-Bench-201 table (200-epoch CIFAR-10 test accuracy and the cell's percentile there).
Measures, does not assert; an interrupted search is continued with ``nasforge resume NAME
--store STORE``, and a finished one is not run again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge import final
from nasforge.config import RunConfig, default_search
from nasforge.core import Candidate
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store


def nasforge(*args: str) -> str:
    command = [sys.executable, "-m", "nasforge.cli", *args]
    print("$ nasforge " + " ".join(args), flush=True)
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def random_cells(seeds: int, taken: str) -> list[str]:
    space, rng = NB201Space(), np.random.default_rng(12345)
    taken = space.to_string(space.canonical(space.from_string(taken)))
    cells: list[str] = []
    while len(cells) < seeds:
        text = space.to_string(space.canonical(space.sample(rng)))
        if text != taken and text not in cells:
            cells.append(text)
    return cells


def nb201_lookup(cells: list[str]) -> list[tuple[float, float]]:
    """(200-epoch CIFAR-10 test accuracy, percentile among all 15,625 cells) per cell."""
    space, bench = NB201Space(), NB201Benchmark("cifar10")
    table = np.array(
        [bench.evaluate(Candidate(a)).report["test_acc"] for a in space.enumerate()], dtype=float
    )
    rows = []
    for text in cells:
        acc = bench.evaluate(Candidate(space.from_string(text))).report["test_acc"]
        rows.append((acc, 100.0 * float(np.mean(table <= acc))))
    return rows


def search(args: argparse.Namespace, name: str) -> None:
    """Run the search, resume it if it was interrupted, leave it alone if it finished."""
    with Store(args.store) as store:
        run = store.find_run(name)
        status = None if run is None else run.effective_status
    if status == "finished":
        print(f"search {name!r} already finished in {args.store}: reusing it", flush=True)
        return
    if status is not None:
        nasforge("resume", name, "--store", args.store)
        return
    chosen: list[str] = []
    if args.strategy != "default":
        chosen = ["--strategy", args.strategy]
    if args.strategy == "evolution" and not args.option:
        chosen += ["--population", "10", "--sample", "3"]  # the earlier runs of this script
    for pair in args.option:
        chosen += ["--option", pair]
    # 2 workers: the summed training cost grows about twice as fast as wall time
    nasforge(
        "search", "--space", "nb201", "--estimator", "train", "--dataset", args.dataset,
        *chosen, "--seed", str(args.search_seed), "--workers", "2",
        "--budget-seconds", f"{args.minutes * 60 * 2:g}",
        "--epochs", str(args.search_epochs), "--subset", str(args.search_subset),
        "--channels", "8", "--cells", "1", "--skip-test", "--search-only",
        "--store", args.store, "--name", name,
    )  # fmt: skip


def search_config(args: argparse.Namespace) -> RunConfig:
    """The configuration `search` gives its run, rebuilt from the same flags (for
    ``--winner``, whose search is not in the store)."""
    strategy, options = args.strategy, dict(pair.split("=", 1) for pair in args.option)
    if strategy == "default":
        strategy, defaults = default_search(training=True)
        options = defaults | options
    search = {
        "space": "nb201", "estimator": "train", "dataset": args.dataset, "strategy": strategy,
        "options": options, "seed": args.search_seed, "budget_seconds": args.minutes * 120,
    }  # fmt: skip
    train = {
        "epochs": args.search_epochs, "subset": args.search_subset, "channels": 8, "cells": 1,
        "skip_test": True,
    }  # fmt: skip
    return RunConfig.create(search, train, {"workers": 2}, final=False)


class RandomCellCache:
    """Final-recipe trainings of random cells, kept across invocations in a JSON file: the
    random cells are the same for every search seed, so each is trained once per recipe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    @staticmethod
    def key(dataset: str, cell: str, seed: int, epochs: int, subset: float) -> str:
        return f"{dataset}|{cell}|seed={seed}|epochs={epochs}|subset={subset:g}"

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def put(self, key: str, row: dict[str, Any]) -> None:
        self.rows[key] = row
        self.path.write_text(json.dumps(self.rows, indent=2))


def run_name(args: argparse.Namespace) -> str:
    """One stored search per dataset, strategy, options and search seed, so a rerun with the
    same flags reuses (or resumes) its own search and never another's."""
    name = f"search-vs-random-{args.dataset}"
    strategy, options = args.strategy, list(args.option)
    if strategy == "default":  # named after what it runs, so a changed default is a new run
        strategy, defaults = default_search(training=True)
        given = {pair.partition("=")[0] for pair in options}
        options = [f"{k}={v}" for k, v in defaults.items() if k not in given] + options
    if strategy != "evolution" or options:
        tail = "-".join([strategy, *options])
        name += "-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in tail)
    if args.search_seed:
        name += f"-seed{args.search_seed}"
    return name


def train_with_recipe(
    cfg: RunConfig, cell: str, seed: int, epochs: int, subset: float
) -> dict[str, Any]:
    """One final-recipe training in a worker process (one torch thread)."""
    torch.set_num_threads(1)
    space, trainer = final.make_trainer(cfg, seed, epochs, subset, None)
    _, result = final.train_once(trainer, space, cell)
    return {
        "cell": cell,
        "seed": seed,
        "val_acc": result.objective,
        "test_acc": result.report["test_acc"],
        "params": result.metrics["params"],
        "train_seconds": result.metrics["train_seconds"],
    }


def final_trainings(
    cfg: RunConfig,
    jobs: list[tuple[str, str, int]],
    epochs: int,
    subset: float,
    cache: RandomCellCache,
    workers: int = 2,
) -> dict[str, list[dict[str, Any]]]:
    """``(group, cell, seed)`` jobs trained on ``workers`` one-thread processes; results by
    group (each training is seeded and single-threaded, so the count changes only the time).
    Jobs of the ``random`` group are taken from ``cache`` where it has them, and added to it."""
    done: dict[str, list[dict[str, Any]]] = {}

    def key(cell: str, seed: int) -> str:
        return cache.key(cfg.search.dataset, cell, seed, epochs, subset)

    todo = []
    for group, cell, seed in jobs:
        kept = cache.get(key(cell, seed)) if group == "random" else None
        if kept is None:
            todo.append((group, cell, seed))
        else:
            print(f"{group} seed {seed}: test {kept['test_acc']:.2f} (kept)  {cell}", flush=True)
            done.setdefault(group, []).append(kept)
    jobs = todo
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(train_with_recipe, cfg, cell, seed, epochs, subset): group
            for group, cell, seed in jobs
        }
        for count, future in enumerate(as_completed(futures), start=1):
            row, group = future.result(), futures[future]
            done.setdefault(group, []).append(row)
            if group == "random":
                cache.put(key(row["cell"], row["seed"]), row)
            elapsed = time.perf_counter() - started
            eta = elapsed / count * (len(jobs) - count)
            print(
                f"[{count}/{len(jobs)}] {group} seed {row['seed']}: test {row['test_acc']:.2f} "
                f"({row['train_seconds']:.0f} s)  {row['cell']}  elapsed {elapsed:.0f} s, "
                f"ETA {eta:.0f} s",
                flush=True,
            )
    return {group: sorted(rows, key=lambda r: r["seed"]) for group, rows in done.items()}


def format_test_acc(rows: list[dict[str, Any]]) -> str:
    mean, std = final.mean_std([r["test_acc"] for r in rows])  # sample std, as train-final
    return f"{mean:.2f} ± {std:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall time of the search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--search-epochs", type=int, default=3)
    parser.add_argument("--search-subset", type=float, default=0.2)
    parser.add_argument("--final-epochs", type=int, default=5)
    parser.add_argument("--final-subset", type=float, default=1.0)
    parser.add_argument(
        "--final-workers",
        type=int,
        default=2,
        help="processes of the final trainings (3 searched-cell seeds in one round: 3)",
    )
    parser.add_argument("--store", default="benchmarks/out/search_vs_random.db")
    parser.add_argument(
        "--strategy",
        default="default",
        help="default: nasforge search's own choice with real training; evolution: this "
        "script's earlier run (population 10, sample 3); or any strategy name",
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option"
    )
    parser.add_argument("--search-seed", type=int, default=0, help="seed of the search")
    parser.add_argument(
        "--winner",
        default=None,
        metavar="CELL",
        help="retrain this recorded winner instead of running (or reading) the search",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="run name (default: from dataset, strategy and search seed; the earlier runs "
        "of regularized evolution keep search-vs-random-DATASET)",
    )
    args = parser.parse_args()
    name = args.name or run_name(args)
    out = Path(args.store).parent
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.winner:
        space = NB201Space()
        best = space.to_string(space.from_string(args.winner))
        cfg, finished, search_seconds = search_config(args), None, None
    else:
        search(args, name)
        with final.open_store(args.store) as store:
            _, cfg, trials = final.load_run(store, name)
            best = final.top_architectures(NB201Space(), trials, 1)[0]["arch"]
            finished = sum(t.state == "complete" for t in trials)
        # from the stored trials, so a reused or resumed search reports its own wall time
        ends = [t.finished for t in trials if t.finished is not None]
        search_seconds = max(ends) - min(t.started for t in trials)
    randoms = random_cells(args.seeds, best)
    jobs = [("searched", best, seed) for seed in range(args.seeds)]
    jobs += [("random", cell, seed) for seed, cell in enumerate(randoms)]
    cache = RandomCellCache(out / "search_vs_random-random-cells.json")
    groups = final_trainings(
        cfg, jobs, args.final_epochs, args.final_subset, cache, args.final_workers
    )

    ours, baseline = groups["searched"], groups["random"]
    diff = np.mean([r["test_acc"] for r in ours]) - np.mean([r["test_acc"] for r in baseline])
    print()
    recipe = f"{args.final_epochs} epochs on {args.final_subset:g} of the training split"
    print(f"{args.dataset}: final recipe {recipe}, {args.seeds} seeds")
    if search_seconds is None:
        print(f"search: not run; its recorded winner retrained (--winner {best})")
    else:
        print(
            f"search: {finished} trials of {args.search_epochs} epochs on "
            f"{args.search_subset:g} of the training split in {search_seconds / 60:.1f} min"
        )
    print("| architecture | params | test accuracy mean ± std |")
    print("|---|---|---|")
    print(f"| searched: {best} | {ours[0]['params']:,.0f} | {format_test_acc(ours)} |")
    for row in baseline:
        print(f"| random (seed {row['seed']}): {row['cell']} | {row['params']:,.0f} | "
              f"{row['test_acc']:.2f} |")  # fmt: skip
    print(f"| random cells (one per seed) | | {format_test_acc(baseline)} |")
    print(f"difference: {diff:+.2f} points")
    record: dict[str, Any] = {
        "dataset": args.dataset,
        "search": {
            "trials": finished,
            "minutes": None if search_seconds is None else search_seconds / 60,
            "winner_given": bool(args.winner),
            "arch": best,
            "run": name,
            "strategy": cfg.search.strategy,
            "options": dict(cfg.search.options),
            "seed": cfg.search.seed,
        },
        "final_recipe": {"epochs": args.final_epochs, "subset": args.final_subset},
        "searched": ours,
        "random": baseline,
    }
    if args.dataset == "cifar10":
        looked = nb201_lookup([best, *randoms])
        cells = [best, *randoms]
        record["nb201_test_acc"] = {c: acc for c, (acc, _) in zip(cells, looked, strict=True)}
        acc, pct = looked[0]
        print(f"NB201 table, searched cell: 200-epoch test {acc:.2f} (percentile {pct:.1f})")
        for (acc, pct), cell in zip(looked[1:], randoms, strict=True):
            print(f"NB201 table, random cell: {acc:.2f} (percentile {pct:.1f})  {cell}")
    path = out / f"{name.replace('search-vs-random-', 'search_vs_random-', 1)}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wall time {time.perf_counter() - started:.0f} s; results in {path}")


if __name__ == "__main__":
    main()
