"""The run's log file: one per run beside the store, continued on resume, each trial's start
and end in it, and the resume line counting what the store holds."""

from __future__ import annotations

import pytest

from nasforge.core import Candidate, Result
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.random import RandomSearch

SPACE = NB201Space()


class StopAt:
    """The real NB201 tables; evaluation ``stop_at`` raises KeyboardInterrupt (a killed run),
    evaluation ``crash_at`` raises RuntimeError (a failed trial)."""

    def __init__(self, bench: NB201Benchmark, stop_at: int | None, crash_at: int | None):
        self.bench, self.stop_at, self.crash_at, self.calls = bench, stop_at, crash_at, 0
        self.name, self.objective_name = bench.name, bench.objective_name

    def evaluate(self, candidate: Candidate) -> Result:
        number, self.calls = self.calls, self.calls + 1
        if number == self.stop_at:
            raise KeyboardInterrupt
        if number == self.crash_at:
            raise RuntimeError("diverged")
        return self.bench.evaluate(candidate)


def test_a_resumed_run_continues_its_log_file(nb201_dir, tmp_path):
    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)
    path = tmp_path / "runs.db"

    def run(estimator, resume: bool) -> Experiment:
        return Experiment(
            SPACE,
            RandomSearch(SPACE, seed=3),
            estimator,
            8,
            store=path,
            name="logged",
            resume=resume,
            progress=False,
        )

    first = run(StopAt(bench, stop_at=5, crash_at=2), resume=False)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    log = tmp_path / "logs" / "logged.log"
    assert first.log_path is None  # closed when the run ended
    lines = log.read_text().splitlines()
    assert "run started: random on nb201 with nb201-benchmark" in lines[0]
    assert sum("started:" in line and "trial" in line for line in lines) == 6  # trials 0..5
    assert any("WARNING trial 2 failed" in line and "diverged" in line for line in lines)
    assert "run interrupted: KeyboardInterrupt" in lines[-1]

    run(StopAt(bench, stop_at=None, crash_at=None), resume=True).run()
    lines = log.read_text().splitlines()
    resumed = next(i for i, line in enumerate(lines) if "run resumed:" in line)
    # 5 trials (0..4, one of them failed) were finished, trial 5 was running when it stopped
    assert "resumed: 5 finished trials replayed, 1 to run again" in lines[resumed + 1]
    stored = Store(path).trials(Store(path).get_run("logged"))
    finished = [line for line in lines[resumed:] if "finished on" in line]
    assert len(finished) == len(stored) - 5 == 3  # trials 5, 6, 7 ran after the resume
    assert "run finished: 8 trials, 1 failed, best" in lines[-1]
