"""One-shot methods over seeds at a CPU fidelity: the found cell, its benchmark score, the
search's wall time, and (NB201) the supernet-vs-table rank correlation.

    python benchmarks/oneshot_search.py [--space nb201] [--methods darts,gdas,spos,drnas]
        [--seeds 3] [--epochs 10] [--subset 0.1] [--channels 8] [--cells 2] [--resolution 16]
        [--check-sample 200] [--store benchmarks/out/oneshot.db]

Each run is ``nasforge oneshot`` (stored; an interrupted one is resumed, a finished one reused).
NB201: the derived cell's 200-epoch CIFAR-10 / CIFAR-100 / ImageNet16-120 test accuracy from the
table, mean ± std over seeds, next to the published one-shot results. DARTS space
(``--space darts``): the derived genotype's NAS-Bench-301 surrogate validation accuracy (epoch
98) next to ``--random`` random genotypes' (their mean and where the found one ranks).
Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.store import Store

#: NB201 paper / later papers, CIFAR-10, CIFAR-100, ImageNet16-120 test accuracy
PUBLISHED = {
    "darts": "54.30 / 15.61 / 16.32 (NB201, DARTS-V1)",
    "enas": "54.30 / 15.61 / 16.32 (NB201)",
    "rsws": "87.66 ± 1.69 / 58.33 ± 4.34 / 31.14 ± 3.88 (NB201, RSPS)",
    "gdas": "93.61 ± 0.09 / 70.70 ± 0.30 / 41.71 ± 0.98 (NB201)",
    "drnas": "94.36 / 73.51 / 46.34 (DrNAS)",
    "beta-darts": "94.36 / 73.51 / 46.34 (β-DARTS)",
    "spos": "-",
}


#: (channels, cells, resolution) of the runs whose names carry no size
DEFAULT_SIZE = {"nb201": (8, 2, 16), "darts": (8, 5, 16)}


def oneshot(args: argparse.Namespace, method: str, seed: int) -> dict[str, Any]:
    name = f"bench-{args.space}-{method}-seed{seed}-e{args.epochs}-s{args.subset:g}"
    size = (args.channels, args.cells, args.resolution)
    if size != DEFAULT_SIZE.get(args.space):  # the default size keeps the names runs were stored by
        name += "-c{}-n{}-r{}".format(*size)
    if args.option:  # a run per option set, so a variant never reuses the default's run
        tail = "-".join(args.option)
        name += "-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in tail)
    with Store(args.store) as store:
        run = store.find_run(name)
        status = None if run is None else run.effective_status
        if status == "finished":
            return store.oneshot(run) | {"run": name}
    if status is not None:
        command = ["resume", name, "--store", args.store]
    else:
        command = [
            "oneshot", "--method", method, "--space", args.space, "--dataset", "cifar10",
            "--epochs", str(args.epochs), "--subset", str(args.subset), "--channels",
            str(args.channels), "--cells", str(args.cells), "--resolution", str(args.resolution),
            "--check-sample", str(args.check_sample), "--seed", str(seed), "--store", args.store,
            "--name", name, *[x for o in args.option for x in ("--option", o)],
        ]  # fmt: skip
    print("$ nasforge " + " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", "nasforge.cli", *command], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    with Store(args.store) as store:
        return store.oneshot(store.get_run(name)) | {"run": name}


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.2f}"


def nb301_scores(archs: list[Any]) -> list[float]:
    from nasforge.core import Candidate
    from nasforge.estimators.benchmarks.nb301 import NB301Benchmark

    bench = NB301Benchmark()
    return [float(bench.evaluate(Candidate(a)).objective) for a in archs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--methods", default="darts,gdas,spos,drnas")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--subset", type=float, default=0.1)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--check-sample", type=int, default=200)
    parser.add_argument("--random", type=int, default=100, help="random genotypes (darts)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--store", default="benchmarks/out/oneshot.db")
    parser.add_argument("--out", default=None, help="results JSON")
    args = parser.parse_args()
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    for method in args.methods.split(","):
        for seed in range(args.seeds):
            record = oneshot(args, method, seed)
            rows.setdefault(method, []).append(record)
            print(f"  {method} seed {seed}: {record['derived']}  "
                  f"{record.get('derived_nb201', '')}", flush=True)  # fmt: skip
    print(
        f"\n{args.space}, CIFAR-10 at {args.resolution}x{args.resolution}, subset {args.subset:g} "
        f"of each half, C={args.channels}, cells={args.cells}, {args.epochs} epochs, "
        f"{args.seeds} seeds"
    )
    result: dict[str, Any] = {"setup": vars(args), "methods": {}}
    if args.space == "nb201":
        print(
            "| method | CIFAR-10 | CIFAR-100 | ImageNet16-120 | wall min | tau (C10) | published |"
        )
        print("|---|---|---|---|---|---|---|")
        for method, records in rows.items():
            accs = {d: [r["derived_nb201"][d] for r in records]
                    for d in ("cifar10", "cifar100", "imagenet16-120")}  # fmt: skip
            minutes = [(r["train_seconds"] + r["derive_seconds"]) / 60 for r in records]
            taus = [r["check"]["metrics"]["cifar10"]["kendall"] for r in records if "check" in r]
            tau = mean_std(taus) if taus else "-"
            print(f"| {method} | {mean_std(accs['cifar10'])} | {mean_std(accs['cifar100'])} | "
                  f"{mean_std(accs['imagenet16-120'])} | {np.mean(minutes):.1f} | {tau} | "
                  f"{PUBLISHED.get(method, '-')} |")  # fmt: skip
            result["methods"][method] = {"accs": accs, "minutes": minutes, "tau": taus,
                                         "cells": [r["derived"] for r in records]}  # fmt: skip
    else:
        from nasforge.spaces.darts import DartsSpace

        space = DartsSpace()
        rng = np.random.default_rng(0)
        randoms = nb301_scores([space.sample(rng) for _ in range(args.random)])
        print(f"random genotypes (n={args.random}): NB301 val acc {mean_std(randoms)}")
        print("| method | NB301 val acc (mean ± std) | percentile among random | wall min |")
        print("|---|---|---|---|")
        for method, records in rows.items():
            scores = nb301_scores([space.from_string(r["derived"]) for r in records])
            pct = [100.0 * float(np.mean(np.array(randoms) <= s)) for s in scores]
            minutes = [(r["train_seconds"] + r["derive_seconds"]) / 60 for r in records]
            print(f"| {method} | {mean_std(scores)} | {np.mean(pct):.0f} | "
                  f"{np.mean(minutes):.1f} |")  # fmt: skip
            result["methods"][method] = {"nb301": scores, "percentile": pct, "minutes": minutes,
                                         "cells": [r["derived"] for r in records]}  # fmt: skip
        result["random_nb301"] = randoms
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
