"""Pareto fronts and hypervolume, shared by the multi-objective strategies, the store's readers
and the benchmark.

Every function here takes points in the **all-minimised** form (`Objectives.minimised`: a
maximised objective negated), so one convention serves any mix of directions. Non-dominated
sorting and hypervolume come from moocore (López-Ibáñez's maintained C library behind the
``eaf``/``mooplot`` tools): its hypervolume is exact in any dimension (WFG-style algorithms
for d > 3), which is what makes fronts of more than two objectives comparable. Crowding distance
(Deb et al., NSGA-II, 2002) is a few lines and is ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import ConfigError


def as_points(points: Any) -> np.ndarray:
    """A 2-D float array of points (one row each); an empty input is a (0, d) array."""
    array = np.asarray(points, dtype=float)
    if array.ndim == 1:
        array = array.reshape(1, -1) if array.size else array.reshape(0, 0)
    if array.ndim != 2:
        raise ConfigError(f"points must be a list of vectors, got shape {array.shape}")
    return array


def nondominated(points: Any) -> np.ndarray:
    """Mask of the points no other point dominates (minimisation). Duplicates of a
    non-dominated point are all kept: each is a different architecture with the same values."""
    array = as_points(points)
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    import moocore

    return np.asarray(moocore.is_nondominated(array, keep_weakly=True), dtype=bool)


def pareto_ranks(points: Any) -> np.ndarray:
    """Non-domination rank of each point: 0 for the front, 1 for the front once it is
    removed, ... (the fast non-dominated sort of NSGA-II, done by moocore)."""
    array = as_points(points)
    if len(array) == 0:
        return np.zeros(0, dtype=int)
    import moocore

    return np.asarray(moocore.pareto_rank(array), dtype=int)


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II's crowding distance of each point within its set: the summed, range-normalised
    side lengths of the cuboid its neighbours span along each objective; the extremes of
    each objective get infinity, so they are always kept."""
    array = as_points(points)
    n, d = array.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(d):
        order = np.argsort(array[:, j], kind="stable")
        values = array[order, j]
        span = values[-1] - values[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def hypervolume(points: Any, reference: Sequence[float]) -> float:
    """Volume of the region the points dominate, bounded by ``reference`` (minimisation).

    Points that do not strictly dominate the reference point add nothing and are dropped
    first; no point left means 0.
    """
    array = as_points(points)
    ref = np.asarray(reference, dtype=float)
    if len(array) and array.shape[1] != ref.size:
        raise ConfigError(
            f"reference point has {ref.size} values, the points have {array.shape[1]}"
        )
    inside = array[np.all(array < ref, axis=1)] if len(array) else array
    if len(inside) == 0:
        return 0.0
    import moocore

    return float(moocore.hypervolume(inside, ref=ref))


def nadir_reference(points: Any, margin: float = 0.0) -> np.ndarray:
    """The worst value of each objective over ``points`` (minimisation), moved out by
    ``margin`` of each objective's range (of 1 where all points agree), so every point of the
    set adds volume: the reference point of a front."""
    array = as_points(points)
    if len(array) == 0:
        raise ConfigError("a reference point needs at least one point")
    worst, best = array.max(axis=0), array.min(axis=0)
    return worst + margin * np.where(worst > best, worst - best, 1.0)
