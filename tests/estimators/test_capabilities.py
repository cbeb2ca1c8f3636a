"""Declared capabilities: read once when an experiment is built, refused when misspelt or
undeclared, the documented defaults for a plain estimator, and the facts of each built-in
estimator (checked against its data files and settings, not against its own declaration)."""

from __future__ import annotations

import csv
import json
import pickle
from typing import ClassVar

import numpy as np
import pytest

from conftest import require_data
from nasforge.capabilities import EstimatorCapabilities, capabilities_of, failure_listener
from nasforge.core import Candidate, Result
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError
from nasforge.estimators.base import EstimatorBase
from nasforge.estimators.benchmarks.nb201 import TABLE_12EP, TABLE_200EP, NB201Benchmark
from nasforge.estimators.early_stopping import MedianStopping
from nasforge.estimators.tabular import TabularBenchmark
from nasforge.estimators.train import Train
from nasforge.experiment import Budget, Experiment
from nasforge.spaces.custom import Custom
from nasforge.spaces.darts import DartsSpace
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.random import RandomSearch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPACE = NB201Space()


class Plain:
    """A hand-written estimator with none of the optional members: cost 1 s per trial, and an
    ``evaluate`` that takes no context (sending one would fail every trial)."""

    name, objective_name = "plain", "ops"

    def evaluate(self, candidate: Candidate) -> Result:
        score = float(sum(candidate.arch.indices))
        return Result(score, report={"test_acc": score}, cost=1.0)


def build(estimator, budget=5, **kw) -> Experiment:
    return Experiment(SPACE, RandomSearch(SPACE, seed=0), estimator, budget, progress=False, **kw)


# --- refused at build, naming the estimator and the member ----------------------------------


class MisspeltMember(Plain):
    name = "misspelt-member"
    capabilites = EstimatorCapabilities(has_cost=False)  # sic: the record would be ignored


class MisspeltField(Plain):
    name = "misspelt-field"

    @property
    def capabilities(self) -> EstimatorCapabilities:
        return EstimatorCapabilities(has_cots=False)  # type: ignore[call-arg]  # sic


class OldStyle(Plain):
    name = "old-style"
    has_cost = False  # how capabilities were once probed: nothing reads this now


class OldStyleOnBase(EstimatorBase, Plain):
    name = "old-style-on-base"
    fidelity_range = (1.0, 4.0)  # disagrees with the inherited default record (None)


class WrongType(Plain):
    name = "wrong-type"
    capabilities: ClassVar = {"has_cost": False}


class ContextWithoutParameter(Plain):
    name = "context-without-parameter"
    capabilities = EstimatorCapabilities(uses_context=True)


@pytest.mark.parametrize(
    ("estimator", "words"),
    [
        (MisspeltMember(), ["'misspelt-member'", "'capabilites'", "'capabilities'"]),
        (MisspeltField(), ["'misspelt-field'", "has_cots", "accepted fields", "has_cost"]),
        (OldStyle(), ["'old-style'", "has_cost = False", "EstimatorCapabilities(has_cost=...)"]),
        (OldStyleOnBase(), ["'old-style-on-base'", "fidelity_range = (1.0, 4.0)"]),
        (WrongType(), ["'wrong-type'", "capabilities must be an EstimatorCapabilities", "dict"]),
        (ContextWithoutParameter(), ["'context-without-parameter'", "uses_context", "context"]),
    ],
    ids=[
        "misspelt-member",
        "misspelt-field",
        "old-style",
        "old-style-on-base",
        "wrong-type",
        "context-without-parameter",
    ],
)
def test_a_wrong_declaration_is_refused_when_the_experiment_is_built(estimator, words):
    with pytest.raises(ConfigError) as caught:
        build(estimator)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"has_cost": "no"}, "has_cost must be True or False"),
        ({"report_metric": ""}, "report_metric"),
        ({"fidelity_range": (5, 1)}, "0 < low <= high"),
        ({"fidelity_range": 3}, "(low, high)"),
        ({"build_options": {1: 2}}, "build_options"),
    ],
)
def test_bad_capability_values_are_config_errors(fields, word):
    with pytest.raises(ConfigError, match=word.replace("(", r"\(").replace(")", r"\)")):
        EstimatorCapabilities(**fields)


def test_a_misspelt_tell_failure_is_refused_and_a_strategy_without_one_is_not_told():
    class Typo(RandomSearch):
        def tell_failures(self, candidate, reason):  # sic: would never be called
            raise AssertionError("unreachable")

    with pytest.raises(ConfigError, match=r"'random'.*'tell_failures'.*'tell_failure'"):
        Experiment(SPACE, Typo(SPACE), Plain(), 3, progress=False)

    class BadSignature(RandomSearch):
        def tell_failure(self, candidate):  # the reason is missing
            pass

    with pytest.raises(ConfigError, match=r"tell_failure\(candidate\)"):
        failure_listener(BadSignature(SPACE))

    class Silent:
        """ask/tell only: failures are not its business."""

        name = "silent"

        def __init__(self):
            self.inner, self.told = RandomSearch(SPACE, seed=1), 0

        def ask(self):
            return self.inner.ask()

        def tell(self, candidate, result):
            self.told += 1

    class CrashOnOdd(Plain):
        calls = 0

        def evaluate(self, candidate):
            self.calls += 1
            if self.calls % 2 == 0:
                raise RuntimeError("crash")
            return super().evaluate(candidate)

    silent = Silent()
    history = Experiment(SPACE, silent, CrashOnOdd(), 6, progress=False).run()
    assert len(history.trials) == 6 and len(history.failed) == 3
    assert silent.told == 3  # only the results; the failures reached no one, and nothing broke


# --- the documented defaults for a hand-written estimator -----------------------------------


def test_a_plain_estimator_gets_the_documented_defaults(tmp_path):
    declared = capabilities_of(Plain())
    assert declared == EstimatorCapabilities(
        has_cost=True,
        report_metric="test_acc",
        uses_context=False,
        fidelity_range=None,
        build_options={},
        setup=None,
    )
    # a seconds budget is accepted (has_cost) and spent: 1 s per trial buys 4 trials
    store = Store(tmp_path / "runs.db")
    experiment = build(Plain(), Budget(seconds=4), store=store, name="plain")
    history = experiment.run()
    assert len(history.trials) == 4 and not history.failed  # no context was sent to evaluate
    assert "setup" not in store.get_run("plain").config  # nothing to describe
    assert experiment.report_metric == "test_acc"


def test_capabilities_pickle_for_worker_processes():
    declared = EstimatorCapabilities(
        fidelity_range=(1, 3), build_options={"C": 8}, setup={"epochs": 3}
    )
    assert pickle.loads(pickle.dumps(declared)) == declared


# --- facts of the built-in estimators --------------------------------------------------------


def test_nb201_tables_have_no_cost_and_no_fidelity_to_choose(nb201_dir):
    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)
    columns = []
    for table in (TABLE_12EP, TABLE_200EP):
        with open(nb201_dir / table, newline="") as handle:
            columns += next(csv.reader(handle))
    timed = [c for c in columns if any(w in c.lower() for w in ("time", "cost", "second"))]
    assert timed == []  # the files record accuracies only: there is no training time to report
    declared = capabilities_of(bench)
    assert not declared.has_cost and declared.fidelity_range is None
    assert declared.report_metric == "test_acc"
    with pytest.raises(ConfigError, match="reports no cost"):
        build(bench, Budget(seconds=100))


def test_nb301_has_a_cost_and_the_epochs_of_its_config_space():
    from nasforge.estimators.benchmarks.nb301 import NB301Benchmark

    folder = require_data("nb301/model.onnx").parent
    with open(folder / "config_space.json") as handle:
        hyper = {h["name"]: h for h in json.load(handle)["hyperparameters"]}
    declared = capabilities_of(NB301Benchmark(data_dir=folder.parent))
    epoch = hyper["epoch"]  # the surrogate's own range for its epoch input
    assert declared.fidelity_range == (epoch["lower"], epoch["upper"]) == (1.0, 98.0)
    assert declared.has_cost and declared.report_metric == "val_acc_final"
    bench = NB301Benchmark(data_dir=folder.parent)
    arch = DartsSpace().sample(np.random.default_rng(0))
    low, high = bench.evaluate(Candidate(arch, 1)), bench.evaluate(Candidate(arch, 98))
    assert 0 < low.cost < high.cost  # predicted runtime grows with the epochs trained
    assert declared.report_metric in high.report


def test_train_declares_its_epochs_its_network_and_its_recipe():
    digits = load_dataset("digits")  # scikit-learn's 8x8 grey digits, 10 classes
    train = Train(SPACE, digits, epochs=3, net={"C": 4, "N": 1}, subset=0.3, score_test=False)
    declared = capabilities_of(train)
    assert declared.fidelity_range == (1.0, 3.0) and declared.has_cost
    assert dict(declared.build_options) == {"in_channels": 1, "num_classes": 10, "C": 4, "N": 1}
    assert dict(declared.setup)["epochs"] == 3 and dict(declared.setup)["dataset"] == "digits"
    assert not declared.uses_context
    stopping = Train(SPACE, digits, epochs=3, early_stopping=MedianStopping())
    assert capabilities_of(stopping).uses_context  # an early-stopping rule reads the search
    result = train.evaluate(Candidate(SPACE.sample(np.random.default_rng(0)), 1))
    assert result.cost > 0 and result.fidelity == 1  # wall time of one epoch, the lowest


def test_a_table_has_a_cost_only_with_a_cost_column(tmp_path):
    space = Custom({"width": [8, 16]}, name="w")
    path = tmp_path / "t.csv"
    path.write_text("width,acc,test,seconds\n8,80,79,12\n16,85,84,30\n")
    timed = TabularBenchmark.from_csv(
        path, space, objective="acc", report=("test",), cost="seconds"
    )
    untimed = TabularBenchmark.from_csv(path, space, objective="acc", report=("test",))
    assert capabilities_of(timed).has_cost and not capabilities_of(untimed).has_cost
    assert capabilities_of(timed).report_metric == "test"

    def run(table):
        return Experiment(space, RandomSearch(space), table, Budget(seconds=40), progress=False)

    # the file's seconds are the budget's: 12 + 30 = 42 s reach 40 s after both rows, not one
    assert len(run(timed).run().trials) == 2
    with pytest.raises(ConfigError, match="reports no cost"):
        run(untimed)
