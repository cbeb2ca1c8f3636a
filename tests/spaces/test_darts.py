"""DARTS space: genotype strings, decisions, moves, encodings, the evaluation network."""

from __future__ import annotations

from collections import Counter, namedtuple

import numpy as np
import pytest
import torch

from nasforge.core import Candidate
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.darts import (
    DARTS_V1,
    DARTS_V2,
    OPS,
    DartsArch,
    DartsSpace,
    NetworkCIFAR,
    build,
    param_count,
)

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
# typed from DARTS's cnn/genotypes.py, independently of the module's constants
V2_NORMAL = [
    ("sep_conv_3x3", 0),
    ("sep_conv_3x3", 1),
    ("sep_conv_3x3", 0),
    ("sep_conv_3x3", 1),
    ("sep_conv_3x3", 1),
    ("skip_connect", 0),
    ("skip_connect", 0),
    ("dil_conv_3x3", 2),
]
V2_REDUCE = [
    ("max_pool_3x3", 0),
    ("max_pool_3x3", 1),
    ("skip_connect", 2),
    ("max_pool_3x3", 1),
    ("max_pool_3x3", 0),
    ("skip_connect", 2),
    ("skip_connect", 2),
    ("max_pool_3x3", 1),
]
#: DARTS_V2 with its last normal node reading zeros from node 1
WITH_NONE = DartsArch([*V2_NORMAL[:6], ("none", 3), ("dil_conv_3x3", 2)], V2_REDUCE)
V2_TEXT = str(Genotype(V2_NORMAL, [2, 3, 4, 5], V2_REDUCE, [2, 3, 4, 5]))


@pytest.fixture(scope="module")
def space() -> DartsSpace:
    return DartsSpace()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_archs(space: DartsSpace, n: int, seed: int = 0) -> list[DartsArch]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def edits(a: DartsArch, b: DartsArch) -> int:
    """Number of ops plus number of inputs that differ, entry by entry."""
    pairs = list(zip(a.normal + a.reduce, b.normal + b.reduce, strict=True))
    return sum(x[0] != y[0] for x, y in pairs) + sum(x[1] != y[1] for x, y in pairs)


def one_edge_apart(a: DartsArch, b: DartsArch) -> bool:
    """True iff exactly one node of one cell differs, by exactly one of its two edges."""
    changed = []
    for cell_a, cell_b in ((a.normal, b.normal), (a.reduce, b.reduce)):
        for k in range(4):
            x, y = set(cell_a[2 * k : 2 * k + 2]), set(cell_b[2 * k : 2 * k + 2])
            if x != y:
                changed.append(len(x ^ y))
    return changed == [2]


def test_space_satisfies_the_protocol(space: DartsSpace) -> None:
    assert isinstance(space, SearchSpace)
    assert space.name == "darts"
    assert space.size_options == {"channels": "C", "cells": "layers"}
    assert OPS[0] == "none" and len(OPS) == 8 and "none" not in space.ops and len(space.ops) == 7


# --- strings ------------------------------------------------------------------------------------


def test_published_genotypes(space: DartsSpace) -> None:
    assert space.from_string(V2_TEXT) == DARTS_V2
    assert space.to_string(DARTS_V2) == V2_TEXT  # exactly DARTS's own repr
    assert DARTS_V2.normal == tuple(V2_NORMAL) and DARTS_V2.reduce == tuple(V2_REDUCE)
    assert DARTS_V1 != DARTS_V2 and DARTS_V1.normal[0] == ("sep_conv_3x3", 1)
    # the concat fields may also be written as range(2, 6), as many DARTS forks print them
    ranged = str(Genotype(V2_NORMAL, range(2, 6), V2_REDUCE, range(2, 6)))
    assert "range(2, 6)" in ranged and space.from_string(ranged) == DARTS_V2
    tupled = str(Genotype(tuple(V2_NORMAL), (2, 3, 4, 5), V2_REDUCE, [2, 3, 4, 5]))
    assert space.from_string("  " + tupled + "\n") == DARTS_V2


def test_string_round_trip(space: DartsSpace) -> None:
    with_none = DartsSpace(include_none=True)
    archs = random_archs(space, 150) + random_archs(with_none, 150, seed=1)
    for arch in archs:
        assert space.from_string(space.to_string(arch)) == arch
    assert len({space.to_string(a) for a in archs}) == len(set(archs))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage(",
        "[('sep_conv_3x3', 0)]",
        V2_TEXT.replace("Genotype", "Genome"),
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5], ", ""),  # missing field
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4, 5], extra=1"),
        V2_TEXT.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[2, 3, 4, 5], reduce=[]"),
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[3, 4, 5]"),
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 5)"),
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2.0, 6)"),
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2.0, 3, 4, 5]"),
        V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=list(range(2, 6))"),
        V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 6)"),  # input out of range
        V2_TEXT.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1),  # node 0: 0 and 0
        V2_TEXT.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 2)", 1),  # node 0 reads node 0
        V2_TEXT.replace("('skip_connect', 0)", "('skip_connect', -1)", 1),
        V2_TEXT.replace("('skip_connect', 0)", "('skip_connect', True)", 1),
        V2_TEXT.replace("('skip_connect', 0)", "('skip_connect', 0.0)", 1),
        V2_TEXT.replace("('skip_connect', 0)", "('skip_connect', 0, 1)", 1),
        V2_TEXT.replace("sep_conv_3x3", "sep_conv_7x7", 1),  # unknown op
        V2_TEXT.replace("('sep_conv_3x3', 0), ", "", 1),  # 7 entries
        V2_TEXT.replace("('skip_connect', 0)", "__import__('os').getcwd()", 1),  # no eval
        "Genotype(" + ", ".join([repr(V2_NORMAL), "[2, 3, 4, 5]", repr(V2_REDUCE), "[2]"]) + ")",
        V2_TEXT + " + 1",
    ],
)
def test_malformed_strings_raise(space: DartsSpace, text: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.from_string(text)
    message = str(err.value)
    assert "\n" not in message and "expected Genotype(normal=" in message


def test_from_string_rejects_non_strings(space: DartsSpace) -> None:
    with pytest.raises(InvalidArchError, match="str"):
        space.from_string(DARTS_V2)  # type: ignore[arg-type]


def test_arch_validates_and_is_immutable() -> None:
    arch = DartsArch([list(e) for e in V2_NORMAL], V2_REDUCE)  # lists are frozen into tuples
    assert arch == DARTS_V2 and hash(arch) == hash(DARTS_V2)
    with pytest.raises(AttributeError):
        arch.normal = DARTS_V1.normal  # type: ignore[misc]
    with pytest.raises(InvalidArchError, match="dil_conv_5x5"):
        DartsArch((("conv_9x9", 0), *V2_NORMAL[1:]), V2_REDUCE)
    with pytest.raises(InvalidArchError, match="distinct"):
        DartsArch(V2_NORMAL, (("max_pool_3x3", 1), *V2_REDUCE[1:]))
    with pytest.raises(InvalidArchError, match=r"0\.\.3"):
        DartsArch([*V2_NORMAL[:4], ("skip_connect", 4), *V2_NORMAL[5:]], V2_REDUCE)


# --- canonical form and decisions ---------------------------------------------------------------


def swap_node(arch: DartsArch, cell: str, k: int) -> DartsArch:
    entries = list(arch.normal if cell == "normal" else arch.reduce)
    entries[2 * k], entries[2 * k + 1] = entries[2 * k + 1], entries[2 * k]
    if cell == "normal":
        return DartsArch(tuple(entries), arch.reduce)
    return DartsArch(arch.normal, tuple(entries))


def test_canonical_is_idempotent_and_ignores_edge_order(space: DartsSpace) -> None:
    for arch in [*random_archs(space, 100), DARTS_V1, DARTS_V2]:
        rep = space.canonical(arch)
        assert space.canonical(rep) == rep
        for cell in ("normal", "reduce"):
            for k in range(4):
                assert space.canonical(swap_node(arch, cell, k)) == rep
        for cell in (rep.normal, rep.reduce):  # each node's edges ordered by input
            assert all(cell[2 * k][1] < cell[2 * k + 1][1] for k in range(4))
    assert space.canonical(DARTS_V1) != DARTS_V1  # V1 lists node 0 as (1, 0)
    assert space.canonical(DARTS_V1) != space.canonical(DARTS_V2)


def test_canonical_ignores_what_a_none_edge_reads() -> None:
    a = WITH_NONE
    b = DartsArch([*V2_NORMAL[:6], ("none", 4), ("dil_conv_3x3", 2)], V2_REDUCE)
    c = DartsArch([*V2_NORMAL[:6], ("none", 4), ("dil_conv_3x3", 1)], V2_REDUCE)
    assert a != b and DartsSpace().canonical(a) == DartsSpace().canonical(b)
    assert DartsSpace().canonical(a) != DartsSpace().canonical(c)  # the conv's input matters


@pytest.mark.parametrize("include_none", [False, True])
def test_decisions_round_trip_and_always_decode(include_none: bool) -> None:
    space = DartsSpace(include_none=include_none)
    d = space.decisions()
    n_ops = 8 if include_none else 7
    assert d.choices == (n_ops, n_ops, 3, n_ops, n_ops, 6, n_ops, n_ops, 10, n_ops, n_ops) * 2
    for arch in random_archs(space, 200, seed=3) + ([] if include_none else [DARTS_V1]):
        seq = d.encode(arch)
        assert len(seq) == len(d.choices)
        assert space.canonical(d.decode(seq)) == space.canonical(arch)
        assert d.encode(d.decode(seq)) == seq
    rng = np.random.default_rng(4)
    decoded = set()
    for _ in range(300):
        seq = [int(rng.integers(n)) for n in d.choices]
        arch = d.decode(seq)
        assert isinstance(arch, DartsArch) and d.encode(arch) == tuple(seq)
        decoded.add(arch)
    assert len(decoded) == 300
    with pytest.raises(InvalidArchError, match=r"0\.\.2"):
        d.decode([0] * 2 + [3] + [0] * 19)
    with pytest.raises(InvalidArchError, match="22"):
        d.decode([0] * 21)


def test_sample_is_seeded_and_uniform_enough(space: DartsSpace) -> None:
    first, again = random_archs(space, 200, seed=7), random_archs(space, 200, seed=7)
    assert first == again and len(set(first)) == 200
    ops = Counter(op for arch in first for op, _ in arch.normal + arch.reduce)
    assert set(ops) == set(OPS[1:])  # "none" is not sampled by default
    assert min(ops.values()) > 0.5 * 3200 / 7
    last_node_inputs = Counter(arch.normal[7][1] for arch in first) + Counter(
        arch.normal[6][1] for arch in first
    )
    assert set(last_node_inputs) == {0, 1, 2, 3, 4}
    with_none = random_archs(DartsSpace(include_none=True), 50)
    assert any(op == "none" for arch in with_none for op, _ in arch.normal + arch.reduce)


# --- moves --------------------------------------------------------------------------------------


def test_mutate_is_one_valid_edit(space: DartsSpace) -> None:
    rng = np.random.default_rng(0)
    kinds: Counter[str] = Counter()
    for arch in [*random_archs(space, 20), DARTS_V1, DARTS_V2]:
        near = set(space.neighbours(arch))
        for _ in range(15):
            child = space.mutate(arch, rng)
            assert isinstance(child, DartsArch) and edits(arch, child) == 1
            assert space.canonical(child) != space.canonical(arch)
            assert space.canonical(child) in near
            ops = [op for op, _ in arch.normal + arch.reduce]
            kinds["op" if ops != [op for op, _ in child.normal + child.reduce] else "input"] += 1
    assert kinds["op"] > 50 and kinds["input"] > 50


def test_neighbours_are_valid_distinct_and_deterministic(space: DartsSpace) -> None:
    for arch in [DARTS_V2, *random_archs(space, 5)]:
        near = space.neighbours(arch)
        # per cell: 8 edges x 6 other ops + input changes (node k: k per edge) = 48 + 12
        assert len(near) == 120 and len(set(near)) == 120
        assert near == space.neighbours(arch)
        own = space.canonical(arch)
        for n in near:
            assert isinstance(n, DartsArch) and space.canonical(n) == n != own
            assert one_edge_apart(arch, n)
    with_none = DartsSpace(include_none=True)
    arch = WITH_NONE
    near = with_none.neighbours(arch)
    assert len(near) == len(set(near)) and with_none.canonical(arch) not in near


def test_crossover_takes_whole_nodes_from_either_parent(space: DartsSpace) -> None:
    rng = np.random.default_rng(1)
    a, b = random_archs(space, 2, seed=5)
    seen_a = seen_b = False
    for _ in range(20):
        child = space.crossover(a, b, rng)
        for cell in ("normal", "reduce"):
            ca, cb, cc = (getattr(x, cell) for x in (a, b, child))
            for k in range(4):
                node = cc[2 * k : 2 * k + 2]
                assert node in (ca[2 * k : 2 * k + 2], cb[2 * k : 2 * k + 2])
        seen_a |= child.normal[6:] == a.normal[6:]
        seen_b |= child.normal[6:] == b.normal[6:]
    assert seen_a and seen_b
    assert space.crossover(a, a, rng) == a


# --- encodings ----------------------------------------------------------------------------------


def test_encodings(space: DartsSpace) -> None:
    onehot = space.encode(DARTS_V2)
    assert onehot.shape == (2 * (3 + 6 + 10 + 8 * 7),) and onehot.sum() == 22
    assert set(np.unique(onehot)) == {0.0, 1.0}
    index = space.encode(DARTS_V2, "index")
    assert index.tolist() == list(space.decisions().encode(DARTS_V2))
    # normal node 0: sep_conv_3x3 (position 3 among the 7 search ops) twice; node 1: pair (0, 1)
    assert index[:4].tolist() == [3.0, 3.0, 0.0, 3.0]
    edges = space.encode(DARTS_V2, "edges")
    assert edges.shape == (2 * 14 * 7,) and edges.sum() == 16
    swapped = swap_node(DARTS_V2, "normal", 3)
    assert np.array_equal(space.encode(swapped, "edges"), edges)
    assert np.array_equal(space.encode(swapped), onehot)
    vectors = {space.encode(a).tobytes() for a in random_archs(space, 50)}
    assert len(vectors) == 50
    with pytest.raises(UnknownNameError, match="onehot"):
        space.encode(DARTS_V2, "adjacency")
    with_none = WITH_NONE
    with pytest.raises(InvalidArchError, match="include_none"):
        space.encode(with_none)
    assert DartsSpace(include_none=True).encode(with_none).shape == (2 * (19 + 8 * 8),)


# --- the network --------------------------------------------------------------------------------


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_darts_v2_has_the_papers_parameter_count() -> None:
    # DARTS reports 3.3 M parameters for its CIFAR-10 network (C=36, 20 cells, no aux head).
    assert abs(param_count(DARTS_V2) - 3.3e6) < 0.05e6
    assert param_count(DARTS_V2) == count(build(DARTS_V2))


def test_param_count_matches_build(space: DartsSpace) -> None:
    with_none = WITH_NONE
    settings = [dict(C=6, layers=5), dict(C=4, layers=2, in_channels=1, num_classes=3)]
    for arch in [*random_archs(space, 4), DARTS_V1, with_none]:
        for net in settings:
            assert space.param_count(arch, **net) == count(space.build(arch, **net))
    # the auxiliary head is trained then dropped: DARTS does not count it, nor do we
    aux = space.build(DARTS_V2, C=6, layers=5, auxiliary=True)
    assert count(aux) > space.param_count(DARTS_V2, C=6, layers=5, auxiliary=True)
    assert count(aux) - count(aux.auxiliary_head) == space.param_count(DARTS_V2, C=6, layers=5)


@pytest.mark.parametrize("size", [8, 28, 32, 15])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_shapes(space: DartsSpace, size: int, channels: int) -> None:
    net = space.build(DARTS_V2, C=8, layers=5, in_channels=channels, num_classes=7)
    assert isinstance(net, NetworkCIFAR)
    reductions = [i for i, cell in enumerate(net.cells) if cell.reduction]
    assert reductions == [1, 3]
    assert net(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_drop_path_and_auxiliary_head(space: DartsSpace) -> None:
    torch.manual_seed(0)
    arch = random_archs(space, 1, seed=9)[0]
    net = space.build(arch, C=8, layers=5, auxiliary=True, drop_path_prob=0.3, num_classes=5)
    x = torch.randn(4, 3, 8, 8)
    net.train()
    logits = net(x)
    assert logits.shape == (4, 5) and net.aux_logits is not None
    assert net.aux_logits.shape == (4, 5)
    (
        torch.nn.functional.cross_entropy(logits, torch.arange(4)) + 0.4 * net.aux_logits.sum()
    ).backward()
    assert all(p.grad is not None for p in net.parameters())
    assert not torch.allclose(net(x), net(x))  # drop-path is random in training
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))  # and off in evaluation
    assert net.aux_logits is None
    net.drop_path_prob = 0.0  # a trainer may schedule it
    net.train()
    torch.manual_seed(1)
    plain = space.build(arch, C=8, layers=5, num_classes=5)
    assert plain.auxiliary_head is None and plain(x).shape == (4, 5) and plain.aux_logits is None


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        (dict(C=0), "C"),
        (dict(layers=0), "layers"),
        (dict(in_channels=2.5), "in_channels"),
        (dict(drop_path_prob=1.0), "drop_path_prob"),
        (dict(auxiliary="yes"), "auxiliary"),
    ],
)
def test_build_rejects_bad_settings(space: DartsSpace, kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        space.build(DARTS_V2, **kwargs)
    with pytest.raises(ConfigError, match=word):
        space.param_count(DARTS_V2, **kwargs)


def test_rejects_foreign_archs_and_options(space: DartsSpace) -> None:
    with pytest.raises(InvalidArchError, match="DartsArch"):
        space.build("not an arch")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="include_none"):
        DartsSpace(include_none="no")  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_small_darts_network_learns_digits(space: DartsSpace) -> None:
    from nasforge.data.datasets import load_dataset
    from nasforge.estimators.train import Train

    train = Train(
        space,
        load_dataset("digits"),
        epochs=1,
        batch_size=16,
        lr=0.025,
        net={"C": 8, "layers": 3},
        threads=1,
    )
    result = train.evaluate(Candidate(DARTS_V2))
    assert result.metrics["params"] == space.param_count(DARTS_V2, C=8, layers=3, in_channels=1)
    assert result.objective > 30.0  # 10 classes: chance is 10 %
