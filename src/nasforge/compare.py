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
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import factory
from nasforge.experiment import Budget, Experiment
from nasforge.report.progress import Progress


@dataclass(frozen=True)
class ComparisonSetup:
    """What every strategy shares. ``budget`` counts evaluations, ``budget_seconds`` simulated
    training seconds (the benchmark's cost); give either or both. ``report_metric`` defaults to
    the estimator's own (``report_metric`` attribute, else ``test_acc``)."""

    space: str
    dataset: str
    budget: int | None
    data_dir: str | None = None
    report_metric: str | None = None
    budget_seconds: float | None = None
    #: a user's CSV table instead of the space's own benchmark: ``TabularBenchmark.from_csv``
    #: keywords as sorted (name, value) pairs, so the setup stays hashable
    table: tuple[tuple[str, Any], ...] | None = None
    #: strategy options by strategy name, as (name, sorted (key, value) pairs) pairs
    options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    #: ``--objectives`` (``name:max|min``, comma-separated); None: the estimator's objective
    objectives: str | None = None

    @property
    def multi_objective(self) -> bool:
        from nasforge.objectives import parse_objectives

        return len(parse_objectives(self.objectives)) > 1

    def options_for(self, strategy: str) -> dict[str, Any]:
        """The options given for ``strategy`` (``--option STRATEGY:KEY=VALUE``), else none."""
        return dict(dict(self.options).get(strategy, ()))

    def budget_object(self) -> Budget:
        return Budget(evaluations=self.budget, seconds=self.budget_seconds)

    def metric(self, estimator: Any) -> str:
        return self.report_metric or estimator.capabilities.report_metric


#: points of the anytime-vs-simulated-time grid (log-spaced)
TIME_POINTS = 60


@lru_cache(maxsize=4)
def space_and_estimator(setup: ComparisonSetup) -> tuple[Any, Any]:
    """One space and one (table-backed) estimator per process, shared by all its runs."""
    from nasforge.config import hardware_implied

    space = factory.make_space(setup.space)
    table = None if setup.table is None else dict(setup.table)
    hardware = ",".join(hardware_implied(setup.objectives)) or None
    estimator = factory.make_estimator(
        "benchmark", space, setup.dataset, setup.data_dir, table=table, hardware=hardware
    )
    return space, estimator


def run_one(setup: ComparisonSetup, strategy_name: str, seed: int) -> dict[str, Any]:
    """One seeded search; returns the final report metric and the anytime curve, both per
    evaluation and per simulated second (cumulative cost of the finished trials)."""
    space, estimator = space_and_estimator(setup)
    strategy = factory.make_strategy(
        strategy_name,
        space,
        seed,
        setup.options_for(strategy_name),
        estimator=estimator,
        objectives=setup.objectives,
    )
    experiment = Experiment(space, strategy, estimator, setup.budget_object(), progress=False)
    started = time.perf_counter()
    history = experiment.run()
    seconds = time.perf_counter() - started
    curve = history.anytime(setup.metric(estimator))
    key = f"best_{setup.metric(estimator)}"
    run = {
        "strategy": strategy_name,
        "seed": seed,
        "final": curve[-1][key],
        "best_arch": curve[-1]["best_arch"],
        "curve": [point[key] for point in curve],
        "cost": [point["cost"] for point in curve],
        "seconds": seconds,
        "ask_ms": 1000 * experiment.ask_seconds / max(1, len(history.trials)),
    }
    if setup.multi_objective:
        from nasforge.multiobjective_benchmark import front_record

        run.update(front_record(setup, history, estimator))
    return run


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
    space, estimator = space_and_estimator(setup)
    for name in names:  # fail fast on bad names and options, before any process starts
        factory.make_strategy(
            name, space, 0, setup.options_for(name), estimator, objectives=setup.objectives
        )
    if setup.multi_objective:  # the true front, once, before the runs (they read it cached)
        from nasforge.multiobjective_benchmark import true_front

        true_front(setup)
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
    grid = _time_grid(runs)
    summary = {name: _summarise([r for r in runs if r["strategy"] == name], grid) for name in names}
    optimum = estimator.optimum() if hasattr(estimator, "optimum") else None
    fronts: dict[str, Any] = {}
    if setup.multi_objective:
        from nasforge.multiobjective_benchmark import summarise_fronts

        fronts = summarise_fronts(setup, runs, names)
        for name in names:
            summary[name].update(fronts["strategies"][name])
    return {
        "config": {
            "space": setup.space,
            "dataset": None if setup.table else setup.dataset,
            "table": None if setup.table is None else dict(setup.table),
            "estimator": estimator.name,
            "objective": estimator.objective_name,
            "report_metric": setup.metric(estimator),
            "budget_evaluations": setup.budget,
            "budget_seconds": setup.budget_seconds,
            "seeds": seeds,
            "strategies": names,
            "options": {name: setup.options_for(name) for name in names if setup.options_for(name)},
            "objectives": setup.objectives,
            "workers": workers,
            "command": " ".join(sys.argv),
        },
        "versions": _versions(),
        "optimum": None
        if optimum is None
        else {"objective": optimum[0], setup.metric(estimator): optimum[1]},
        "wall_seconds": time.perf_counter() - started,
        "time_grid": grid.tolist(),
        "strategies": summary,
        **({"pareto": fronts["pareto"]} if fronts else {}),
    }


def strategy_options(
    pairs: list[str], strategies: list[str]
) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """``["proxy-evolution:proxy=meco", ...]`` -> `ComparisonSetup.options`; each option names
    the compared strategy it is for (one-line ConfigError otherwise)."""
    from nasforge.config import parse_options
    from nasforge.errors import ConfigError

    by_strategy: dict[str, list[str]] = {}
    for pair in pairs:
        name, colon, option = pair.partition(":")
        if not colon or "=" not in option or name not in strategies:
            raise ConfigError(
                f"--option {pair!r}: expected STRATEGY:KEY=VALUE with STRATEGY one of the "
                f"compared strategies ({', '.join(strategies)})"
            )
        by_strategy.setdefault(name, []).append(option)
    parsed = {name: parse_options(options) for name, options in by_strategy.items()}
    for name, values in parsed.items():
        for key, value in values.items():
            if isinstance(value, list | dict):  # the setup is a cache key: values must hash
                raise ConfigError(
                    f"--option {name}:{key}: a value is a number, a word or true/false, "
                    f"not {json.dumps(value)}"
                )
    return tuple((name, tuple(sorted(parsed[name].items()))) for name in sorted(parsed))


def _time_grid(runs: list[dict[str, Any]]) -> np.ndarray:
    """Log-spaced simulated seconds from the cheapest first trial to the longest run; empty when
    the estimator reports no cost."""
    starts = [r["cost"][0] for r in runs if r["cost"] and r["cost"][0] > 0]
    ends = [r["cost"][-1] for r in runs if r["cost"]]
    if not starts or not ends or max(ends) <= 0:
        return np.zeros(0)
    return np.geomspace(min(starts), max(ends), TIME_POINTS)


def pad_curves(curves: list[list[float]]) -> np.ndarray:
    """Runs stopped by a time budget have different lengths; after its last trial a run keeps
    its incumbent, so each curve is extended with its last value."""
    longest = max(len(c) for c in curves)
    return np.array(
        [list(c) + [c[-1] if c else np.nan] * (longest - len(c)) for c in curves], dtype=float
    )


def _on_time_grid(run: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """The incumbent's report metric at each grid time: a step function of cumulative cost
    (NaN before the first trial finished)."""
    cost = np.asarray(run["cost"], dtype=float)
    values = np.asarray(run["curve"], dtype=float)
    index = np.searchsorted(cost, grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def _summarise(runs: list[dict[str, Any]], grid: np.ndarray) -> dict[str, Any]:
    finals = np.array([r["final"] for r in runs], dtype=float)
    curves = pad_curves([r["curve"] for r in runs])
    timed = np.array([_on_time_grid(r, grid) for r in runs]) if len(grid) else np.zeros((0, 0))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before any result
        time_mean = np.nanmean(timed, axis=0) if timed.size else np.zeros(0)
        time_std = np.nanstd(timed, axis=0) if timed.size else np.zeros(0)
    return {
        "mean": float(finals.mean()),
        "std": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
        "min": float(finals.min()),
        "max": float(finals.max()),
        "runs": len(runs),
        "finals": finals.tolist(),
        "anytime_mean": np.nanmean(curves, axis=0).tolist(),
        "anytime_std": np.nanstd(curves, axis=0).tolist(),
        "time_mean": time_mean.tolist(),
        "time_std": time_std.tolist(),
        "evaluations_mean": float(np.mean([len(r["curve"]) for r in runs])),
        "simulated_seconds_mean": float(np.mean([r["cost"][-1] if r["cost"] else 0 for r in runs])),
        "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
        "ask_ms": float(np.mean([r["ask_ms"] for r in runs])),
    }


def write_outputs(results: dict[str, Any], out: Path) -> list[Path]:
    """``out`` (JSON: everything, including configuration and versions), and beside it the
    Markdown table (``.md``), the anytime curves against evaluations (``.csv``, ``.png``) and,
    when the estimator reports a cost, against simulated seconds (``_time.csv``, ``_time.png``)."""
    from nasforge.report.plots import plot_anytime, plot_anytime_time

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    table = out.with_suffix(".md")
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    table.write_text(f"{format_table(results)}\n\nsoftware: {versions}\n")
    metric = results["config"]["report_metric"]
    rows = results["strategies"].items()
    curves = out.with_suffix(".csv")
    _write_curves(
        curves,
        ["strategy", "evaluations", f"mean_{metric}", f"std_{metric}"],
        ((name, i + 1, m, s) for name, row in rows for i, (m, s) in _pairs(row, "anytime")),
    )
    written = [out, table, curves, plot_anytime(results, out.with_suffix(".png"))]
    if results.get("pareto") and len(results["pareto"]["objectives"]) == 2:
        from nasforge.report.fronts import plot_benchmark_fronts

        written.append(plot_benchmark_fronts(results, out.with_name(f"{out.stem}_fronts.png")))
    grid = results.get("time_grid") or []
    if grid:
        timed = out.with_name(f"{out.stem}_time.csv")
        _write_curves(
            timed,
            ["strategy", "simulated_seconds", f"mean_{metric}", f"std_{metric}"],
            (
                (name, f"{grid[i]:.1f}", m, s)
                for name, row in rows
                for i, (m, s) in _pairs(row, "time")
            ),
        )
        written += [timed, plot_anytime_time(results, out.with_name(f"{out.stem}_time.png"))]
    return written


def _pairs(row: dict[str, Any], prefix: str) -> Any:
    return enumerate(zip(row[f"{prefix}_mean"], row[f"{prefix}_std"], strict=True))


def _write_curves(path: Path, header: list[str], rows: Any) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for *keys, mean, std in rows:
            writer.writerow([*keys, f"{mean:.4f}", f"{std:.4f}"])


def describe_budget(cfg: dict[str, Any]) -> str:
    parts = []
    if cfg.get("budget_evaluations"):
        parts.append(f"{cfg['budget_evaluations']} evaluations")
    if cfg.get("budget_seconds"):
        parts.append(f"{cfg['budget_seconds']:g} simulated seconds")
    return " or ".join(parts)


def format_table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per strategy; evaluations and simulated training time per run
    are shown because multi-fidelity strategies spend a time budget on more, cheaper trials."""
    cfg = results["config"]
    metric = cfg["report_metric"]
    timed = bool(results.get("time_grid"))
    data = f"table {cfg['table']['path']}" if cfg.get("table") else cfg["dataset"]
    lines = [
        f"{cfg['space']} / {data}: objective {cfg['objective']}, reported {metric} of "
        f"the best-by-objective arch, budget {describe_budget(cfg)}, {cfg['seeds']} seeds",
        "",
        f"| strategy | mean {metric} | std | min | max | evaluations | "
        + ("simulated hours | " if timed else "")
        + "ms per ask |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if timed else "") + "---:|",
    ]
    for name, row in results["strategies"].items():
        hours = f" {row['simulated_seconds_mean'] / 3600:.1f} |" if timed else ""
        lines.append(
            f"| {name} | {row['mean']:.2f} | {row['std']:.2f} | {row['min']:.2f} | "
            f"{row['max']:.2f} | {row['evaluations_mean']:.0f} |{hours} {row['ask_ms']:.3f} |"
        )
    if results.get("pareto"):
        lines += ["", *format_fronts(results)]
    if results.get("optimum"):
        lines.append("")
        lines.append(
            f"optimum of the objective: {results['optimum']['objective']:.2f} "
            f"({metric} {results['optimum'][metric]:.2f})"
        )
    lines.append("")
    lines.append(f"wall time {results['wall_seconds']:.1f} s")
    return "\n".join(lines)


def format_fronts(results: dict[str, Any]) -> list[str]:
    """The multi-objective table: hypervolume of each run's front as a fraction of the true
    front's (mean ± std, min, max over seeds), with the reference point stated."""
    pareto = results["pareto"]
    names = ", ".join(f"{o['name']} ({o['direction']})" for o in pareto["objectives"])
    reference = ", ".join(f"{v:.4g}" for v in pareto["reference_point"])
    lines = [
        f"objectives {names}; hypervolume reference point ({reference}): "
        f"{pareto['reference_rule']}",
        "",
    ]
    if "true_front" not in pareto:
        lines += ["| strategy | mean hypervolume |", "|---|---:|"]
        for name, row in results["strategies"].items():
            lines.append(f"| {name} | {row['hypervolume_mean']:.4g} |")
        return lines
    lines += [
        f"true front: {len(pareto['true_front'])} points of {pareto['architectures']:,} "
        "architectures",
        "",
        "| strategy | hypervolume fraction | std | min | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results["strategies"].items():
        lines.append(
            f"| {name} | {row['hypervolume_fraction']:.4f} | "
            f"{row['hypervolume_fraction_std']:.4f} | {row['hypervolume_fraction_min']:.4f} | "
            f"{row['hypervolume_fraction_max']:.4f} |"
        )
    return lines
