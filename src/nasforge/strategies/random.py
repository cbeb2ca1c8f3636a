"""Random search (Li & Talwalkar 2019; Bergstra & Bengio 2012): the baseline every method must beat.

Candidates are drawn uniformly from the space. Cells that are isomorphic to one already asked
(same ``space.canonical``) are redrawn, because evaluating the same function twice wastes budget;
after ``max_redraws`` failed draws a duplicate is accepted, so tiny spaces never stall.
"""

from __future__ import annotations

from nasforge.core import Arch, Candidate
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import SeededStrategy


class SeenSet:
    """Canonical forms of the architectures already proposed, to avoid evaluating twins."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.keys: set[Arch] = set()

    def __contains__(self, arch: Arch) -> bool:
        return self.space.canonical(arch) in self.keys

    def add(self, arch: Arch) -> None:
        self.keys.add(self.space.canonical(arch))


class RandomSearch(SeededStrategy):
    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0, max_redraws: int = 100):
        super().__init__(space, seed)
        self.max_redraws = max_redraws
        self.seen = SeenSet(space)

    def ask(self) -> Candidate:
        arch = self.space.sample(self.rng)
        for _ in range(self.max_redraws):
            if arch not in self.seen:
                break
            arch = self.space.sample(self.rng)
        self.seen.add(arch)
        return Candidate(arch)
