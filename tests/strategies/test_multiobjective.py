"""Multi-objective strategies on the NAS-Bench-201 table with measured Raspberry Pi 5 latency.

Checked against facts from outside the code under test: regularized evolution (an independent
single-objective implementation) for Pareto evolution with one objective, brute-force dominance
for NSGA-II's survivors and ParEGO's scalarisation, and the table's own values for what the
strategies are told."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from tests.test_pareto import brute_ranks, dominates

from nasforge import factory
from nasforge.core import Candidate
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.experiment import Budget, Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.parego import augmented_tchebycheff, simplex_lattice
from nasforge.strategies.pareto_evolution import ParetoEvolution

LATENCY = "latency_ms/pi5/onnx/cifar100"
OBJECTIVES = f"val_acc:max,{LATENCY}:min"


@pytest.fixture(scope="module")
def bench() -> tuple[NB201Space, NB201Benchmark]:
    from tests.conftest import require_data

    root = require_data("nb201/nb201_200ep_test.csv").parents[1]
    require_data("hardware/nb201_hw_nas_bench_360.csv.gz")
    space = NB201Space()
    return space, NB201Benchmark("cifar10", data_dir=root, space=space, hardware=[LATENCY])


def run(name: str, bench, seed: int, budget: int = 60, options=None, objectives=OBJECTIVES):
    space, estimator = bench
    strategy = factory.make_strategy(
        name, space, seed, options or {}, estimator, objectives=objectives
    )
    history = Experiment(space, strategy, estimator, Budget(evaluations=budget), progress=False)
    return strategy, history.run()


@pytest.mark.parametrize("name", factory.MULTI_OBJECTIVE)
def test_seeded_fresh_and_told_the_tables_values(name: str, bench) -> None:
    space, estimator = bench
    strategy, history = run(name, bench, seed=3)
    again = run(name, bench, seed=3)[1]
    assert [t.arch for t in history.trials] == [t.arch for t in again.trials]
    keys = {space.canonical(t.candidate.arch) for t in history.trials}
    assert len(keys) == len(history.trials) == 60  # nothing proposed twice
    table = estimator.hardware_table[LATENCY]
    for trial in history.trials[:10]:
        entry = estimator.lookup(trial.candidate.arch)
        assert trial.result.metrics[LATENCY] == table[entry.index]
    told = strategy.points if hasattr(strategy, "points") else strategy.vectors
    first = history.trials[0].result
    assert told[0] == (-first.objective, first.metrics[LATENCY])


def test_nsga2_survivors_are_the_best_fronts(bench) -> None:
    strategy, _ = run("nsga2", bench, seed=1, budget=60, options={"population": 10})
    pool = np.asarray(strategy.points)
    ranks = brute_ranks(pool[:60])  # not the code under test
    # the last survival merged 10 parents and the 10 children told after them; whatever was
    # kept may not be dominated by anything of that pool that was dropped
    survivors = set(strategy.parents)
    assert len(survivors) == 10
    every_told_rank0 = {i for i in range(60) if ranks[i] == 0}
    # elitism: a point on the front of everything told can only be lost to ties of crowding
    # when the front holds more points than the population
    if len(every_told_rank0) <= 10:
        assert every_told_rank0 <= survivors
    for kept in survivors:
        for other in range(60):
            if other not in survivors and dominates(pool[other], pool[kept]):
                pytest.fail(f"survivor {kept} is dominated by dropped {other}")


def test_pareto_evolution_with_one_objective_is_regularized_evolution(bench) -> None:
    space, estimator = bench
    for seed in range(3):
        mine = ParetoEvolution(space, seed, objectives="objective:max", population=10, sample=3)
        theirs = RegularizedEvolution(space, seed, population=10, sample=3)
        ours_history = Experiment(space, mine, estimator, Budget(80), progress=False).run()
        their_history = Experiment(space, theirs, estimator, Budget(80), progress=False).run()
        assert [t.arch for t in ours_history.trials] == [t.arch for t in their_history.trials]


def test_simplex_lattice_and_tchebycheff_minimisers_are_pareto_optimal() -> None:
    assert len(simplex_lattice(2, 10)) == 11 == comb(10 + 1, 1)
    assert len(simplex_lattice(3, 4)) == 15 == comb(4 + 2, 2)
    assert np.allclose(simplex_lattice(3, 4).sum(axis=1), 1.0)
    rng = np.random.default_rng(0)
    points = rng.random((200, 2))
    for weights in simplex_lattice(2, 10)[1:-1]:  # strictly positive weights
        best = points[int(np.argmin(augmented_tchebycheff(points, weights, 0.05)))]
        assert not any(dominates(p, best) for p in points)


def test_parego_models_the_scalarised_objective(bench) -> None:
    strategy, _ = run("parego", bench, seed=0, budget=25)
    assert len(strategy.vectors) == 25
    weights = np.array([0.5, 0.5])
    values = strategy.scalarised(weights)
    points = np.asarray(strategy.vectors)
    low, high = points.min(axis=0), points.max(axis=0)
    by_hand = [
        max(0.5 * (p[j] - low[j]) / (high[j] - low[j]) for j in range(2))
        + 0.05 * sum(0.5 * (p[j] - low[j]) / (high[j] - low[j]) for j in range(2))
        for p in points
    ]
    assert np.allclose(values, by_hand)


def test_missing_objective_is_refused_naming_what_results_carry(bench) -> None:
    space, estimator = bench
    strategy = factory.make_strategy(
        "nsga2", space, 0, {}, estimator, objectives="val_acc:max,flops:min"
    )
    from nasforge.objectives import MissingObjective

    candidate = Candidate(space.sample(np.random.default_rng(0)))
    with pytest.raises(MissingObjective, match=r"'flops' is not among .*params"):
        strategy.tell(candidate, estimator.evaluate(candidate))
