"""Regularized (aging) evolution, Real et al., "Regularized Evolution for Image Classifier
Architecture Search" (AAAI 2019).

A population of the ``population`` most recently evaluated architectures is kept. The first
``population`` candidates are random; after that each candidate is a mutation of the best of
``sample`` members drawn uniformly without replacement from the population, and the oldest
member dies when a child joins (aging, not worst-removal: that is the regularization). The
NAS-Bench-201 paper runs it with population 10 and sample 3, the defaults here.

Like random search, a mutant isomorphic to an architecture already proposed is re-mutated (up to
``max_redraws`` times) so the budget goes to new functions.
"""

from __future__ import annotations

from collections import deque

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import SeededStrategy
from nasforge.strategies.random import SeenSet


class RegularizedEvolution(SeededStrategy):
    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population: int = 10,
        sample: int = 3,
        max_redraws: int = 100,
    ):
        if population < 2:
            raise ConfigError(f"population must be >= 2, got {population}")
        if not 1 <= sample <= population:
            raise ConfigError(
                f"sample must be between 1 and population ({population}), got {sample}"
            )
        super().__init__(space, seed)
        self.population_size = population
        self.sample_size = sample
        self.max_redraws = max_redraws
        self.population: deque[tuple[Candidate, Result]] = deque(maxlen=population)
        self.seen = SeenSet(space)
        self.asked = 0

    def ask(self) -> Candidate:
        self.asked += 1
        if len(self.population) < self.population_size:
            arch = self._fresh(lambda: self.space.sample(self.rng))
        else:
            members = self.rng.choice(len(self.population), self.sample_size, replace=False)
            parent = max((self.population[i] for i in members), key=lambda m: m[1].objective)
            arch = self._fresh(lambda: self.space.mutate(parent[0].arch, self.rng))
        self.seen.add(arch)
        return Candidate(arch)

    def _fresh(self, draw):  # type: ignore[no-untyped-def]
        arch = draw()
        for _ in range(self.max_redraws):
            if arch not in self.seen:
                break
            arch = draw()
        return arch

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.population.append((candidate, result))  # deque(maxlen) drops the oldest: aging
