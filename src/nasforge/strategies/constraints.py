"""Constraints a strategy checks before proposing: hardware-aware search starts here.

A constraint is any callable ``arch -> bool``. These build the common ones from what a space can
compute without training.
"""

from __future__ import annotations

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


#: the limits ``--constraint NAME<=VALUE`` accepts
BOUND_FORMAT = "NAME<=VALUE, e.g. params<=500000, macs<=2e7, latency_ms/pi5/onnx/cifar100<=5"


def parse_bound(text: str) -> tuple[str, float]:
    """``"latency_ms<=5"`` -> ``("latency_ms", 5.0)``: a one-line ConfigError otherwise."""
    name, sep, value = str(text).partition("<=")
    try:
        limit = float(value)
    except ValueError:
        limit = float("nan")
    if not sep or not name.strip() or not limit > 0:
        raise ConfigError(f"--constraint {text!r} is not accepted; give {BOUND_FORMAT}")
    return name.strip(), limit


class MetricBound:
    """Feasible when ``measure(arch) <= limit``. ``measure`` must be cheap and known before
    training: an analytic count, a network built and counted, a latency-table prediction, or
    a cost a tabular benchmark looks up (its accuracy columns are never read). Values are
    cached per architecture, since strategies redraw and re-check the same ones."""

    def __init__(self, name: str, limit: float, measure: Any, how: str):
        self.name, self.limit, self.measure, self.how = name, float(limit), measure, how
        self.description = f"{name} <= {limit:g} ({how})"
        self._values: dict[Arch, float] = {}

    def value(self, arch: Arch) -> float:
        if arch not in self._values:
            self._values[arch] = float(self.measure(arch))
        return self._values[arch]

    def __call__(self, arch: Arch) -> bool:
        return self.value(arch) <= self.limit


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
    smallest value of it that was seen, so the user knows how far off the budget is.
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
    smallest = {b.name: float("inf") for b in bounds}
    for arch in archs:
        feasible = True
        for bound in bounds:
            value = bound.value(arch)
            smallest[bound.name] = min(smallest[bound.name], value)
            feasible = feasible and value <= bound.limit
        if feasible:
            return
    detail = "; ".join(
        f"{b.description}: the smallest {b.name} among them is {smallest[b.name]:.4g}"
        for b in bounds
    )
    raise ConfigError(f"no architecture meets the constraints among {what}: {detail}")
