"""The executor interface and the one function every worker runs.

A ``Job`` is a numbered candidate; an ``Outcome`` is its result or the reason it failed. The
driver (the experiment) submits jobs and collects outcomes as they finish; only the driver
writes to the store, so workers return values and never touch it.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from nasforge.core import Candidate, Result, SearchContext
from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator


@dataclass(frozen=True)
class Job:
    number: int  # the trial number: outcomes are matched and ordered by it, never by finish time
    candidate: Candidate
    context: SearchContext | None = None  # for estimators that stop trials early


@dataclass(frozen=True)
class Outcome:
    """What came back for a job. ``result`` is None when the trial failed; ``error`` says why
    (the exception, a time or memory limit, a worker that died). ``fatal`` marks input errors
    (``NasforgeError``): retrying cannot fix them, so the experiment stops and reports them."""

    number: int
    result: Result | None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""
    fatal: bool = False


class WorkersUnavailable(RuntimeError):
    """No worker can run trials any more: every one failed to start, retries included.

    Neither the input's fault (not a ``NasforgeError``) nor the search's: the experiment stops
    the run as ``interrupted``, with the trials in flight still marked running, so ``resume``
    continues it once workers can start again."""


def worker_label() -> str:
    return f"pid {os.getpid()}@{socket.gethostname()}"


def describe_exception(err: BaseException) -> str:
    """``Type: message (at file:line)``: one line that says what failed and where."""
    reason = f"{type(err).__name__}: {err}"
    last = traceback.extract_tb(err.__traceback__)[-1:]
    if last:
        reason += f" (at {os.path.basename(last[0].filename)}:{last[0].lineno})"
    return reason


def run_job(estimator: Estimator, job: Job, worker: str | None = None) -> Outcome:
    """Evaluate one job and turn any exception into a failed outcome. Runs inside workers."""
    start = time.perf_counter()
    label = worker or worker_label()
    try:
        if job.context is None:
            result = estimator.evaluate(job.candidate)
        else:
            result = estimator.evaluate(job.candidate, context=job.context)  # type: ignore[call-arg]
    except NasforgeError as err:
        return Outcome(
            job.number,
            None,
            str(err),
            time.perf_counter() - start,
            label,
            fatal=err.fatal_to_search,
        )
    except Exception as err:  # a crash in one trial must not end the search
        return Outcome(
            job.number, None, describe_exception(err), time.perf_counter() - start, label
        )
    return Outcome(job.number, result, None, time.perf_counter() - start, label)


@runtime_checkable
class Executor(Protocol):
    """Runs up to ``slots`` jobs at once.

    ``start(estimator)`` ships the estimator to the workers once (not per job);
    ``submit(job)`` must not block; ``wait(timeout)`` blocks until at least one outcome is
    ready (or the timeout passes, then returns ``[]``) and returns every ready outcome;
    ``shutdown()`` stops the workers. Executors are context managers. ``slots`` may shrink
    while a search runs (workers that cannot be replaced); ``degraded`` is then one line saying
    so, for the run's log and progress line, else None. An executor left with no way to run a
    job raises `WorkersUnavailable` from ``submit`` or ``wait``.
    """

    name: str
    slots: int
    degraded: str | None

    def start(self, estimator: Estimator) -> None: ...

    def submit(self, job: Job) -> None: ...

    def wait(self, timeout: float | None = None) -> list[Outcome]: ...

    def shutdown(self) -> None: ...


class ExecutorBase:
    """Context-manager plumbing shared by the executors."""

    name = "base"
    slots = 1
    degraded: str | None = None

    def __enter__(self) -> ExecutorBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:  # pragma: no cover - overridden
        pass
