"""The values that flow between the three parts of NAS: candidates, results and trials.

These types sit at the bottom of the import graph: spaces, strategies, estimators, the store and
the experiment all import them, and they import nothing from nasforge but errors.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: An architecture: any immutable, hashable value that its search space can turn into a string
#: (``space.to_string``) and back (``space.from_string``). Each space documents its own type.
Arch = Hashable


@dataclass(frozen=True)
class Candidate:
    """What a strategy proposes: an architecture, optionally at a lower fidelity.

    ``fidelity`` is estimator-specific (epochs of training, a benchmark's epoch column ...);
    ``None`` means the estimator's default, full fidelity.
    """

    arch: Arch
    fidelity: float | None = None


def _frozen(mapping: Mapping[str, float] | None) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Result:
    """What an estimator says about a candidate.

    ``objective`` is maximised by every strategy (negate a loss). ``metrics`` are visible to the
    strategy (params, FLOPs, latency, train time ...). ``report`` holds metrics that must never
    steer the search, such as test accuracy: `for_strategy` drops them, and the experiment only
    ever tells a strategy that stripped copy, so "never select on the test set" holds by
    construction. ``cost`` is seconds spent, real or simulated. ``curve`` is the objective
    after each epoch where the estimator measured it (a learning curve), which early stopping
    of later trials compares against.
    """

    objective: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    report: Mapping[str, float] = field(default_factory=dict)
    cost: float = 0.0
    fidelity: float | None = None
    curve: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.objective, int | float) or math.isnan(self.objective):
            raise ValueError(f"Result.objective must be a number, got {self.objective!r}")
        object.__setattr__(self, "metrics", _frozen(self.metrics))
        object.__setattr__(self, "report", _frozen(self.report))
        object.__setattr__(self, "curve", tuple(float(v) for v in self.curve))

    def __reduce__(self) -> tuple[type[Result], tuple[Any, ...]]:
        # read-only mapping proxies do not pickle; worker processes send results back
        return (
            Result,
            (
                self.objective,
                dict(self.metrics),
                dict(self.report),
                self.cost,
                self.fidelity,
                self.curve,
            ),
        )

    def for_strategy(self) -> Result:
        """The same result without report-only metrics: what a strategy is allowed to see."""
        return Result(self.objective, self.metrics, {}, self.cost, self.fidelity, self.curve)

    def to_json(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "metrics": dict(self.metrics),
            "report": dict(self.report),
            "cost": self.cost,
            "fidelity": self.fidelity,
            **({"curve": list(self.curve)} if self.curve else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(
            objective=float(data["objective"]),
            metrics=data.get("metrics", {}),
            report=data.get("report", {}),
            cost=float(data.get("cost", 0.0)),
            fidelity=data.get("fidelity"),
            curve=tuple(data.get("curve", ())),
        )


@dataclass(frozen=True)
class SearchContext:
    """What a running trial may know of the search so far: the best objective at full fidelity
    and the learning curves (``Result.curve``) of finished trials. Early-stopping rules compare a
    trial's own curve against these; the experiment sends it with each job to estimators whose
    capabilities declare ``uses_context`` (``nasforge.capabilities``)."""

    incumbent: float | None = None
    curves: tuple[tuple[float, ...], ...] = ()
