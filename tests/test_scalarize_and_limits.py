"""MnasNet's reward, weighted sums and hard limits: formulas checked by hand, runs checked
against the benchmark's CSV files read here, impossible limits refused before any trial."""

from __future__ import annotations

import json
import math

import pytest
from tests.cli_run import assert_search_refused, nasforge
from tests.conftest import require_data
from tests.nb201_hardware_csv import pi5_latency_by_cell

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.objectives import Objectives, parse_objectives
from nasforge.scalarize import ScalarizedEstimator, Scalarizer

LATENCY = "latency_ms/pi5/onnx/cifar100"


def test_mnasnet_rewards_by_hand() -> None:
    bound = Objectives(parse_objectives(f"val_acc:max,{LATENCY}:min"), "val_acc_12ep")
    soft = Scalarizer.parse("mnasnet:T=2")
    hard = Scalarizer.parse("mnasnet-hard:T=2")
    # twice the target: the soft reward loses 2^-0.07 (4.7 %), the hard one half
    assert soft.reward((80.0, 4.0), bound) == pytest.approx(80.0 * 0.952638, rel=1e-6)
    assert hard.reward((80.0, 4.0), bound) == pytest.approx(40.0)
    # under the target the soft reward rises a little, the hard one not at all
    assert soft.reward((80.0, 1.0), bound) == pytest.approx(80.0 * 2**0.07)
    assert hard.reward((80.0, 1.0), bound) == 80.0
    assert Scalarizer.parse("mnasnet:T=2,w=-0.15").exponent == -0.15
    weighted = Scalarizer.parse("weighted:1,2")
    assert weighted.reward((80.0, 3.0), bound) == pytest.approx(80.0 - 6.0)


@pytest.mark.parametrize(
    "text", ["mnasnet", "mnasnet:T=0", "mnasnet:T=x", "mnasnet-hard:T=2,w=-1", "pareto:T=1",
             "weighted:", "mnasnet:T=2,q=1"],
)  # fmt: skip
def test_bad_scalarize_values_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--scalarize"):
        Scalarizer.parse(text)


def test_scalarized_estimator_keeps_the_objective_and_rewrites_the_curve() -> None:
    class Fixed:
        name, objective_name = "fixed", "val_acc"

        def evaluate(self, candidate: Candidate) -> Result:
            return Result(70.0, metrics={"latency_ms": 4.0}, report={"test_acc": 71.0},
                          cost=3.0, curve=(50.0, 70.0))  # fmt: skip

    bound = Objectives(parse_objectives("val_acc:max,latency_ms:min"), "val_acc")
    wrapped = ScalarizedEstimator(Fixed(), bound, Scalarizer.parse("mnasnet:T=2"))
    result = wrapped.evaluate(Candidate("x"))
    factor = 2.0**-0.07
    assert result.objective == pytest.approx(70.0 * factor)
    assert result.metrics == {"latency_ms": 4.0, "val_acc": 70.0}
    assert result.curve == pytest.approx((50.0 * factor, 70.0 * factor))
    assert result.report == {"test_acc": 71.0} and result.cost == 3.0
    with pytest.raises(ConfigError, match="needs --objectives ACCURACY:max,COST:min"):
        ScalarizedEstimator(Fixed(), Objectives(parse_objectives("latency_ms:min,val_acc"),
                            "val_acc"), Scalarizer.parse("mnasnet:T=2"))  # fmt: skip


def trials_of(store: str, name: str) -> list[dict]:
    shown = nasforge("show", name, "--store", store, "--json", "--top", "1000")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["best"]


def test_a_constrained_search_never_proposes_over_the_limit(tmp_path) -> None:
    store = str(tmp_path / "r.db")
    done = nasforge(
        "search", "--estimator", "benchmark", "--strategy", "evolution", "--budget", "60",
        "--constraint", f"{LATENCY}<=1.5", "--store", store, "--name", "c",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    latency = pi5_latency_by_cell()
    rows = trials_of(store, "c")
    assert len(rows) >= 55  # distinct cells: a tight limit leaves few new ones near a parent
    assert all(latency[row["arch"]] <= 1.5 for row in rows)
    assert sum(1 for v in latency.values() if v <= 1.5) < len(latency) / 2  # a real limit


def test_a_latency_band_keeps_every_trial_between_its_bounds(tmp_path) -> None:
    store = str(tmp_path / "r.db")
    done = nasforge(
        "search", "--estimator", "benchmark", "--strategy", "evolution", "--budget", "40",
        "--constraint", f"{LATENCY}>=4", "--constraint", f"{LATENCY}<=5",
        "--store", store, "--name", "band",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    latency = pi5_latency_by_cell()
    rows = trials_of(store, "band")
    assert len(rows) == 40
    assert all(4 <= latency[row["arch"]] <= 5 for row in rows)
    below = sum(1 for v in latency.values() if v < 4)
    above = sum(1 for v in latency.values() if v > 5)
    assert below > len(latency) / 5 and above > len(latency) / 5  # both bounds exclude cells


def test_a_lower_bound_meets_nothing_the_table_cannot_price() -> None:
    from nasforge.strategies.constraints import MetricBound

    unknown = MetricBound("latency_ms", 1.0, lambda arch: math.inf, "a table", ">=")
    known = MetricBound("latency_ms", 1.0, lambda arch: 2.0, "a table", ">=")
    assert not unknown("a") and known("a")
    assert not MetricBound("latency_ms", 3.0, lambda arch: 2.0, "a table", ">=")("a")
    assert known.description == "latency_ms >= 1 (a table)"


def test_the_mnasnet_reward_picks_the_best_by_reward(tmp_path) -> None:
    store = str(tmp_path / "r.db")
    done = nasforge(
        "search", "--estimator", "benchmark", "--strategy", "random", "--budget", "40",
        "--objectives", f"val_acc:max,{LATENCY}:min", "--scalarize", "mnasnet:T=3",
        "--store", store, "--name", "m",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    latency = pi5_latency_by_cell()
    rows = trials_of(store, "m")
    by_hand = [r["metrics"]["val_acc_12ep"] * (latency[r["arch"]] / 3) ** -0.07 for r in rows]
    assert [r["objective"] for r in rows] == pytest.approx(by_hand)
    assert rows[0]["objective"] == pytest.approx(max(by_hand))  # best first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--constraint", f"{LATENCY}<=0.5"],
         f"no architecture meets the constraints among all 15,625 architectures: {LATENCY} "
         "<= 0.5 (looked up in nb201-benchmark): the smallest"),
        (["--constraint", "flops<=5"], "has no metric 'flops'; it has params"),
        (["--constraint", "params<5"], "--constraint 'params<5' is not accepted"),
        (["--constraint", "params>=0"], "give NAME<=VALUE or NAME>=VALUE with VALUE > 0"),
        (["--constraint", f"{LATENCY}>=4", "--constraint", f"{LATENCY}<=3"],
         "(each limit alone is met, but no architecture meets them together)"),
        (["--constraint", "latency_ms<=5"], "give --latency-table FILE"),
        (["--scalarize", "mnasnet:T=3"], "--scalarize combines the --objectives"),
    ],
)  # fmt: skip
def test_impossible_or_bad_limits_are_refused_before_any_trial(tmp_path, args, message) -> None:
    assert_search_refused(tmp_path, args, message)


def test_smallest_latency_in_the_message_is_the_tables() -> None:
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
    from nasforge.spaces.nb201 import NB201Space
    from nasforge.strategies.constraints import MetricBound, check_reachable

    root = require_data("nb201/nb201_200ep_test.csv").parents[1]
    space = NB201Space()
    bench = NB201Benchmark("cifar10", data_dir=root, space=space, hardware=[LATENCY])
    bound = MetricBound(LATENCY, 0.5, lambda a: bench.evaluate(Candidate(a)).metrics[LATENCY],
                        "lookup")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        check_reachable(space, [bound])
    assert f"is {min(pi5_latency_by_cell().values()):.4g}" in str(err.value)
    assert not math.isinf(bound.value(space.sample(__import__("numpy").random.default_rng(1))))


def test_largest_latency_in_the_message_of_a_lower_bound_is_the_tables(tmp_path) -> None:
    largest = max(pi5_latency_by_cell().values())
    assert_search_refused(
        tmp_path,
        ["--constraint", f"{LATENCY}>={largest + 1:g}"],
        f"{LATENCY} >= {largest + 1:g} (looked up in nb201-benchmark): the largest {LATENCY} "
        f"among them is {largest:.4g}",
    )


def test_a_scalarized_training_estimator_still_gets_proxy_scores() -> None:
    """The default real-training search (proxy-evolution with MeCo) scores cells on the
    training images of the estimator a --scalarize wrapper holds."""
    from nasforge import factory
    from nasforge.spaces.nb201 import NB201Space

    space = NB201Space()
    train = factory.make_estimator("train", space, "digits", train_options={"epochs": 1})
    bound = Objectives(parse_objectives("val_acc:max,params:min"), train.objective_name)
    wrapped = ScalarizedEstimator(train, bound, Scalarizer.parse("mnasnet:T=100000"))
    strategy = factory.make_strategy("proxy-evolution", space, 0, {"proxy": "meco"}, wrapped)
    assert strategy.scorer.dataset_name == train.dataset.name == "digits"


def test_final_training_of_a_scalarized_run_trains_the_wrapped_estimator() -> None:
    """A --scalarize run picks its winner by reward; final training then measures test
    accuracy with the plain training estimator underneath."""
    from nasforge.config import RunConfig
    from nasforge.estimators.train import Train
    from nasforge.final import make_trainer

    cfg = RunConfig.create(
        {"dataset": "digits", "objectives": "val_acc:max,params:min", "scalarize": "mnasnet:T=1e5"}
    )
    _, trainer = make_trainer(cfg, seed=0, epochs=1, subset=0.5, data_dir=None)
    assert isinstance(trainer, Train) and trainer.score_test
