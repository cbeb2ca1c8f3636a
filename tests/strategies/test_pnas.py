"""PNAS: the strategy contract, its progressive levels, asynchronous asks, constraints, any
space that grows, and search quality against random search on a synthetic objective."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.spaces.nasnet import NASNetArch, NASNetSpace
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.base import NoCandidateYet
from nasforge.strategies.constraints import MaxParams
from nasforge.strategies.pnas import PNAS
from nasforge.strategies.random import RandomSearch

OPS = ("identity", "max_pool_3x3", "conv_3x3", "sep_conv_3x3")
SPACE = NASNetSpace(blocks=3, ops=OPS, tied=True)
#: hidden value of an (input kind, op) half: kinds h_{i-2}, h_{i-1}, an earlier block
WEIGHTS = np.random.default_rng(123).normal(size=(3, len(OPS)))


def score(arch: NASNetArch) -> float:
    """Test scaffolding, a deterministic objective: each block adds the hidden values of its two
    halves, a bonus for concat, and a bonus when it pairs a conv with a pool."""
    value = 0.0
    for block in arch.normal:
        ops = {block.op1, block.op2}
        value += sum(WEIGHTS[min(src, 2), OPS.index(op)] for src, op in block.halves)
        value += 0.3 * (block.combiner == "concat") + 0.5 * (ops == {"conv_3x3", "max_pool_3x3"})
    return value


def drive(strategy, n: int, objective=score) -> list:
    asked = []
    for _ in range(n):
        candidate = strategy.ask()
        asked.append(candidate.arch)
        strategy.tell(candidate, Result(objective=objective(candidate.arch)))
    return asked


def test_same_seed_same_proposals_and_different_seed_differs():
    first = drive(PNAS(SPACE, seed=5), 70)
    assert first == drive(PNAS(SPACE, seed=5), 70)
    assert first != drive(PNAS(SPACE, seed=6), 70)


def test_levels_grow_one_block_at_a_time_from_the_best_cells():
    strategy = PNAS(SPACE, seed=0, beam=8, max_seeds=20)
    asked = drive(strategy, 100)
    sizes = [SPACE.num_blocks(a) for a in asked]
    assert sizes[:20] == [1] * 20 and sizes[20:28] == [2] * 8 and sizes[28:] == [3] * 72
    assert strategy.refining  # past full size, the search goes on around the best cells
    top1 = sorted(asked[:20], key=score, reverse=True)[:8]
    assert all(a.normal[:1] in {t.normal for t in top1} for a in asked[20:28])
    top2 = sorted(asked[20:28], key=score, reverse=True)
    assert all(a.normal[:2] in {t.normal for t in top2} for a in asked[28:36])
    # all 72 one-block cells, when max_seeds allows
    assert {a for a in drive(PNAS(SPACE, seed=0, max_seeds=100), 72)} == set(SPACE.seeds())


def test_no_two_proposals_are_isomorphic():
    keys = [SPACE.canonical(a) for a in drive(PNAS(SPACE, seed=1), 200)]
    assert len(set(keys)) == 200


def test_asks_wait_for_the_level_and_results_may_arrive_in_any_order():
    strategy = PNAS(SPACE, seed=2, beam=4, max_seeds=6)
    seeds = [strategy.ask() for _ in range(6)]
    with pytest.raises(NoCandidateYet, match="pending"):
        strategy.ask()
    for candidate in reversed(seeds[1:]):
        strategy.tell(candidate, Result(objective=score(candidate.arch)))
    with pytest.raises(NoCandidateYet):
        strategy.ask()  # the next level needs every result of this one
    strategy.tell(seeds[0], Result(objective=score(seeds[0].arch)))
    level2 = [strategy.ask() for _ in range(4)]
    assert {SPACE.num_blocks(c.arch) for c in level2} == {2}
    assert len({SPACE.canonical(c.arch) for c in level2}) == 4
    for candidate in level2[::-1]:
        strategy.tell(candidate, Result(objective=score(candidate.arch)))
    assert not strategy.pending and SPACE.num_blocks(strategy.ask().arch) == 3


def test_a_replay_of_the_same_tells_asks_for_the_same_architectures():
    def run() -> list[str]:
        strategy, asked, waiting = PNAS(SPACE, seed=4, beam=5, max_seeds=12), [], []
        while len(asked) < 45:
            try:
                candidate = strategy.ask()
            except NoCandidateYet:
                candidate = None
            if candidate is not None:
                asked.append(SPACE.to_string(candidate.arch))
                waiting.append(candidate)
            if candidate is None or len(waiting) == 3:  # three in flight, newest told first
                for c in reversed(waiting):
                    strategy.tell(c, Result(objective=score(c.arch)))
                waiting.clear()
        return asked

    first = run()
    assert first == run() and len(set(first)) == 45


def test_failures_are_not_proposed_again_and_the_search_goes_on():
    strategy = PNAS(SPACE, seed=3, beam=4, max_seeds=8)
    drive(strategy, 7)
    failed = strategy.ask()
    strategy.tell_failure(failed, "RuntimeError: out of memory")
    later = drive(strategy, 30)
    assert SPACE.canonical(failed.arch) not in {SPACE.canonical(a) for a in later}
    assert strategy.failures == [failed] and not strategy.pending


def test_constraint_is_never_violated():
    def no_conv(arch: NASNetArch) -> bool:  # the objective rewards 3x3 convs
        return all("conv_3x3" not in (b.op1, b.op2) for b in arch.normal)

    asked = drive(PNAS(SPACE, seed=1, constraint=no_conv), 80)
    assert all(no_conv(a) for a in asked) and len(set(asked)) == 80
    limit = 40_000
    params = MaxParams(SPACE, limit, C=8, N=1)
    asked = drive(PNAS(SPACE, seed=2, constraint=params), 50)
    assert all(SPACE.param_count(a, C=8, N=1) <= limit for a in asked)


def test_a_space_without_growth_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"nb201.*seeds\(\), grow\(\), num_blocks\(\)"):
        PNAS(NB201Space())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"beam": 0}, ConfigError),
        ({"max_seeds": 0}, ConfigError),
        ({"max_children": 0}, ConfigError),
        ({"members": 1}, ConfigError),
        ({"lr": 0.0}, ConfigError),
        ({"encoding": "path"}, UnknownNameError),
        ({"encoding": ()}, ConfigError),
    ],
)
def test_bad_settings_are_refused_with_a_named_error(kwargs, error):
    with pytest.raises(error):
        PNAS(SPACE, **kwargs)


class ChainSpace:
    """Test scaffolding: sequences of 1..4 digits 0..5 that grow by appending a digit. Its
    ``seeds``/``grow`` take no limit and it has only the padded one-hot encoding, so PNAS's
    generic paths (its own sampling of big expansions, the one-hot predictor) run."""

    name = "chain"
    length, digits = 4, 6

    def sample(self, rng):
        return tuple(int(d) for d in rng.integers(0, self.digits, self.length))

    def mutate(self, arch, rng):
        near = self.neighbours(arch)
        return near[int(rng.integers(len(near)))]

    def neighbours(self, arch):
        return [
            (*arch[:i], d, *arch[i + 1 :])
            for i in range(len(arch))
            for d in range(self.digits)
            if d != arch[i]
        ]

    def encode(self, arch, kind="onehot"):
        if kind != "onehot":
            raise UnknownNameError("encoding", kind, ("onehot",))
        out = np.zeros((self.length, self.digits))
        out[np.arange(len(arch)), list(arch)] = 1.0
        return out.ravel()

    def canonical(self, arch):
        return arch

    def seeds(self):
        return [(d,) for d in range(self.digits)]

    def grow(self, arch):
        return [] if len(arch) == self.length else [(*arch, d) for d in range(self.digits)]

    def num_blocks(self, arch):
        return len(arch)


def test_any_space_that_grows_can_be_searched():
    space = ChainSpace()
    strategy = PNAS(space, seed=0, beam=3, max_children=15)  # < 6 children x 3
    assert strategy.encodings == ("onehot",)
    asked = drive(strategy, 60, objective=lambda arch: float(sum(arch)) - 2.0 * arch.count(5))
    assert [len(a) for a in asked[:15]] == [1] * 6 + [2] * 3 + [3] * 3 + [4] * 3
    assert len(set(asked)) == 60
    assert (4, 4, 4, 4) in asked  # the optimum


def test_pnas_beats_random_search_on_a_synthetic_objective():
    def best(strategy) -> float:
        return max(score(a) for a in drive(strategy, 60))

    pnas = [best(PNAS(SPACE, seed=s, beam=8, max_seeds=24)) for s in range(5)]
    rand = [best(RandomSearch(SPACE, seed=s)) for s in range(5)]
    assert np.mean(pnas) > np.mean(rand) + 1.0


def test_an_ask_stays_fast_on_the_full_pnas_space():
    space = NASNetSpace(tied=True)  # 5 blocks, 13 ops: up to 6,162 children per parent
    weights = np.random.default_rng(0).normal(size=(3, 13))

    def objective(arch: NASNetArch) -> float:
        return sum(
            weights[min(s, 2), space.ops.index(op)] for b in arch.normal for s, op in b.halves
        )

    strategy = PNAS(space, seed=0)
    scored: list[int] = []  # how many cells each call of the predictor ranks
    rank = strategy._rank

    def counted(archs):
        scored.append(len(archs))
        return rank(archs)

    strategy._rank = counted
    for _ in range(160):
        candidate = strategy.ask()
        strategy.tell(candidate, Result(objective=objective(candidate.arch)))
    assert strategy.refining
    # an ask's cost is the predictor's ranking: capped at max_children cells, not the up to
    # 6,162 children a parent has (a work count, not a timing, so a busy machine cannot fail it)
    assert strategy.beam < max(scored) <= strategy.max_children


def test_candidates_carry_no_fidelity():
    candidate = PNAS(SPACE, seed=0).ask()
    assert isinstance(candidate, Candidate) and candidate.fidelity is None
