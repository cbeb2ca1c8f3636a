"""Several trials in flight: order independence, pending candidates, waiting strategies, and
exact resume of an asynchronous run."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.core import Candidate, Result
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.executors.base import ExecutorBase, Job, Outcome, run_job
from nasforge.executors.inprocess import InProcessExecutor
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.base import NoCandidateYet, SeededStrategy
from nasforge.strategies.evolution import RegularizedEvolution

SPACE = NB201Space()


@pytest.fixture
def bench(nb201_dir):
    return NB201Benchmark("cifar10", data_dir=nb201_dir.parent)


class ShuffledExecutor(ExecutorBase):
    """Runs jobs in-process but hands outcomes back in a seeded random order, one or two at a
    time, like a pool whose trials take different times. ``die_after`` raises KeyboardInterrupt
    once that many outcomes were delivered (the driver is killed mid-run)."""

    name = "shuffled"

    def __init__(self, slots: int, seed: int, die_after: int | None = None):
        self.slots, self.rng, self.die_after = slots, np.random.default_rng(seed), die_after
        self.jobs: list[Job] = []
        self.delivered = 0
        self.max_in_flight = 0

    def start(self, estimator) -> None:
        self.estimator = estimator

    def submit(self, job: Job) -> None:
        self.jobs.append(job)
        self.max_in_flight = max(self.max_in_flight, len(self.jobs))

    def wait(self, timeout=None) -> list[Outcome]:
        if self.die_after is not None and self.delivered >= self.die_after:
            raise KeyboardInterrupt
        count = min(len(self.jobs), int(self.rng.integers(1, 3)))
        if self.die_after is not None:
            count = min(count, self.die_after - self.delivered)
        picked = sorted(self.rng.choice(len(self.jobs), count, replace=False), reverse=True)
        done = [self.jobs.pop(i) for i in picked]
        self.delivered += len(done)
        return [run_job(self.estimator, job, "shuffled") for job in done]


def archs(history) -> list[str]:
    return [t.arch for t in history.trials]


def evolve(bench, executor, **kwargs):
    strategy = RegularizedEvolution(SPACE, seed=3, population=6, sample=2)
    return Experiment(SPACE, strategy, bench, 40, executor=executor, progress=False, **kwargs)


def test_deterministic_order_does_not_depend_on_finish_order(bench):
    reference = evolve(bench, InProcessExecutor(slots=3)).run()
    for seed in range(3):
        executor = ShuffledExecutor(slots=3, seed=seed)
        shuffled = evolve(bench, executor).run()
        assert archs(shuffled) == archs(reference)
        assert executor.max_in_flight == 3
    assert [t.number for t in reference.trials] == list(range(40))


def test_a_fixed_window_gives_the_same_trials_whatever_the_number_of_workers(bench):
    reference = archs(evolve(bench, InProcessExecutor(slots=1), window=3).run())
    for slots in (2, 3, 5):
        executor = ShuffledExecutor(slots=slots, seed=slots)
        assert archs(evolve(bench, executor, window=3).run()) == reference
        assert executor.max_in_flight == min(slots, 3)


def test_more_slots_means_more_pending_asks(bench):
    one = archs(evolve(bench, InProcessExecutor(slots=1)).run())
    four = archs(evolve(bench, InProcessExecutor(slots=4)).run())
    assert one[:6] == four[:6]  # the random initial population does not depend on results
    assert one != four  # later children do: with 4 slots, 3 results are still pending
    assert len(set(map(SPACE.from_string, four))) == 40  # pending ones are never re-proposed


def test_as_finished_mode_keeps_all_slots_busy_and_records_every_trial(bench):
    executor = ShuffledExecutor(slots=4, seed=0)
    history = evolve(bench, executor, deterministic=False).run()
    assert [t.number for t in history.trials] == list(range(40))
    assert executor.max_in_flight == 4 and all(t.ok for t in history.trials)


class Batches(SeededStrategy):
    """Proposes batches of 4 and waits (NoCandidateYet) until a whole batch is told, like a
    synchronous successive-halving rung."""

    name = "batches"

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self.pending = 0

    def ask(self) -> Candidate:
        if self.pending == 4:
            raise NoCandidateYet
        self.pending += 1
        return Candidate(self.sample_new())

    def tell(self, candidate, result) -> None:
        super().tell(candidate, result)
        self.pending -= 1
        if self.pending == 0 and len(self.history) % 4 != 0:
            raise AssertionError("told out of batch")


@pytest.mark.parametrize("deterministic", [True, False])
def test_a_waiting_strategy_is_asked_again_after_results(bench, deterministic):
    executor = ShuffledExecutor(slots=3, seed=1)
    strategy = Batches(SPACE)
    history = Experiment(
        SPACE, strategy, bench, 16, executor=executor, progress=False, deterministic=deterministic
    ).run()
    assert len(history.trials) == 16 and len(strategy.history) == 16


def test_a_strategy_waiting_with_nothing_pending_is_reported(bench):
    class Stuck(SeededStrategy):
        name = "stuck"

        def ask(self):
            raise NoCandidateYet

    with pytest.raises(RuntimeError, match="none are pending"):
        Experiment(SPACE, Stuck(SPACE), bench, 5, progress=False).run()


@pytest.mark.parametrize("deterministic", [True, False])
def test_resume_of_an_asynchronous_run_replays_its_interleaving(bench, tmp_path, deterministic):
    path = tmp_path / "runs.db"
    reference = evolve(bench, ShuffledExecutor(slots=3, seed=7), deterministic=deterministic).run()

    killed = evolve(
        bench,
        ShuffledExecutor(slots=3, seed=7, die_after=17),
        store=path,
        name="run",
        deterministic=deterministic,
    )
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    store = Store(path)
    before = store.trials(store.get_run("run"))
    assert store.get_run("run").status == "interrupted"
    assert sum(t.state == "complete" for t in before) == 17
    assert sum(t.state == "running" for t in before) >= 1

    # the same executor seed continues the same completion order only in deterministic mode,
    # so as-finished runs are compared on what must hold whatever the timing
    executor = ShuffledExecutor(slots=3, seed=7)
    resumed = evolve(
        bench, executor, store=path, name="run", resume=True, deterministic=deterministic
    ).run()
    after = store.trials(store.get_run("run"))
    assert [t.number for t in after] == list(range(40))
    assert all(t.state == "complete" for t in after)
    finished_before = {t.number: t.finished for t in before if t.state == "complete"}
    assert all(after[n].finished == when for n, when in finished_before.items())  # not re-run
    assert executor.delivered == 40 - 17
    if deterministic:
        assert archs(resumed) == archs(reference)
    assert len({SPACE.canonical(SPACE.from_string(a)) for a in archs(resumed)}) == 40


def test_fatal_input_error_in_a_trial_stops_the_run(bench):
    from nasforge.errors import ConfigError

    class Broken:
        name, objective_name = "broken", "x"

        def evaluate(self, candidate) -> Result:
            raise ConfigError("fidelity 7.5 is not a whole number of epochs")

    with pytest.raises(ConfigError, match="whole number"):
        Experiment(SPACE, RegularizedEvolution(SPACE), Broken(), 5, progress=False).run()
