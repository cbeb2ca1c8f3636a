"""Constraints a strategy checks before proposing: hardware-aware search starts here.

A constraint is any callable ``arch -> bool``. These build the common ones from what a space can
compute without training.
"""

from __future__ import annotations

import math
from typing import Any

from nasforge.core import Arch
from nasforge.errors import ConfigError


class MaxParams:
    """Feasible when the network ``space.build(arch, **net)`` has at most ``limit`` parameters.

    Uses ``space.param_count`` (analytic, microseconds) so no network is built.
    """

    def __init__(self, space: Any, limit: float, **net: Any):
        if not hasattr(space, "param_count"):
            raise ConfigError(f"space {space.name!r} cannot count parameters without training")
        if limit <= 0:
            raise ConfigError(f"parameter limit must be > 0, got {limit}")
        self.space, self.limit, self.net = space, limit, net
        self.description = f"params <= {limit:,.0f}"

    def __call__(self, arch: Arch) -> bool:
        return self.space.param_count(arch, **self.net) <= self.limit


#: the limits ``--constraint`` accepts
BOUND_FORMAT = (
    "NAME<=VALUE or NAME>=VALUE with VALUE > 0, e.g. params<=500000, macs<=2e7, "
    "latency_ms/pi5/onnx/cifar100<=5, latency_ms>=3"
)
#: the comparisons a bound may use: at most (an upper limit) or at least (a lower one)
SENSES = ("<=", ">=")


def parse_bound(text: str) -> tuple[str, str, float]:
    """``"latency_ms<=5"`` -> ``("latency_ms", "<=", 5.0)``; ``">="`` gives a lower bound.
    Anything else is a one-line ConfigError."""
    text = str(text)
    sense = next((s for s in SENSES if s in text), "")
    name, sep, value = text.partition(sense) if sense else (text, "", "")
    try:
        limit = float(value)
    except ValueError:
        limit = float("nan")
    if not sep or not name.strip() or not limit > 0 or math.isinf(limit):
        raise ConfigError(f"--constraint {text!r} is not accepted; give {BOUND_FORMAT}")
    return name.strip(), sense, limit


class MetricBound:
    """Feasible when ``measure(arch) <= limit`` (``sense="<="``, the default) or ``>= limit``.
    ``measure`` must be cheap and known before training: an analytic count, a network built
    and counted, a latency-table prediction, or a cost a tabular benchmark looks up (its
    accuracy columns are never read). Values are cached per architecture, since strategies
    redraw and re-check the same ones.

    A lower bound with an upper one makes a band that keeps a search near its budget, as SPOS
    (Guo et al., ECCV 2020) samples within a FLOPs range; whether that beats searching all
    of the space under the budget depends on the task (the README's latency-budget rounds
    found a winner at 82 % of its budget). An infinite value means "cannot be measured" (a
    latency table that does not cover the architecture) and meets no bound, lower or upper.
    """

    def __init__(self, name: str, limit: float, measure: Any, how: str, sense: str = "<="):
        if sense not in SENSES:
            raise ValueError(f"sense must be one of {SENSES}, got {sense!r}")
        self.name, self.limit, self.measure, self.how = name, float(limit), measure, how
        self.sense = sense
        self.description = f"{name} {sense} {limit:g} ({how})"
        self._values: dict[Arch, float] = {}

    def value(self, arch: Arch) -> float:
        if arch not in self._values:
            self._values[arch] = float(self.measure(arch))
        return self._values[arch]

    def met_by(self, value: float) -> bool:
        if self.sense == "<=":
            return value <= self.limit
        return value >= self.limit and not math.isinf(value)

    def __call__(self, arch: Arch) -> bool:
        return self.met_by(self.value(arch))


class AllOf:
    """Feasible when every constraint is (a strategy takes one ``constraint``)."""

    def __init__(self, constraints: Any):
        self.constraints = tuple(constraints)
        self.description = " and ".join(
            getattr(c, "description", repr(c)) for c in self.constraints
        )

    def __call__(self, arch: Arch) -> bool:
        return all(constraint(arch) for constraint in self.constraints)


def check_reachable(space: Any, bounds: Any, samples: int = 2000, seed: int = 0) -> None:
    """Refuse, before any trial, limits that no architecture meets.

    A space of at most a million architectures is searched exhaustively for one that meets
    every bound; a larger one by ``samples`` uniform draws. The error names each bound and the
    value of it nearest to feasible that was seen (the smallest for an upper limit, the largest
    for a lower one), so the user knows how far off the budget is.
    """
    import numpy as np

    bounds = list(bounds)
    if not bounds:
        return
    try:
        exhaustive = int(space.size()) <= 1_000_000
    except (AttributeError, NotImplementedError, TypeError, OverflowError):
        exhaustive = False
    if exhaustive:
        archs: Any = space.enumerate()
        what = f"all {int(space.size()):,} architectures"
    else:
        rng = np.random.default_rng(seed)
        archs = (space.sample(rng) for _ in range(samples))
        what = f"{samples:,} sampled architectures"
    nearest = [_farthest_from(bound) for bound in bounds]
    for arch in archs:
        feasible = True
        for i, bound in enumerate(bounds):
            value = bound.value(arch)
            nearest[i] = _nearer(bound, nearest[i], value)
            feasible = feasible and bound.met_by(value)
        if feasible:
            return
    detail = "; ".join(
        f"{b.description}: the {'smallest' if b.sense == '<=' else 'largest'} {b.name} among "
        f"them is {value:.4g}"
        for b, value in zip(bounds, nearest, strict=True)
    )
    if all(b.met_by(value) for b, value in zip(bounds, nearest, strict=True)):
        detail += " (each limit alone is met, but no architecture meets them together)"
    raise ConfigError(f"no architecture meets the constraints among {what}: {detail}")


def _farthest_from(bound: MetricBound) -> float:
    return math.inf if bound.sense == "<=" else -math.inf


def _nearer(bound: MetricBound, seen: float, value: float) -> float:
    """The one of ``seen`` and ``value`` nearer to meeting ``bound`` (infinite values, which
    no bound accepts, count only while nothing finite was seen)."""
    if math.isinf(value):
        return seen
    return min(seen, value) if bound.sense == "<=" else max(seen, value)
