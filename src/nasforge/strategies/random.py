"""Random search (Bergstra & Bengio 2012; Li & Talwalkar 2019): the baseline every method must
beat. Candidates are drawn uniformly; architectures isomorphic to one already proposed are
redrawn (see ``SeededStrategy.propose``), because evaluating the same function twice wastes
budget."""

from __future__ import annotations

from nasforge.core import Candidate
from nasforge.strategies.base import SeededStrategy


class RandomSearch(SeededStrategy):
    name = "random"

    def ask(self) -> Candidate:
        return Candidate(self.sample_new())
