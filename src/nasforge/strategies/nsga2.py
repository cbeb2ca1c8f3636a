"""NSGA-II, Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic
Algorithm: NSGA-II", IEEE TEVC 2002; for NAS, Lu et al., "NSGA-Net", GECCO 2019.

The first ``population`` candidates are random. After that each child comes from two parents
picked by binary tournament under the crowded comparison (lower non-domination rank wins, then
the larger crowding distance), recombined by the space's crossover with probability
``crossover_rate`` and mutated (``space.mutate``) with probability ``mutation_rate`` (always
when it equals a parent). Once ``population`` children of the current generation are told,
parents and children are merged and the best ``population`` by crowded comparison survive
(elitism).

Departures: the generation closes on results told, not on children asked, so asynchronous
workers never wait for a generation barrier (a child asked from the previous parents may join
the next generation); the variation operators are the space's discrete mutation and crossover
instead of simulated binary crossover and polynomial mutation, which need real-valued genes.
A space without crossover runs on mutation alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint
from nasforge.strategies.genetic import crossover_of
from nasforge.strategies.model_based import check_int
from nasforge.strategies.multiobjective import MultiObjectiveStrategy, crowded_order


class NSGA2(MultiObjectiveStrategy):
    name = "nsga2"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        objectives: Any = None,
        population: int = 20,
        crossover_rate: float = 0.9,
        mutation_rate: float = 0.5,
    ):
        super().__init__(space, seed, constraint, objectives)
        self.population_size = check_int("population", population, 2)
        for label, rate in (("crossover_rate", crossover_rate), ("mutation_rate", mutation_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"{label} must be in [0, 1], got {rate}")
        self.crossover_rate, self.mutation_rate = float(crossover_rate), float(mutation_rate)
        self.crossover = crossover_of(space)
        self.parents: list[int] = []  # indices into self.archs / self.points
        self.children: list[int] = []  # told since the last survival
        self._order: np.ndarray = np.zeros(0, dtype=int)  # parents' places, best first

    def ask(self) -> Candidate:
        if not self.parents:
            return Candidate(self.sample_new())
        return Candidate(self.propose(self._child))

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.children.append(len(self.archs) - 1)  # the initial population's too
        if len(self.children) >= self.population_size:
            self._survive()

    # internals ------------------------------------------------------------------------

    def _survive(self) -> None:
        """Parents + children -> the best ``population`` by crowded comparison (elitism)."""
        pool = self.parents + self.children
        points = np.asarray([self.points[i] for i in pool])
        order = crowded_order(points)[: self.population_size]
        self.parents = [pool[i] for i in order]
        self.children = []
        # the survivors' own crowded order, for tournaments: a place is a rank, lower wins
        self._order = np.empty(len(self.parents), dtype=int)
        self._order[crowded_order(np.asarray([self.points[i] for i in self.parents]))] = np.arange(
            len(self.parents)
        )

    def _tournament(self) -> Arch:
        a, b = self.rng.choice(len(self.parents), 2, replace=False)
        winner = a if self._order[a] < self._order[b] else b
        return self.archs[self.parents[int(winner)]]

    def _child(self) -> Arch:
        first = self._tournament()
        child = first
        if self.crossover is not None and self.rng.random() < self.crossover_rate:
            child = self.crossover(first, self._tournament(), self.rng)
        if child == first or self.rng.random() < self.mutation_rate:
            child = self.space.mutate(child, self.rng)
        return child
