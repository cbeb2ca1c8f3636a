"""NASNet cell space: strings, moves, decisions, encodings, growth for PNAS, and networks."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from nasforge.core import Candidate
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.estimators.train import Train
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.nasnet import (
    COMBINERS,
    OPS,
    NASNetArch,
    NASNetBlock,
    NASNetCell,
    NASNetSpace,
    unused_blocks,
)

SMALL_OPS = ("identity", "max_pool_3x3", "conv_3x3", "sep_conv_3x3")
CELL = (
    NASNetBlock(0, 1, "sep_conv_3x3", "identity", "add"),
    NASNetBlock(2, 0, "max_pool_5x5", "conv_1x7_7x1", "concat"),
    NASNetBlock(1, 1, "dil_conv_3x3", "avg_pool_3x3", "add"),
    NASNetBlock(3, 2, "conv_1x3_3x1", "sep_conv_7x7", "add"),
    NASNetBlock(4, 0, "conv_1x1", "max_pool_7x7", "concat"),
)
REDUCE = (
    NASNetBlock(0, 1, "max_pool_3x3", "sep_conv_5x5", "add"),
    NASNetBlock(1, 2, "conv_3x3", "identity", "concat"),
    NASNetBlock(0, 0, "avg_pool_3x3", "identity", "add"),
    NASNetBlock(3, 1, "sep_conv_3x3", "max_pool_3x3", "add"),
    NASNetBlock(2, 1, "identity", "conv_1x1", "add"),
)
ARCH = NASNetArch(CELL, REDUCE)
TEXT = (
    "normal=[add(0:sep_conv_3x3,1:identity),concat(2:max_pool_5x5,0:conv_1x7_7x1),"
    "add(1:dil_conv_3x3,1:avg_pool_3x3),add(3:conv_1x3_3x1,2:sep_conv_7x7),"
    "concat(4:conv_1x1,0:max_pool_7x7)];reduce=[add(0:max_pool_3x3,1:sep_conv_5x5),"
    "concat(1:conv_3x3,2:identity),add(0:avg_pool_3x3,0:identity),"
    "add(3:sep_conv_3x3,1:max_pool_3x3),add(2:identity,1:conv_1x1)]"
)


@pytest.fixture(scope="module")
def space() -> NASNetSpace:
    return NASNetSpace()


@pytest.fixture(scope="module")
def tied() -> NASNetSpace:
    return NASNetSpace(tied=True)


def decision_distance(space: NASNetSpace, a: NASNetArch, b: NASNetArch) -> int:
    return int(np.sum(space.encode(a, "index") != space.encode(b, "index")))


# --- values and strings -------------------------------------------------------------------------


def test_space_satisfies_the_protocol(space: NASNetSpace) -> None:
    assert isinstance(space, SearchSpace)
    assert space.name == "nasnet"
    assert space.size_options == {"channels": "C", "cells": "N"}
    assert len(OPS) == 13 and space.ops == OPS


def test_string_round_trip_and_known_form(space: NASNetSpace, tied: NASNetSpace) -> None:
    assert space.to_string(ARCH) == TEXT
    assert space.from_string(TEXT) == ARCH
    rng = np.random.default_rng(0)
    for s in (space, tied, NASNetSpace(blocks=3, ops=SMALL_OPS)):
        for blocks in range(1, s.blocks + 1):
            for _ in range(20):
                arch = s.sample(rng, blocks=blocks)
                assert s.from_string(" " + s.to_string(arch) + "\n") == arch


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        TEXT.replace(";", ","),  # one cell
        TEXT + ";reduce=[]",  # three cells
        TEXT.replace("normal=", "norm="),
        TEXT.replace("add(0:sep_conv_3x3", "sum(0:sep_conv_3x3"),  # unknown combiner
        TEXT.replace("sep_conv_7x7", "sep_conv_9x9"),  # unknown op
        TEXT.replace("add(0:sep_conv_3x3", "add(2:sep_conv_3x3"),  # block 0 cannot read block 0
        TEXT.replace("add(0:sep_conv_3x3", "add(00:sep_conv_3x3"),
        TEXT.replace("add(0:sep_conv_3x3,", "add(0:sep_conv_3x3 ,"),
        TEXT.replace(",concat(4:conv_1x1,0:max_pool_7x7)", ""),  # 4 normal blocks vs 5 reduce
        "normal=[];reduce=[]",
        TEXT.replace("add(2:identity,1:conv_1x1)", "add(2:identity)"),
    ],
)
def test_malformed_strings_raise_one_line(space: NASNetSpace, text: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.from_string(text)
    message = str(err.value)
    assert "\n" not in message and "normal=[BLOCK,...];reduce=[BLOCK,...]" in message


def test_arch_validates_and_is_immutable() -> None:
    with pytest.raises(InvalidArchError, match="sep_conv_3x3"):
        NASNetBlock(0, 1, "conv_5x5", "identity")
    with pytest.raises(InvalidArchError, match="add, concat"):
        NASNetBlock(0, 1, "identity", "identity", "mul")
    with pytest.raises(InvalidArchError, match="int >= 0"):
        NASNetBlock(-1, 1, "identity", "identity")
    bad = (CELL[0], NASNetBlock(3, 0, "identity", "identity"))
    with pytest.raises(InvalidArchError, match=r"accepted: 0\.\.2"):
        NASNetArch(bad, bad)
    with pytest.raises(InvalidArchError, match="same number of blocks"):
        NASNetArch(CELL, REDUCE[:3])
    with pytest.raises(InvalidArchError, match="at least one block"):
        NASNetArch((), ())
    arch = NASNetArch(list(CELL), list(REDUCE))  # lists are frozen into tuples
    assert arch == ARCH and hash(arch) == hash(ARCH) and len(arch) == 5
    with pytest.raises(AttributeError):
        arch.normal = CELL  # type: ignore[misc]


def test_space_checks_its_own_limits() -> None:
    small = NASNetSpace(blocks=3, ops=SMALL_OPS)
    with pytest.raises(InvalidArchError, match=r"accepts 1\.\.3"):
        small.encode(ARCH)
    block = NASNetBlock(0, 1, "conv_1x1", "identity")
    one = NASNetArch((block,), (block,))
    with pytest.raises(InvalidArchError, match="identity, max_pool_3x3, conv_3x3, sep_conv_3x3"):
        small.to_string(one)
    with pytest.raises(InvalidArchError, match="tied"):
        NASNetSpace(tied=True).from_string(TEXT)
    with pytest.raises(InvalidArchError, match="NASNetArch"):
        small.encode("not an arch")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"blocks": 0}, ConfigError),
        ({"ops": ("identity", "conv_9x9")}, UnknownNameError),
        ({"ops": ("identity", "identity")}, ConfigError),
        ({"ops": ()}, ConfigError),
        ({"ops": "identity"}, ConfigError),
    ],
)
def test_bad_space_settings(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        NASNetSpace(**kwargs)


# --- moves --------------------------------------------------------------------------------------


def test_sample_is_seeded_full_size_and_covers_everything(
    space: NASNetSpace, tied: NASNetSpace
) -> None:
    first = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert first[0] == first[1]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    assert all(len(a) == 5 for a in archs) and len(set(archs)) == 200
    ops = Counter(op for a in archs for b in (*a.normal, *a.reduce) for op in (b.op1, b.op2))
    assert set(ops) == set(OPS)
    combiners = Counter(b.combiner for a in archs for b in a.normal)
    assert set(combiners) == set(COMBINERS)
    inputs = Counter(b.input1 for a in archs for b in a.normal[4:])
    assert set(inputs) == set(range(6))
    assert all(a.normal == a.reduce for a in (tied.sample(rng) for _ in range(20)))
    assert any(a.normal != a.reduce for a in archs)


@pytest.mark.parametrize("tied_space", [False, True])
def test_mutate_changes_exactly_one_decision(tied_space: bool) -> None:
    space = NASNetSpace(tied=tied_space)
    rng = np.random.default_rng(1)
    for blocks in (1, 3, 5):
        arch = space.canonical(space.sample(rng, blocks=blocks))
        changed = set()
        for _ in range(100):
            child = space.mutate(arch, rng)
            space.check(child)
            assert child != arch and space.canonical(child) != arch and len(child) == blocks
            assert decision_distance(space, arch, child) == 1
            diff = np.flatnonzero(space.encode(arch, "index") != space.encode(child, "index"))
            changed.add(int(diff[0]) % 5)
        assert changed == set(range(5))  # inputs, ops and combiner all get mutated


def test_neighbours_are_every_one_decision_change(space: NASNetSpace, tied: NASNetSpace) -> None:
    # per block b: 2 inputs * (b + 1) other values, 2 ops * 12 others, the other combiner
    per_cell = sum(2 * (b + 1) + 2 * 12 + 1 for b in range(5))
    near = space.neighbours(ARCH)
    assert len(near) == 2 * per_cell
    assert len({space.canonical(a) for a in near}) == len(near)
    assert all(decision_distance(space, ARCH, a) == 1 for a in near)
    assert near == space.neighbours(ARCH)
    # a block with two equal halves: changing either half gives the same cell (1 input + 12 ops)
    same = NASNetBlock(0, 0, "identity", "identity", "add")
    arch = NASNetArch((same, *CELL[1:]), (same, *CELL[1:]))
    assert len(tied.neighbours(arch)) == per_cell - 13
    assert all(a.normal == a.reduce for a in tied.neighbours(arch))
    rng = np.random.default_rng(0)
    mutants = {space.canonical(space.mutate(ARCH, rng)) for _ in range(300)}
    assert mutants <= {space.canonical(a) for a in near}


def test_crossover_takes_each_block_from_a_parent(space: NASNetSpace) -> None:
    rng = np.random.default_rng(2)
    short = space.canonical(space.sample(rng, blocks=2))
    sizes = set()
    for _ in range(30):
        child = space.crossover(ARCH, short, rng)
        space.check(child)
        sizes.add(len(child))
        for cell, long_cell, short_cell in ((0, CELL, short.normal), (1, REDUCE, short.reduce)):
            for position, block in enumerate((child.normal, child.reduce)[cell]):
                assert block in {long_cell[position], *short_cell[position : position + 1]}
    assert sizes == {2, 5}
    tied = NASNetSpace(tied=True)
    a, b = tied.sample(rng), tied.sample(rng)
    assert all(c.normal == c.reduce for c in (tied.crossover(a, b, rng) for _ in range(10)))


def test_canonical_sorts_halves_and_is_idempotent(space: NASNetSpace) -> None:
    swapped = NASNetBlock(1, 0, "identity", "sep_conv_3x3", "add")
    assert swapped.sorted() == CELL[0] and CELL[0].sorted() is CELL[0]
    twin = NASNetArch((swapped, *CELL[1:]), REDUCE)
    assert twin != ARCH and space.canonical(twin) == space.canonical(ARCH)
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        canon = space.canonical(arch)
        assert space.canonical(canon) is canon  # idempotent, and cheap on canonical input
        assert all(b.is_sorted() for b in (*canon.normal, *canon.reduce))
    other = NASNetArch((NASNetBlock(0, 1, "sep_conv_5x5", "identity"), *CELL[1:]), REDUCE)
    assert space.canonical(other) != space.canonical(ARCH)


# --- decisions and encodings --------------------------------------------------------------------


@pytest.mark.parametrize("tied_space", [False, True])
def test_decisions_decode_every_sequence(tied_space: bool) -> None:
    space = NASNetSpace(tied=tied_space)
    d = space.decisions()
    assert len(d.choices) == (25 if tied_space else 50)
    assert d.choices[:10] == (2, 2, 13, 13, 2, 3, 3, 13, 13, 2)
    rng = np.random.default_rng(4)
    sequences = [tuple(int(rng.integers(c)) for c in d.choices) for _ in range(200)]
    sequences += [(0,) * len(d.choices), tuple(c - 1 for c in d.choices)]
    for seq in sequences:
        arch = space.check(d.decode(seq))
        assert len(arch) == 5 and d.encode(arch) == seq
        assert space.encode(arch, "index").tolist() == list(seq)
    with pytest.raises(InvalidArchError, match=r"0\.\.1"):
        d.decode((2,) + (0,) * (len(d.choices) - 1))
    with pytest.raises(InvalidArchError, match="full cells"):
        d.encode(space.sample(rng, blocks=2))


def test_encodings_have_one_length_at_every_size(space: NASNetSpace, tied: NASNetSpace) -> None:
    rng = np.random.default_rng(5)
    for s, cells in ((space, 2), (tied, 1)):
        lengths = {kind: set() for kind in ("onehot", "index", "blocks")}
        for blocks in range(1, 6):
            arch = s.sample(rng, blocks=blocks)
            onehot, index = s.encode(arch), s.encode(arch, "index")
            assert set(np.unique(onehot)) <= {0.0, 1.0}
            assert onehot.sum() == 5 * blocks * cells  # missing blocks are all zeros
            assert (index == -1).sum() == 5 * (5 - blocks) * cells  # ... or -1
            features = s.encode(arch, "blocks").reshape(cells, -1)
            # per cell: the mean over blocks of two (input kind, op) halves and one combiner
            assert np.allclose(features[:, :39].sum(axis=1), 2.0)
            assert np.allclose(features[:, 39:].sum(axis=1), 1.0)
            for kind in lengths:
                lengths[kind].add(len(s.encode(arch, kind)))
        assert lengths == {"onehot": {180 * cells}, "index": {25 * cells}, "blocks": {41 * cells}}
    with pytest.raises(UnknownNameError, match="blocks, index, onehot"):
        space.encode(ARCH, "path")


def test_blocks_encoding_ignores_block_positions(tied: NASNetSpace) -> None:
    a = NASNetBlock(0, 1, "conv_3x3", "identity", "add")
    b = NASNetBlock(1, 1, "max_pool_3x3", "sep_conv_5x5", "concat")
    first, second = NASNetArch((a, b), (a, b)), NASNetArch((b, a), (b, a))
    assert np.array_equal(tied.encode(first, "blocks"), tied.encode(second, "blocks"))
    assert not np.array_equal(tied.encode(first), tied.encode(second))


# --- growth (PNAS) ------------------------------------------------------------------------------


def test_seeds_are_every_one_block_cell_once() -> None:
    small = NASNetSpace(blocks=3, ops=SMALL_OPS, tied=True)
    raw = {
        small.canonical(NASNetArch((blk,), (blk,)))
        for i1, i2, o1, o2, c in itertools.product((0, 1), (0, 1), SMALL_OPS, SMALL_OPS, COMBINERS)
        for blk in [NASNetBlock(i1, i2, o1, o2, c)]
    }
    seeds = small.seeds()
    assert len(seeds) == len(set(seeds)) == len(raw) == 8 * 9  # 8 halves: 36 pairs, 2 combiners
    assert set(seeds) == raw and seeds == small.seeds()
    assert all(small.num_blocks(s) == 1 for s in seeds)
    assert len(NASNetSpace(tied=True).seeds()) == 702
    untied = NASNetSpace()
    rng = np.random.default_rng(0)
    drawn = untied.seeds(limit=50, rng=rng)
    assert len(set(drawn)) == 50 and all(untied.canonical(a) == a for a in drawn)
    assert any(a.normal != a.reduce for a in drawn)
    with pytest.raises(ConfigError, match="rng"):
        untied.seeds(limit=5)


def test_grow_appends_every_block_once() -> None:
    small = NASNetSpace(blocks=3, ops=SMALL_OPS, tied=True)
    parent = small.seeds()[17]
    children = small.grow(parent)
    halves = 3 * len(SMALL_OPS)  # block 1 reads h_{i-2}, h_{i-1} or block 0
    assert len(children) == len(set(children)) == halves * (halves + 1)
    assert all(c.normal[:1] == parent.normal and small.num_blocks(c) == 2 for c in children)
    assert all(small.canonical(c) == c and c.normal == c.reduce for c in children)
    assert {c.normal[1].input1 for c in children} == {0, 1, 2}
    grand = small.grow(children[5])
    assert len(grand) == (4 * 4) * (4 * 4 + 1)
    assert small.grow(grand[0]) == []  # full size
    rng = np.random.default_rng(1)
    some = small.grow(parent, limit=10, rng=rng)
    assert len(set(some)) == 10 and set(some) <= set(children)
    untied = NASNetSpace(blocks=2, ops=SMALL_OPS)
    pair = untied.seeds(limit=1, rng=rng)[0]
    assert len(untied.grow(pair)) == (halves * (halves + 1)) ** 2


# --- networks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 3, 28, 28), (2, 3, 32, 32), (1, 1, 15, 17)])
def test_build_forward_shapes(space: NASNetSpace, shape: tuple[int, ...]) -> None:
    net = space.build(ARCH, C=4, N=1, in_channels=shape[1], num_classes=7)
    assert net(torch.randn(shape)).shape == (shape[0], 7)


def test_small_and_tied_cells_build_and_train_a_step(tied: NASNetSpace) -> None:
    rng = np.random.default_rng(0)
    for arch in (tied.seeds()[0], tied.seeds()[-1], tied.sample(rng, blocks=3)):
        for N in (0, 1):
            net = tied.build(arch, C=4, N=N, in_channels=1, num_classes=3)
            logits = net(torch.randn(2, 1, 12, 12))
            assert logits.shape == (2, 3)
            torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
            missing = [p.grad is None for p in net.parameters()]
            # a cell reading only h_{i-2} skips every other cell: half the cells are then dead
            # (NASNet's wiring), otherwise every weight is trained
            reads_prev = any(1 in (b.input1, b.input2) for b in arch.normal)
            assert not any(missing) if reads_prev else 0 < sum(missing) < len(missing)


def test_cell_output_is_the_unused_blocks_and_reduction_halves() -> None:
    assert unused_blocks(CELL) == [3, 4]  # blocks 0, 1 and 2 feed later blocks
    assert unused_blocks(REDUCE) == [2, 3, 4]
    normal = NASNetCell(CELL, 6, 10, 4, reduction=False, reduction_prev=False)
    x0, x1 = torch.randn(2, 6, 9, 9), torch.randn(2, 10, 9, 9)
    assert normal(x0, x1).shape == (2, 2 * 4, 9, 9) and normal.out_channels == 8
    reduce = NASNetCell(REDUCE, 6, 10, 8, reduction=True, reduction_prev=False)
    assert reduce(x0, x1).shape == (2, 3 * 8, 5, 5) and reduce.out_channels == 24
    after = NASNetCell(CELL, 10, 16, 8, reduction=False, reduction_prev=True)
    assert after(torch.randn(2, 10, 9, 9), torch.randn(2, 16, 5, 5)).shape == (2, 16, 5, 5)
    # a cell input that no block reads gets no adapter
    only_prev = NASNetBlock(1, 1, "conv_3x3", "identity")
    cell = NASNetCell((only_prev,), 6, 10, 4, reduction=False, reduction_prev=False)
    assert cell.pre0 is None and cell(x0, x1).shape == (2, 4, 9, 9)


def test_param_count_matches_build(space: NASNetSpace, tied: NASNetSpace) -> None:
    rng = np.random.default_rng(6)
    archs = [ARCH, tied.seeds()[3], space.sample(rng, blocks=2)]
    for arch in archs:
        for net in (dict(C=4, N=1, in_channels=1, num_classes=3), dict(C=8, N=0), dict(C=6, N=2)):
            built = sum(p.numel() for p in space.build(arch, **net).parameters())
            assert space.param_count(arch, **net) == built
    # the paper's CIFAR network (N=6, F=32): a few million parameters (NASNet-A: 3.3 M)
    default = space.param_count(ARCH)
    assert default == sum(p.numel() for p in space.build(ARCH).parameters())
    assert 1e6 < default < 1e7


def test_build_rejects_bad_settings(space: NASNetSpace) -> None:
    with pytest.raises(ConfigError, match="C"):
        space.build(ARCH, C=0)
    with pytest.raises(ConfigError, match="N"):
        space.param_count(ARCH, N=-1)
    with pytest.raises(InvalidArchError):
        space.build("not an arch")  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_epoch_on_digits_is_above_chance(tied: NASNetSpace) -> None:
    arch = tied.sample(np.random.default_rng(0), blocks=2)
    result = Train(
        tied, load_dataset("digits"), epochs=1, batch_size=32, net={"C": 8, "N": 1}
    ).evaluate(Candidate(arch))
    assert result.objective > 50  # percent; chance is 10 (measured: 95)
