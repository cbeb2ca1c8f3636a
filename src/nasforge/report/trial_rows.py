"""A trial as a table row: the columns the report's table and the dashboard's table share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nasforge.store.records import StoredTrial

#: metrics worth a column when a run has them, in this order (the rest stay in the store)
PREFERRED_METRICS = (
    "params",
    "macs",
    "flops",
    "latency_ms",
    "energy_mj",
    "train_seconds",
    "epochs",
)
FIXED_COLUMNS = ("trial", "state", "objective", "fidelity", "seconds")
MAX_METRIC_COLUMNS = 6


def metric_columns(trials: Iterable[StoredTrial]) -> list[str]:
    """The metric and report-metric columns for these trials: test metrics and preferred
    ones first, then others by how many trials carry them, at most `MAX_METRIC_COLUMNS`;
    a metric with one value over all the trials is left out."""
    seen: dict[str, int] = {}
    values: dict[str, set[float]] = {}
    for trial in trials:
        if trial.result is None:
            continue
        for name, value in (*trial.result.metrics.items(), *trial.result.report.items()):
            seen[name] = seen.get(name, 0) + 1
            values.setdefault(name, set()).add(value)
    # a metric every trial shares (epochs, resolution of a fixed recipe) tells nothing
    seen = {n: c for n, c in seen.items() if len(values[n]) > 1 or c < 2}
    report_first = sorted((n for n in seen if n.startswith("test")), key=lambda n: (-seen[n], n))
    preferred = [n for n in seen if any(n == p or n.startswith(p + "/") for p in PREFERRED_METRICS)]
    rest = sorted(
        (n for n in seen if n not in preferred and n not in report_first),
        key=lambda n: (-seen[n], n),
    )
    return [*report_first, *preferred, *rest][:MAX_METRIC_COLUMNS]


def columns(metrics: list[str]) -> list[str]:
    return [*FIXED_COLUMNS, *metrics, "architecture", "error"]


def trial_row(trial: StoredTrial, metrics: list[str]) -> dict[str, Any]:
    """``{"state": ..., "cells": [{"text", "value", "kind"}, ...]}`` in `columns` order;
    ``value`` is the sortable number (``None`` for text), ``text`` what a person reads."""
    result = trial.result
    values = {} if result is None else {**result.metrics, **result.report}
    cells = [
        _number(trial.number, "{:d}"),
        _text(trial.state),
        _number(None if result is None else result.objective, "{:.4g}"),
        _number(trial.fidelity, "{:g}"),
        _number(trial.seconds, "{:.1f}"),
        *(_number(values.get(name), "{:.4g}") for name in metrics),
        _text(trial.arch, "arch"),
        _text(trial.error or ""),
    ]
    return {"trial": trial.number, "state": trial.state, "cells": cells}


def _number(value: float | int | None, fmt: str) -> dict[str, Any]:
    if value is None:
        return {"text": "", "value": None, "kind": "num"}
    try:
        text = fmt.format(value)
    except (ValueError, TypeError):
        text = f"{value}"
    return {"text": text, "value": value, "kind": "num"}


def _text(value: str, kind: str = "") -> dict[str, Any]:
    return {"text": value, "value": None, "kind": kind}
