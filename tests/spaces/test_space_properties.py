"""Properties every search space must have, checked on many random architectures of each.

Strategies rely on these without knowing the space: evolution needs ``mutate`` to give a valid
architecture that is a different network (a ``canonical`` twin would be skipped as a duplicate
and waste a draw, or loop), local search needs ``neighbours`` valid, distinct and excluding the
starting point, stored runs need ``from_string(to_string(a)) == a``, and the sequential
strategies (REINFORCE/PPO, MCTS, TPE, BOHB, grid) need ``decisions().decode`` to invert
``decisions().encode``. Every built-in space is here, with its variants (``none`` in DARTS,
tied and growing NASNet cells, a small chain space, the mobile supernet's part of the mobile
space), and two ``Custom`` spaces: the example file
and one with nested conditions, numbers, booleans and a one-value choice.

Where the decision encoding cannot tell isomorphic twins apart, decode(encode(a)) is compared
after ``canonical``: DARTS encodes a node's two edges as an unordered input pair (so an
arch whose node lists its larger input first comes back with the edges swapped), and NB101
embeds a cell of fewer than 7 vertices into the 7 x 7 genotype (so it comes back as an
isomorphic 7-vertex genotype). Every other space round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.factory import make_space
from nasforge.spaces.chain import ChainSpace
from nasforge.spaces.custom import Choice, Custom, IntRange, load_space
from nasforge.spaces.darts import DartsSpace
from nasforge.spaces.mobile import MobileSupernetSpace
from nasforge.spaces.nasnet import NASNetSpace

#: random architectures per space (each from its own seed), and draws of ``mutate`` per arch
ARCHS = 200
MUTATIONS = 5
#: architectures whose ``neighbours`` are checked (each call lists every one-edit change)
NEIGHBOURED = 60
#: of which the first this many have every neighbour's string parsed back
NEIGHBOURS_PARSED = 10

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_space.py"


def nested_custom() -> Custom:
    """Conditions two levels deep, a condition on two parents, a one-value choice, floats and
    booleans: what ``Custom`` has to repair when a move (de)activates choices."""
    return Custom(
        {
            "layers": IntRange(1, 4),
            "block": ["conv", "pool", "attention"],
            "kernel": Choice([1, 3, 5], when={"block": "conv"}),
            "dilation": Choice([1, 2], when={"kernel": [3, 5]}),
            "heads": Choice([2, 4, 8], when={"block": "attention"}),
            "bias": Choice([True, False], when={"block": ["conv", "attention"], "layers": [3, 4]}),
            "lr": [0.1, 0.01, 0.001],
            "fixed": ["only"],
        },
        name="nested",
    )


@dataclass(frozen=True)
class Case:
    """A space and how to draw a random architecture of it."""

    make: Callable[[], object]
    #: decode(encode(a)) == a (False: compare canonical forms; see the module docstring)
    exact_decisions: bool = True
    #: draws an arch with ``rng`` (default: ``space.sample(rng)``)
    draw: Callable[[object, np.random.Generator], object] | None = None


def _grown(space: NASNetSpace, rng: np.random.Generator) -> object:
    return space.sample(rng, blocks=int(rng.integers(1, space.blocks + 1)))


CASES: dict[str, Case] = {
    "nb201": Case(lambda: make_space("nb201")),
    "darts": Case(lambda: make_space("darts"), exact_decisions=False),
    "darts-none": Case(lambda: DartsSpace(include_none=True), exact_decisions=False),
    "nb101": Case(lambda: make_space("nb101"), exact_decisions=False),
    "nasnet": Case(lambda: make_space("nasnet")),
    "nasnet-tied": Case(lambda: NASNetSpace(blocks=3, ops=("identity", "conv_3x3"), tied=True)),
    "nasnet-growing": Case(lambda: NASNetSpace(blocks=4), draw=_grown),  # type: ignore[arg-type]
    "mobile": Case(lambda: make_space("mobile")),
    "mobile-supernet": Case(lambda: MobileSupernetSpace(width=0.5)),
    "chain": Case(lambda: make_space("chain")),
    "chain-small": Case(lambda: ChainSpace(input_size=8, max_layers=4)),
    "custom-example": Case(lambda: load_space(f"{EXAMPLE}:space")),
    "custom-nested": Case(nested_custom),
}


@dataclass
class Sample:
    space: object
    case: Case
    archs: list[object]


@pytest.fixture(scope="module", params=sorted(CASES))
def sample(request: pytest.FixtureRequest) -> Sample:
    """``ARCHS`` architectures: seed s draws one and walks ``s % 4`` mutations from it, so the
    set holds sampled architectures and ones only evolution reaches."""
    case = CASES[request.param]
    space = case.make()
    archs = []
    for seed in range(ARCHS):
        rng = np.random.default_rng(seed)
        arch = case.draw(space, rng) if case.draw else space.sample(rng)  # type: ignore[attr-defined]
        for _ in range(seed % 4):
            arch = space.mutate(arch, rng)  # type: ignore[attr-defined]
        archs.append(arch)
    return Sample(space, case, archs)


def assert_valid(space, arch, strings: bool = True) -> None:
    """Valid: the space accepts it (its own ``check`` where it has one; the arch types of the
    others validate on construction), its strict parser takes its string back to the same value
    (skipped with ``strings=False``, where many archs are checked and parsing dominates), and
    its canonical form is a fixed point of ``canonical``."""
    check = getattr(space, "check", None)
    if callable(check):
        check(arch)
    text = space.to_string(arch)
    assert isinstance(text, str) and text
    if strings:
        assert space.from_string(text) == arch, text
    rep = space.canonical(arch)
    assert space.canonical(rep) == rep, text
    if strings:
        assert space.from_string(space.to_string(rep)) == rep


def test_string_round_trip(sample: Sample) -> None:
    for arch in sample.archs:
        assert_valid(sample.space, arch)
        hash(arch)  # archs are hashable (stored, deduplicated)


def test_mutate_gives_a_valid_different_network(sample: Sample) -> None:
    space = sample.space
    for seed, arch in enumerate(sample.archs):
        rng = np.random.default_rng(10_000 + seed)
        own = space.canonical(arch)
        for _ in range(MUTATIONS):
            child = space.mutate(arch, rng)
            assert_valid(space, child)
            assert space.canonical(child) != own, (space.to_string(arch), space.to_string(child))


def test_mutate_is_seeded(sample: Sample) -> None:
    space, arch = sample.space, sample.archs[7]
    first = [space.mutate(arch, np.random.default_rng(3)) for _ in range(3)]
    assert first[0] == first[1] == first[2]


def test_neighbours_are_valid_distinct_and_not_the_input(sample: Sample) -> None:
    space = sample.space
    for number, arch in enumerate(sample.archs[:NEIGHBOURED]):
        near = space.neighbours(arch)
        assert near == space.neighbours(arch)  # a fixed order
        assert near, space.to_string(arch)  # every arch here has some neighbour
        keys = [space.canonical(n) for n in near]
        assert len(set(keys)) == len(keys), space.to_string(arch)
        assert space.canonical(arch) not in keys
        for n in near:
            assert_valid(space, n, strings=number < NEIGHBOURS_PARSED)


def test_decisions_round_trip(sample: Sample) -> None:
    space, case = sample.space, sample.case
    if not callable(getattr(space, "decisions", None)):
        pytest.skip(f"{space.name} is not a sequence of decisions")  # type: ignore[attr-defined]
    decisions = space.decisions()
    full = [a for a in sample.archs if not case.draw]  # growing cells: decisions are full-size
    if case.draw:
        full = [space.sample(np.random.default_rng(s)) for s in range(ARCHS)]
    for arch in full:
        sequence = decisions.encode(arch)
        assert len(sequence) == len(decisions.choices)
        assert all(0 <= v < n for v, n in zip(sequence, decisions.choices, strict=True))
        back = decisions.decode(sequence)
        if case.exact_decisions:
            assert back == arch, space.to_string(arch)
        else:
            assert space.canonical(back) == space.canonical(arch), space.to_string(arch)


def test_every_decision_sequence_decodes_to_a_valid_arch(sample: Sample) -> None:
    space = sample.space
    if not callable(getattr(space, "decisions", None)):
        pytest.skip(f"{space.name} is not a sequence of decisions")  # type: ignore[attr-defined]
    decisions = space.decisions()
    rng = np.random.default_rng(1)
    for _ in range(ARCHS):
        sequence = [int(rng.integers(n)) for n in decisions.choices]
        arch = decisions.decode(sequence)
        assert_valid(space, arch)
        again = decisions.decode(decisions.encode(arch))  # a decoded arch is a fixed point
        assert space.canonical(again) == space.canonical(arch)


def test_crossover_gives_valid_children(sample: Sample) -> None:
    space = sample.space
    if not callable(getattr(space, "crossover", None)):
        pytest.skip(f"{space.name} has no crossover")  # type: ignore[attr-defined]
    rng = np.random.default_rng(2)
    for a, b in zip(sample.archs[::2], sample.archs[1::2], strict=True):
        assert_valid(space, space.crossover(a, b, rng))
    same = sample.archs[0]
    assert space.canonical(space.crossover(same, same, rng)) == space.canonical(same)


def test_encodings_have_one_length(sample: Sample) -> None:
    space = sample.space
    for kind in ("onehot", "index"):
        vectors = [space.encode(a, kind) for a in sample.archs]
        assert len({v.shape for v in vectors}) == 1, kind
        assert all(v.dtype == np.float64 and np.isfinite(v).all() for v in vectors)
    onehots = np.stack([space.encode(a, "onehot") for a in sample.archs])
    assert set(np.unique(onehots)) <= {0.0, 1.0}


# --- a space's own canonical form plugs into the shared moves -----------------------------------


class ModuloWidth(Custom):
    """A Custom space whose networks only see ``width`` modulo 3 (a stand-in for a user's
    canonical function: widths 0, 3, 6 build one network), so most width changes are twins."""

    def canonical(self, arch):
        config = super().canonical(arch)
        return type(config)({**config, "width": config["width"] % 3})


class OneTwin(Custom):
    """Every configuration but ``(0, 1)`` builds the same network."""

    def canonical(self, arch):
        config = super().canonical(arch)
        return config if dict(config) == {"a": 0, "b": 1} else type(config)({"a": 0, "b": 0})


def test_a_spaces_own_canonical_form_is_what_mutate_and_neighbours_respect() -> None:
    space = ModuloWidth({"width": IntRange(0, 8), "depth": [1, 2]})
    rng = np.random.default_rng(0)
    arch = space.from_string("width=4,depth=1")
    for _ in range(200):
        child = space.mutate(arch, rng)
        assert (child["width"] % 3, child["depth"]) != (1, 1)  # never a twin of width 4
    near = space.neighbours(arch)
    # width 4 ~ 1 ~ 7: the other classes are width 0|3|6 and 2|5|8 at depth 1, and depth 2
    assert [space.to_string(n) for n in near] == [
        "width=0,depth=1",
        "width=2,depth=1",
        "width=4,depth=2",
    ]


def test_mutate_finds_the_one_different_network_and_refuses_where_there_is_none() -> None:
    space = OneTwin({"a": IntRange(0, 999), "b": IntRange(0, 999)})
    rng = np.random.default_rng(0)
    # 1 change in 2,000 is not a twin: random draws miss it, the neighbour list does not
    assert space.mutate(space.from_string("a=0,b=0"), rng) == space.from_string("a=0,b=1")
    every = ModuloWidth({"width": [0, 3, 6]})  # three widths, one network
    with pytest.raises(ConfigError, match="builds the same network"):
        every.mutate(every.from_string("width=3"), rng)
    assert every.neighbours(every.from_string("width=3")) == []
