"""Regularized (aging) evolution, Real et al., "Regularized Evolution for Image Classifier
Architecture Search" (AAAI 2019).

A population of the ``population`` most recently evaluated architectures is kept. Until it is
full, candidates are random; after that each candidate is a mutation of the best of ``sample``
members drawn uniformly without replacement from the population, and the oldest member dies
when a child joins (aging, not worst-removal: that is the regularization). The NAS-Bench-201
paper runs it with population 10 and sample 3, the defaults here.

``init``: architectures the search starts from, proposed first and in order (``;``-separated
strings on the command line: ``--option init='ARCH;ARCH'``), before any random one. This is how
a known-good network (MobileNetV2 for the mobile space, say) seeds the population, as MnasNet
and NetAdapt start from a hand-designed network; the paper's population starts random. A
string the space cannot parse, or one the constraint excludes, is refused before any trial.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy


class RegularizedEvolution(SeededStrategy):
    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population: int = 10,
        sample: int = 3,
        constraint: Constraint | None = None,
        init: str | Sequence[str] | None = None,
    ):
        if population < 2:
            raise ConfigError(f"population must be >= 2, got {population}")
        if not 1 <= sample <= population:
            raise ConfigError(
                f"sample must be between 1 and population ({population}), got {sample}"
            )
        super().__init__(space, seed, constraint)
        self.population_size = population
        self.sample_size = sample
        self.population: deque[tuple[Candidate, Result]] = deque(maxlen=population)
        self.init = self._parse_init(init)

    def _parse_init(self, init: str | Sequence[str] | None) -> list[Arch]:
        texts = init.split(";") if isinstance(init, str) else list(init or [])
        archs = []
        for text in (str(t).strip() for t in texts):
            if not text:
                continue
            arch = self.space.from_string(text)  # InvalidArchError names what is accepted
            if not self.feasible(arch):
                what = getattr(self.constraint, "description", "the constraint")
                raise ConfigError(f"{self.name}: init architecture {text!r} breaks {what}")
            archs.append(arch)
        return archs

    def next_init(self) -> Arch | None:
        """The next ``init`` architecture not proposed yet, marked seen; None when none is
        left."""
        while self.init:
            arch = self.init.pop(0)
            if arch not in self.seen:
                self.seen.add(arch)
                return arch
        return None

    def ask(self) -> Candidate:
        arch = self.next_init()
        if arch is not None:
            return Candidate(arch)
        if len(self.population) < self.population_size:
            return Candidate(self.sample_new())
        members = self.rng.choice(len(self.population), self.sample_size, replace=False)
        parent = max((self.population[i] for i in members), key=lambda m: m[1].objective)
        return Candidate(self.propose(lambda: self.space.mutate(parent[0].arch, self.rng)))

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.population.append((candidate, result))  # deque(maxlen) drops the oldest: aging
