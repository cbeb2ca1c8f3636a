"""Regularized evolution assisted by a zero-cost proxy: Abdelfattah, Mehrotra, Dudziak and Lane,
"Zero-Cost Proxies for Lightweight NAS" (ICLR 2021): its "zero-cost warmup" and "zero-cost
move proposal", on top of aging evolution (Real et al., AAAI 2019; ``evolution.py``).

* **Warm start**: at the first ask, ``warmup`` distinct (by canonical form) feasible random
  architectures are scored by the proxy; the initial population is the ``population``
  best-scored of them, proposed best first. Until the population is full (results still
  pending with several workers) the next-best warm-up cells follow; once all are used, the
  tournament runs over the members present (a random cell while there are none).
* **Move proposal**: each later ask draws a tournament parent exactly as regularized evolution
  does, makes ``children`` fresh (never proposed, feasible, mutually distinct) mutations of it,
  scores them by the proxy, and proposes the best-scored one: the proxy filters what is
  trained. Aging, the tournament and the population are those of `RegularizedEvolution`.

Departures from the paper: its warm-up pools are far larger (up to 3,000 cells, the proxy on a
GPU); here ``warmup`` defaults to 100 cells, because the proxy is computed on real minibatches
in the search's own process on CPU (~0.1-0.5 s a cell). The children are random mutations of
the tournament parent (not every neighbour), so each ask costs ``children`` proxy scores and
the aging dynamics stay those of regularized evolution. Ties in the proxy are broken by drawing
order (stable sort, first maximum), so the search is deterministic whenever the scorer is.
``init`` architectures (see `RegularizedEvolution`) come before the warm-up cells and take
population places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.core import Arch, Candidate
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.scoring import ArchScorer, check_scorer, scores_of


class ProxyEvolution(RegularizedEvolution):
    name = "proxy-evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population: int = 10,
        sample: int = 3,
        constraint: Constraint | None = None,
        scorer: ArchScorer | None = None,
        warmup: int = 100,
        children: int = 10,
        init: str | Sequence[str] | None = None,
    ):
        self.scorer = check_scorer("proxy-evolution", scorer)
        super().__init__(space, seed, population, sample, constraint, init)
        for label, value, low in (("warmup", warmup, population), ("children", children, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"proxy-evolution: {label} must be a whole number >= {low}, got {value!r}"
                )
        self.warmup, self.children = warmup, children
        #: warm-up cells, best proxy score first (None until the first ask scores them)
        self.ranked: list[Arch] | None = None
        self.ranked_scores: np.ndarray = np.zeros(0)
        self._next = 0

    def ask(self) -> Candidate:
        arch = self.next_init()
        if arch is not None:
            return Candidate(arch)
        if len(self.population) < self.population_size:
            arch = self._next_warm()
            if arch is not None:
                return Candidate(arch)
            if not self.population:
                return Candidate(self.sample_new())
        size = min(self.sample_size, len(self.population))
        members = self.rng.choice(len(self.population), size, replace=False)
        parent = max((self.population[i] for i in members), key=lambda m: m[1].objective)
        return Candidate(self._best_child(parent[0].arch))

    # warm start ------------------------------------------------------------------------------

    def _warm_start(self) -> None:
        cells: list[Arch] = []
        keys: set[Any] = set()
        for _ in range(20 * self.warmup):  # a small or tightly constrained space has fewer
            if len(cells) == self.warmup:
                break
            arch = self.space.sample(self.rng)
            key = self.space.canonical(arch)
            if key in keys or not self.feasible(arch):
                continue
            keys.add(key)
            cells.append(arch)
        scores = scores_of(self.scorer, cells) if cells else np.zeros(0)
        order = np.argsort(-scores, kind="stable")
        self.ranked = [cells[i] for i in order]
        self.ranked_scores = scores[order]

    def _next_warm(self) -> Arch | None:
        """The best-scored warm-up cell not proposed yet, marked seen; None when none is left."""
        if self.ranked is None:
            self._warm_start()
        assert self.ranked is not None
        while self._next < len(self.ranked):
            arch = self.ranked[self._next]
            self._next += 1
            if arch not in self.seen:
                self.seen.add(arch)
                return arch
        return None

    # move proposal ---------------------------------------------------------------------------

    def _best_child(self, parent: Arch) -> Arch:
        kids: list[Arch] = []
        keys: set[Any] = set()
        for _ in range(self.children + self.max_redraws):
            if len(kids) == self.children:
                break
            child = self.space.mutate(parent, self.rng)
            key = self.space.canonical(child)
            if key in keys or child in self.seen or not self.feasible(child):
                continue
            keys.add(key)
            kids.append(child)
        if not kids:  # every neighbour was proposed already: regularized evolution's fallback
            return self.propose(lambda: self.space.mutate(parent, self.rng))
        best = kids[int(np.argmax(scores_of(self.scorer, kids)))]
        self.seen.add(best)
        return best
