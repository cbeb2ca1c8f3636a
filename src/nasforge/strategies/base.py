"""The search-strategy protocol: which candidate next?

Strategies are pure search logic. They never train and never read a report-only metric: the
experiment tells them ``Result.for_strategy()`` copies. Every strategy is seeded, and given the
same sequence of ``tell`` calls it makes the same sequence of ``ask`` answers, which is what lets
a stored run be replayed into a fresh strategy on resume.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from nasforge.core import Candidate, Result
from nasforge.spaces.base import SearchSpace


@runtime_checkable
class Strategy(Protocol):
    name: str

    def ask(self) -> Candidate: ...

    def tell(self, candidate: Candidate, result: Result) -> None: ...


class SeededStrategy:
    """Shared plumbing: the space, a seeded generator, and the history of what was told."""

    name = "base"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.history: list[tuple[Candidate, Result]] = []

    def tell(self, candidate: Candidate, result: Result) -> None:
        self.history.append((candidate, result))

    def ask(self) -> Candidate:  # pragma: no cover - abstract
        raise NotImplementedError
