"""Estimators that stop trials early see the search so far: what they are sent, and that it
depends only on told trials, so runs stay reproducible whatever the finish order."""

from __future__ import annotations

import pickle

import numpy as np

from nasforge.capabilities import EstimatorCapabilities
from nasforge.core import Candidate, Result, SearchContext
from nasforge.executors.base import Job, run_job
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.random import RandomSearch
from test_async_experiment import ShuffledExecutor  # tests/ is on sys.path (conftest.py)

SPACE = NB201Space()


class RecordingExecutor(ShuffledExecutor):
    """Finishes trials in a seeded random order and keeps every job it was given."""

    def __init__(self, slots: int, seed: int):
        super().__init__(slots, seed)
        self.submitted: list[Job] = []

    def submit(self, job: Job) -> None:
        self.submitted.append(job)
        super().submit(job)


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


def test_contexts_hold_exactly_the_told_trials_whatever_the_finish_order():
    runs = []
    for executor_seed in (1, 2):
        recorder = CurveRecorder()
        executor = RecordingExecutor(slots=3, seed=executor_seed)
        history = Experiment(
            SPACE, RandomSearch(SPACE, seed=0), recorder, 12, executor=executor, progress=False
        ).run()
        by_number = {t.number: t for t in history.trials}
        contexts = [job.context for job in executor.submitted]
        for number, context in enumerate(contexts):
            told = [by_number[i] for i in range(number - 3 + 1)]  # window 3: trials 0..n-3
            assert context.curves == tuple(t.result.curve for t in told)
            best = max((t.result.objective for t in told), default=None)
            assert context.incumbent == best
        runs.append(contexts)
    assert runs[0] == runs[1]  # the finish order changed, the contexts did not
