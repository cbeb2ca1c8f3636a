"""The in-process executor: jobs run in the driver, one at a time, in submission order.

Right for tabular and surrogate benchmarks, where a query takes microseconds and a process
boundary would cost more than the work. ``slots`` > 1 lets it stand in for k workers: the
experiment then keeps k jobs pending exactly as it would with a pool, so a benchmark run with
``slots=k`` proposes the same trials as a real k-worker run.
"""

from __future__ import annotations

from collections import deque

from nasforge.errors import ConfigError
from nasforge.estimators.base import Estimator
from nasforge.executors.base import ExecutorBase, Job, Outcome, run_job, worker_label


class InProcessExecutor(ExecutorBase):
    name = "inprocess"

    def __init__(self, slots: int = 1):
        if slots < 1:
            raise ConfigError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.queue: deque[Job] = deque()
        self.estimator: Estimator | None = None
        self.label = worker_label()

    def start(self, estimator: Estimator) -> None:
        self.estimator = estimator

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if not self.queue:
            return []
        if self.estimator is None:
            raise RuntimeError("InProcessExecutor.start(estimator) was not called")
        return [run_job(self.estimator, self.queue.popleft(), self.label)]

    def shutdown(self) -> None:
        self.queue.clear()
