"""An experiment joins a space, a strategy and an estimator under a budget, with a store.

The driver loop: ask -> store start -> submit to the executor -> collect outcomes as they finish
-> store end -> tell. Only the driver writes to the store. With an executor of k slots, k trials
are in flight and the strategy is asked again before earlier results are in (they are pending).

Two orders of telling results back:

* ``deterministic=True`` (default): trial ``i`` is asked after exactly the results of trials
  ``0 .. i-w`` have been told, in trial-number order, whatever order they finished in, where the
  window ``w`` (the number of asks that may be pending) defaults to the executor's slots. The
  trials therefore depend only on the seed and ``w``: never on timing, on the executor, or, for
  a fixed ``window``, on the number of workers.
* ``deterministic=False``: results are told as they arrive and a free slot is filled at once;
  best throughput when trial durations vary a lot, but timing decides the interleaving.

Either way each trial records how many tells preceded its ask (``asked_after``) and its place in
the tell order (``tell_seq``), so ``resume=True`` replays a stored run's exact interleaving into a
fresh strategy: finished trials are neither lost nor evaluated twice, trials that were in flight
when the run died are evaluated again under their own numbers, and the search continues as if it
had never stopped.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.core import Candidate, SearchContext
from nasforge.errors import ConfigError
from nasforge.estimators.base import Estimator
from nasforge.executors.base import Executor, Job, Outcome, WorkersUnavailable
from nasforge.executors.inprocess import InProcessExecutor
from nasforge.history import History, Trial
from nasforge.report.progress import Progress
from nasforge.spaces.base import SearchSpace
from nasforge.store import Store, StoredRun, StoredTrial
from nasforge.strategies.base import NoCandidateYet, Strategy


@dataclass(frozen=True)
class Budget:
    """Stop asking after ``evaluations`` trials, or once the summed cost (seconds, real or
    simulated) of finished trials reaches ``seconds``, whichever comes first. Trials already in
    flight then finish and are kept."""

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

    def allows_another(self, asked: int, history: History) -> bool:
        if self.evaluations is not None and asked >= self.evaluations:
            return False
        return self.seconds is None or history.total_cost < self.seconds

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
        if self.budget.seconds is not None and not getattr(estimator, "has_cost", True):
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
        if store is not None and not isinstance(store, Store):
            store = Store(store)
        self.store = store
        self.name = name or f"run-{time.strftime('%Y%m%d-%H%M%S')}"
        self.config = config or {}
        self.resume = resume
        self.show_progress = progress
        self.log_dir = None if log_dir is None else Path(log_dir)
        #: the report-only metric shown beside the objective (the estimator's own by default)
        self.report_metric = report_metric or getattr(estimator, "report_metric", "test_acc")
        self.history = History()
        self.run_record: StoredRun | None = None
        self.ask_seconds = 0.0  # time spent inside strategy.ask(): the search method's overhead
        self.log = logging.getLogger(f"nasforge.run.{self.name}")
        # driver state
        self._asked = 0  # trial numbers 0.._asked-1 have been asked
        self._told = 0  # results/failures told to the strategy so far
        self._in_flight: dict[int, Candidate] = {}
        self._untold: dict[int, Outcome] = {}  # finished, not yet told (deterministic order)
        self._candidates: dict[int, Candidate] = {}
        self._resubmit: list[int] = []
        self._executor_note: str | None = None  # the executor's last `degraded` line logged

    # public -------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        handler = next((h for h in self.log.handlers if isinstance(h, logging.FileHandler)), None)
        return None if handler is None else Path(handler.baseFilename)

    def run(self) -> History:
        self._open_run()
        self._open_log()
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
        self._finish("finished", f"finished: {self._summary()}", started)
        return self.history

    # the loop -----------------------------------------------------------------------------

    def _loop(self, progress: Progress) -> None:
        for number in self._resubmit:
            self._submit(number, self._candidates[number])
        while True:
            self._note_executor()
            self._fill_slots()
            if not self._in_flight:
                break
            for outcome in self.executor.wait(timeout=1.0):
                self._record(outcome)
            if not self.deterministic:
                self._tell_ready()
            progress.update(self._progress_amount(), self._progress_text())
        self._tell_ready(everything=True)

    def _note_executor(self) -> None:
        """Log once each change of the executor's health (e.g. worker slots given up)."""
        note = self.executor.degraded
        if note != self._executor_note:
            self._executor_note = note
            if note is not None:
                self.log.warning("executor %s: %s", self.executor.name, note)

    def _fill_slots(self) -> None:
        """Ask and submit while the budget and the telling order allow."""
        while self.budget.allows_another(self._asked, self.history):
            if len(self._in_flight) >= self.executor.slots:
                return
            if self.deterministic:
                # trial i is asked once trials 0 .. i-w are told (no more): tell them, in order
                needed = self._asked - self.window + 1
                while self._told < needed and self._told in self._untold:
                    self._tell(self._untold.pop(self._told))
                if self._told < needed:
                    return  # the result that must be told first is still running
            candidate = self._ask()
            if candidate is None:
                return
            number = self._asked
            self._asked += 1
            self._candidates[number] = candidate
            self._start(number, candidate)
            self._submit(number, candidate)

    def _ask(self) -> Candidate | None:
        """The strategy's next candidate, or None if it must first see pending results."""
        while True:
            asked = time.perf_counter()
            try:
                return self.strategy.ask()
            except NoCandidateYet:
                if self.deterministic and self._told in self._untold:
                    self._tell(self._untold.pop(self._told))
                    continue
                if not self._in_flight and not self._untold:
                    raise RuntimeError(
                        f"strategy {self.strategy.name!r} is waiting for results but none are "
                        "pending: a bug in the strategy"
                    ) from None
                return None
            finally:
                self.ask_seconds += time.perf_counter() - asked

    def _start(self, number: int, candidate: Candidate) -> None:
        arch = self.space.to_string(candidate.arch)
        if self.run_record is not None:
            self.store.start_trial(  # type: ignore[union-attr]
                self.run_record, number, arch, candidate.fidelity, asked_after=self._told
            )
        fidelity = "" if candidate.fidelity is None else f" at fidelity {candidate.fidelity:g}"
        self.log.info("trial %d started: %s%s", number, arch, fidelity)

    def _submit(self, number: int, candidate: Candidate) -> None:
        self._in_flight[number] = candidate
        context = self._context() if getattr(self.estimator, "uses_context", False) else None
        self.executor.submit(Job(number, candidate, context))

    def _context(self) -> SearchContext:
        """What an early-stopping estimator may know when this trial starts: the told trials
        only (in deterministic mode those are trials ``0 .. told-1``), so a run stays a function
        of its seed and window, and a resumed run rebuilds the same contexts."""
        told = [
            t for t in self.history.completed if not self.deterministic or t.number < self._told
        ]
        full = (getattr(self.estimator, "fidelity_range", None) or (None, None))[1]
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
        tell_seq = outcome.number if self.deterministic else self._told + len(self._untold)
        if self.run_record is not None:
            self.store.finish_trial(  # type: ignore[union-attr]
                self.run_record,
                outcome.number,
                outcome.result,
                outcome.error,
                worker=outcome.worker,
                seconds=outcome.seconds,
                tell_seq=tell_seq,
            )
        arch = self.space.to_string(candidate.arch)
        self.history.add(
            Trial(outcome.number, candidate, arch, outcome.result, outcome.error, outcome.seconds)
        )
        if outcome.result is None:
            self.log.warning(
                "trial %d failed on %s: %s", outcome.number, outcome.worker, outcome.error
            )
        else:
            self.log.info(
                "trial %d finished on %s in %.2f s: %s %.4f",
                outcome.number,
                outcome.worker,
                outcome.seconds,
                self.estimator.objective_name,
                outcome.result.objective,
            )
        if outcome.fatal:
            raise ConfigError(str(outcome.error))
        self._untold[outcome.number] = outcome

    def _tell_ready(self, everything: bool = False) -> None:
        """Tell finished results: all of them (as-finished mode, or at the end), else only the
        next ones in trial order."""
        if not self.deterministic:
            for number in list(self._untold):  # arrival order = the tell_seq recorded
                self._tell(self._untold.pop(number))
            return
        if everything:
            for number in sorted(self._untold):
                self._tell(self._untold.pop(number))
            return
        while self._told in self._untold:
            self._tell(self._untold.pop(self._told))

    def _tell(self, outcome: Outcome) -> None:
        candidate = self._candidates[outcome.number]
        self._told += 1
        if outcome.result is not None:
            self.strategy.tell(candidate, outcome.result.for_strategy())
        else:
            tell_failure = getattr(self.strategy, "tell_failure", None)
            if tell_failure is not None:
                tell_failure(candidate, outcome.error or "failed")

    # runs, resume -------------------------------------------------------------------------

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
                f"run {self.name!r} already exists in {self.store.location}; choose another "
                f"name or resume it (nasforge resume {self.name} --store {self.store.location})"
            )
        if existing.effective_status == "running":
            raise ConfigError(f"run {self.name!r} is still running (pid {existing.pid})")
        self.run_record = existing
        self._replay(self.store.trials(existing))
        self.store.claim_run(existing)

    def _stored_config(self) -> dict[str, Any]:
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
            **({"setup": self.estimator.describe()} if hasattr(self.estimator, "describe") else {}),
        }

    def _replay(self, stored: list[StoredTrial]) -> None:
        """Rebuild the strategy from a stored run: before each stored ask, tell exactly the
        results that had been told before it (``asked_after``, in ``tell_seq`` order); check the
        strategy asks for the same architecture; queue unfinished trials to run again."""
        told_order = sorted(
            (t for t in stored if t.state != "running" and t.tell_seq is not None),
            key=lambda t: t.tell_seq,  # type: ignore[arg-type, return-value]
        )
        for trial in stored:
            if trial.number != self._asked:
                raise ConfigError(
                    f"cannot resume run {self.name!r}: trial numbers jump from {self._asked} to "
                    f"{trial.number} in the store"
                )
            while self._told < (trial.asked_after or 0):
                self._tell_stored(told_order[self._told])
            candidate = self.strategy.ask()
            arch = self.space.to_string(candidate.arch)
            if arch != trial.arch or candidate.fidelity != trial.fidelity:
                raise ConfigError(
                    f"cannot resume run {self.name!r}: at trial {trial.number} the strategy asks "
                    f"for {arch} but the store holds {trial.arch}; was the configuration "
                    "(strategy, seed, space, workers) changed?"
                )
            self._asked += 1
            self._candidates[trial.number] = candidate
            if trial.state == "running":
                self._resubmit.append(trial.number)
                continue
            outcome = Outcome(
                trial.number, trial.result, trial.error, trial.seconds or 0.0, trial.worker or ""
            )
            self.history.add(
                Trial(
                    trial.number,
                    candidate,
                    trial.arch,
                    trial.result,
                    trial.error,
                    trial.seconds or 0.0,
                )
            )
            self._untold[trial.number] = outcome
        # what is still untold is told later in the order the original run would have told it
        tell_seq = {t.number: t.tell_seq for t in stored}
        self._untold = dict(sorted(self._untold.items(), key=lambda kv: tell_seq[kv[0]] or 0))
        self.log.info(
            "resumed: %d finished trials replayed, %d to run again",
            len(self.history.trials),
            len(self._resubmit),
        )

    def _tell_stored(self, trial: StoredTrial) -> None:
        outcome = self._untold.pop(trial.number, None)
        if outcome is None:
            raise ConfigError(
                f"cannot resume run {self.name!r}: trial {trial.number} was told before it was "
                "asked; the store is inconsistent"
            )
        self._tell(outcome)

    # logging, progress, end ---------------------------------------------------------------

    def _open_log(self) -> None:
        folder = self.log_dir
        if folder is None and self.store is not None:
            # beside a SQLite file; for a database server, in the working directory
            store_file = getattr(self.store, "path", None)
            folder = Path(store_file).parent / "logs" if store_file else Path("logs")
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / f"{self.name}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.log.handlers = [handler]
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self.log.info(
            "run %s: %s on %s with %s, budget %s, executor %s (%d slots), %s",
            "resumed" if self.resume else "started",
            self.strategy.name,
            self.space.name,
            self.estimator.name,
            self.budget.describe(),
            self.executor.name,
            self.executor.slots,
            "deterministic order" if self.deterministic else "as finished",
        )

    def _finish(self, status: str, message: str, started: bool) -> None:
        if started:
            self.executor.shutdown()
        if self.store is not None and self.run_record is not None:
            self.store.set_status(self.run_record, status)
        self.log.info("run %s", message)
        for handler in self.log.handlers:
            handler.close()
        self.log.handlers = []

    def _summary(self) -> str:
        best = self.history.best
        text = f"{len(self.history.trials)} trials, {len(self.history.failed)} failed"
        if best is not None:
            text += f", best {best.result.objective:.4f} (trial {best.number}: {best.arch})"  # type: ignore[union-attr]
        return text

    def _progress(self) -> Progress:
        """Counted in trials or in cost seconds; with both limits, in percent of whichever
        runs out first (so the ETA follows the limit that will end the run)."""
        budget = self.budget
        total: float
        if budget.evaluations is not None and budget.seconds is not None:
            total, unit = 100.0, "% of budget"
        elif budget.evaluations is not None:
            total, unit = budget.evaluations, "trials"
        else:
            total, unit = budget.seconds, "s"  # type: ignore[assignment]
        label = f"{self.name} " if self.store is not None else ""
        return Progress(total, label=label, unit=unit, enabled=self.show_progress)

    def _progress_amount(self) -> float:
        budget, trials = self.budget, len(self.history.trials)
        if budget.seconds is None:
            return trials
        cost = round(self.history.total_cost, 1)
        if budget.evaluations is None:
            return cost
        return round(100.0 * max(trials / budget.evaluations, cost / budget.seconds), 1)

    def _progress_text(self) -> str:
        best = self.history.best
        parts = [f"running {len(self._in_flight)}"]
        if self.executor.degraded:
            parts.append(self.executor.degraded)
        if self.history.failed:
            parts.append(f"failed {len(self.history.failed)}")
        if best is not None:
            parts.append(f"best {self.estimator.objective_name} {best.result.objective:.2f}")  # type: ignore[union-attr]
        return " | ".join(parts)
