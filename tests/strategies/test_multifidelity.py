"""Multi-fidelity strategies: successive halving, Hyperband, ASHA and BOHB.

Objectives come from a *test model* built on the real NAS-Bench-201 table (CIFAR-10), not a
benchmark: ``objective(arch, f) = 12-epoch val accuracy - 10 * (1 - f / max) * u(arch)`` with
``u(arch)`` in [0, 1) a fixed hash of the architecture string. At full fidelity it is the table's
number; lower fidelities rank architectures less reliably, as short training does.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter

import numpy as np
import pytest

from nasforge.capabilities import EstimatorCapabilities
from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.asha import ASHA
from nasforge.strategies.base import NoCandidateYet
from nasforge.strategies.bohb import BOHB, CategoricalKDE
from nasforge.strategies.hyperband import (
    Hyperband,
    SuccessiveHalving,
    fidelity_ladder,
    fidelity_range_of,
    hyperband_brackets,
)
from nasforge.strategies.random import RandomSearch

SPACE = NB201Space()
LOW, HIGH, ETA = 1, 27, 3
STRATEGIES = {"sh": SuccessiveHalving, "hyperband": Hyperband, "asha": ASHA, "bohb": BOHB}


class FidelityModel:
    """The test model (see the module docstring) as an estimator; cost = fidelity seconds."""

    name = "nb201-fidelity-test-model"
    objective_name = "val_acc_12ep_noisy"
    capabilities = EstimatorCapabilities(has_cost=True, fidelity_range=(LOW, HIGH))

    def __init__(self, bench: NB201Benchmark):
        self.bench = bench

    def true_value(self, arch) -> float:
        return self.bench.lookup(arch).val_acc_12ep

    def objective(self, arch, fidelity: float) -> float:
        u = zlib.crc32(SPACE.to_string(arch).encode()) / 2**32
        return self.true_value(arch) - 10.0 * (1.0 - fidelity / HIGH) * u

    def evaluate(self, candidate: Candidate) -> Result:
        fidelity = HIGH if candidate.fidelity is None else candidate.fidelity
        return Result(
            objective=self.objective(candidate.arch, fidelity),
            report={"test_acc": self.bench.lookup(candidate.arch).test_acc_200ep},
            cost=float(fidelity),
            fidelity=float(fidelity),
        )


@pytest.fixture
def model(nb201_dir) -> FidelityModel:
    return FidelityModel(NB201Benchmark("cifar10", data_dir=nb201_dir.parent))


def make(name: str, seed: int = 0, **kw):
    return STRATEGIES[name](SPACE, seed=seed, min_fidelity=LOW, max_fidelity=HIGH, eta=ETA, **kw)


def drive(strategy, model: FidelityModel, n: int, workers: int = 1, order_seed: int = 0):
    """Ask/tell ``n`` trials with up to ``workers`` pending, finishing in a seeded random order.
    Returns the asks in order as (arch string, fidelity, pending count when asked)."""
    rng = np.random.default_rng(order_seed)
    pending: list[Candidate] = []
    asked: list[tuple[str, float, int]] = []
    while len(asked) < n:
        if len(pending) < workers:
            try:
                candidate = strategy.ask()
            except NoCandidateYet:
                assert pending, "NoCandidateYet with nothing pending"
            else:
                asked.append((SPACE.to_string(candidate.arch), candidate.fidelity, len(pending)))
                pending.append(candidate)
                continue
        done = pending.pop(int(rng.integers(len(pending))))
        strategy.tell(done, Result(objective=model.objective(done.arch, done.fidelity)))
    return asked


# --- schedules ------------------------------------------------------------------------------


def test_hyperband_brackets_match_li_et_al_table_1():
    """Li et al. (2018), Table 1: R = 81, eta = 3 (n_i, r_i) for each bracket s."""
    expected = [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]
    got = [[(r.size, r.fidelity) for r in b] for b in hyperband_brackets(1, 81, 3)]
    assert got == expected


def test_ladder_is_anchored_at_max_and_rounded_for_epochs():
    assert fidelity_ladder(1, 27, 3) == [1, 3, 9, 27]
    ladder = fidelity_ladder(1, 98, 3)  # NB301's epochs: 98 is not a power of 3
    assert ladder[-1] == 98 and ladder[0] >= 1 and all(f == int(f) for f in ladder)
    exact = [98 / 3**k for k in range(4, -1, -1)]
    assert all(abs(f - x) <= 0.5 for f, x in zip(ladder, exact, strict=True))
    real = fidelity_ladder(0.1, 0.9, 3, integer_fidelity=False)
    assert real == pytest.approx([0.1, 0.3, 0.9])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_fidelity": None, "max_fidelity": 27},
        {"min_fidelity": 9, "max_fidelity": 3},
        {"min_fidelity": 0, "max_fidelity": 3},
        {"min_fidelity": 1.5, "max_fidelity": 27},  # not whole with integer_fidelity
        {"min_fidelity": 1, "max_fidelity": 27, "eta": 1},
        {"min_fidelity": 1, "max_fidelity": 3, "eta": 1.2},  # rounding would merge rungs
    ],
)
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_bad_fidelity_settings_are_config_errors(name, kwargs):
    with pytest.raises(ConfigError):
        STRATEGIES[name](SPACE, **kwargs)


def test_fidelity_range_is_read_from_the_estimator(model):
    assert fidelity_range_of(model) == (1.0, 27.0)
    with pytest.raises(ConfigError, match="fidelity_range"):
        fidelity_range_of(NB201Benchmark.__new__(NB201Benchmark))


def test_sh_initial_size_and_asha_early_stopping_rate_shape_the_rungs():
    sh = SuccessiveHalving(SPACE, min_fidelity=1, max_fidelity=27, n_initial=40)
    assert [(r.size, r.fidelity) for r in sh.brackets[0]] == [(40, 1), (13, 3), (4, 9), (1, 27)]
    asha = ASHA(SPACE, min_fidelity=1, max_fidelity=27, early_stopping_rate=1)
    assert asha.fidelities == [3, 9, 27] and asha.ask().fidelity == 3
    with pytest.raises(ConfigError, match="early_stopping_rate"):
        ASHA(SPACE, min_fidelity=1, max_fidelity=27, early_stopping_rate=4)


# --- synchronous successive halving and Hyperband ----------------------------------------------


def fidelities_per_bracket(brackets):
    return [f for b in brackets for r in b for f in [r.fidelity] * r.size]


@pytest.mark.parametrize("name", ["sh", "hyperband"])
def test_asks_follow_the_bracket_schedule(model, name):
    strategy = make(name)
    schedule = fidelities_per_bracket(strategy.brackets)
    asked = drive(strategy, model, 2 * len(schedule))
    assert [f for _, f, _ in asked] == schedule * 2
    if name == "sh":
        assert Counter(schedule) == {1: 27, 3: 9, 9: 3, 27: 1}


@pytest.mark.parametrize("name", ["sh", "hyperband", "bohb"])
def test_promotions_are_the_top_third_of_the_finished_rung(model, name):
    strategy = make(name)
    asked = drive(strategy, model, 3 * 40, workers=4)
    rungs: list[list[str]] = [[]]  # consecutive asks at one fidelity form a rung
    fids = [asked[0][1]]
    for arch, fidelity, _ in asked:
        if fidelity != fids[-1]:
            rungs.append([])
            fids.append(fidelity)
        rungs[-1].append(arch)
    checked = 0
    for lower, upper, f_low, f_up in zip(rungs, rungs[1:], fids, fids[1:], strict=False):
        if f_up <= f_low or len(upper) != len(lower) // ETA:
            continue  # a new bracket starts, or the last rung is cut off by n
        by_objective = sorted(lower, key=lambda a: -model.objective(SPACE.from_string(a), f_low))
        assert sorted(upper) == sorted(by_objective[: len(upper)])
        checked += 1
    assert checked >= 3


def test_no_candidate_yet_exactly_while_a_rung_waits(model):
    strategy = make("sh")
    first_rung = [strategy.ask() for _ in range(27)]
    assert {c.fidelity for c in first_rung} == {1}
    with pytest.raises(NoCandidateYet):
        strategy.ask()
    for candidate in first_rung[:-1]:
        strategy.tell(candidate, Result(objective=model.objective(candidate.arch, 1)))
        with pytest.raises(NoCandidateYet):
            strategy.ask()
    last = first_rung[-1]
    strategy.tell(last, Result(objective=model.objective(last.arch, 1)))
    promoted = strategy.ask()
    assert promoted.fidelity == 3
    assert promoted.arch in [c.arch for c in first_rung]


@pytest.mark.parametrize("name", ["sh", "hyperband", "bohb"])
def test_sequential_use_never_raises_and_new_archs_are_never_duplicates(model, name):
    asked = drive(make(name), model, 300)  # drive asserts: no NoCandidateYet with none pending
    lowest = {}
    for arch, fidelity, _ in asked:
        lowest.setdefault(arch, fidelity)
    keys = [SPACE.canonical_key(SPACE.from_string(a)) for a in lowest]
    assert len(set(keys)) == len(keys)


def test_failures_rank_last_and_do_not_stall_a_rung(model):
    strategy = make("sh")
    rung = [strategy.ask() for _ in range(27)]
    for candidate in rung[:25]:
        strategy.tell_failure(candidate, "RuntimeError: diverged")
    for candidate in rung[25:]:
        strategy.tell(candidate, Result(objective=50.0))
    promoted = [strategy.ask(), strategy.ask()]
    assert [c.fidelity for c in promoted] == [3, 3]
    assert {c.arch for c in promoted} == {c.arch for c in rung[25:]}
    with pytest.raises(NoCandidateYet):  # 2 survivors, both pending
        strategy.ask()
    for candidate in promoted:
        strategy.tell_failure(candidate, "killed")
    fresh = strategy.ask()  # nothing left to promote: the next bracket starts
    assert fresh.fidelity == 1 and fresh.arch not in {c.arch for c in rung}


# --- ASHA --------------------------------------------------------------------------------------


def test_asha_promotes_without_waiting_for_the_rung(model):
    strategy = make("asha")
    pending = [strategy.ask() for _ in range(8)]
    assert {c.fidelity for c in pending} == {1}
    finished = pending[:3]
    for candidate in finished:
        strategy.tell(candidate, Result(objective=model.objective(candidate.arch, 1)))
    promoted = strategy.ask()  # 5 still pending at fidelity 1
    best = max(finished, key=lambda c: model.objective(c.arch, 1))
    assert promoted == Candidate(best.arch, 3)
    assert strategy.ask().fidelity == 1  # the quota floor(3/3) = 1 is used up


def test_asha_under_asynchronous_completion(model):
    """Six workers, results in a random order: every promotion is within the top 1/eta of the
    results its rung has at that moment, and many happen while trials are still running."""
    strategy = make("asha")
    rng = np.random.default_rng(1)
    ladder = [1, 3, 9, 27]
    finished: dict[float, list[tuple[float, object]]] = {f: [] for f in ladder}
    pending: list[Candidate] = []
    promotions_while_busy = 0
    for _ in range(400):
        while len(pending) < 6:
            candidate = strategy.ask()  # never NoCandidateYet
            if candidate.fidelity > 1:
                lower = finished[ladder[ladder.index(candidate.fidelity) - 1]]
                top = sorted(lower, key=lambda r: -r[0])[: len(lower) // ETA]
                assert candidate.arch in [arch for _, arch in top]
                promotions_while_busy += len(pending) >= 3
            pending.append(candidate)
        done = pending.pop(int(rng.integers(len(pending))))
        objective = model.objective(done.arch, done.fidelity)
        finished[done.fidelity].append((objective, done.arch))
        strategy.tell(done, Result(objective=objective))
    sizes = [len(finished[f]) for f in ladder]
    assert sizes[0] > sizes[1] > sizes[2] > sizes[3] > 0
    assert promotions_while_busy >= 10


def test_asha_failures_count_as_worst_and_are_never_promoted(model):
    strategy = make("asha")
    rung = [strategy.ask() for _ in range(6)]
    for candidate in rung[:4]:
        strategy.tell_failure(candidate, "crashed")
    for candidate in rung[4:]:
        strategy.tell(candidate, Result(objective=1.0))
    promoted = [strategy.ask(), strategy.ask()]  # quota floor(6/3) = 2: both successes
    assert {c.arch for c in promoted} == {c.arch for c in rung[4:]}
    assert {c.fidelity for c in promoted} == {3}
    assert strategy.ask().fidelity == 1


# --- BOHB --------------------------------------------------------------------------------------


def test_kde_prefers_the_values_it_was_fitted_on():
    data = np.array([[0, 1], [0, 2], [0, 1]])
    kde = CategoricalKDE(data, np.array([5, 5]))
    dens = np.exp(kde.log_density(np.array([[0, 1], [4, 4], [0, 3]])))
    assert dens[0] > dens[2] > dens[1]
    everything = np.array([[a, b] for a in range(5) for b in range(5)])
    assert np.exp(kde.log_density(everything)).sum() == pytest.approx(1.0)


def test_kde_of_a_constant_dimension_is_a_proper_density():
    kde = CategoricalKDE(np.array([[0, 1], [0, 2], [0, 1]]), np.array([1, 3]))
    assert kde.bandwidths[0] == 0.0
    everything = np.array([[0, b] for b in range(3)])
    with np.errstate(all="raise"):
        assert np.exp(kde.log_density(everything)).sum() == pytest.approx(1.0)


def test_bohb_searches_a_space_with_a_constant_choice():
    from nasforge.spaces.custom import Custom

    space = Custom({"width": [8, 16, 32], "act": ["relu"], "depth": [1, 2]})
    strategy = BOHB(space, seed=0, min_fidelity=1, max_fidelity=9, random_fraction=0.0)
    assert list(strategy.cardinalities) == [3, 1, 2]
    for _ in range(40):
        candidate = strategy.ask()
        wide = "width=32" in space.to_string(candidate.arch)
        strategy.tell(candidate, Result(objective=float(wide) + 0.1 * candidate.fidelity))
    assert strategy.model_proposals > 0


def test_bohb_model_starts_after_n_min_plus_2_results_at_a_fidelity(model):
    strategy = make("bohb", random_fraction=0.0)
    assert strategy.min_points == 7  # d + 1 for NB201's 6 edges
    rung = [strategy.ask() for _ in range(27)]
    for candidate in rung[:9]:
        assert strategy.model_fidelity() is None
        strategy.tell(candidate, Result(objective=model.objective(candidate.arch, 1)))
    assert strategy.model_fidelity() == 1
    assert strategy.model_proposals == 0  # all 27 were asked before any result


def bohb_gain(model: FidelityModel, seed: int, rule: str) -> float:
    """Mean true value of BOHB's 27 proposals after 60 random results at fidelity 1, minus that
    of 27 random cells."""
    rng = np.random.default_rng(100 + seed)
    strategy = make("bohb", seed=seed, random_fraction=0.0, bandwidth_rule=rule)
    for _ in range(60):
        arch = SPACE.sample(rng)
        strategy.seen.add(arch)
        strategy.tell(Candidate(arch, 1.0), Result(objective=model.objective(arch, 1)))
    proposals = [strategy.ask() for _ in range(27)]
    assert strategy.model_proposals == 27 and {c.fidelity for c in proposals} == {1}
    random = RandomSearch(SPACE, seed=seed)
    randoms = [random.ask() for _ in range(27)]
    return float(
        np.mean([model.true_value(c.arch) for c in proposals])
        - np.mean([model.true_value(c.arch) for c in randoms])
    )


def test_bohb_proposals_beat_random_ones(model):
    gains = [bohb_gain(model, seed, "dispersion") for seed in range(3)]
    assert min(gains) > 5.0  # percentage points of 12-epoch validation accuracy
    paper_rule = [bohb_gain(model, seed, "normal-reference") for seed in range(3)]
    assert np.mean(gains) > np.mean(paper_rule)


# --- the common contract -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_seed_and_tells_give_same_asks(model, name):
    run = lambda seed: drive(make(name, seed), model, 150, workers=3, order_seed=7)  # noqa: E731
    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_constraint_is_respected(model, name):
    def no_pooling(arch) -> bool:
        return "avg_pool_3x3" not in SPACE.to_string(arch)

    strategy = STRATEGIES[name](
        SPACE, seed=2, constraint=no_pooling, min_fidelity=LOW, max_fidelity=HIGH
    )
    asked = drive(strategy, model, 200, workers=2)
    assert all("avg_pool_3x3" not in arch for arch, _, _ in asked)
    if name == "bohb":
        assert strategy.model_proposals > 0


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_fidelities_stay_in_range_and_are_whole_epochs(model, name):
    asked = drive(make(name), model, 200, workers=2)
    assert all(LOW <= f <= HIGH and f == int(f) for _, f, _ in asked)
    assert max(f for _, f, _ in asked) == HIGH


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("slots", [1, 3])
def test_runs_in_an_experiment_under_a_cost_budget(model, name, slots):
    from nasforge.executors.inprocess import InProcessExecutor
    from nasforge.experiment import Budget, Experiment

    experiment = Experiment(
        SPACE,
        make(name),
        model,
        Budget(seconds=400),
        executor=InProcessExecutor(slots=slots),
        progress=False,
    )
    history = experiment.run()
    costs = [t.result.cost for t in history.trials if t.result is not None]
    assert 400 <= sum(costs) < 400 + slots * HIGH
    assert len(history.trials) > 400 / HIGH  # low fidelities buy more trials than full ones
    assert not math.isnan(history.best.result.objective)


class Interrupted(FidelityModel):
    """The test model, interrupted (as by Ctrl-C) at its ``stop_at``-th evaluation."""

    def __init__(self, bench: NB201Benchmark, stop_at: int):
        super().__init__(bench)
        self.calls, self.stop_at = 0, stop_at

    def evaluate(self, candidate: Candidate) -> Result:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().evaluate(candidate)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_an_interrupted_run_resumes_to_the_same_trials(model, name, tmp_path):
    from nasforge.executors.inprocess import InProcessExecutor
    from nasforge.experiment import Budget, Experiment

    def run(estimator, **kw):
        return Experiment(
            SPACE,
            make(name),
            estimator,
            Budget(seconds=200),
            executor=InProcessExecutor(slots=3),
            progress=False,
            **kw,
        ).run()

    reference = run(model)
    store = tmp_path / "runs.db"
    with pytest.raises(KeyboardInterrupt):
        run(Interrupted(model.bench, stop_at=25), store=store, name="r")
    resumed = run(model, store=store, name="r", resume=True)
    trials = lambda h: [(t.arch, t.candidate.fidelity) for t in h.trials]  # noqa: E731
    assert len(trials(reference)) > 25
    assert trials(resumed) == trials(reference)
