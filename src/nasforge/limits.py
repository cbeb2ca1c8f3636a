"""``--constraint NAME<=VALUE`` (or ``>=``, a lower bound) -> constraints checked before an
architecture is proposed.

What can be limited is what is known *before* training, so a strategy never spends a trial on
an architecture that breaks the limit:

* ``params``: the trained network's parameters (``space.param_count``, analytic);
* ``macs``: its multiply-accumulates on one input of the training data's shape (the network is
  built and counted once per architecture, `nn.profile.count_macs`);
* ``latency_ms``: its latency predicted by a latency lookup table (``--latency-table FILE``,
  built by ``nasforge latency-table`` on this machine and runtime);
* any cost metric a tabular benchmark looks up, such as the NB201 hardware table's
  ``latency_ms/pi5/onnx/cifar100`` (only that metric of the lookup is read, never an accuracy).

Limits nobody can meet are refused before the first trial (`check_reachable`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from nasforge.capabilities import capabilities_of
from nasforge.core import Arch, Candidate
from nasforge.errors import ConfigError, NasforgeWarning
from nasforge.strategies.constraints import MetricBound, parse_bound

#: names with a meaning of their own; any other name must be a benchmark's looked-up metric
BUILT_IN = ("params", "macs", "latency_ms")


def make_bounds(
    texts: Sequence[str],
    space: Any,
    estimator: Any,
    lookup: bool,
    latency_table: str | None = None,
) -> list[MetricBound]:
    """One `MetricBound` per ``NAME<=VALUE`` or ``NAME>=VALUE``. ``lookup``: the estimator is
    a tabular or surrogate benchmark, whose metrics are known without training."""
    bounds = []
    net = {} if estimator is None else dict(capabilities_of(estimator).build_options)
    for text in texts:
        name, sense, limit = parse_bound(text)
        measure, how = _measure(name, space, estimator, net, lookup, latency_table)
        bounds.append(MetricBound(name, limit, measure, how, sense))
    return bounds


def _measure(
    name: str,
    space: Any,
    estimator: Any,
    net: dict[str, Any],
    lookup: bool,
    latency_table: str | None,
) -> tuple[Any, str]:
    if name == "params" and hasattr(space, "param_count") and not lookup:
        return (lambda arch: space.param_count(arch, **net)), "counted"
    if name == "macs":
        return _macs(space, estimator, net), "built and counted"
    if name == "latency_ms":
        if latency_table is None:
            raise ConfigError(
                "--constraint latency_ms<=... predicts latency from a latency table: give "
                "--latency-table FILE (made by 'nasforge latency-table')"
            )
        return _predicted_latency(space, net, latency_table)
    if lookup:
        probe = estimator.evaluate(Candidate(space.sample(_rng())))
        if name not in probe.metrics:
            raise ConfigError(
                f"--constraint {name}: the {estimator.name} benchmark has no metric {name!r}; "
                f"it has {', '.join(sorted(probe.metrics))}, and {', '.join(BUILT_IN)} "
                "are always accepted"
            )
        return (lambda arch: _looked_up(estimator, arch, name)), f"looked up in {estimator.name}"
    raise ConfigError(
        f"--constraint {name}: only {', '.join(BUILT_IN)} are known before training; "
        "a metric measured by training cannot keep an architecture from being trained"
    )


def _predicted_latency(space: Any, net: dict[str, Any], path: str) -> tuple[Any, str]:
    """``latency_ms`` predicted by the table at ``path``. A table covering part of the space
    (a mobile table built for some widths) keeps the search to that part: the latency of the
    rest is unknown, so it counts as over the limit, and a warning says so once."""
    from nasforge.oneshot.latency_model import load_table

    table = load_table(path)
    settings = {k: v for k, v in net.items() if k in ("input_size", "num_classes", "in_channels")}
    rng = _rng()
    probe = space.sample(rng)
    for _ in range(200):
        if table.covers(probe):
            break
        probe = space.sample(rng)
    table.predict(probe, **settings)  # another space's or network's table: refused now
    how = f"predicted by {path}"
    part = table.ops.part()
    if part is not None:
        how += f", which covers {part} only"
        warnings.warn(
            f"the latency table {path} covers {part} of the {table.ops.space} space only: the "
            f"search keeps to {part}, since it cannot predict the latency of the rest (a table "
            "built with 'nasforge latency-table --width all' covers every width)",
            NasforgeWarning,
            stacklevel=2,
        )

    def predicted(arch: Arch) -> float:
        return table.predict(arch, **settings) if table.covers(arch) else math.inf

    return predicted, how


def _looked_up(estimator: Any, arch: Arch, name: str) -> float:
    return float(estimator.evaluate(Candidate(arch)).metrics[name])


def _macs(space: Any, estimator: Any, net: dict[str, Any]) -> Any:
    from nasforge.nn.profile import count_macs

    data = getattr(estimator, "dataset", None)
    if data is None:
        raise ConfigError(
            "--constraint macs<=... counts the trained network on its data's image size: use "
            "it with --estimator train"
        )
    side = getattr(estimator, "resolution", None) or data.size
    shape = (data.channels, side, side)
    return lambda arch: count_macs(space.build(arch, **net), shape)


def _rng() -> Any:
    import numpy as np

    return np.random.default_rng(0)
