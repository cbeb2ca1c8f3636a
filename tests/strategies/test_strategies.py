"""Strategies: seeded determinism, no duplicate proposals, and the evolution mechanics."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.random import RandomSearch

SPACE = NB201Space()


def score(arch) -> float:
    """A deterministic synthetic objective: number of 3x3 convolutions, plus a tie-breaker."""
    ops = SPACE.to_string(arch)
    return ops.count("nor_conv_3x3") + 0.01 * ops.count("skip_connect")


def drive(strategy, n: int) -> list[str]:
    asked = []
    for _ in range(n):
        candidate = strategy.ask()
        asked.append(SPACE.to_string(candidate.arch))
        strategy.tell(candidate, Result(objective=score(candidate.arch)))
    return asked


@pytest.mark.parametrize("make", [RandomSearch, RegularizedEvolution])
def test_same_seed_same_proposals_and_different_seed_differs(make):
    assert drive(make(SPACE, seed=3), 40) == drive(make(SPACE, seed=3), 40)
    assert drive(make(SPACE, seed=3), 40) != drive(make(SPACE, seed=4), 40)


@pytest.mark.parametrize("make", [RandomSearch, RegularizedEvolution])
def test_no_two_proposals_are_isomorphic(make):
    asked = drive(make(SPACE, seed=0), 200)
    keys = [SPACE.canonical(SPACE.from_string(a)) for a in asked]
    assert len(set(keys)) == len(keys)


def test_evolution_children_are_one_mutation_from_a_population_member():
    strategy = RegularizedEvolution(SPACE, seed=1, population=10, sample=3)
    drive(strategy, 10)
    for _ in range(30):
        members = [SPACE.to_string(c.arch) for c, _ in strategy.population]
        child = strategy.ask()
        child_ops = SPACE.to_string(child.arch).split("|")
        distances = [
            sum(a != b for a, b in zip(m.split("|"), child_ops, strict=True)) for m in members
        ]
        assert min(distances) == 1
        strategy.tell(child, Result(objective=score(child.arch)))


def test_evolution_population_ages_out_oldest_not_worst():
    strategy = RegularizedEvolution(SPACE, seed=0, population=5, sample=2)
    told = []
    for i in range(8):
        candidate = strategy.ask()
        # the first member is by far the best: aging must still remove it after 5 more
        objective = 100.0 if i == 0 else float(i)
        strategy.tell(candidate, Result(objective=objective))
        told.append(candidate)
    assert [c for c, _ in strategy.population] == told[-5:]
    assert all(r.objective < 100 for _, r in strategy.population)


def test_evolution_improves_on_random_for_a_synthetic_objective():
    def best_after(make, seed):
        strategy = make(SPACE, seed=seed)
        return max(score(SPACE.from_string(a)) for a in drive(strategy, 60))

    evo = np.mean([best_after(RegularizedEvolution, s) for s in range(10)])
    rnd = np.mean([best_after(RandomSearch, s) for s in range(10)])
    assert evo > rnd


@pytest.mark.parametrize(
    "kwargs", [{"population": 1}, {"population": 5, "sample": 6}, {"sample": 0}]
)
def test_evolution_rejects_bad_settings(kwargs):
    with pytest.raises(ConfigError):
        RegularizedEvolution(SPACE, **kwargs)


def test_candidates_are_hashable_values():
    strategy = RandomSearch(SPACE, seed=0)
    a, b = strategy.ask(), strategy.ask()
    assert isinstance(a, Candidate) and a != b and len({a, b, a}) == 2
