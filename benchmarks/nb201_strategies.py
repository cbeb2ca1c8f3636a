"""Search quality on NAS-Bench-201: every strategy vs. random search, many seeds.

    python benchmarks/nb201_strategies.py [--datasets cifar10,cifar100,imagenet16-120]
                                          [--seeds 100] [--budget 100] [--out benchmarks/out]

Objective: 12-epoch validation accuracy. Reported: 200-epoch test accuracy of each run's
best-by-objective cell, mean ± std over seeds. Prints a Markdown table per dataset and the wall
time; writes JSON and an anytime plot per dataset. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nasforge import factory
from nasforge.compare import ComparisonSetup, compare, format_table
from nasforge.report.plots import plot_anytime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cifar10,cifar100,imagenet16-120")
    parser.add_argument(
        "--strategies", default="all", help="comma-separated, or all that can search NB201"
    )
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for dataset in args.datasets.split(","):
        setup = ComparisonSetup("nb201", dataset, args.budget)
        strategies = args.strategies.split(",")
        if strategies == ["all"]:
            space = factory.make_space("nb201")
            strategies = factory.strategies_for(
                space, factory.make_estimator("benchmark", space, dataset)
            )
        results = compare(setup, strategies, args.seeds, args.workers, progress=False)
        (out / f"nb201_{dataset}.json").write_text(json.dumps(results, indent=1))
        plot_anytime(results, out / f"nb201_{dataset}.png")
        print(format_table(results))
        print()
    print(f"total wall time: {time.perf_counter() - started:.1f} s (plots and JSON in {out}/)")


if __name__ == "__main__":
    main()
