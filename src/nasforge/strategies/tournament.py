"""Tournament evolution without aging, Real et al., "Large-Scale Evolution of Image Classifiers"
(ICML 2017).

Each step picks two members of the population uniformly at random; the worse one (by objective)
is removed at once, and a mutated copy of the better one is proposed; it joins the population
when its result is told. No member ever dies of age, so a lucky early architecture can survive
forever: the contrast with regularized evolution (``evolution.py``), whose aging the same group
introduced two years later. Until the population is full, candidates are random.

The paper evolved a population of 1,000 for ~20,000 models; with budgets of ~100 evaluations
that would never leave the random phase, so the default population is 10 (NAS-Bench-201's own
setting for regularized evolution), which keeps the two comparable.

Asynchronous workers: a loser is removed when its tournament is drawn, so concurrent asks never
pick it again, and a pending child counts towards the population size. A child that fails
(``tell_failure``) never joins; the place it leaves is refilled by a random architecture.
When fewer than two members are present (many asks in flight), a random architecture is
proposed.
"""

from __future__ import annotations

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy


class TournamentEvolution(SeededStrategy):
    name = "tournament"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        population: int = 10,
    ):
        if population < 2:
            raise ConfigError(f"population must be >= 2, got {population}")
        super().__init__(space, seed, constraint)
        self.population_size = population
        self.population: list[tuple[Candidate, Result]] = []
        self.pending: set[Candidate] = set()  # asked, not told; each joins when told
        self.removed: list[tuple[Candidate, Result]] = []  # tournament losers, in order

    def ask(self) -> Candidate:
        if len(self.population) + len(self.pending) < self.population_size or (
            len(self.population) < 2
        ):
            candidate = Candidate(self.sample_new())
        else:
            first, second = self.rng.choice(len(self.population), 2, replace=False)
            a, b = self.population[int(first)], self.population[int(second)]
            winner, loser = (a, b) if a[1].objective >= b[1].objective else (b, a)
            self.population.remove(loser)
            self.removed.append(loser)
            candidate = Candidate(self.propose(lambda: self.space.mutate(winner[0].arch, self.rng)))
        self.pending.add(candidate)
        return candidate

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.pending.discard(candidate)
        self.population.append((candidate, result))

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self.pending.discard(candidate)
