"""The figures of the HTML report and the dashboard, built by matplotlib from plain numbers.

One set of builders serves both readers (the report inlines them as SVG and writes them as PNG;
the dashboard serves the SVG), so a run looks the same in both. Text stays text in the SVG
(``svg.fonttype: none``): a browser can search it and a test can read it. Artists a reader
(or a browser test) looks for carry an SVG id (``gid``): ``trial-points``, ``best-line``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: at most this many trials are drawn as points; the best-so-far line always uses all of them
MAX_POINTS = 2000
SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "nasforge"}


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_svg(fig: Any, css_class: str = "figure", close: bool = True) -> str:
    """The figure as inline SVG markup (no XML prolog or DOCTYPE), its root tagged with
    ``css_class`` so pages can size it."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buffer, format="svg")
    if close:
        pyplot().close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib's stylesheet says "*{...}": inlined, that would restyle the whole page
    text = text.replace('<style type="text/css">*{', f'<style type="text/css">svg.{css_class} *{{')
    return text.replace("<svg ", f'<svg class="{css_class}" ', 1)


def render(fig: Any, png: str | Path | None = None, css_class: str = "figure") -> str:
    """Lay out, write ``png`` (120 dpi) when given, and return the SVG; the figure is closed."""
    fig.tight_layout()
    if png is not None:
        fig.savefig(png, dpi=120)
    return to_svg(fig, css_class)


def thin(n: int, limit: int = MAX_POINTS) -> slice:
    """A stride that keeps at most ``limit`` of ``n`` points, evenly spread."""
    return slice(None, None, max(1, -(-n // limit)))


def best_so_far(values: Sequence[float]) -> list[float]:
    """The running maximum: the best objective found after each trial."""
    best, out = float("-inf"), []
    for value in values:
        best = max(best, value)
        out.append(best)
    return out


def improvements(numbers: Sequence[int], best: Sequence[float]) -> tuple[list, list]:
    """The best-so-far curve reduced to the trials where it rose, plus the last trial: the
    same step line, with a handful of points instead of one per trial."""
    xs, ys = [], []
    for i, (n, value) in enumerate(zip(numbers, best, strict=True)):
        if i == 0 or value != best[i - 1] or i == len(best) - 1:
            xs.append(n)
            ys.append(value)
    return xs, ys


def anytime_run_figure(
    numbers: Sequence[int], objectives: Sequence[float], objective_name: str, title: str
) -> Any:
    """Every complete trial's objective (points, thinned to `MAX_POINTS`) and the best so far
    (a step line over all of them) against the trial number."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if numbers:
        keep = thin(len(numbers))
        shown = len(numbers[keep])
        label = "trials" if shown == len(numbers) else f"trials (every {keep.step}th shown)"
        points = ax.scatter(
            numbers[keep], objectives[keep], s=10, color="tab:blue", alpha=0.5, label=label
        )
        points.set_gid("trial-points")
        steps_x, steps_y = improvements(numbers, best_so_far(objectives))
        (line,) = ax.step(steps_x, steps_y, where="post", color="tab:red", label="best so far")
        line.set_gid("best-line")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no complete trial yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("trial")
    ax.set_ylabel(objective_name)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def scatter_figure(
    x: Sequence[float],
    y: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str,
    log_x: bool = False,
    highlight: int | None = None,
) -> Any:
    """The objective against a cost (seconds, parameters, MACs, latency); ``highlight`` marks
    one point (the best trial) in red."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    keep = thin(len(x))
    ax.scatter(list(x)[keep], list(y)[keep], s=10, color="tab:blue", alpha=0.5).set_gid("points")
    if highlight is not None:
        ax.scatter([x[highlight]], [y[highlight]], s=40, color="tab:red", label="best")
        ax.legend(loc="lower right")
    if log_x and len(x) and min(x) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def alpha_figure(history: list[dict[str, Any]], ops: Sequence[str] | None, title: str) -> Any:
    """A one-shot run's architecture weights over the epochs: per operation, its softmax weight
    averaged over the supernet's edges (one line per operation)."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [h["epoch"] for h in history if "alpha" in h]
    alphas = [np.asarray(h["alpha"], dtype=float) for h in history if "alpha" in h]
    if alphas and alphas[0].ndim == 2:
        mean = np.stack([a.mean(axis=0) for a in alphas])  # epochs x ops
        names = list(ops) if ops and len(ops) == mean.shape[1] else None
        for j in range(mean.shape[1]):
            ax.plot(epochs, mean[:, j], marker="o", ms=3, label=names[j] if names else f"op {j}")
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xlabel("supernet epoch")
    ax.set_ylabel("mean softmax(α) over edges")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def rank_check_figure(
    scores: Sequence[float], truths: Sequence[float], label: str, metrics: dict[str, float]
) -> Any:
    """The weight-sharing check: supernet accuracy of sampled cells against the benchmark's."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(truths, scores, s=10, alpha=0.6).set_gid("points")
    ax.set_xlabel(label)
    ax.set_ylabel("supernet accuracy (inherited weights)")
    ax.set_title(
        f"Kendall τ {metrics.get('kendall', float('nan')):.3f}, "
        f"Spearman ρ {metrics.get('spearman', float('nan')):.3f} ({len(scores)} cells)"
    )
    ax.grid(alpha=0.3)
    return fig


def band_figure(
    curves: dict[str, tuple[Sequence[float], Sequence[float]]], ylabel: str, title: str
) -> Any:
    """Mean ± std curves against evaluations, one line and band per group of runs."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = plt.get_cmap("tab10")
    for i, (name, (mean, std)) in enumerate(curves.items()):
        m, s = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        x = np.arange(1, len(m) + 1)
        colour = colours(i % colours.N)
        ax.plot(x, m, "--" if name == "random" else "-", color=colour, label=name)
        ax.fill_between(x, m - s, m + s, color=colour, alpha=0.15)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if curves:
        ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def svg_ids(svg: str) -> set[str]:
    """The ids in an SVG string (tests and the dashboard look up artists by them)."""
    return set(re.findall(r'id="([^"]+)"', svg))


def band_grid_figure(results: dict[str, Any], prefix: str = "anytime") -> Any:
    """One small panel per strategy: its mean ± std band over seeds beside random search's
    (dashed), shared axes. One plot of many strategies cannot show every band legibly."""
    import numpy as np

    plt = pyplot()
    rows = results["strategies"]
    names = [n for n in rows if n != "random"] or list(rows)
    columns = 4
    lines = -(-len(names) // columns)
    fig, axes = plt.subplots(
        lines, columns, figsize=(12, 2.4 * lines), sharex=True, sharey=True, squeeze=False
    )
    baseline = rows.get("random")
    finals = []

    def draw(ax: Any, row: dict[str, Any], colour: str, style: str, label: str) -> None:
        mean = np.asarray(row[f"{prefix}_mean"], dtype=float)
        std = np.asarray(row[f"{prefix}_std"], dtype=float)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, style, color=colour, lw=1.2, label=label)
        ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2)
        finals.extend([*(mean[-1:] - std[-1:]), *(mean[-1:] + std[-1:])])

    for ax, name in zip(axes.flat, names, strict=False):
        if baseline is not None and name != "random":
            draw(ax, baseline, "0.45", "--", "random")
        draw(ax, rows[name], "tab:blue", "-", name)
        ax.set_title(f"{name}: {rows[name]['mean']:.2f} ± {rows[name]['std']:.2f}", fontsize=9)
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    finite = [v for v in finals if np.isfinite(v)]
    if finite:  # the range where the curves end: the early, wide bands would flatten them
        spread = max(finite) - min(finite)
        axes.flat[0].set_ylim(min(finite) - 1.5 * spread, max(finite) + 0.3 * spread)
    metric = results["config"].get("report_metric", "objective")
    for ax in axes[:, 0]:
        ax.set_ylabel(metric)
    for ax in axes[-1, :]:
        ax.set_xlabel("evaluations")
    fig.suptitle("each strategy (solid) against random search (dashed), mean ± std over seeds")
    return fig
