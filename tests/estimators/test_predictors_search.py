"""Model-based strategies with a predictor of ``nasforge.estimators.predictors`` as their
surrogate, on the real NAS-Bench-201 table (``--option predictor=NAME``)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_data
from nasforge import factory
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPACE = NB201Space()


@pytest.fixture(scope="module")
def bench():
    folder = require_data("nb201/nb201_200ep_test.csv").parent
    return NB201Benchmark(data_dir=folder.parent)


def search(bench, strategy, predictor, seed, budget=18, **options):
    made = factory.make_strategy(strategy, SPACE, seed, {"predictor": predictor, **options})
    history = Experiment(SPACE, made, bench, budget, progress=False).run()
    return made, [t for t in history.trials if t.ok]


@pytest.mark.parametrize(("strategy", "predictor"), [("bo", "rf"), ("bananas", "lgbm")])
def test_a_predictor_surrogate_searches_the_table(bench, strategy, predictor):
    made, trials = search(bench, strategy, predictor, seed=3)
    assert made.surrogate is not None and made.surrogate.name == predictor
    assert made.surrogate.fitted  # the model asks went through the predictor
    assert len(trials) == 18
    keys = {SPACE.canonical_key(SPACE.from_string(t.arch)) for t in trials}
    assert len(keys) == 18  # no isomorphic twin evaluated twice
    # the 8 model-guided asks are better cells than the 10 random ones (table values)
    values = [t.result.objective for t in trials]
    assert np.mean(values[10:]) > np.mean(values[:10])
    # same seed, same asks
    _, again = search(bench, strategy, predictor, seed=3)
    assert [t.arch for t in again] == [t.arch for t in trials]


def test_a_scorer_without_predictor_feeds_the_strategys_own_model(bench):
    class Params:
        name = "params"

        def score(self, archs):
            return np.array([SPACE.param_count(a) for a in archs], dtype=float)

    strategy = factory.make_strategy("bo", SPACE, 0, {"scorer": Params()})
    assert strategy.surrogate.name == "gp"
    Experiment(SPACE, strategy, bench, 12, progress=False).run()
    assert strategy.surrogate.fitted
    assert strategy.surrogate.features.names[-1] == "proxy:params"


def test_a_bad_predictor_fails_when_the_strategy_is_made():
    with pytest.raises(UnknownNameError, match="unknown predictor 'svm'; accepted: bananas"):
        factory.make_strategy("bananas", SPACE, 0, {"predictor": "svm"})
    with pytest.raises(ConfigError, match="predictor must be a predictor's name"):
        factory.make_strategy("bo", SPACE, 0, {"predictor": 3})


def test_pnas_takes_a_predictor_too():
    from nasforge.core import Result
    from nasforge.spaces.nasnet import NASNetSpace
    from nasforge.strategies.pnas import PNAS

    space = NASNetSpace(blocks=2, ops=("identity", "max_pool_3x3", "conv_3x3"), tied=True)

    def convs(arch):  # a cell's number of 3x3 convolutions: a fact of the cell, no training
        return float(sum(op == "conv_3x3" for b in arch.normal for _, op in b.halves))

    def drive(seed):
        strategy = PNAS(space, seed=seed, predictor="ridge", beam=4, max_seeds=8)
        asked = []
        for _ in range(16):
            candidate = strategy.ask()
            asked.append(candidate.arch)
            strategy.tell(candidate, Result(objective=convs(candidate.arch)))
        return strategy, asked

    strategy, asked = drive(0)
    assert strategy.surrogate.name == "ridge" and strategy.surrogate.fitted
    assert asked == drive(0)[1]
    # the children the linear model picked at level 2 have more convs than the seeds
    assert np.mean([convs(a) for a in asked[8:]]) > np.mean([convs(a) for a in asked[:8]])
