"""Plots a person would rather look at than read: anytime curves of a comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_anytime(results: dict[str, Any], path: str | Path) -> Path:
    """Mean ± std of the incumbent's report metric against evaluations, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cfg = results["config"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in results["strategies"].items():
        mean = np.asarray(row["anytime_mean"], dtype=float)
        std = np.asarray(row["anytime_std"], dtype=float)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=f"{name} ({row['mean']:.2f} ± {row['std']:.2f})")
        ax.fill_between(x, mean - std, mean + std, alpha=0.15)
    if results.get("optimum"):
        ax.axhline(
            results["optimum"][cfg["report_metric"]],
            color="grey",
            ls="--",
            lw=1,
            label="optimum of the objective",
        )
    finals = [v for row in results["strategies"].values() for v in row["anytime_mean"][-1:]]
    if finals:
        ax.set_ylim(min(finals) - 2.5, max(finals) + 1.0)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"{cfg['report_metric']} of best-by-objective arch")
    ax.set_title(f"{cfg['space']} / {cfg['dataset']}: {cfg['seeds']} seeds, mean ± std")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
