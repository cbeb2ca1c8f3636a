"""Proxy- and predictor-assisted search vs. regularized evolution on the NAS-Bench-201 table.

    python benchmarks/assisted_search_nb201.py --proxy-table FILE.csv --proxy NAME
        [--strategy SPEC ...] [--dataset cifar10] [--seeds 100] [--budget 100]
        [--workers 1] [--out benchmarks/out]
    python benchmarks/assisted_search_nb201.py --make-params-table FILE.csv   # development

Objective: the table's 12-epoch validation accuracy. Reported: the 200-epoch test accuracy of
each run's best-by-objective cell, mean ± std over seeds 0..seeds-1, after 25/50/75/100 (a
quarter, half ... of ``--budget``) evaluations, and "evaluations needed to reach RE's mean at
the budget": the first evaluation count at which a strategy's mean curve is at least plain
regularized evolution's final mean (``-`` if never).

A strategy SPEC is ``NAME[:KEY=VALUE[:KEY=VALUE ...]]`` (values parsed as JSON, else strings),
e.g. ``proxy-evolution:warmup=200`` or ``bananas:predictor=lgbm``; ``--strategy`` repeats. Every
strategy whose constructor takes an arch scorer (``scorer=``) gets the proxy table's
``--proxy`` column, read once per process (`ProxyTable`). A default strategy that cannot be
built with this nasforge (a predictor option before the predictors exist) is skipped with a
note; one named on the command line is an error. Writes JSON and an anytime plot (PNG) to
``--out``. Measures, does not assert. Cost of one 100-evaluation run on one busy core: random,
evolution and proxy-evolution well under a second, ``bo:predictor=gp`` ~2 s,
``bananas:predictor=lgbm`` ~14 s (100 seeds of it: ~25 min; use ``--workers``).

``--make-params-table FILE`` writes a proxy table of all 15,625 cells whose one column,
``params``, is the parameter count of the benchmark's network (C=16, N=5, 10 classes) of each
cell's canonical form (a table is read by canonical form): a real, cheap baseline proxy for
developing this benchmark before the zero-cost proxy tables exist.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import factory
from nasforge.config import parse_options
from nasforge.errors import ConfigError
from nasforge.experiment import Experiment

DEFAULT_STRATEGIES = (
    "random",
    "evolution",
    "proxy-evolution",
    "bananas:predictor=lgbm",
    "bo:predictor=gp",
)
BASELINE = "evolution"


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    name, *pairs = spec.split(":")
    return name, parse_options(pairs)


@lru_cache(maxsize=2)
def parts(dataset: str, table: str | None, proxy: str | None) -> tuple[Any, Any, Any]:
    """(space, benchmark, scorer) once per process; scorer None without a table."""
    space = factory.make_space("nb201")
    bench = factory.make_estimator("benchmark", space, dataset)
    scorer = None
    if table is not None:
        scorer = factory.make_scorer(space, bench, 0, proxy=proxy, proxy_table=table)
    return space, bench, scorer


def build(spec: str, seed: int, dataset: str, table: str | None, proxy: str | None) -> Any:
    space, bench, scorer = parts(dataset, table, proxy)
    name, options = parse_spec(spec)
    if (
        factory.strategy_accepts(name, "scorer")
        and scorer is not None
        and not set(options) & set(factory.PROXY_OPTIONS)
    ):
        options["scorer"] = scorer
    return factory.make_strategy(name, space, seed, options, bench)


def run_one(spec: str, seed: int, args: tuple[Any, ...]) -> dict[str, Any]:
    dataset, table, proxy, budget = args
    space, bench, _ = parts(dataset, table, proxy)
    strategy = build(spec, seed, dataset, table, proxy)
    started = time.perf_counter()
    history = Experiment(space, strategy, bench, budget, progress=False).run()
    curve = [point["best_test_acc"] for point in history.anytime("test_acc")]
    return {"spec": spec, "seed": seed, "curve": curve, "seconds": time.perf_counter() - started}


def summarise(runs: list[dict[str, Any]], checkpoints: list[int]) -> dict[str, Any]:
    curves = np.array([r["curve"] for r in runs], dtype=float)
    mean, std = curves.mean(axis=0), curves.std(axis=0, ddof=1)
    return {
        "mean": float(mean[-1]),
        "std": float(std[-1]),
        "at": {str(n): [float(mean[n - 1]), float(std[n - 1])] for n in checkpoints},
        "anytime_mean": mean.tolist(),
        "anytime_std": std.tolist(),
        "finals": curves[:, -1].tolist(),
        "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
    }


def evaluations_to_reach(curve: list[float], target: float) -> int | None:
    hits = np.nonzero(np.asarray(curve) >= target - 1e-9)[0]
    return int(hits[0]) + 1 if len(hits) else None


def make_params_table(path: Path) -> None:
    from nasforge.spaces.nb201 import NB201Space

    space = NB201Space()
    path.parent.mkdir(parents=True, exist_ok=True)
    setup = {"proxy": "params", "network": {"C": 16, "N": 5, "num_classes": 10}}
    with path.open("w", newline="") as handle:
        handle.write("# space: nb201\n")
        handle.write(f"# setup: {json.dumps(setup, sort_keys=True)}\n")
        writer = csv.writer(handle)
        writer.writerow(["arch", "params"])
        for arch in space.enumerate():
            writer.writerow([space.to_string(arch), space.param_count(space.canonical(arch))])
    print(f"wrote {path} (15,625 cells, column params)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy-table", default=None, metavar="FILE.csv")
    parser.add_argument("--proxy", default=None, metavar="COLUMN")
    parser.add_argument("--strategy", action="append", default=None, metavar="SPEC")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/out")
    parser.add_argument("--make-params-table", default=None, metavar="FILE.csv")
    args = parser.parse_args()
    if args.make_params_table:
        make_params_table(Path(args.make_params_table))
        return
    if (args.proxy_table is None) != (args.proxy is None):
        parser.error("--proxy-table and --proxy go together")
    shared = (args.dataset, args.proxy_table, args.proxy, args.budget)
    specs = []
    for spec in args.strategy or DEFAULT_STRATEGIES:
        try:
            build(spec, 0, *shared[:3])
        except (ConfigError, TypeError) as err:
            if args.strategy:
                parser.error(f"{spec}: {err}")
            print(f"skipped {spec}: {err}", file=sys.stderr)
            continue
        specs.append(spec)
    if BASELINE not in specs:
        specs.insert(0, BASELINE)
    jobs = [(spec, seed) for spec in specs for seed in range(args.seeds)]
    started = time.perf_counter()
    if args.workers <= 1:
        runs = []
        for spec, seed in jobs:
            runs.append(run_one(spec, seed, shared))
            if seed == args.seeds - 1:
                took = sum(r["seconds"] for r in runs if r["spec"] == spec)
                print(f"{spec}: {args.seeds} runs in {took:.0f} s", file=sys.stderr, flush=True)
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(run_one, spec, seed, shared) for spec, seed in jobs]
            runs = [f.result() for f in futures]
    wall = time.perf_counter() - started
    checkpoints = sorted({max(1, round(args.budget * q / 4)) for q in (1, 2, 3, 4)})
    rows = {s: summarise([r for r in runs if r["spec"] == s], checkpoints) for s in specs}
    target = rows[BASELINE]["mean"]
    for row in rows.values():
        row["evaluations_to_reach_re"] = evaluations_to_reach(row["anytime_mean"], target)
    _, bench, _ = parts(*shared[:3])
    optimum = bench.optimum()
    results = {
        "config": {
            "space": "nb201",
            "dataset": args.dataset,
            "table": None,
            "proxy_table": args.proxy_table,
            "proxy": args.proxy,
            "report_metric": "test_acc",
            "seeds": args.seeds,
            "budget_evaluations": args.budget,
            "strategies": specs,
            "command": " ".join(sys.argv),
        },
        "optimum": {"objective": optimum[0], "test_acc": optimum[1]},
        "wall_seconds": wall,
        "strategies": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"assisted_nb201_{args.dataset}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    from nasforge.report.plots import plot_anytime

    plot_anytime(results, out / f"{stem}.png")
    proxy = f"proxy {args.proxy} from {args.proxy_table}" if args.proxy else "no proxy table"
    print(f"NB201 {args.dataset}, {args.seeds} seeds, {proxy}; 200-epoch test accuracy of the")
    print("best-by-objective cell, mean ± std, after N evaluations")
    head = " | ".join(f"{n} evals" for n in checkpoints)
    print(f"| strategy | {head} | evals to reach RE@{args.budget} ({target:.2f}) |")
    print("|---|" + "---|" * (len(checkpoints) + 1))
    for spec, row in rows.items():
        cells = " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in row["at"].values())
        reach = row["evaluations_to_reach_re"]
        print(f"| {spec} | {cells} | {'-' if reach is None else reach} |")
    print(
        f"optimum of the objective: test {optimum[1]:.2f}; wall time {wall:.0f} s; {out}/{stem}.*"
    )


if __name__ == "__main__":
    main()
