"""Plots a person would rather look at than read: anytime curves of a comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_anytime(results: dict[str, Any], path: str | Path) -> Path:
    """Mean ± std of the incumbent's report metric against evaluations, one line per strategy."""
    return _plot(results, path, "anytime", "evaluations")


def plot_anytime_time(results: dict[str, Any], path: str | Path) -> Path:
    """The same curves against simulated training seconds (the benchmark's cost), the axis on
    which multi-fidelity strategies, which spend a budget on many cheap trials, compare fairly."""
    return _plot(results, path, "time", "simulated training seconds")


def _plot(results: dict[str, Any], path: str | Path, prefix: str, xlabel: str) -> Path:
    return save_figure(anytime_figure(results, prefix, xlabel), path)


def anytime_figure(results: dict[str, Any], prefix: str = "anytime", xlabel: str = "evaluations"):
    """The figure behind `plot_anytime` (``prefix`` ``time``: `plot_anytime_time`), for callers
    that write it in another format (the HTML report inlines it as SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cfg = results["config"]
    rows = results["strategies"]
    many = len(rows) > 4  # bands of many strategies hide each other: draw them for few only
    colours = plt.get_cmap("tab20" if len(rows) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(9 if many else 7, 4.5))
    finals = []
    for i, (name, row) in enumerate(rows.items()):
        mean = np.asarray(row[f"{prefix}_mean"], dtype=float)
        std = np.asarray(row[f"{prefix}_std"], dtype=float)
        if prefix == "time":
            x = np.asarray(results["time_grid"], dtype=float)
        else:
            x = np.arange(1, len(mean) + 1)
        colour = colours(i % colours.N)
        style = "--" if name == "random" else "-"
        ax.plot(
            x, mean, style, color=colour, label=f"{name} ({row['mean']:.2f} ± {row['std']:.2f})"
        )
        if not many:
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15)
        finals.extend(mean[-1:])
    if results.get("optimum"):
        ax.axhline(
            results["optimum"][cfg["report_metric"]],
            color="grey",
            ls="--",
            lw=1,
            label="optimum of the objective",
        )
    finals = [v for v in finals if np.isfinite(v)]
    if finals:
        ax.set_ylim(min(finals) - 2.5, max(finals) + 1.0)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{cfg['report_metric']} of best-by-objective arch")
    shown = "mean" if many else "mean ± std"
    data = f"table {Path(cfg['table']['path']).name}" if cfg.get("table") else cfg["dataset"]
    ax.set_title(f"{cfg['space']} / {data}: {cfg['seeds']} seeds, {shown}")
    if many:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    else:
        ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def save_figure(fig: Any, path: str | Path) -> Path:
    """Lay out, write (PNG, 120 dpi) and close a figure: every nasforge plot ends so."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
