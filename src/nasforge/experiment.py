"""An experiment joins a space, a strategy and an estimator under a budget, with a store.

The loop is ask -> record start -> evaluate -> record end -> tell. The strategy is told
``Result.for_strategy()`` only. With a store, every trial is written before and after it runs,
and ``resume=True`` continues a run: stored results are replayed into the fresh strategy (which
must ask for the same architectures again, since strategies are deterministic given their seed
and what they were told), so finished trials are neither lost nor evaluated twice.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError, NasforgeError
from nasforge.estimators.base import Estimator
from nasforge.history import History, Trial
from nasforge.report.progress import Progress
from nasforge.spaces.base import SearchSpace
from nasforge.store import Store, StoredRun, StoredTrial
from nasforge.strategies.base import Strategy


@dataclass(frozen=True)
class Budget:
    """Stop after ``evaluations`` trials, or once the summed cost (seconds, real or simulated)
    reaches ``seconds``, whichever comes first."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.seconds is None:
            raise ConfigError("a budget needs evaluations or seconds")
        if self.evaluations is not None and (
            isinstance(self.evaluations, bool) or int(self.evaluations) != self.evaluations
        ):
            raise ConfigError(f"budget evaluations must be a whole number, got {self.evaluations}")
        if self.evaluations is not None and self.evaluations <= 0:
            raise ConfigError(f"budget must be > 0 evaluations, got {self.evaluations}")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ConfigError(f"budget must be > 0 seconds, got {self.seconds}")

    @classmethod
    def of(cls, value: Budget | int | float) -> Budget:
        """An int means evaluations; a Budget passes through."""
        if isinstance(value, Budget):
            return value
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"budget must be a whole number of evaluations, got {value}")
        return cls(evaluations=int(value))

    def exhausted(self, history: History) -> bool:
        if self.evaluations is not None and len(history.trials) >= self.evaluations:
            return True
        return self.seconds is not None and history.total_cost >= self.seconds

    def describe(self) -> str:
        parts = []
        if self.evaluations is not None:
            parts.append(f"{self.evaluations} evaluations")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} s of cost")
        return " or ".join(parts)


class Experiment:
    """Run ``strategy`` on ``space`` with ``estimator`` until ``budget`` is spent."""

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        estimator: Estimator,
        budget: Budget | int,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        resume: bool = False,
        progress: bool = True,
        report_metric: str = "test_acc",
    ):
        self.space, self.strategy, self.estimator = space, strategy, estimator
        self.budget = Budget.of(budget)
        if self.budget.seconds is not None and not getattr(estimator, "has_cost", True):
            raise ConfigError(
                f"estimator {estimator.name!r} reports no cost (its tables have no training time);"
                " give the budget as a number of evaluations"
            )
        if store is not None and not isinstance(store, Store):
            store = Store(store)
        self.store = store
        if resume and (store is None or name is None):
            raise ConfigError("resume needs a store and the name of the run to continue")
        self.name = name or f"run-{time.strftime('%Y%m%d-%H%M%S')}"
        self.config = config or {}
        self.resume = resume
        self.show_progress = progress
        self.report_metric = report_metric
        self.history = History()
        self.run_record: StoredRun | None = None
        self.ask_seconds = 0.0  # time spent inside strategy.ask(): the search method's overhead

    # public -------------------------------------------------------------------------------

    def run(self) -> History:
        self._open_run()
        progress = self._progress()
        try:
            while not self.budget.exhausted(self.history):
                self._one_trial()
                progress.update(self._progress_amount(), self._progress_text())
        except BaseException:
            progress.close()
            self._set_status("interrupted")
            raise
        progress.close()
        self._set_status("finished")
        return self.history

    # internals ----------------------------------------------------------------------------

    def _open_run(self) -> None:
        if self.store is None:
            return
        existing = self.store.find_run(self.name)
        if existing is None:
            if self.resume:
                self.store.get_run(self.name)  # raises a clear "no run named ..." error
            self.run_record = self.store.create_run(self.name, self._stored_config())
            return
        if not self.resume:
            raise ConfigError(
                f"run {self.name!r} already exists in {self.store.path}; choose another name "
                f"or resume it (nasforge resume {self.name} --store {self.store.path})"
            )
        if existing.effective_status == "running":
            raise ConfigError(f"run {self.name!r} is still running (pid {existing.pid})")
        self.run_record = existing
        self.store.claim_run(existing)
        self._replay(self.store.trials(existing))

    def _stored_config(self) -> dict[str, Any]:
        return {
            **self.config,
            "space": self.space.name,
            "strategy": self.strategy.name,
            "estimator": self.estimator.name,
            "objective": self.estimator.objective_name,
            "budget": {"evaluations": self.budget.evaluations, "seconds": self.budget.seconds},
        }

    def _replay(self, stored: list[StoredTrial]) -> None:
        """Rebuild the strategy's state from finished trials; the trial that was in flight when
        the run stopped (state ``running``) is evaluated again, under its own number."""
        for trial in stored:
            if trial.state == "running":
                break
            candidate = self.strategy.ask()
            arch = self.space.to_string(candidate.arch)
            if arch != trial.arch or candidate.fidelity != trial.fidelity:
                raise ConfigError(
                    f"cannot resume run {self.name!r}: at trial {trial.number} the strategy asks "
                    f"for {arch} but the store holds {trial.arch}; was the configuration "
                    "(strategy, seed, space) changed?"
                )
            if trial.result is not None:
                self.strategy.tell(candidate, trial.result.for_strategy())
            self.history.append(
                Trial(
                    trial.number,
                    candidate,
                    trial.arch,
                    trial.result,
                    trial.error,
                    (trial.finished or trial.started) - trial.started,
                )
            )

    def _one_trial(self) -> None:
        asked = time.perf_counter()
        candidate = self.strategy.ask()
        self.ask_seconds += time.perf_counter() - asked
        number = len(self.history.trials)
        arch = self.space.to_string(candidate.arch)
        if self.run_record is not None:
            self.store.start_trial(self.run_record, number, arch, candidate.fidelity)  # type: ignore[union-attr]
        start = time.perf_counter()
        result, error = self._evaluate(candidate)
        seconds = time.perf_counter() - start
        if self.run_record is not None:
            self.store.finish_trial(self.run_record, number, result, error)  # type: ignore[union-attr]
        self.history.append(Trial(number, candidate, arch, result, error, seconds))
        if result is not None:
            self.strategy.tell(candidate, result.for_strategy())

    def _evaluate(self, candidate: Candidate) -> tuple[Result | None, str | None]:
        """A trial that raises becomes a failed trial with its reason; the run goes on.
        Input errors (NasforgeError) and interrupts stop the run: retrying cannot fix them."""
        try:
            return self.estimator.evaluate(candidate), None
        except (NasforgeError, KeyboardInterrupt):
            raise
        except Exception as err:  # a crash in one trial must not end the search
            reason = f"{type(err).__name__}: {err}"
            last = traceback.extract_tb(err.__traceback__)[-1:]
            if last:
                reason += f" (at {last[0].filename}:{last[0].lineno})"
            return None, reason

    def _set_status(self, status: str) -> None:
        if self.store is not None and self.run_record is not None:
            self.store.set_status(self.run_record, status)

    def _progress(self) -> Progress:
        total: float = (
            self.budget.evaluations if self.budget.evaluations is not None else self.budget.seconds  # type: ignore[assignment]
        )
        unit = "trials" if self.budget.evaluations is not None else "s"
        label = f"{self.name} " if self.store is not None else ""
        return Progress(total, label=label, unit=unit, enabled=self.show_progress)

    def _progress_amount(self) -> float:
        if self.budget.evaluations is not None:
            return len(self.history.trials)
        return round(self.history.total_cost, 1)

    def _progress_text(self) -> str:
        best = self.history.best
        failed = len(self.history.failed)
        text = f"failed {failed} | " if failed else ""
        if best is None:
            return text + "no result yet"
        text += f"best {self.estimator.objective_name} {best.result.objective:.2f}"  # type: ignore[union-attr]
        return text
