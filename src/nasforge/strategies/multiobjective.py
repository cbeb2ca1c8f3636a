"""Shared plumbing of the multi-objective strategies (NSGA-II, Pareto evolution, ParEGO).

A multi-objective strategy is built with ``objectives=`` (an `Objectives`, or their text
``"val_acc:max,latency_ms/pi5/onnx/cifar100:min"``) and reads each told result's vector with
it; everything Pareto (ranks, crowding, hypervolume) is `nasforge.pareto`, not per-strategy
code. Built without objectives, it optimises the estimator's objective alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.core import Arch, Candidate, Result
from nasforge.objectives import Objective, Objectives
from nasforge.pareto import crowding_distance, pareto_ranks
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy


def objectives_or_default(objectives: Any) -> Objectives:
    """``objectives`` as an `Objectives`; None means the estimator's objective, maximised."""
    if objectives is None:
        return Objectives((Objective("objective", "max"),))
    return Objectives.of(objectives)


def crowded_order(points: np.ndarray) -> np.ndarray:
    """Indices of ``points`` (all-minimised vectors), best first by NSGA-II's crowded
    comparison: lower non-domination rank first, then larger crowding distance within the
    front; ties keep the given order (older first)."""
    ranks = pareto_ranks(points)
    crowding = np.zeros(len(points))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(points[members])
    return np.lexsort((np.arange(len(points)), -crowding, ranks))


class MultiObjectiveStrategy(SeededStrategy):
    """A `SeededStrategy` that keeps each told architecture with its objective vector
    (all-minimised, `Objectives.minimised`) in ``self.archs`` / ``self.points``."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        objectives: Any = None,
    ):
        super().__init__(space, seed, constraint)
        self.objectives = objectives_or_default(objectives)
        self.archs: list[Arch] = []
        self.points: list[tuple[float, ...]] = []

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.archs.append(candidate.arch)
        self.points.append(self.objectives.minimised(result))
