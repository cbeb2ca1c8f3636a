"""What a run found: its trials in order, the best one, and the anytime curve."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nasforge.core import Candidate, Result

T = TypeVar("T")


def rank_architectures(
    trials: Iterable[T],
    key: Callable[[T], Hashable],
    fidelity: Callable[[T], float | None],
    objective: Callable[[T], float],
    number: Callable[[T], int],
) -> list[T]:
    """One trial per architecture, best first: the rule for "the best" that a run's
    ``History.best``, ``nasforge show`` and final training all use. Each architecture (``key``:
    its canonical form, or its string) is judged by its best objective at the highest fidelity
    it reached, so on a multi-fidelity run a cell promoted to a long training is judged by that
    training, not by a lucky short one; ties go to the earlier trial. Unknown fidelity (None)
    is the estimator's full fidelity."""
    groups: dict[Hashable, list[T]] = {}
    for trial in trials:
        groups.setdefault(key(trial), []).append(trial)

    def level(trial: T) -> float:
        value = fidelity(trial)
        return math.inf if value is None else float(value)

    chosen = []
    for group in groups.values():
        top = max(level(t) for t in group)
        chosen.append(
            max((t for t in group if level(t) == top), key=lambda t: (objective(t), -number(t)))
        )
    chosen.sort(key=lambda t: (-objective(t), number(t)))
    return chosen


@dataclass(frozen=True)
class Trial:
    """One evaluated (or failed) candidate, numbered in the order the strategy asked for it."""

    number: int
    candidate: Candidate
    arch: str  # the space's string form, as stored
    result: Result | None
    error: str | None = None
    seconds: float = 0.0  # wall-clock time of the evaluation (not the simulated cost)

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def fidelity(self) -> float | None:
        """The fidelity it was asked at, as the store records it (so the report's readers of
        stored trials read these too)."""
        return self.candidate.fidelity


@dataclass
class History:
    """The trials of one run. ``best`` is chosen by objective only, never by a report metric,
    with each architecture judged at the highest fidelity it reached (`rank_architectures`,
    the rule final training uses too). ``key`` names an architecture (the experiment passes
    its space's ``canonical``, so isomorphic twins are one architecture); by default its
    string."""

    trials: list[Trial] = field(default_factory=list)
    key: Callable[[Trial], Hashable] | None = None
    _keys: dict[int, Hashable] = field(default_factory=dict, repr=False, compare=False)
    _judged: dict[Hashable, Trial] = field(default_factory=dict, repr=False, compare=False)
    _best: Trial | None = field(default=None, repr=False, compare=False)
    _cost: float = field(default=0.0, repr=False, compare=False)
    _failures: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        given, self.trials = list(self.trials), []
        for trial in given:  # trials given at construction are judged like added ones
            self.add(trial)

    def add(self, trial: Trial) -> None:
        """Insert in trial-number order: with several workers, trials finish out of order."""
        numbers = [t.number for t in self.trials]
        self.trials.insert(bisect.bisect(numbers, trial.number), trial)
        if trial.ok:
            self._best = self._judge(self._judged, self._best, trial)
            self._cost += trial.result.cost  # type: ignore[union-attr]
        else:
            self._failures += 1

    def _judge(self, judged: dict[Hashable, Trial], incumbent: Trial | None, trial: Trial) -> Trial:
        """Update ``judged`` (architecture -> the trial that judges it) with ``trial`` and
        return the new incumbent: the rule of `rank_architectures`, kept incrementally, so
        `best` costs nothing per ask (a multi-fidelity run has thousands of trials). The
        result does not depend on the order trials arrive in."""
        key = self._key(trial)
        judged[key] = rank_architectures(
            [t for t in (judged.get(key), trial) if t is not None],
            key=lambda _: key,
            fidelity=lambda t: t.result.fidelity,  # type: ignore[union-attr]
            objective=lambda t: t.result.objective,  # type: ignore[union-attr]
            number=lambda t: t.number,
        )[0]

        def order(t: Trial) -> tuple[float, int]:
            return (-t.result.objective, t.number)  # type: ignore[union-attr]

        if incumbent is None or self._key(incumbent) == key:  # its judge may have changed
            return min(judged.values(), key=order)
        return judged[key] if order(judged[key]) < order(incumbent) else incumbent

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.ok]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if not t.ok] if self._failures else []

    @property
    def best(self) -> Trial | None:
        return self._best

    @property
    def total_cost(self) -> float:
        return self._cost  # summed as trials are added: the budget asks after every trial

    def anytime(self, report_metric: str = "test_acc") -> list[dict[str, Any]]:
        """After each trial: the incumbent (the best so far, by the rule of `best`), its
        objective and its report metric (e.g. test accuracy), and the cumulative cost. This is
        the anytime curve papers plot: what you would have got had you stopped the search
        there; its last point is `best`."""
        curve: list[dict[str, Any]] = []
        judged: dict[Hashable, Trial] = {}
        incumbent: Trial | None = None
        cost = 0.0
        for trial in self.trials:
            if trial.ok:
                cost += trial.result.cost  # type: ignore[union-attr]
                incumbent = self._judge(judged, incumbent, trial)
            curve.append(
                {
                    "trial": trial.number,
                    "cost": cost,
                    "best_objective": None if incumbent is None else incumbent.result.objective,  # type: ignore[union-attr]
                    f"best_{report_metric}": None
                    if incumbent is None
                    else incumbent.result.report.get(report_metric),  # type: ignore[union-attr]
                    "best_arch": None if incumbent is None else incumbent.arch,
                }
            )
        return curve

    def _key(self, trial: Trial) -> Hashable:
        """The architecture a trial evaluated (memoised: ``key`` may be a canonical form that
        costs more than a lookup, and `best` is asked after every trial)."""
        if trial.number not in self._keys:
            self._keys[trial.number] = trial.arch if self.key is None else self.key(trial)
        return self._keys[trial.number]
