"""A search that outgrows the space: every class once, fast, then repeats (not a stall).

The classes are the benchmark's own (``rep_arch_idx`` of the NB201 hardware table, 6,466 of
them), not nasforge's canonical form, so the check does not rest on the code under test.
"""

from __future__ import annotations

import warnings

import pytest
from tests.nb201_hardware_csv import class_by_cell, pi5_latency_by_cell

from nasforge.core import Result
from nasforge.errors import NasforgeWarning
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


@pytest.mark.parametrize("strategy_class", [RandomSearch, RegularizedEvolution])
def test_a_limit_few_cells_meet_repeats_them_instead_of_failing(strategy_class) -> None:
    """Pi 5 latency <= 1 ms: a handful of NB201's 15,625 cells, so a hundred uniform draws
    (or mutations) find none of them; once each was proposed the search goes on repeating them
    (it used to stop with "no feasible architecture", which was false) and says so once."""
    classes, latency = class_by_cell(), pi5_latency_by_cell()
    limit = 1.0
    cells = [cell for cell, ms in latency.items() if ms <= limit]
    feasible = {classes[cell] for cell in cells}
    assert 0 < len(cells) < 20 and len(feasible) < 5  # about 1 cell in 3,000

    def constraint(arch) -> bool:
        return latency[SPACE.to_string(arch)] <= limit

    strategy = strategy_class(SPACE, seed=1, constraint=constraint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proposed = []
        for i in range(3 * len(feasible) + 5):
            candidate = strategy.ask()
            proposed.append(SPACE.to_string(candidate.arch))
            strategy.tell(candidate, Result(objective=float(i % 3)))
    assert {classes[cell] for cell in proposed} == feasible
    assert all(latency[cell] <= limit for cell in proposed)
    said = [str(w.message) for w in caught if issubclass(w.category, NasforgeWarning)]
    assert len(said) == 1 and f"all {len(feasible)} distinct architectures" in said[0], said
