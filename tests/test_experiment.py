"""The experiment loop with the store: budgets, failures, report-only metrics, resume."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.experiment import Budget, Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.random import RandomSearch

SPACE = NB201Space()


@pytest.fixture
def bench(nb201_dir):
    return NB201Benchmark("cifar10", data_dir=nb201_dir.parent)


class Spy:
    """Wraps a strategy and records what it is told."""

    def __init__(self, inner):
        self.inner, self.name, self.told = inner, inner.name, []

    def ask(self) -> Candidate:
        return self.inner.ask()

    def tell(self, candidate, result) -> None:
        self.told.append(result)
        self.inner.tell(candidate, result)


class Flaky:
    """The real benchmark, but trial numbers in ``crash_on`` raise (a crashing training run),
    and trial ``interrupt_at`` raises KeyboardInterrupt (the user, or a kill, stops the run)."""

    def __init__(self, bench, crash_on=(), interrupt_at=None):
        self.bench, self.crash_on, self.interrupt_at = bench, set(crash_on), interrupt_at
        self.name, self.objective_name, self.calls = bench.name, bench.objective_name, 0

    def evaluate(self, candidate) -> Result:
        number, self.calls = self.calls, self.calls + 1
        if number == self.interrupt_at:
            raise KeyboardInterrupt
        if number in self.crash_on:
            raise RuntimeError("CUDA-free out of memory")
        return self.bench.evaluate(candidate)


class Costed:
    """The real benchmark, each evaluation costing ``seconds`` (the tables have no time)."""

    def __init__(self, bench, seconds: float):
        self.bench, self.seconds = bench, seconds
        self.name, self.objective_name = bench.name, bench.objective_name

    def evaluate(self, candidate) -> Result:
        return dataclasses.replace(self.bench.evaluate(candidate), cost=self.seconds)


def cifar10_table(nb201_dir) -> dict[str, tuple[float, float]]:
    """Cell string -> (12-epoch CIFAR-10 validation accuracy, 200-epoch test accuracy), read
    from the benchmark's own CSV files with the csv module, not through nasforge."""
    with (nb201_dir / "nb201_12ep.csv").open(newline="") as f:
        val = {row["cellstr"]: float(row["cifar10-val"]) for row in csv.DictReader(f)}
    with (nb201_dir / "nb201_200ep_test.csv").open(newline="") as f:
        rows = csv.DictReader(f)
        test = {r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"]) for r in rows}
    return {cell: (val[cell], test[cell]) for cell in val}


def test_budget_of_evaluations_and_the_best_by_the_tables_numbers(bench, nb201_dir):
    history = Experiment(SPACE, RandomSearch(SPACE, seed=0), bench, 25, progress=False).run()
    assert len(history.trials) == 25
    table = cifar10_table(nb201_dir)
    searched = [t.arch for t in history.trials]
    assert len(set(searched)) == 25 and all(cell in table for cell in searched)
    # the winner is the searched cell with the table's highest validation accuracy, and its
    # numbers are the table's
    ranked = sorted(searched, key=lambda cell: table[cell][0], reverse=True)
    assert table[ranked[0]][0] > table[ranked[1]][0]  # no tie for first in this search
    best = history.best
    assert best.arch == ranked[0]
    assert (best.result.objective, best.result.report["test_acc"]) == table[ranked[0]]
    # the anytime curve: after each trial, the table's best of the cells searched so far
    curve = history.anytime()
    assert len(curve) == 25
    for i, point in enumerate(curve):
        leader = max(searched[: i + 1], key=lambda cell: table[cell][0])
        assert point["best_arch"] == leader
        assert (point["best_objective"], point["best_test_acc"]) == table[leader]


def test_strategy_never_sees_report_metrics(bench):
    spy = Spy(RegularizedEvolution(SPACE, seed=0))
    Experiment(SPACE, spy, bench, 20, progress=False).run()
    assert len(spy.told) == 20
    assert all(r.report == {} for r in spy.told)
    assert all("test_acc" not in r.metrics for r in spy.told)


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_budget_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="budget"):
        Budget.of(bad)


def test_seconds_budget_refused_for_an_estimator_without_cost(bench):
    with pytest.raises(ConfigError, match="no cost"):
        Experiment(SPACE, RandomSearch(SPACE), bench, Budget(seconds=10), progress=False)


@pytest.mark.parametrize(
    ("budget", "limit"),
    [(Budget(evaluations=1000, seconds=20_000), "seconds"), (Budget(8, seconds=1e9), "trials")],
)
def test_progress_with_two_limits_follows_the_one_that_ends_the_run(bench, budget, limit):
    costed = Costed(bench, seconds=1000.0)
    experiment = Experiment(SPACE, RandomSearch(SPACE, seed=0), costed, budget, progress=False)
    history = experiment.run()
    bar = experiment._progress()
    assert (bar.total, bar.unit) == (100.0, "% of budget")
    if limit == "seconds":
        assert len(history.trials) < 1000 and history.total_cost >= 20_000
    else:
        assert len(history.trials) == 8
    assert experiment._progress_amount() >= 100.0  # the run ended at a full bar


def test_a_crashing_trial_is_recorded_as_failed_and_the_run_goes_on(bench, tmp_path):
    store = Store(tmp_path / "runs.db")
    estimator = Flaky(bench, crash_on={3, 7})
    history = Experiment(
        SPACE, RandomSearch(SPACE, seed=0), estimator, 12, store=store, name="r", progress=False
    ).run()
    assert len(history.trials) == 12 and len(history.failed) == 2
    stored = store.trials(store.get_run("r"))
    assert [t.state for t in stored].count("failed") == 2
    assert "RuntimeError: CUDA-free out of memory" in stored[3].error
    assert store.get_run("r").status == "finished"


def test_every_trial_is_stored_and_a_name_is_not_reused(bench, tmp_path):
    path = tmp_path / "runs.db"
    Experiment(
        SPACE, RandomSearch(SPACE, seed=0), bench, 10, store=path, name="a", progress=False
    ).run()
    stored = Store(path).trials(Store(path).get_run("a"))
    assert [t.number for t in stored] == list(range(10))
    assert all(t.state == "complete" and t.result.report["test_acc"] > 0 for t in stored)
    with pytest.raises(ConfigError, match="already exists"):
        Experiment(
            SPACE, RandomSearch(SPACE, seed=0), bench, 10, store=path, name="a", progress=False
        ).run()


def test_interrupted_run_resumes_without_losing_or_repeating_trials(bench, tmp_path):
    path = tmp_path / "runs.db"
    reference = Experiment(
        SPACE, RegularizedEvolution(SPACE, seed=5), Flaky(bench, crash_on={4}), 40, progress=False
    ).run()

    crashing = Flaky(bench, crash_on={4}, interrupt_at=23)
    with pytest.raises(KeyboardInterrupt):
        Experiment(
            SPACE,
            RegularizedEvolution(SPACE, seed=5),
            crashing,
            40,
            store=path,
            name="evo",
            progress=False,
        ).run()
    store = Store(path)
    run = store.get_run("evo")
    assert run.status == "interrupted"
    before = store.trials(run)
    assert len(before) == 24 and before[-1].state == "running"

    counting = Flaky(bench)
    resumed = Experiment(
        SPACE,
        RegularizedEvolution(SPACE, seed=5),
        counting,
        40,
        store=path,
        name="evo",
        resume=True,
        progress=False,
    ).run()
    after = store.trials(store.get_run("evo"))
    assert [t.number for t in after] == list(range(40))
    assert counting.calls == 40 - 23  # the in-flight trial again, then the rest; nothing twice
    assert after[4].state == "failed"  # the failure is history, not retried
    assert [t.arch for t in after[:23]] == [t.arch for t in before[:23]]
    # the rebuilt strategy continues exactly as an uninterrupted run would have
    assert [t.arch for t in resumed.trials] == [t.arch for t in reference.trials]
    assert store.get_run("evo").status == "finished"


def test_resume_detects_a_changed_configuration(bench, tmp_path):
    path = tmp_path / "runs.db"
    with pytest.raises(KeyboardInterrupt):
        Experiment(
            SPACE,
            RandomSearch(SPACE, seed=1),
            Flaky(bench, interrupt_at=5),
            10,
            store=path,
            name="r",
            progress=False,
        ).run()
    with pytest.raises(ConfigError, match="configuration"):
        Experiment(
            SPACE,
            RandomSearch(SPACE, seed=2),
            bench,
            10,
            store=path,
            name="r",
            resume=True,
            progress=False,
        ).run()


def test_resume_of_unknown_run_names_the_runs_there(bench, tmp_path):
    path = tmp_path / "runs.db"
    Experiment(SPACE, RandomSearch(SPACE), bench, 2, store=path, name="known", progress=False).run()
    with pytest.raises(ConfigError, match=r"no run named 'nope'.*known"):
        Experiment(
            SPACE,
            RandomSearch(SPACE),
            bench,
            2,
            store=path,
            name="nope",
            resume=True,
            progress=False,
        ).run()


def test_store_from_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    store = Store(path)
    store.db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    store.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        Store(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite, just some text that is long enough " * 20)
    with pytest.raises(ConfigError, match="not a nasforge SQLite store"):
        Store(path)
