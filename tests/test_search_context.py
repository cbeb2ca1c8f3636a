"""Estimators that stop trials early see the search so far: what they are sent, and that it
depends only on told trials, so runs stay reproducible whatever the finish order."""

from __future__ import annotations

import dataclasses
import pickle
import time

import numpy as np
import pytest

from nasforge.capabilities import EstimatorCapabilities
from nasforge.core import Candidate, Result, SearchContext
from nasforge.executors.base import Job, run_job
from nasforge.executors.pool import ProcessPoolExecutor
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.random import RandomSearch

SPACE = NB201Space()


class CurveRecorder:
    """Test scaffolding: a curve from the cell's op indices; remembers each context it got."""

    name = "curve-recorder"
    objective_name = "score"
    capabilities = EstimatorCapabilities(uses_context=True, fidelity_range=(1.0, 4.0))

    def __init__(self) -> None:
        self.contexts: dict[int, SearchContext] = {}

    def evaluate(self, candidate: Candidate, context: SearchContext | None = None) -> Result:
        level = float(sum(candidate.arch.indices))
        curve = tuple(level * epoch / 4 for epoch in range(1, 5))
        self.contexts[len(self.contexts)] = context
        return Result(curve[-1], {"stopped_early": 0.0}, {}, 1.0, 4.0, curve)


def test_result_curve_survives_json_and_pickle():
    result = Result(0.5, {"a": 1.0}, {"test_acc": 2.0}, 3.0, 4.0, (0.1, 0.3, 0.5))
    assert Result.from_json(result.to_json()) == result
    assert pickle.loads(pickle.dumps(result)) == result
    assert result.for_strategy().curve == result.curve
    assert "curve" not in Result(0.5).to_json()  # stored runs without curves stay as they were


def test_run_job_passes_the_context_only_when_there_is_one():
    recorder = CurveRecorder()
    candidate = Candidate(SPACE.sample(np.random.default_rng(0)))
    context = SearchContext(1.0, ((0.5, 1.0),))
    assert run_job(recorder, Job(0, candidate, context)).result is not None
    assert recorder.contexts[0] == context


class SlowCurves(CurveRecorder):
    """CurveRecorder's curves, each trial sleeping 0.3-0.9 s (by its cell) and saying when it
    ran, so trials on a pool overlap and finish out of order."""

    def evaluate(self, candidate: Candidate, context: SearchContext | None = None) -> Result:
        start = time.time()
        time.sleep(0.3 + 0.1 * (sum(candidate.arch.indices) % 7))
        result = super().evaluate(candidate, context)
        timing = {"start": start, "end": time.time()}
        return dataclasses.replace(result, metrics={**result.metrics, **timing})


class RecordingPool(ProcessPoolExecutor):
    """The real worker pool, keeping every job it was given (with its context)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers=workers, threads_per_worker=1)
        self.submitted: list[Job] = []

    def submit(self, job: Job) -> None:
        self.submitted.append(job)
        super().submit(job)


class AskSpy:
    """Wraps a strategy; at each ask it notes what it had been told and which of its earlier
    asks were still pending (asked, not yet told)."""

    def __init__(self, inner: RandomSearch) -> None:
        self.inner, self.name = inner, inner.name
        self.asked: list[str] = []
        self.told: list[tuple[str, Result]] = []
        self.at_ask: list[tuple[list[tuple[str, Result]], list[str]]] = []

    def ask(self) -> Candidate:
        candidate = self.inner.ask()
        told = {arch for arch, _ in self.told}
        self.at_ask.append((list(self.told), [a for a in self.asked if a not in told]))
        self.asked.append(SPACE.to_string(candidate.arch))
        return candidate

    def tell(self, candidate: Candidate, result: Result) -> None:
        self.told.append((SPACE.to_string(candidate.arch), result))
        self.inner.tell(candidate, result)


@pytest.mark.slow
def test_on_a_pool_asks_keep_the_window_and_contexts_hold_what_the_strategy_was_told():
    window, workers, budget = 2, 3, 8
    spy = AskSpy(RandomSearch(SPACE, seed=0))
    pool = RecordingPool(workers)
    history = Experiment(
        SPACE, spy, SlowCurves(), budget, executor=pool, window=window, progress=False
    ).run()
    number = {t.arch: t.number for t in history.trials}
    assert sorted(number.values()) == list(range(budget)) and spy.asked == list(number)
    # what was pending at each ask, seen by the strategy: never more than window - 1 asks,
    # always the latest ones, and the window was used (an ask with a result outstanding)
    pending = [sorted(number[a] for a in waiting) for _, waiting in spy.at_ask]
    assert max(map(len, pending)) == window - 1
    assert all(p == list(range(i - len(p), i)) for i, p in enumerate(pending))
    # results were told in trial order, although the pool finished them in another
    told_order = [number[arch] for arch, _ in spy.told]
    assert told_order == list(range(budget))
    ends = [t.result.metrics["end"] for t in sorted(history.trials, key=lambda t: t.number)]
    assert ends != sorted(ends)
    # the trials really ran at once, but never more of them than the window, with a free worker
    spans = [(t.result.metrics["start"], t.result.metrics["end"]) for t in history.trials]
    overlap = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
    assert overlap == window < workers
    # each trial's context is what the strategy had been told when that trial was asked
    contexts = {job.number: job.context for job in pool.submitted}
    for i, (told, _) in enumerate(spy.at_ask):
        assert contexts[i].curves == tuple(result.curve for _, result in told)
        objectives = [result.objective for _, result in told]
        assert contexts[i].incumbent == (max(objectives) if objectives else None)
