"""An experiment joins a space, a strategy and an estimator under a budget, with a store.

The driver loop is the protocol it runs: ask -> store start -> submit to the executor ->
collect outcomes as they finish -> store end -> tell. Only the driver writes to the store. With
an executor of k slots, k trials are in flight and the strategy is asked again before earlier
results are in (they are pending).

The parts around the loop live beside it: `budget.Budget` (when to stop asking),
`telling.Teller` (the order results are told in: trial order by default, or as finished),
`replay.replay` (``resume=True``: a stored run's interleaving replayed into a fresh strategy)
and `runlog` (the log file and the progress line). What the estimator and the strategy can do
beyond their protocols is read once, here, when the experiment is built
(``nasforge.capabilities``): a misspelt or undeclared capability is an error then, not a
silent default during the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from nasforge.budget import Budget
from nasforge.capabilities import capabilities_of, failure_listener
from nasforge.core import Candidate, SearchContext
from nasforge.errors import ConfigError
from nasforge.estimators.base import Estimator
from nasforge.executors.base import Executor, Job, Outcome, WorkersUnavailable
from nasforge.executors.inprocess import InProcessExecutor
from nasforge.history import History, Trial
from nasforge.latency.machine import describe_environment
from nasforge.names import check_run_name
from nasforge.replay import replay
from nasforge.report.progress import Progress
from nasforge.runlog import (
    RunLog,
    budget_progress,
    log_folder,
    progress_amount,
    progress_text,
    summary,
)
from nasforge.spaces.base import SearchSpace
from nasforge.store import Store, StoredRun
from nasforge.strategies.base import NoCandidateYet, Strategy
from nasforge.telling import Teller

__all__ = ["Budget", "Experiment"]


class Experiment:
    """Run ``strategy`` on ``space`` with ``estimator`` until ``budget`` is spent."""

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        estimator: Estimator,
        budget: Budget | int,
        *,
        executor: Executor | None = None,
        deterministic: bool = True,
        window: int | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        resume: bool = False,
        progress: bool = True,
        log_dir: str | os.PathLike[str] | None = None,
        report_metric: str | None = None,
    ):
        self.space, self.strategy, self.estimator = space, strategy, estimator
        self.budget = Budget.of(budget)
        #: what the estimator declares beyond ``evaluate``, checked once, here
        self.capabilities = capabilities_of(estimator)
        if self.budget.seconds is not None and not self.capabilities.has_cost:
            raise ConfigError(
                f"estimator {estimator.name!r} reports no cost (its tables have no training time);"
                " give the budget as a number of evaluations"
            )
        self.executor: Executor = executor or InProcessExecutor()
        self.deterministic = deterministic
        if window is not None and (isinstance(window, bool) or window < 1):
            raise ConfigError(f"window must be a whole number >= 1, got {window}")
        self.window = window or self.executor.slots
        if resume and (store is None or name is None):
            raise ConfigError("resume needs a store and the name of the run to continue")
        if name is not None and not resume:  # before the store is opened: nothing written
            check_run_name(name)
        if store is not None and not isinstance(store, Store):
            store = Store(store)
        self.store = store
        self.name = name or f"run-{time.strftime('%Y%m%d-%H%M%S')}"
        self.config = config or {}
        self.resume = resume
        self.show_progress = progress
        self.log_dir = None if log_dir is None else Path(log_dir)
        #: the report-only metric shown beside the objective (the estimator's own by default)
        self.report_metric = report_metric or self.capabilities.report_metric
        self.history = History(key=lambda trial: space.canonical(trial.candidate.arch))
        self.run_record: StoredRun | None = None
        self.ask_seconds = 0.0  # time spent inside strategy.ask(): the search method's overhead
        self.runlog = RunLog(self.name, estimator.objective_name)
        self.log = self.runlog.logger
        # driver state
        self.teller = Teller(
            strategy,
            deterministic=deterministic,
            window=self.window,
            on_failure=failure_listener(strategy),
        )
        self._asked = 0  # trial numbers 0.._asked-1 have been asked
        self._in_flight: dict[int, Candidate] = {}
        self._resubmit: list[int] = []  # resumed: trials that were in flight when it stopped
        self._executor_note: str | None = None  # the executor's last `degraded` line logged

    # public -------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        return self.runlog.path

    def run(self) -> History:
        self._open_run()
        self.runlog.open(log_folder(self.log_dir, self.store), self._header())
        if self.resume:
            self.runlog.info(
                "resumed: %d finished trials replayed, %d to run again",
                len(self.history.trials),
                len(self._resubmit),
            )
        progress = self._progress()
        started = False
        try:
            self.executor.start(self.estimator)
            started = True
            self._loop(progress)
        except BaseException as err:
            progress.close()
            stopped = KeyboardInterrupt | SystemExit | WorkersUnavailable  # resumable, not failed
            status = "interrupted" if isinstance(err, stopped) else "failed"
            self._finish(status, f"{status}: {type(err).__name__}: {err}", started)
            raise
        progress.close()
        self._finish("finished", f"finished: {summary(self.history)}", started)
        return self.history

    # the loop -----------------------------------------------------------------------------

    def _loop(self, progress: Progress) -> None:
        for number in self._resubmit:
            self._submit(number, self.teller.candidates[number])
        while True:
            self._note_executor()
            self._fill_slots()
            if not self._in_flight:
                break
            for outcome in self.executor.wait(timeout=1.0):
                self._record(outcome)
            if not self.deterministic:
                self.teller.tell_arrived()
            progress.update(self._progress_amount(), self._progress_text())
        self.teller.tell_rest()

    def _note_executor(self) -> None:
        """Log once each change of the executor's health (e.g. worker slots given up)."""
        note = self.executor.degraded
        if note != self._executor_note:
            self._executor_note = note
            if note is not None:
                self.log.warning("executor %s: %s", self.executor.name, note)

    def _fill_slots(self) -> None:
        """Ask -> store start -> submit, while the budget, the slots and the telling order
        allow."""
        while self.budget.allows_another(self._asked, self.history):
            if len(self._in_flight) >= self.executor.slots:
                return
            if not self.teller.may_ask(self._asked):
                return  # the result that must be told first is still running
            candidate = self._ask()
            if candidate is None:
                return
            number = self._asked
            self._asked += 1
            self.teller.asked(number, candidate)
            self._start(number, candidate)
            self._submit(number, candidate)

    def _ask(self) -> Candidate | None:
        """The strategy's next candidate, or None if it must first see pending results."""
        while True:
            asked = time.perf_counter()
            try:
                return self.strategy.ask()
            except NoCandidateYet:
                if self.teller.tell_next():
                    continue
                if not self._in_flight and not self.teller.untold:
                    raise RuntimeError(
                        f"strategy {self.strategy.name!r} is waiting for results but none are "
                        "pending: a bug in the strategy"
                    ) from None
                return None
            finally:
                self.ask_seconds += time.perf_counter() - asked

    def _start(self, number: int, candidate: Candidate) -> None:
        """Store the trial as running before it runs: a killed run loses nothing."""
        arch = self.space.to_string(candidate.arch)
        if self.run_record is not None:
            self.store.start_trial(  # type: ignore[union-attr]
                self.run_record, number, arch, candidate.fidelity, asked_after=self.teller.told
            )
        self.runlog.trial_started(number, arch, candidate.fidelity)

    def _submit(self, number: int, candidate: Candidate) -> None:
        self._in_flight[number] = candidate
        context = self._context() if self.capabilities.uses_context else None
        self.executor.submit(Job(number, candidate, context))

    def _context(self) -> SearchContext:
        """What an early-stopping estimator may know when this trial starts: the told trials
        only (in deterministic mode those are trials ``0 .. told-1``), so a run stays a function
        of its seed and window, and a resumed run rebuilds the same contexts."""
        told = [
            t
            for t in self.history.completed
            if not self.deterministic or t.number < self.teller.told
        ]
        full = (self.capabilities.fidelity_range or (None, None))[1]
        finished = [
            t.result.objective  # type: ignore[union-attr]
            for t in told
            if not t.result.metrics.get("stopped_early")  # type: ignore[union-attr]
            and (full is None or t.result.fidelity is None or t.result.fidelity >= full)  # type: ignore[union-attr]
        ]
        curves = tuple(t.result.curve for t in told if t.result.curve)  # type: ignore[union-attr]
        return SearchContext(max(finished) if finished else None, curves)

    def _record(self, outcome: Outcome) -> None:
        """Store an outcome as soon as it arrives; telling may wait for the trial order."""
        candidate = self._in_flight.pop(outcome.number)
        if self.run_record is not None:
            self.store.finish_trial(  # type: ignore[union-attr]
                self.run_record,
                outcome.number,
                outcome.result,
                outcome.error,
                worker=outcome.worker,
                seconds=outcome.seconds,
                tell_seq=self.teller.place_of(outcome.number),
            )
        arch = self.space.to_string(candidate.arch)
        self.history.add(
            Trial(outcome.number, candidate, arch, outcome.result, outcome.error, outcome.seconds)
        )
        self.runlog.trial_ended(outcome)
        if outcome.fatal:
            raise ConfigError(str(outcome.error))
        self.teller.arrived(outcome)

    # the run record -----------------------------------------------------------------------

    def _open_run(self) -> None:
        """Create the run in the store, or (``resume``) replay the stored one and claim it."""
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
                f"run {self.name!r} already exists in {self.store.location}; choose another "
                f"name or resume it (nasforge resume {self.name} --store {self.store.location})"
            )
        if existing.effective_status == "running":
            raise ConfigError(f"run {self.name!r} is still running (pid {existing.pid})")
        self.run_record = existing
        done = replay(
            self.name, self.store.trials(existing), self.space, self.strategy, self.teller
        )
        self._asked, self._resubmit = done.asked, done.resubmit
        for trial in done.trials:
            self.history.add(trial)
        self.store.claim_run(existing)

    def _stored_config(self) -> dict[str, Any]:
        setup = self.capabilities.setup
        return {
            **self.config,
            "space": self.space.name,
            "strategy": self.strategy.name,
            "estimator": self.estimator.name,
            "objective": self.estimator.objective_name,
            "budget": {"evaluations": self.budget.evaluations, "seconds": self.budget.seconds},
            "deterministic": self.deterministic,
            "slots": self.executor.slots,
            "window": self.window,
            # the data split, fidelity and augmentation, so a report can disclose them
            **({"setup": dict(setup)} if setup is not None else {}),
            "environment": describe_environment(),
        }

    def _finish(self, status: str, message: str, started: bool) -> None:
        if started:
            self.executor.shutdown()
        if self.store is not None and self.run_record is not None:
            self.store.set_status(self.run_record, status)
        self.runlog.close(message)

    # log and progress ---------------------------------------------------------------------

    def _header(self) -> str:
        return (
            f"run {'resumed' if self.resume else 'started'}: {self.strategy.name} on "
            f"{self.space.name} with {self.estimator.name}, budget {self.budget.describe()}, "
            f"executor {self.executor.name} ({self.executor.slots} slots), "
            f"{'deterministic order' if self.deterministic else 'as finished'}"
        )

    def _progress(self) -> Progress:
        label = f"{self.name} " if self.store is not None else ""
        return budget_progress(self.budget, label, self.show_progress)

    def _progress_amount(self) -> float:
        return progress_amount(self.budget, self.history)

    def _progress_text(self) -> str:
        return progress_text(
            self.history,
            len(self._in_flight),
            self.estimator.objective_name,
            self.executor.degraded,
        )
