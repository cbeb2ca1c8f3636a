"""Pareto-aware regularized evolution: Real et al.'s aging evolution (AAAI 2019) with the
parent chosen by Pareto dominance instead of one objective.

The population is the ``population`` most recently evaluated architectures (aging: the oldest
dies when a child joins). Each child is a mutation of the best of ``sample`` members drawn
without replacement, "best" by NSGA-II's crowded comparison over the whole population (lower
non-domination rank, then larger crowding distance), so members of the current front are picked
and, among them, those in sparse regions of it, which spreads the search along the front.

Departure: the published method is single-objective; the crowded comparison is NSGA-II's (Deb
et al. 2002). With one objective it is regularized evolution exactly (rank order is objective
order). A second, elitist archive of every non-dominated result is what the run reports as its
front (`nasforge.pareto`), so aging never loses a front member from the result.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint
from nasforge.strategies.model_based import check_int
from nasforge.strategies.multiobjective import MultiObjectiveStrategy, crowded_order


class ParetoEvolution(MultiObjectiveStrategy):
    name = "pareto-evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        objectives: Any = None,
        population: int = 20,
        sample: int = 5,
    ):
        super().__init__(space, seed, constraint, objectives)
        self.population_size = check_int("population", population, 2)
        if not 1 <= sample <= population:
            raise ConfigError(
                f"sample must be between 1 and population ({population}), got {sample}"
            )
        self.sample_size = int(sample)
        self.population: deque[int] = deque(maxlen=self.population_size)  # indices, oldest first

    def ask(self) -> Candidate:
        if len(self.population) < self.population_size:
            return Candidate(self.sample_new())
        members = list(self.population)
        places = np.empty(len(members), dtype=int)
        places[crowded_order(np.asarray([self.points[i] for i in members]))] = np.arange(
            len(members)
        )
        drawn = self.rng.choice(len(members), self.sample_size, replace=False)
        parent = self.archs[members[int(min(drawn, key=lambda k: places[k]))]]
        return Candidate(self.propose(lambda: self.space.mutate(parent, self.rng)))

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.population.append(len(self.archs) - 1)  # deque(maxlen) drops the oldest: aging
