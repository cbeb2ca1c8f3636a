"""Early-stopping rules: the median rule on hand-made curves, curve extrapolation on synthetic
curves from known parametric families, and both inside a real search on digits."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from nasforge.core import SearchContext
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.estimators.early_stopping import (
    FAMILIES,
    CurveExtrapolation,
    MedianStopping,
    Stopper,
    make_stopper,
)

# -- the median rule ------------------------------------------------------------------------

FINISHED = ((50.0, 60.0, 70.0, 80.0), (40.0, 55.0, 65.0, 75.0), (60.0, 70.0, 75.0, 85.0))
# running averages at t=2: 55, 47.5, 65 -> median 55


def _ctx(curves=FINISHED, incumbent: float | None = 85.0) -> SearchContext:
    return SearchContext(incumbent, tuple(tuple(c) for c in curves))


def test_median_stops_a_clearly_worse_curve_and_keeps_a_better_one() -> None:
    rule = MedianStopping()
    assert isinstance(rule, Stopper)
    assert rule.should_stop((30.0, 40.0), 4, _ctx())  # best 40 < median 55
    assert not rule.should_stop((50.0, 58.0), 4, _ctx())  # best 58 > 55
    assert not rule.should_stop((20.0, 55.0), 4, _ctx())  # equal is not strictly worse


def test_median_uses_the_best_value_so_far_not_the_last() -> None:
    # a noisy last epoch does not condemn a trial that was above the bar earlier
    assert not MedianStopping().should_stop((56.0, 10.0), 4, _ctx())


def test_median_respects_min_epochs_and_min_curves() -> None:
    bad = (10.0, 10.0)
    assert MedianStopping(min_epochs=2).should_stop(bad, 4, _ctx())
    assert not MedianStopping(min_epochs=3).should_stop(bad, 4, _ctx())
    assert not MedianStopping(min_curves=4).should_stop(bad, 4, _ctx())
    assert not MedianStopping().should_stop(bad, 4, _ctx(FINISHED[:2]))


def test_median_ignores_curves_that_did_not_reach_t() -> None:
    short = ((99.0,), (99.0,), (99.0,))  # stopped after one epoch: no say at t=2
    assert not MedianStopping().should_stop((10.0, 20.0), 4, _ctx(short))
    # ... and with them counted the bar would have been far higher
    assert MedianStopping().should_stop((10.0, 20.0), 4, _ctx(FINISHED))
    # at t=1 they do count: median of (99, 99, 99, 50, 40, 60) = 79.5 > 70
    assert MedianStopping().should_stop((70.0,), 4, _ctx(short + FINISHED))
    assert not MedianStopping().should_stop((70.0,), 4, _ctx(FINISHED))  # median 50


def test_median_never_stops_on_the_last_planned_epoch() -> None:
    assert not MedianStopping().should_stop((1.0, 1.0, 1.0, 1.0), 4, _ctx())


# -- curve extrapolation --------------------------------------------------------------------

X = np.arange(1, 31, dtype=float)
TRUE_CURVES = {  # percent accuracy after each of 30 epochs, from four of the families
    "pow3": 90.0 - 50.0 * X**-0.8,
    "exp3": 85.0 - 100.0 * np.exp(-0.3 * X - 0.5),
    "mmf": 92.0 - 70.0 / (1.0 + (0.4 * X) ** 1.5),
    "weibull": 80.0 - 60.0 * np.exp(-((0.25 * X) ** 1.2)),
}


def _noisy(name: str, seed: int = 0, noise: float = 0.3) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(TRUE_CURVES[name] + rng.normal(0.0, noise, len(X)))


def test_has_at_least_four_families() -> None:
    assert len(FAMILIES) >= 4
    assert {"pow3", "log_power", "janoschek", "mmf", "weibull"} <= set(FAMILIES)


@pytest.mark.parametrize("name", sorted(TRUE_CURVES))
def test_extrapolation_predicts_the_final_value(name: str) -> None:
    seen = _noisy(name)[:15]  # half the curve
    final = TRUE_CURVES[name][-1]
    prediction = CurveExtrapolation().predict(seen, 30)
    assert prediction.models
    assert abs(prediction.mean - final) < 3.0, (prediction.mean, final)
    # the predictive distribution covers the truth: neither tail is implausibly thin
    assert prediction.probability_above(final - 3.0) > 0.5
    assert prediction.probability_above(final + 5.0) < 0.5


def test_stops_a_curve_that_plateaus_far_below_the_incumbent() -> None:
    plateau = list(60.0 - 40.0 * np.exp(-0.9 * X[:8]) + np.linspace(-0.2, 0.2, 8))
    rule = CurveExtrapolation(calibrate=False)
    assert rule.should_stop(plateau, 30, _ctx((), incumbent=85.0))
    assert CurveExtrapolation().should_stop(plateau, 30, _ctx((), incumbent=85.0))


def test_does_not_stop_a_curve_heading_above_the_incumbent() -> None:
    for name in TRUE_CURVES:
        curve = _noisy(name)
        incumbent = TRUE_CURVES[name][-1] - 5.0  # it will end 5 points above the incumbent
        for t in range(2, 30):
            assert not CurveExtrapolation().should_stop(curve[:t], 30, _ctx((), incumbent)), (
                name,
                t,
            )


def test_never_stops_without_an_incumbent_or_too_early() -> None:
    hopeless = [10.0, 10.1, 10.0, 10.1, 10.0, 10.1]
    assert not CurveExtrapolation().should_stop(hopeless, 30, _ctx((), incumbent=None))
    assert CurveExtrapolation().should_stop(hopeless, 30, _ctx((), incumbent=90.0))
    assert not CurveExtrapolation(min_epochs=7).should_stop(hopeless, 30, _ctx((), 90.0))
    assert not CurveExtrapolation().should_stop(hopeless[:1], 30, _ctx((), 90.0))
    assert not CurveExtrapolation().should_stop(hopeless, 6, _ctx((), 90.0))  # last epoch


def test_calibration_learns_from_finished_curves_that_end_higher_than_predicted() -> None:
    # a schedule that lifts every curve late (as cosine annealing does): finished curves end
    # well above what their first epochs extrapolate to; calibration must learn that lift
    def lifted(top: float) -> tuple[float, ...]:
        base = top - 30.0 * np.exp(-0.5 * X[:10])
        return tuple(base + np.where(X[:10] > 7, 8.0, 0.0))

    finished = tuple(lifted(top) for top in (70.0, 72.0, 75.0, 78.0))
    running = list(lifted(73.0)[:5])
    raw = CurveExtrapolation(calibrate=False).predict(running, 10)
    calibrated = CurveExtrapolation().predict(running, 10, _ctx(finished))
    assert calibrated.calibrated_on == 4
    assert calibrated.bias > 0 and calibrated.mean > raw.mean + 4.0
    incumbent = 80.0  # it will end at 81
    assert CurveExtrapolation(calibrate=False).should_stop(running, 10, _ctx(finished, incumbent))
    assert not CurveExtrapolation().should_stop(running, 10, _ctx(finished, incumbent))


def test_is_deterministic_and_reasonably_fast() -> None:
    curve = _noisy("mmf", seed=3)[:9]
    rule = CurveExtrapolation()
    rule.predict([50.0, 60.0, 65.0], 30)  # warm the scipy import
    started = time.perf_counter()
    first = rule.predict(curve, 30)
    seconds = time.perf_counter() - started
    again = CurveExtrapolation().predict(list(curve), 30)
    assert first == again
    assert seconds < 2.0  # generous: about 20-50 ms on an idle core


def test_rules_pickle() -> None:
    for rule in (MedianStopping(min_epochs=2, min_curves=5), CurveExtrapolation(threshold=0.1)):
        copy = pickle.loads(pickle.dumps(rule))
        assert copy == rule and copy.name == rule.name


# -- by name --------------------------------------------------------------------------------


def test_make_stopper_by_name() -> None:
    assert make_stopper("none") is None
    assert make_stopper("median", min_epochs=2) == MedianStopping(min_epochs=2)
    assert make_stopper("curve", threshold=0.1) == CurveExtrapolation(threshold=0.1)
    with pytest.raises(UnknownNameError, match=r"early-stopping rule 'hyperband'.*curve, median"):
        make_stopper("hyperband")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("median", {"min_epoch": 2}, "no option min_epoch; accepted: min_epochs"),
        ("median", {"min_epochs": 0}, "min_epochs must be a whole number >= 1"),
        ("median", {"min_curves": 1.5}, "min_curves must be a whole number"),
        ("curve", {"threshold": 1.5}, r"threshold must be a number in \(0, 1\)"),
        ("curve", {"families": ("pow3", "spline")}, "families.*need at least one of pow3"),
        ("curve", {"noise_floor": -1}, "noise_floor must be a finite number > 0"),
        ("curve", {"calibrate": "yes"}, "calibrate must be true or false"),
        ("none", {"threshold": 0.1}, "takes no options"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_stopper(name, **options)


# -- inside a real search -------------------------------------------------------------------


@pytest.mark.slow
def test_median_rule_stops_some_trials_of_a_real_search_on_digits() -> None:
    from nasforge.data.datasets import load_dataset
    from nasforge.estimators.train import Train
    from nasforge.experiment import Experiment
    from nasforge.spaces.nb201 import NB201Space
    from nasforge.strategies.random import RandomSearch

    space = NB201Space()
    estimator = Train(
        space,
        load_dataset("digits"),
        epochs=4,
        subset=0.5,
        batch_size=64,
        net={"C": 4, "N": 1},
        threads=1,
        early_stopping=MedianStopping(min_epochs=1, min_curves=2),
    )
    history = Experiment(
        space, RandomSearch(space, seed=1), estimator, budget=8, progress=False
    ).run()
    results = [t.result for t in history.completed]
    assert len(results) == 8
    stopped = [r for r in results if r.metrics["stopped_early"] == 1]
    full = [r for r in results if r.metrics["stopped_early"] == 0]
    assert stopped and full
    assert all(r.metrics["epochs"] < 4 and len(r.curve) == r.metrics["epochs"] for r in stopped)
    assert all(r.metrics["epochs"] == 4 and len(r.curve) == 4 for r in full)
    # every stop was the rule's verdict: its best so far lay strictly under the bar
    assert max(r.objective for r in full) >= max(r.objective for r in stopped)
