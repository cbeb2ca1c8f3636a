"""Model-based strategies (BO, BANANAS, TPE): the strategy contract, their models, the NB201 path
encoding, and search quality on the real NAS-Bench-201 table."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from nasforge.core import Result
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.spaces.decisions import Decisions
from nasforge.spaces.nb201 import OPS, NB201Arch, NB201Space
from nasforge.strategies.bananas import Bananas, MLPEnsemble
from nasforge.strategies.bo import BayesianOptimisation, GaussianProcess
from nasforge.strategies.constraints import MaxParams
from nasforge.strategies.random import RandomSearch
from nasforge.strategies.tpe import TPE

SPACE = NB201Space()
STRATEGIES = [BayesianOptimisation, Bananas, TPE]
CONV3 = OPS.index("nor_conv_3x3")


def score(arch: NB201Arch) -> float:
    """A synthetic objective with interactions: 3x3 convs count double on the 0-1-2-3 path."""
    ops = arch.ops
    value = sum(op == "nor_conv_3x3" for op in ops) + 0.3 * sum(op == "skip_connect" for op in ops)
    return value + sum(ops[e] == "nor_conv_3x3" for e in (0, 2, 5))


def drive(strategy, n: int) -> list[NB201Arch]:
    asked = []
    for _ in range(n):
        candidate = strategy.ask()
        asked.append(candidate.arch)
        strategy.tell(candidate, Result(objective=score(candidate.arch)))
    return asked


@pytest.mark.parametrize("make", STRATEGIES)
def test_same_seed_same_proposals_and_different_seed_differs(make):
    first = drive(make(SPACE, seed=5), 30)
    assert first == drive(make(SPACE, seed=5), 30)
    assert first != drive(make(SPACE, seed=6), 30)


@pytest.mark.parametrize("make", STRATEGIES)
def test_no_two_proposals_are_isomorphic_over_100_asks(make):
    keys = [SPACE.canonical(arch) for arch in drive(make(SPACE, seed=0), 100)]
    assert len(set(keys)) == 100


@pytest.mark.parametrize("make", STRATEGIES)
def test_constraint_is_never_violated(make):
    limit = 200_000  # 26% of the cells; the synthetic score rewards the big 3x3 convs
    constraint = MaxParams(SPACE, limit)
    asked = drive(make(SPACE, seed=1, constraint=constraint), 40)
    assert all(SPACE.param_count(arch) <= limit for arch in asked)


@pytest.mark.parametrize("make", STRATEGIES)
def test_asks_before_tells_are_distinct_and_results_may_arrive_in_any_order(make):
    strategy = make(SPACE, seed=2)
    drive(strategy, 12)  # past the random initial design, so the model is asked
    for _ in range(3):
        batch = [strategy.ask() for _ in range(5)]
        keys = {SPACE.canonical(c.arch) for c in batch}
        assert len(keys) == 5
        for candidate in reversed(batch):
            strategy.tell(candidate, Result(objective=score(candidate.arch)))
    assert not strategy.pending


@pytest.mark.parametrize("make", STRATEGIES)
def test_failures_are_not_proposed_again_and_the_search_goes_on(make):
    strategy = make(SPACE, seed=3)
    drive(strategy, 11)
    failed = strategy.ask()
    strategy.tell_failure(failed, "RuntimeError: out of memory")
    later = drive(strategy, 20)
    assert SPACE.canonical(failed.arch) not in {SPACE.canonical(a) for a in later}
    assert not strategy.pending and strategy.failures == [failed]


@pytest.mark.parametrize("make", STRATEGIES)
def test_a_replay_of_the_same_tells_asks_for_the_same_architectures(make):
    """What resume relies on: asks interleaved with out-of-order tells, replayed identically."""

    def run() -> list[str]:
        strategy, asked, waiting = make(SPACE, seed=4), [], []
        for step in range(30):
            candidate = strategy.ask()
            asked.append(SPACE.to_string(candidate.arch))
            waiting.append(candidate)
            if step % 3 == 2:  # three in flight, told newest first
                for c in reversed(waiting):
                    strategy.tell(c, Result(objective=score(c.arch)))
                waiting.clear()
        return asked

    assert run() == run()


@pytest.mark.parametrize("make", STRATEGIES)
def test_model_based_beats_random_on_a_synthetic_objective(make):
    def best(strategy) -> float:
        return max(score(a) for a in drive(strategy, 40))

    model = np.mean([best(make(SPACE, seed=s)) for s in range(5)])
    rand = np.mean([best(RandomSearch(SPACE, seed=s)) for s in range(5)])
    assert model > rand


def test_strategies_only_read_the_objective():
    """A result's report (test accuracy) must not change anything a strategy asks."""
    for make in STRATEGIES:
        runs = []
        for report in (0.0, 1e6):
            strategy, asked = make(SPACE, seed=0), []
            for _ in range(15):
                c = strategy.ask()
                asked.append(c.arch)
                strategy.tell(c, Result(score(c.arch), report={"test_acc": report}))
            runs.append(asked)
        assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("make", "kwargs", "error"),
    [
        (BayesianOptimisation, {"acquisition": "pi"}, UnknownNameError),
        (BayesianOptimisation, {"encoding": "adjacency"}, UnknownNameError),
        (BayesianOptimisation, {"initial": 0}, ConfigError),
        (BayesianOptimisation, {"length_scales": ()}, ConfigError),
        (Bananas, {"acquisition": "ei"}, UnknownNameError),
        (Bananas, {"members": 1}, ConfigError),
        (Bananas, {"lr": 0.0}, ConfigError),
        (TPE, {"gamma": 1.0}, ConfigError),
        (TPE, {"bandwidth": 0.0}, ConfigError),
        (TPE, {"n_candidates": 0}, ConfigError),
    ],
)
def test_bad_settings_are_refused_with_a_named_error(make, kwargs, error):
    with pytest.raises(error):
        make(SPACE, **kwargs)


# --- a second, tiny space: the strategies use only the protocol ------------------------------


class BitSpace:
    """8 binary decisions, offered as ``decisions()`` too (TPE needs them)."""

    name = "bits"

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(b) for b in rng.integers(0, 2, 8))

    def mutate(self, arch: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        return self.flip(arch, int(rng.integers(8)))

    def neighbours(self, arch: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [self.flip(arch, i) for i in range(8)]

    @staticmethod
    def flip(arch: tuple[int, ...], i: int) -> tuple[int, ...]:
        return (*arch[:i], 1 - arch[i], *arch[i + 1 :])

    def encode(self, arch: tuple[int, ...], kind: str = "onehot") -> np.ndarray:
        if kind not in ("onehot", "path"):
            raise UnknownNameError("encoding", kind, ("onehot", "path"))
        return np.asarray(arch, dtype=float)

    def canonical(self, arch: tuple[int, ...]) -> tuple[int, ...]:
        return arch

    def decisions(self) -> Decisions:
        return Decisions((2,) * 8, lambda indices: tuple(int(i) for i in indices), tuple)


@pytest.mark.parametrize("make", STRATEGIES)
def test_any_space_with_the_protocol_can_be_searched(make):
    space = BitSpace()
    strategy, asked = make(space, seed=0, initial=5), []
    for _ in range(60):
        candidate = strategy.ask()
        asked.append(candidate.arch)
        strategy.tell(candidate, Result(objective=float(sum(candidate.arch))))
    assert len(set(asked[:40])) == 40  # distinct while the 256-point space has room
    assert (1,) * 8 in asked[:40]  # and the optimum is found well before enumerating


def test_tpe_needs_a_space_of_decisions():
    class Opaque(BitSpace):
        decisions = None  # type: ignore[assignment]

    with pytest.raises(ConfigError, match="tpe"):
        TPE(Opaque())


# --- the models -----------------------------------------------------------------------------


def onehot_rows(n: int, seed: int) -> tuple[list[NB201Arch], np.ndarray]:
    rng = np.random.default_rng(seed)
    archs = [SPACE.sample(rng) for _ in range(n)]
    return archs, np.stack([SPACE.encode(a) for a in archs])


def test_gp_interpolates_its_data_and_is_uncertain_away_from_it():
    archs, X = onehot_rows(40, 0)
    y = np.array([score(a) for a in archs])
    gp = GaussianProcess(noise_ratios=(1e-6,)).fit(X, y)
    mu, sigma = gp.predict(X)
    assert np.allclose(mu, y, atol=1e-2 * y.std())
    _, X_new = onehot_rows(200, 1)
    _, sigma_new = gp.predict(X_new)
    assert sigma_new.mean() > 10 * sigma.mean()


def test_gp_and_mlp_ensemble_predict_held_out_architectures():
    archs, X = onehot_rows(150, 2)
    y = np.array([score(a) for a in archs])
    mu, _ = GaussianProcess().fit(X[:100], y[:100]).predict(X[100:])
    assert np.corrcoef(mu, y[100:])[0, 1] > 0.8
    P = np.stack([SPACE.encode(a, "path") for a in archs])
    ensemble = MLPEnsemble(members=3).fit(P[:100], y[:100], np.random.default_rng(0))
    predictions = ensemble.predict(P[100:])
    assert predictions.shape == (3, 50)
    assert np.corrcoef(predictions.mean(axis=0), y[100:])[0, 1] > 0.6
    assert predictions.std(axis=0).mean() > 0  # members disagree: that is the uncertainty


def test_mlp_gradients_match_finite_differences():
    from scipy import sparse

    archs, _ = onehot_rows(7, 3)
    X = sparse.csr_matrix(np.stack([SPACE.encode(a, "path") for a in archs]))
    y = np.array([score(a) for a in archs])
    target = ((y - y.mean()) / y.std())[None, :, None]
    ensemble = MLPEnsemble(members=2, layers=3, width=4)
    ensemble._init(X.shape[1], np.random.default_rng(0))
    first, rest = ensemble.first, ensemble.rest
    rest += np.random.default_rng(1).normal(0, 0.3, rest.shape)  # no ReLU exactly at its kink
    g_first, g_rest = np.zeros_like(first), np.zeros_like(rest)
    ensemble._backward(
        X, X.T.tocsr(), target, first, ensemble._split(rest), g_first, ensemble._split(g_rest)
    )

    def loss() -> float:
        out = ensemble._forward(X, first, ensemble._split(rest))[-1]
        return float(np.abs(out - target).mean(axis=(1, 2)).sum())

    checked = 0
    for array, grad in ((first, g_first), (rest, g_rest)):
        flat, flat_grad = array.reshape(-1), grad.reshape(-1)
        for j in range(0, len(flat), 3):
            flat[j] += 1e-6
            high = loss()
            flat[j] -= 2e-6
            low = loss()
            flat[j] += 1e-6
            assert flat_grad[j] == pytest.approx((high - low) / 2e-6, abs=1e-6)
            checked += flat_grad[j] != 0
    assert checked > 20


# --- the NB201 path encoding ----------------------------------------------------------------


def every_cell() -> Iterator[NB201Arch]:
    for ops in itertools.product(OPS, repeat=6):
        yield NB201Arch(ops)


def test_path_encoding_has_one_bit_per_live_path():
    arch = NB201Arch(("nor_conv_3x3",) * 6)
    bits = SPACE.encode(arch, "path")
    assert bits.shape == (180,) and bits.sum() == 4
    # the 0-1-2-3 path of three 3x3 convs: offset 5 + 25 + 25, then digits (3, 3, 3) base 5
    assert bits[55 + CONV3 * 25 + CONV3 * 5 + CONV3] == 1
    cut = NB201Arch(("none",) + ("nor_conv_3x3",) * 5)  # edge 0-1 gone: two paths die
    assert SPACE.encode(cut, "path").sum() == 2
    assert SPACE.encode(NB201Arch(("none",) * 6), "path").sum() == 0


def test_path_encoding_ignores_dead_edges_and_distinguishes_live_ones():
    # with edge 2->3 'none', edge 1->2 lies on no input-output path
    base = ["skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "none"]
    dead = list(base)
    dead[2] = "nor_conv_3x3"
    assert np.array_equal(
        SPACE.encode(NB201Arch(tuple(base)), "path"), SPACE.encode(NB201Arch(tuple(dead)), "path")
    )
    live = list(base)
    live[4] = "nor_conv_3x3"
    assert not np.array_equal(
        SPACE.encode(NB201Arch(tuple(base)), "path"), SPACE.encode(NB201Arch(tuple(live)), "path")
    )


def test_path_encoding_bit_counts_over_the_whole_space():
    counts = np.zeros(180)
    for i, arch in enumerate(every_cell()):
        if i % 7 == 0:  # a deterministic seventh of the 15,625 cells keeps this fast
            counts += SPACE.encode(arch, "path")
    used = np.flatnonzero(counts)
    assert len(used) == 4 + 16 + 16 + 64  # the paths without 'none'


# --- search quality on the real table -------------------------------------------------------


def mean_best_objective(make, estimator, seeds: int, budget: int) -> float:
    bests = []
    for seed in range(seeds):
        strategy = make(SPACE, seed=seed)
        best = -np.inf
        for _ in range(budget):
            candidate = strategy.ask()
            result = estimator.evaluate(candidate)
            strategy.tell(candidate, result.for_strategy())
            best = max(best, result.objective)
        bests.append(best)
    return float(np.mean(bests))


@pytest.mark.parametrize("make", STRATEGIES)
def test_beats_random_search_on_nb201_cifar10(make, nb201_dir):
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    estimator = NB201Benchmark("cifar10", data_dir=nb201_dir, space=SPACE)
    model = mean_best_objective(make, estimator, seeds=10, budget=50)
    rand = mean_best_objective(RandomSearch, estimator, seeds=10, budget=50)
    assert model > rand
