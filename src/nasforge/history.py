"""What a run found: its trials in order, the best one, and the anytime curve."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from nasforge.core import Candidate, Result


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


@dataclass
class History:
    """The trials of one run. ``best`` is chosen by objective only, never by a report metric."""

    trials: list[Trial] = field(default_factory=list)

    def add(self, trial: Trial) -> None:
        """Insert in trial-number order: with several workers, trials finish out of order."""
        numbers = [t.number for t in self.trials]
        self.trials.insert(bisect.bisect(numbers, trial.number), trial)

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.ok]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if not t.ok]

    @property
    def best(self) -> Trial | None:
        done = self.completed
        return max(done, key=lambda t: t.result.objective) if done else None  # type: ignore[union-attr]

    @property
    def total_cost(self) -> float:
        return sum(t.result.cost for t in self.completed)  # type: ignore[union-attr]

    def anytime(self, report_metric: str = "test_acc") -> list[dict[str, Any]]:
        """After each trial: the incumbent (best objective so far), its objective and its
        report metric (e.g. test accuracy), and the cumulative cost. This is the anytime curve
        papers plot: what you would have got had you stopped the search there."""
        curve: list[dict[str, Any]] = []
        incumbent: Trial | None = None
        cost = 0.0
        for trial in self.trials:
            if trial.ok:
                cost += trial.result.cost  # type: ignore[union-attr]
                if incumbent is None or trial.result.objective > incumbent.result.objective:  # type: ignore[union-attr]
                    incumbent = trial
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
