"""The order in which finished trials are told to the strategy, and the count of tells.

Two orders:

* ``deterministic=True`` (default): trial ``i`` is asked after exactly the results of trials
  ``0 .. i-w`` have been told, in trial-number order, whatever order they finished in, where the
  window ``w`` is the number of asks that may be pending. The trials therefore depend only on the
  seed and ``w``: never on timing, on the executor, or, for a fixed window, on the number of
  workers.
* ``deterministic=False``: results are told as they arrive; best throughput when trial
  durations vary a lot, but timing decides the interleaving.

The count of tells so far is what each ask is recorded after (``asked_after``), and each result
has a place in the tell order (``tell_seq``): together they let a resumed run replay the exact
interleaving (``replay.py``). Strategies are only ever told ``Result.for_strategy()`` copies,
here, so "never select on the test set" holds by construction.
"""

from __future__ import annotations

from collections.abc import Callable

from nasforge.capabilities import FailureListener
from nasforge.core import Candidate
from nasforge.executors.base import Outcome
from nasforge.strategies.base import Strategy


class Teller:
    """Holds finished, not yet told outcomes and tells them when their turn comes."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        deterministic: bool,
        window: int,
        on_failure: FailureListener | None,
    ):
        self.strategy, self.on_failure = strategy, on_failure
        self.deterministic, self.window = deterministic, window
        self.told = 0  # results and failures told so far
        self.candidates: dict[int, Candidate] = {}  # every asked trial's candidate
        self.untold: dict[int, Outcome] = {}  # finished, not yet told; insertion = tell order

    def asked(self, number: int, candidate: Candidate) -> None:
        self.candidates[number] = candidate

    def place_of(self, number: int) -> int:
        """``tell_seq`` of a result arriving now: its number in trial order, else its place in
        the arrival order."""
        return number if self.deterministic else self.told + len(self.untold)

    def arrived(self, outcome: Outcome) -> None:
        self.untold[outcome.number] = outcome

    def reorder(self, key: Callable[[int], int]) -> None:
        """Put the untold outcomes in the order ``key`` (of the trial number) gives."""
        self.untold = dict(sorted(self.untold.items(), key=lambda item: key(item[0])))

    def may_ask(self, asked: int) -> bool:
        """Whether trial number ``asked`` may be asked now. In trial order it may once trials
        ``0 .. asked-w`` are told (no more): tell those that are in; False if one still runs."""
        if not self.deterministic:
            return True
        needed = asked - self.window + 1
        while self.told < needed and self.told in self.untold:
            self.tell(self.untold.pop(self.told))
        return self.told >= needed

    def tell_next(self) -> bool:
        """Tell the next result in trial order if it is in (a strategy waiting for results
        asks for it); False when there is none to tell yet (or results go as they arrive)."""
        if self.deterministic and self.told in self.untold:
            self.tell(self.untold.pop(self.told))
            return True
        return False

    def tell_arrived(self) -> None:
        """As-finished order: tell everything that is in, in arrival order."""
        for number in list(self.untold):
            self.tell(self.untold.pop(number))

    def tell_rest(self) -> None:
        """At the end of a run: tell whatever is left, in trial order."""
        for number in sorted(self.untold):
            self.tell(self.untold.pop(number))

    def tell(self, outcome: Outcome) -> None:
        candidate = self.candidates[outcome.number]
        self.told += 1
        if outcome.result is not None:
            self.strategy.tell(candidate, outcome.result.for_strategy())
        elif self.on_failure is not None:
            self.on_failure(candidate, outcome.error or "failed")
