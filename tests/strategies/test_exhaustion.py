"""A search that outgrows the space: every class once, fast, then repeats (not a stall).

The classes are the benchmark's own (``rep_arch_idx`` of the NB201 hardware table, 6,466 of
them), not nasforge's canonical form, so the check does not rest on the code under test.
"""

from __future__ import annotations

from tests.nb201_hardware_csv import class_by_cell, pi5_latency_by_cell

from nasforge.core import Result
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.random import RandomSearch

SPACE = NB201Space()


def test_random_search_proposes_every_class_once_then_repeats() -> None:
    classes = class_by_cell()
    total = len(set(classes.values()))
    assert total == 6466  # the published count of NB201's unique architectures
    strategy = RandomSearch(SPACE, seed=5)
    proposed = [classes[SPACE.to_string(strategy.ask().arch)] for _ in range(total)]
    assert len(set(proposed)) == total
    repeat = classes[SPACE.to_string(strategy.ask().arch)]  # nothing new left: a repeat
    assert repeat in set(proposed)


def test_a_constrained_evolution_exhausts_exactly_the_feasible_classes() -> None:
    classes, latency = class_by_cell(), pi5_latency_by_cell()
    limit = 1.5
    feasible = {classes[cell] for cell, ms in latency.items() if ms <= limit}
    assert 50 < len(feasible) < 1000  # a tight limit: mutations of a parent rarely meet it

    def constraint(arch) -> bool:
        return latency[SPACE.to_string(arch)] <= limit

    strategy = RegularizedEvolution(SPACE, seed=2, population=8, sample=3, constraint=constraint)
    seen = []
    for _ in range(len(feasible)):
        candidate = strategy.ask()
        seen.append(classes[SPACE.to_string(candidate.arch)])
        strategy.tell(candidate, Result(objective=len(seen) % 7))
    assert sorted(set(seen)) == sorted(feasible)
    assert latency[SPACE.to_string(strategy.ask().arch)] <= limit  # a feasible repeat
