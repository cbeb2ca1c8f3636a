"""A steady-state genetic algorithm with crossover (Holland 1975; Goldberg 1989; for NAS, Xie &
Yuille, "Genetic CNN", ICCV 2017).

The population is the ``population`` best architectures evaluated so far (elitist steady state,
Syswerda 1991: one child at a time, which suits asynchronous workers better than generations).
Each child: two parents by tournament selection (the best of ``tournament`` members drawn
without replacement), recombined by the space's crossover with probability ``crossover_rate``,
then mutated (``space.mutate``) with probability ``mutation_rate``; a child equal to an
architecture already proposed is redrawn. Until ``population`` results are in, candidates are
random.

Crossover is an optional space capability: a space that defines ``crossover(a, b, rng)`` gets
it; NAS-Bench-201 gets uniform crossover over its 6 edges from the adapter below (each edge's
op from either parent with probability 1/2). A space with neither runs **mutation only**: the
child is always a mutation of the first parent (an evolution strategy with tournament
selection); ``uses_crossover`` says which mode is on.

Failed children (``tell_failure``) are ignored: they never enter the population.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy

Crossover = Callable[[Arch, Arch, np.random.Generator], Arch]


def crossover_of(space: SearchSpace) -> Crossover | None:
    """The space's own ``crossover(a, b, rng)``, or None (mutation-only)."""
    own = getattr(space, "crossover", None)
    return own if callable(own) else None


class GeneticAlgorithm(SeededStrategy):
    name = "genetic"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        population: int = 20,
        tournament: int = 3,
        crossover_rate: float = 0.5,
        mutation_rate: float = 0.5,
    ):
        if population < 2:
            raise ConfigError(f"population must be >= 2, got {population}")
        if not 1 <= tournament <= population:
            raise ConfigError(
                f"tournament must be between 1 and population ({population}), got {tournament}"
            )
        for label, rate in (("crossover_rate", crossover_rate), ("mutation_rate", mutation_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"{label} must be in [0, 1], got {rate}")
        super().__init__(space, seed, constraint)
        self.population_size = population
        self.tournament = tournament
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.crossover = crossover_of(space)
        self.population: list[tuple[Candidate, Result]] = []  # best first

    @property
    def uses_crossover(self) -> bool:
        return self.crossover is not None

    def _select(self) -> Arch:
        members = self.rng.choice(len(self.population), self.tournament, replace=False)
        return self.population[int(min(members))][0].arch  # the list is sorted best first

    def _child(self) -> Arch:
        first = self._select()
        if self.crossover is None:
            return self.space.mutate(first, self.rng)
        child = first
        if self.rng.random() < self.crossover_rate:
            child = self.crossover(first, self._select(), self.rng)
        if child == first or self.rng.random() < self.mutation_rate:
            child = self.space.mutate(child, self.rng)
        return child

    def ask(self) -> Candidate:
        if len(self.population) < self.population_size:
            return Candidate(self.sample_new())
        return Candidate(self.propose(self._child))

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.population.append((candidate, result))
        self.population.sort(key=lambda member: -member[1].objective)  # stable: ties keep age
        del self.population[self.population_size :]
