"""The fair-comparison protocol behind ``nasforge benchmark``.

Every strategy gets the same space, the same estimator and the same budget, over the same seeds;
random search is always included as the baseline. What is compared is the report-only metric
(e.g. the 200-epoch test accuracy) of the architecture each run would return, i.e. its
best-by-objective one, as mean ± std over seeds, with the anytime curve of that quantity.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import factory
from nasforge.experiment import Experiment
from nasforge.report.progress import Progress


@dataclass(frozen=True)
class ComparisonSetup:
    space: str
    dataset: str
    budget: int
    data_dir: str | None = None
    report_metric: str = "test_acc"


@lru_cache(maxsize=4)
def _space_and_estimator(setup: ComparisonSetup) -> tuple[Any, Any]:
    """One space and one (table-backed) estimator per process, shared by all its runs."""
    space = factory.make_space(setup.space)
    estimator = factory.make_estimator("benchmark", space, setup.dataset, setup.data_dir)
    return space, estimator


def run_one(setup: ComparisonSetup, strategy_name: str, seed: int) -> dict[str, Any]:
    """One seeded search; returns the final report metric and the anytime curve."""
    space, estimator = _space_and_estimator(setup)
    strategy = factory.make_strategy(strategy_name, space, seed)
    experiment = Experiment(space, strategy, estimator, setup.budget, progress=False)
    started = time.perf_counter()
    history = experiment.run()
    seconds = time.perf_counter() - started
    curve = history.anytime(setup.report_metric)
    key = f"best_{setup.report_metric}"
    return {
        "strategy": strategy_name,
        "seed": seed,
        "final": curve[-1][key],
        "best_arch": curve[-1]["best_arch"],
        "curve": [point[key] for point in curve],
        "seconds": seconds,
        "ask_ms": 1000 * experiment.ask_seconds / max(1, len(history.trials)),
    }


def _versions() -> dict[str, str]:
    import torch

    from nasforge import __version__

    return {
        "nasforge": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def compare(
    setup: ComparisonSetup,
    strategies: list[str],
    seeds: int,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every strategy (random search first, added if absent) over seeds 0..seeds-1."""
    names = ["random"] + [s for s in strategies if s != "random"]
    for name in names:  # fail fast on bad names, before any process starts
        factory.make_strategy(name, factory.make_space(setup.space), 0)
    _space_and_estimator(setup)
    jobs = [(name, seed) for name in names for seed in range(seeds)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = Progress(len(jobs), label="benchmark ", unit="runs", enabled=progress)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if workers == 1:
        for name, seed in jobs:
            runs.append(run_one(setup, name, seed))
            bar.update(len(runs))
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(run_one, setup, name, seed) for name, seed in jobs]
            for future in futures:
                runs.append(future.result())
                bar.update(len(runs))
    bar.close()
    summary = {name: _summarise([r for r in runs if r["strategy"] == name]) for name in names}
    _, estimator = _space_and_estimator(setup)
    optimum = estimator.optimum() if hasattr(estimator, "optimum") else None
    return {
        "config": {
            "space": setup.space,
            "dataset": setup.dataset,
            "estimator": estimator.name,
            "objective": estimator.objective_name,
            "report_metric": setup.report_metric,
            "budget_evaluations": setup.budget,
            "seeds": seeds,
            "strategies": names,
            "workers": workers,
            "command": " ".join(sys.argv),
        },
        "versions": _versions(),
        "optimum": None
        if optimum is None
        else {"objective": optimum[0], setup.report_metric: optimum[1]},
        "wall_seconds": time.perf_counter() - started,
        "strategies": summary,
    }


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    finals = np.array([r["final"] for r in runs], dtype=float)
    curves = np.array([r["curve"] for r in runs], dtype=float)
    return {
        "mean": float(finals.mean()),
        "std": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
        "min": float(finals.min()),
        "max": float(finals.max()),
        "runs": len(runs),
        "finals": finals.tolist(),
        "anytime_mean": np.nanmean(curves, axis=0).tolist(),
        "anytime_std": np.nanstd(curves, axis=0).tolist(),
        "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
        "ask_ms": float(np.mean([r["ask_ms"] for r in runs])),
    }


def write_outputs(results: dict[str, Any], out: Path) -> list[Path]:
    """``out`` (JSON: everything, including configuration and versions), and beside it the
    Markdown table (``.md``), the anytime curves as CSV (``.csv``) and their plot (``.png``)."""
    from nasforge.report.plots import plot_anytime

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    table = out.with_suffix(".md")
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    table.write_text(f"{format_table(results)}\n\nsoftware: {versions}\n")
    curves = out.with_suffix(".csv")
    with open(curves, "w", newline="") as handle:
        writer = csv.writer(handle)
        metric = results["config"]["report_metric"]
        writer.writerow(["strategy", "evaluations", f"mean_{metric}", f"std_{metric}"])
        for name, row in results["strategies"].items():
            for i, (mean, std) in enumerate(
                zip(row["anytime_mean"], row["anytime_std"], strict=True)
            ):
                writer.writerow([name, i + 1, f"{mean:.4f}", f"{std:.4f}"])
    return [out, table, curves, plot_anytime(results, out.with_suffix(".png"))]


def format_table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per strategy."""
    cfg = results["config"]
    metric = cfg["report_metric"]
    lines = [
        f"{cfg['space']} / {cfg['dataset']}: objective {cfg['objective']}, reported {metric} of "
        f"the best-by-objective arch, {cfg['budget_evaluations']} evaluations, "
        f"{cfg['seeds']} seeds",
        "",
        f"| strategy | mean {metric} | std | min | max | ms per ask |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["strategies"].items():
        lines.append(
            f"| {name} | {row['mean']:.2f} | {row['std']:.2f} | {row['min']:.2f} | "
            f"{row['max']:.2f} | {row['ask_ms']:.3f} |"
        )
    if results.get("optimum"):
        lines.append("")
        lines.append(
            f"optimum of the objective: {results['optimum']['objective']:.2f} "
            f"({metric} {results['optimum'][metric]:.2f}); "
            f"wall time {results['wall_seconds']:.1f} s"
        )
    return "\n".join(lines)
