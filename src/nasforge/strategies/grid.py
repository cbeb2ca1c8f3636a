"""Grid search: every architecture of an enumerable space, once per isomorphism class.

Grid search is exhaustive search over a finite space (the ``enumerate`` of an ``EnumerableSpace``,
15,625 cells for NAS-Bench-201). Cells the space deems isomorphic (``space.canonical``) are one
grid point, proposed as their canonical representative, so NB201's 6,466 classes are each
visited once. With ``shuffle=True`` (the default) the classes come in a seeded random order:
with a budget far smaller than the space, the enumeration order (last edge fastest) would spend
it all on cells whose first edges are ``none``. A shuffled grid is random search *without
replacement over classes*, which differs from ``RandomSearch`` only in drawing each class, not
each cell, with equal probability. ``shuffle=False`` keeps the space's own order (exhaustive
sweeps, resumable listings).

Spaces too large to list (DARTS, NASNet, mobile, ...) are gridded over the product of their
categorical decisions (``space.decisions()``) instead.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import weakref
from collections.abc import Iterator
from typing import Any

from nasforge.core import Arch, Candidate
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy

#: space -> its canonical classes in enumeration order (listing NB201's takes ~0.1 s; runs on
#: the same space object share it).
#: decision products up to this size are permuted exactly; larger ones are drawn from
SMALL_PRODUCT = 200_000
_CLASSES: weakref.WeakKeyDictionary[Any, tuple[Arch, ...]] = weakref.WeakKeyDictionary()


def canonical_classes(space: Any) -> tuple[Arch, ...]:
    """One canonical representative per class, in the order ``space.enumerate()`` meets them."""
    with contextlib.suppress(KeyError, TypeError):
        return _CLASSES[space]
    classes = tuple(dict.fromkeys(space.canonical(arch) for arch in space.enumerate()))
    with contextlib.suppress(TypeError):  # a space that cannot be weakly referenced: no cache
        _CLASSES[space] = classes
    return classes


class GridSearch(SeededStrategy):
    """Each canonical class once; seeded random order unless ``shuffle=False``.

    Raises ``ConfigError`` for a space without ``enumerate``, and from ``ask`` once every
    feasible class has been proposed (the budget is larger than the space).
    """

    name = "grid"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        shuffle: bool = True,
    ):
        enumerable = callable(getattr(space, "enumerate", None))
        if not enumerable and not callable(getattr(space, "decisions", None)):
            raise ConfigError(
                f"grid search needs a space that can enumerate its architectures or list its "
                f"decisions; space {space.name!r} can do neither (use random search)"
            )
        super().__init__(space, seed, constraint)
        self.enumerable = enumerable
        self.shuffle = shuffle
        self._order: Iterator[Arch] | None = None  # built on the first ask
        self.skipped = 0  # infeasible classes passed over

    def _points(self) -> Iterator[Arch]:
        if not self.enumerable:
            yield from self._decision_grid()
        elif self.shuffle:
            classes = canonical_classes(self.space)
            for i in self.rng.permutation(len(classes)):
                yield classes[int(i)]
        else:
            for arch in self.space.enumerate():  # lazily: a sweep need not list the space
                yield self.space.canonical(arch)

    def _decision_grid(self) -> Iterator[Arch]:
        """Points of the product of the space's decisions, for spaces too large to list
        (DARTS: ~1e18). Shuffled: each point's decisions drawn from a seeded per-decision
        permutation walk, which is random search without replacement over decision sequences;
        not shuffled: ``itertools.product`` order (last decision fastest)."""
        decisions = self.space.decisions()
        axes = [range(c) for c in decisions.choices]
        if not self.shuffle:
            for sequence in itertools.product(*axes):
                yield self.space.canonical(decisions.decode(sequence))
            return
        if math.prod(decisions.choices) <= SMALL_PRODUCT:  # a true permutation, so it ends
            points = list(itertools.product(*axes))
            for i in self.rng.permutation(len(points)):
                yield self.space.canonical(decisions.decode(points[int(i)]))
            return
        while True:  # far more points than any budget: draws, with repeats skipped by ask
            sequence = [int(self.rng.integers(c)) for c in decisions.choices]
            yield self.space.canonical(decisions.decode(sequence))

    def ask(self) -> Candidate:
        if self._order is None:
            self._order = self._points()
        for arch in self._order:
            if arch in self.seen:
                continue
            if not self.feasible(arch):
                self.skipped += 1
                continue
            self.seen.add(arch)
            return Candidate(arch)
        raise ConfigError(
            f"grid search has proposed every class of space {self.space.name!r} "
            f"({len(self.seen)} proposed, {self.skipped} infeasible); the budget exceeds the space"
        )
