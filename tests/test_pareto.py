"""Pareto utilities checked against brute force: dominance by pairwise comparison, ranks by
peeling fronts, hypervolume by a sweep (2-D) and by inclusion-exclusion over boxes (3-D)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.pareto import (
    crowding_distance,
    hypervolume,
    nadir_reference,
    nondominated,
    pareto_ranks,
)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_nondominated(points: np.ndarray) -> np.ndarray:
    return np.array([not any(dominates(q, p) for q in points) for p in points])


def brute_ranks(points: np.ndarray) -> np.ndarray:
    ranks = np.full(len(points), -1)
    left = set(range(len(points)))
    rank = 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def sweep_hv_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated in 2-D: sort by the first objective, add each new step's rectangle."""
    inside = sorted(tuple(p) for p in points if np.all(p < ref))
    area, best_y = 0.0, ref[1]
    for x, y in inside:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def union_volume(points: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the union of the boxes [p, ref] by inclusion-exclusion (few points only)."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = np.max(np.asarray(subset), axis=0)  # intersection of boxes
            total += (-1) ** (k + 1) * float(np.prod(np.clip(ref - corner, 0, None)))
    return total


@pytest.mark.parametrize("seed", range(5))
def test_nondominated_and_ranks_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 6, size=(40, 2 + seed % 2)).astype(float)  # many ties
    assert np.array_equal(nondominated(points), brute_nondominated(points))
    assert np.array_equal(pareto_ranks(points), brute_ranks(points))


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_2d_matches_a_sweep(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.random((30, 2))
    ref = np.array([0.9, 1.1])  # some points lie beyond it and must add nothing
    assert hypervolume(points, ref) == pytest.approx(sweep_hv_2d(points, ref), rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_hypervolume_3d_matches_inclusion_exclusion(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.random((7, 3))
    ref = np.ones(3)
    assert hypervolume(points, ref) == pytest.approx(union_volume(points, ref), rel=1e-12)


def test_hypervolume_edge_cases() -> None:
    assert hypervolume([], [1.0, 1.0]) == 0.0
    assert hypervolume([[2.0, 0.0]], [1.0, 1.0]) == 0.0  # beyond the reference
    assert hypervolume([[0.0, 0.0]], [2.0, 3.0]) == pytest.approx(6.0)
    with pytest.raises(ConfigError, match="reference point has 3 values"):
        hypervolume([[0.0, 0.0]], [1.0, 1.0, 1.0])


def test_crowding_distance_by_its_definition() -> None:
    points = np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0]])
    distance = crowding_distance(points)
    assert np.isinf(distance[0]) and np.isinf(distance[3])
    # middle points: (x_next - x_prev) / x_range + (y_prev - y_next) / y_range
    assert distance[1] == pytest.approx((2 - 0) / 4 + (4 - 1) / 4)
    assert distance[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)


def test_nadir_reference() -> None:
    points = np.array([[0.0, 10.0], [2.0, 4.0]])
    assert nadir_reference(points).tolist() == [2.0, 10.0]
    assert nadir_reference(points, margin=0.5).tolist() == [3.0, 13.0]
    same = np.array([[1.0, 5.0], [1.0, 7.0]])  # no range on the first objective: a unit step
    assert nadir_reference(same, margin=0.1) == pytest.approx([1.1, 7.2])
