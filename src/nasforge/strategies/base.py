"""The search-strategy protocol: which candidate next?

Strategies are pure search logic. They never train and never read a report-only metric: the
experiment tells them ``Result.for_strategy()`` copies.

Contract every strategy keeps:

* **Seeded and deterministic**: the same seed and the same sequence of ``tell`` calls give the
  same ``ask`` answers. A stored run is resumed by replaying its tells into a fresh strategy.
* **Asynchronous**: with k workers the experiment calls ``ask`` up to k times before the first
  ``tell``. Every asked candidate is *pending* until told; a strategy must not propose again an
  architecture that is pending or already evaluated (``SeededStrategy.propose`` does this).
* **Failures**: a trial that crashed is reported with ``tell_failure`` to strategies that want
  failure notices (`FailureAware`, checked once when the experiment is built; every
  `SeededStrategy` is one); it is not re-proposed.
* **Constraints**: a strategy built with ``constraint=`` (e.g. ``MaxParams``) never proposes an
  infeasible architecture.
* **Waiting**: a strategy that cannot propose until pending results arrive (synchronous
  successive halving waiting for a rung to finish) raises ``NoCandidateYet`` from ``ask``; the
  experiment then waits for a result before asking again. Raising it with nothing pending is a
  bug in the strategy (the experiment reports it).
* **Fidelity**: multi-fidelity strategies set ``Candidate.fidelity`` (e.g. epochs) within the
  range the estimator declares (``EstimatorCapabilities.fidelity_range``: (low, high)).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from nasforge.capabilities import FailureAware
from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError, NasforgeWarning
from nasforge.spaces.base import SearchSpace

__all__ = [
    "Constraint",
    "FailureAware",
    "NoCandidateYet",
    "SeededStrategy",
    "SeenSet",
    "Strategy",
]

#: spaces of at most this many architectures are listed once their samples stop finding new ones
POOL_LIMIT = 1_000_000

#: A feasibility test on an architecture, checked before it is proposed (cheap: no training).
Constraint = Callable[[Arch], bool]


class NoCandidateYet(Exception):
    """Raised by ``ask`` when the strategy must see pending results before proposing more."""


@runtime_checkable
class Strategy(Protocol):
    name: str

    def ask(self) -> Candidate: ...

    def tell(self, candidate: Candidate, result: Result) -> None: ...


class SeenSet:
    """Canonical forms of the architectures already proposed (pending or evaluated)."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.keys: set[Arch] = set()
        #: one architecture per key, in the order first proposed: what a repeat is drawn from
        self.examples: list[Arch] = []

    def __contains__(self, arch: Arch) -> bool:
        return self.space.canonical(arch) in self.keys

    def add(self, arch: Arch) -> None:
        key = self.space.canonical(arch)
        if key not in self.keys:
            self.keys.add(key)
            self.examples.append(arch)

    def __len__(self) -> int:
        return len(self.keys)


class SeededStrategy:
    """Shared plumbing: the space, a seeded generator, what was told, duplicates, constraints."""

    name = "base"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        max_redraws: int = 100,
    ):
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.constraint = constraint
        self.max_redraws = max_redraws
        self.history: list[tuple[Candidate, Result]] = []
        self.failures: list[Candidate] = []
        self.seen = SeenSet(space)
        self._pool: list[Arch] | None = None  # `_uniform_draws`' shuffled listing, once needed

    # the protocol -----------------------------------------------------------------------

    def ask(self) -> Candidate:  # pragma: no cover - abstract
        raise NotImplementedError

    def tell(self, candidate: Candidate, result: Result) -> None:
        self.history.append((candidate, result))

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        """A trial that crashed: remembered (never re-proposed), not scored."""
        self.failures.append(candidate)

    # helpers for subclasses ---------------------------------------------------------------

    def feasible(self, arch: Arch) -> bool:
        return self.constraint is None or bool(self.constraint(arch))

    def propose(self, draw: Callable[[], Arch]) -> Arch:
        """Call ``draw`` until it gives a feasible architecture not proposed before, and mark
        it seen. After ``max_redraws`` tries, uniform samples are tried (a tight constraint can
        leave a parent's mutations nothing new and feasible); only then is a duplicate
        accepted (tiny or exhausted spaces must not stall). Infeasible ones never are."""
        fallback = None
        if self._pool == []:  # every feasible class was proposed: the first feasible repeat
            return self._feasible_repeat(draw)
        for _ in range(self.max_redraws):
            arch = draw()
            if not self.feasible(arch):
                continue
            if arch not in self.seen:
                self.seen.add(arch)
                return arch
            fallback = arch if fallback is None else fallback
        for arch in self._uniform_draws():
            if self.feasible(arch):
                if arch not in self.seen:
                    self.seen.add(arch)
                    return arch
                fallback = arch if fallback is None else fallback
        if fallback is not None:
            return fallback
        if self._pool == [] and self.seen.examples:  # this call used up the last new class
            return self._feasible_repeat(draw)
        searched = (
            "among all its architectures"
            if self._pool is not None
            else (f"in {11 * self.max_redraws} draws")
        )
        raise ConfigError(
            f"{self.name}: no feasible architecture {searched}; the constraint is too strict "
            "for this space"
        )

    def _feasible_repeat(self, draw: Callable[[], Arch]) -> Arch:
        """A feasible architecture, proposed before: what an exhausted space has left.

        ``draw`` first (the strategy's own preference, e.g. a good parent's mutation), then
        one of the proposed architectures at random: under a tight constraint ``draw`` and
        uniform samples may both miss the few feasible cells that exist."""
        for _ in range(self.max_redraws):
            arch = draw()
            if self.feasible(arch):
                return arch
        examples = self.seen.examples
        for i in self.rng.permutation(len(examples)):
            if self.feasible(examples[int(i)]):
                return examples[int(i)]
        for _ in range(10 * self.max_redraws):
            arch = self.space.sample(self.rng)
            if self.feasible(arch):
                return arch
        raise ConfigError(f"{self.name}: no feasible architecture left to propose")

    def _uniform_draws(self) -> Iterator[Arch]:
        """Uniform draws for `propose` once ``draw`` stops finding anything new.

        A space of at most `POOL_LIMIT` architectures that can list them draws from a seeded
        shuffle of that list, discarding for good each one already proposed (its class) or
        infeasible: the same distribution as rejection sampling, each draw uniform over the
        cells not yet ruled out, but a space near exhaustion costs one pass in all instead of
        ``10 * max_redraws`` draws per proposal (random search on NB201's 6,466 classes fell
        from thousands of proposals a second to about 125 over its last classes:
        ``benchmarks/strategy_exhaustion.py``). It ends when nothing new and feasible is
        left. Other spaces get ``10 * max_redraws`` independent samples.
        """
        if self._pool is None and _listable(self.space):
            pool = list(self.space.enumerate())
            self._pool = [pool[int(i)] for i in self.rng.permutation(len(pool))]
        if self._pool is None:
            for _ in range(10 * self.max_redraws):
                yield self.space.sample(self.rng)
            return
        while self._pool:
            arch = self._pool[-1]
            if arch in self.seen or not self.feasible(arch):
                self._pool.pop()  # ruled out for good: seen stays seen, feasibility is fixed
                if not self._pool:
                    warnings.warn(
                        _exhausted_message(self.name, len(self.seen), self.constraint is not None),
                        NasforgeWarning,
                        stacklevel=2,
                    )
                continue
            yield arch

    def sample_new(self) -> Arch:
        """A uniformly random feasible architecture not proposed before."""
        return self.propose(lambda: self.space.sample(self.rng))


def _exhausted_message(strategy: str, proposed: int, constrained: bool) -> str:
    which = "that meet the constraints" if constrained else "of the space"
    return (
        f"{strategy}: all {proposed:,} distinct architectures {which} were proposed; the rest of "
        "the budget repeats them"
    )


def _listable(space: SearchSpace) -> bool:
    """Can ``space`` list its architectures, and are there at most `POOL_LIMIT`?"""
    if not callable(getattr(space, "enumerate", None)):
        return False
    try:
        return int(space.size()) <= POOL_LIMIT  # type: ignore[attr-defined]
    except (AttributeError, NotImplementedError, TypeError, OverflowError):
        return False
