"""Local search: hill climbing with random restarts, after White, Nolen & Savani, "Exploring the
Loss Landscape in Neural Architecture Search" (UAI 2021; first circulated as "Local search is
state of the art for NAS benchmarks", 2020).

Start at the best of ``num_init`` random architectures. Evaluate the neighbours of the current
architecture (``space.neighbours``: one edit away), in a seeded random order:

* ``improvement="first"``: move as soon as a neighbour beats the current architecture;
* ``improvement="best"``: evaluate the whole neighbourhood, then move to its best member if that
  beats the current one.

When no neighbour is better (a local optimum), restart from one new random architecture.
Neighbours isomorphic to an architecture already proposed are not evaluated again: a known
result is used as it is, a pending one is waited for. Every accepted move improves the
objective strictly; ``trajectory`` records the starts and moves, for inspection and tests.

Asynchronous workers: climbing is sequential by nature, so when every neighbour still to be
judged is in flight (or a start is being evaluated), ``ask`` raises ``NoCandidateYet`` and the
experiment waits for a result. A neighbour that fails (``tell_failure``) counts as no better.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, NoCandidateYet, SeededStrategy

IMPROVEMENTS = ("first", "best")


@dataclass(frozen=True)
class Step:
    """One point of the climb: ``kind`` is "start" (a new climb) or "move" (an improvement)."""

    kind: str
    arch: Arch
    objective: float


class LocalSearch(SeededStrategy):
    name = "local"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        improvement: str = "first",
        num_init: int = 10,
    ):
        if improvement not in IMPROVEMENTS:
            raise ConfigError(
                f"unknown improvement {improvement!r}; accepted: {', '.join(IMPROVEMENTS)}"
            )
        if num_init < 1:
            raise ConfigError(f"num_init must be >= 1, got {num_init}")
        super().__init__(space, seed, constraint)
        self.improvement = improvement
        self.num_init = num_init
        self.values: dict[Arch, float] = {}  # canonical form -> best objective told
        self.in_flight: dict[Candidate, Arch] = {}  # pending candidate -> its canonical form
        self.trajectory: list[Step] = []
        # start phase: random draws still to ask, those in flight, the best told so far
        self._start_left = num_init
        self._start_pending: set[Candidate] = set()
        self._start_best: tuple[Arch, float] | None = None
        # climb phase: the current architecture and what is left of its neighbourhood
        self.current: tuple[Arch, float] | None = None
        self._queue: list[Arch] = []
        self._neighbourhood: set[Arch] = set()  # canonical forms
        self._best_neighbour: tuple[Arch, float] | None = None

    # asking ---------------------------------------------------------------------------------

    def ask(self) -> Candidate:
        if self.current is None:
            if self._start_left == 0:
                raise NoCandidateYet("local search: waiting for its starting point")
            self._start_left -= 1
            candidate = Candidate(self.sample_new())
            self._start_pending.add(candidate)
            return self._track(candidate)
        while self._queue:
            arch = self._queue.pop()
            if arch in self.seen or not self.feasible(arch):
                continue
            self.seen.add(arch)
            return self._track(Candidate(arch))
        if self._waiting_on_neighbours():
            raise NoCandidateYet("local search: waiting for the rest of the neighbourhood")
        self._restart()  # nothing left to try and nothing to wait for: a local optimum
        return self.ask()

    def _track(self, candidate: Candidate) -> Candidate:
        self.in_flight[candidate] = self.space.canonical(candidate.arch)
        return candidate

    def _waiting_on_neighbours(self) -> bool:
        return any(key in self._neighbourhood for key in self.in_flight.values())

    # telling --------------------------------------------------------------------------------

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        key = self.in_flight.pop(candidate, None) or self.space.canonical(candidate.arch)
        value = result.objective
        self.values[key] = max(value, self.values.get(key, value))
        if candidate in self._start_pending:
            self._start_pending.discard(candidate)
            if self._start_best is None or value > self._start_best[1]:
                self._start_best = (candidate.arch, value)
        elif (
            self.current is not None
            and key in self._neighbourhood
            and (self._best_neighbour is None or value > self._best_neighbour[1])
        ):
            self._best_neighbour = (candidate.arch, value)
        self._settle()

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self.in_flight.pop(candidate, None)
        self._start_pending.discard(candidate)
        self._settle()

    # the climb ------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Take every decision the results told so far allow: start, move, or restart."""
        if self.current is None:
            if self._start_left == 0 and not self._start_pending:
                if self._start_best is None:  # every start failed: draw again
                    self._start_left = 1
                    return
                self._move(*self._start_best, kind="start")
            return
        better = self._best_neighbour is not None and self._best_neighbour[1] > self.current[1]
        if better and self.improvement == "first":
            self._move(*self._best_neighbour, kind="move")  # type: ignore[misc]
        elif not self._queue and not self._waiting_on_neighbours():
            if better:
                self._move(*self._best_neighbour, kind="move")  # type: ignore[misc]
            else:
                self._restart()

    def _move(self, arch: Arch, value: float, kind: str) -> None:
        self.current = (arch, value)
        self.trajectory.append(Step(kind, arch, value))
        neighbours = self.space.neighbours(arch)
        order = self.rng.permutation(len(neighbours))
        self._queue, self._neighbourhood, self._best_neighbour = [], set(), None
        for i in order[::-1]:  # popped from the end: the permutation's order
            neighbour = neighbours[int(i)]
            key = self.space.canonical(neighbour)
            if key in self._neighbourhood or key == self.space.canonical(arch):
                continue
            self._neighbourhood.add(key)
            if key in self.values:
                if self._best_neighbour is None or self.values[key] > self._best_neighbour[1]:
                    self._best_neighbour = (neighbour, self.values[key])
            else:
                self._queue.append(neighbour)
        self._settle()  # a known neighbour may already be better

    def _restart(self) -> None:
        self.current = None
        self._queue, self._neighbourhood, self._best_neighbour = [], set(), None
        self._start_left, self._start_pending, self._start_best = 1, set(), None
