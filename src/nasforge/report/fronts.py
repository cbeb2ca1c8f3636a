"""Pareto-front figures: a benchmark's median fronts over the true front, one run's front over
its trials, and the hypervolume-fraction curves of a multi-objective comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasforge.report.plots import save_figure


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _staircase(ax: Any, points: list[list[float]], directions: list[str], **style: Any) -> None:
    """A 2-D front as the step line a person reads it by (sorted along the first axis)."""
    import numpy as np

    if not points:
        return
    front = np.asarray(points, dtype=float)
    front = front[np.argsort(front[:, 0] * (1 if directions[0] == "min" else -1))]
    ax.step(front[:, 0], front[:, 1], where="post", **style)


def plot_benchmark_fronts(results: dict[str, Any], path: str | Path) -> Path:
    """Each strategy's median run (by hypervolume) front over the true front (two
    objectives), beside the mean hypervolume fraction against evaluations."""
    return save_figure(benchmark_fronts_figure(results), path)


def benchmark_fronts_figure(results: dict[str, Any]) -> Any:
    """The figure of `plot_benchmark_fronts`."""
    import numpy as np

    plt = _pyplot()
    pareto = results["pareto"]
    names = [o["name"] for o in pareto["objectives"]]
    directions = [o["direction"] for o in pareto["objectives"]]
    fig, (front_ax, curve_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = plt.get_cmap("tab10")
    if "true_front" in pareto:
        true = np.asarray(pareto["true_front"])
        _staircase(front_ax, true.tolist(), directions, color="black", lw=1.5, label="true front")
        front_ax.scatter(true[:, 0], true[:, 1], s=12, color="black")
    for i, (name, row) in enumerate(results["strategies"].items()):
        colour = colours(i % colours.N)
        front = np.asarray(row["median_front"])
        fraction = row.get("hypervolume_fraction")
        label = f"{name} (seed {row['median_seed']})"
        if front.size:
            _staircase(front_ax, front.tolist(), directions, color=colour, lw=1, alpha=0.8)
            front_ax.scatter(front[:, 0], front[:, 1], s=14, color=colour, label=label)
        if "hv_anytime_mean" in row:
            mean = np.asarray(row["hv_anytime_mean"])
            std = np.asarray(row["hv_anytime_std"])
            x = np.arange(1, len(mean) + 1)
            style = "--" if name == "random" else "-"
            curve_ax.plot(x, mean, style, color=colour, label=f"{name} ({fraction:.4f})")
            curve_ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.12)
    front_ax.set_xlabel(f"{names[0]} ({directions[0]})")
    front_ax.set_ylabel(f"{names[1]} ({directions[1]})" if len(names) > 1 else "")
    front_ax.set_title("median run's front of each strategy (by hypervolume)")
    front_ax.legend(fontsize="small")
    front_ax.grid(alpha=0.3)
    cfg = results["config"]
    curve_ax.set_xlabel("evaluations")
    curve_ax.set_ylabel("hypervolume / true front's")
    curve_ax.set_title(f"{cfg['space']} / {cfg['dataset']}: {cfg['seeds']} seeds, mean ± std")
    curve_ax.set_ylim(0.8, 1.005)
    curve_ax.legend(loc="lower right", fontsize="small")
    curve_ax.grid(alpha=0.3)
    return fig


def plot_run_front(
    points: list[list[float]],
    front: list[list[float]],
    objectives: list[dict[str, str]],
    title: str,
    path: str | Path,
) -> Path:
    """One run: every trial's values (grey) and its Pareto front (two objectives)."""
    return save_figure(run_front_figure(points, front, objectives, title), path)


def run_front_figure(
    points: list[list[float]],
    front: list[list[float]],
    objectives: list[dict[str, str]],
    title: str,
) -> Any:
    """The figure of `plot_run_front`."""
    import numpy as np

    plt = _pyplot()
    names = [o["name"] for o in objectives]
    directions = [o["direction"] for o in objectives]
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    every = np.asarray(points, dtype=float)
    if every.size:
        ax.scatter(every[:, 0], every[:, 1], s=10, color="0.6", label="trials")
    _staircase(ax, front, directions, color="tab:red", lw=1.5)
    found = np.asarray(front, dtype=float)
    if found.size:
        ax.scatter(found[:, 0], found[:, 1], s=18, color="tab:red", label="Pareto front")
    ax.set_xlabel(f"{names[0]} ({directions[0]})")
    ax.set_ylabel(f"{names[1]} ({directions[1]})")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig
