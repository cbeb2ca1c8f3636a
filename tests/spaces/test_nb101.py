"""NAS-Bench-101 space: validity and pruning, the benchmark's hash on published cells, isomorphism,
strings, decisions and repair, moves, encodings, networks (published parameter counts), training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.core import Candidate
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.estimators.train import Train
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.nb101 import (
    EDGE_SLOTS,
    MAX_EDGES,
    OPS,
    NB101Arch,
    NB101Space,
    build,
    param_count,
    prune,
    vertex_channels,
)

C3, C1, MP = OPS
IN, OUT = "input", "output"

# The first cell of the benchmark's table. Hash: microsoft/nni,
# docs/en_US/NAS/BenchmarksExample.ipynb (query_nb101_trial_stats output: input1..6 / op1..5 as
# below, 'hash': '00005c142e6f48ac74fdcf73e3439874', 'parameters': 8.55553 M); the same matrix,
# ops, hash and n_params 8555530 are printed from CTNAS's nas_bench.json dump.
FIRST = NB101Arch(
    [
        [0, 1, 0, 0, 1, 1, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [IN, C3, MP, C3, C3, C1, OUT],
)
FIRST_HASH, FIRST_PARAMS = "00005c142e6f48ac74fdcf73e3439874", 8555530

# The Inception-like cell of the benchmark's README. Hash: google-research/
# unified_functional_hashing, unified_functional_hashing/nasbench/python/evaluator_test.py
# (original_matrix/original_ops below, graph_hash "28cfc7874f6d200472e1a9dcd8650aa0").
# trainable_parameters 2694282: google-research/nasbench, NASBench.ipynb ("Basic usage" output).
INCEPTION = NB101Arch(
    [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [IN, C1, C3, C3, C3, MP, OUT],
)
INCEPTION_HASH, INCEPTION_PARAMS = "28cfc7874f6d200472e1a9dcd8650aa0", 2694282
# ... and the same cell as the benchmark stores it (module_adjacency / module_operations printed
# in that NASBench.ipynb output): an isomorphic relabelling.
INCEPTION_STORED = NB101Arch(
    [
        [0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [IN, C3, C1, MP, C3, C3, OUT],
)

# input -> output alone. Hash: xukp20/sci-modeling-bench,
# tests/suites/design_bench/cell_dag_nas/test_graph.py (test_decode_matches_official_hash:
# a 2-vertex, 1-edge cell, canonical_hash "043721b9c7fe8c5fad811d47d83132ec").
TRIVIAL = NB101Arch([[0, 1], [0, 0]], [IN, OUT])
TRIVIAL_HASH = "043721b9c7fe8c5fad811d47d83132ec"

SMALL_NET = dict(stem_channels=8, stacks=3, cells_per_stack=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space() -> NB101Space:
    return NB101Space()


@pytest.fixture(scope="module")
def samples(space: NB101Space) -> list[NB101Arch]:
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(300)]


def relabel(arch: NB101Arch, rng: np.random.Generator) -> NB101Arch:
    """The same DAG with its interior vertices in a random topological order (input first,
    output last): an isomorphic cell written differently."""
    n = arch.num_vertices
    placed, order = {0}, [0]
    while len(order) < n - 1:
        ready = [
            v
            for v in range(1, n - 1)
            if v not in placed and all(u in placed for u in range(n) if arch.matrix[u][v])
        ]
        v = ready[int(rng.integers(len(ready)))]
        placed.add(v)
        order.append(v)
    order.append(n - 1)
    matrix = [[arch.matrix[i][j] for j in order] for i in order]
    return NB101Arch(matrix, [arch.ops[v] for v in order])


def live_edges(arch: NB101Arch) -> int:
    return sum(map(sum, prune(arch).matrix))


def test_space_satisfies_the_protocol(space: NB101Space) -> None:
    assert isinstance(space, SearchSpace)
    assert space.name == "nb101"
    assert space.size_options == {"channels": "stem_channels", "cells": "cells_per_stack"}


# --- the benchmark's hash, isomorphism, pruning ------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "expected"),
    [(FIRST, FIRST_HASH), (INCEPTION, INCEPTION_HASH), (TRIVIAL, TRIVIAL_HASH)],
)
def test_hash_of_published_cells(space: NB101Space, arch: NB101Arch, expected: str) -> None:
    assert space.hash(arch) == expected


def test_the_benchmarks_stored_labelling_is_the_same_cell(space: NB101Space) -> None:
    assert INCEPTION_STORED != INCEPTION  # written differently ...
    assert space.hash(INCEPTION_STORED) == INCEPTION_HASH  # ... same class
    assert space.canonical(INCEPTION_STORED) == space.canonical(INCEPTION)
    assert space.param_count(INCEPTION_STORED) == INCEPTION_PARAMS


def test_isomorphic_relabellings_share_hash_canonical_and_encodings(
    space: NB101Space, samples: list[NB101Arch]
) -> None:
    rng = np.random.default_rng(1)
    changed = 0
    for arch in samples[:150]:
        twin = relabel(arch, rng)
        changed += twin != arch
        assert space.hash(twin) == space.hash(arch)
        assert space.canonical(twin) == space.canonical(arch)
        for kind in ("adjacency", "path"):
            assert np.array_equal(space.encode(twin, kind), space.encode(arch, kind))
        # widths divisible by 1..5 split evenly, so the vertex order cannot matter (see below)
        even = dict(SMALL_NET, stem_channels=60)
        assert space.param_count(twin, **even) == space.param_count(arch, **even)
    assert changed > 50  # the relabelling really moved vertices in most cells


def test_remainder_channels_follow_the_vertex_order_as_in_the_benchmark(space: NB101Space) -> None:
    # compute_vertex_channels gives the remainder of the output split to the lowest-numbered
    # feeders, so two labellings of one cell can differ by a few channels (the benchmark trained
    # the labelling it stores); build keeps the labelling it is given
    fan = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    conv_first = NB101Arch(fan, [IN, C3, MP, MP, OUT])
    conv_last = NB101Arch(fan, [IN, MP, MP, C3, OUT])
    assert space.canonical(conv_first) == space.canonical(conv_last)
    assert space.param_count(conv_first) > space.param_count(conv_last)  # 43 vs 42 channels
    even = dict(stem_channels=60)
    assert space.param_count(conv_first, **even) == space.param_count(conv_last, **even)


def test_canonical_classes_are_the_hash_classes(
    space: NB101Space, samples: list[NB101Arch]
) -> None:
    by_hash: dict[str, set[NB101Arch]] = {}
    for arch in samples:
        rep = space.canonical(arch)
        assert space.canonical(rep) == rep  # idempotent
        assert rep == prune(rep)  # a representative is pruned
        by_hash.setdefault(space.hash(arch), set()).add(rep)
    assert all(len(reps) == 1 for reps in by_hash.values())
    assert len(by_hash) > 100


def test_different_op_changes_the_class(space: NB101Space) -> None:
    other = NB101Arch(FIRST.matrix, [IN, C1, MP, C3, C3, C1, OUT])
    assert space.hash(other) != FIRST_HASH
    assert space.canonical(other) != space.canonical(FIRST)


def test_pruning_drops_vertices_off_the_input_output_paths(space: NB101Space) -> None:
    # vertex 2 is a dead end (no way to the output), vertex 4 is unreachable from the input
    raw = NB101Arch(
        [
            [0, 1, 1, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        [IN, C3, MP, C1, C3, MP, OUT],
    )
    chain = NB101Arch(
        [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5],
        [IN, C3, C1, MP, OUT],
    )
    assert prune(raw) == chain and space.prune(chain) == chain
    assert raw.matrix[0][2] == 1  # the arch keeps its genotype as given
    assert space.hash(raw) == space.hash(chain)
    assert space.canonical(raw) == chain
    for net in (SMALL_NET, {}):
        assert space.param_count(raw, **net) == space.param_count(chain, **net)


def test_many_edges_among_dead_vertices_are_allowed_like_the_benchmark() -> None:
    # 10 raw edges, but only input -> 1 -> output is live: valid, as nasbench's is_valid says
    matrix = [[0] * 7 for _ in range(7)]
    matrix[0][1] = matrix[1][6] = 1
    for i, j in [(2, 3), (2, 4), (2, 5), (3, 4), (3, 5), (4, 5), (1, 2), (1, 3)]:
        matrix[i][j] = 1
    arch = NB101Arch(matrix, [IN, C3, C3, C3, C3, C3, OUT])
    assert sum(map(sum, arch.matrix)) == 10 and live_edges(arch) == 2


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        ([[0, 1], [0, 0], [0, 0]], [IN, OUT], "square"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [IN, OUT], "square"),
        ([[0, 1], [1, 0]], [IN, OUT], "upper-triangular"),
        ([[1, 1], [0, 0]], [IN, OUT], "upper-triangular"),
        ([[0, 2], [0, 0]], [IN, OUT], "0 or 1"),
        ([[0, "1"], [0, 0]], [IN, OUT], "0 or 1"),
        (5, [IN, OUT], "nested sequence"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [IN, "conv5x5", OUT], "conv3x3-bn-relu"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, OUT], "vertex 0 must be 'input'"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [IN, C3, C3], "must be 'output'"),
        ([[0, 0], [0, 0]], [IN, OUT], "not connected"),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [IN, C3, OUT], "not connected"),
        ([[0] * 8 for _ in range(8)], [IN, *[C3] * 6, OUT], "2 to 7 vertices"),
        ([[0]], [IN], "2 to 7 vertices"),
        ([[0, 1], [0, 0]], "input,output", "sequence of labels"),
    ],
)
def test_invalid_cells_raise(matrix: object, ops: object, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match) as err:
        NB101Arch(matrix, ops)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_more_than_nine_live_edges_is_invalid() -> None:
    full = [[int(j > i) for j in range(7)] for i in range(7)]  # 21 live edges
    with pytest.raises(InvalidArchError, match="21 edges after pruning; at most 9"):
        NB101Arch(full, [IN, *[C3] * 5, OUT])


def test_arch_is_frozen_hashable_and_normalised() -> None:
    again = NB101Arch(np.array(FIRST.matrix), list(FIRST.ops))  # arrays and lists are frozen
    assert again == FIRST and hash(again) == hash(FIRST)
    assert isinstance(again.matrix, tuple) and isinstance(again.matrix[0][0], int)
    with pytest.raises(AttributeError):
        again.ops = FIRST.ops  # type: ignore[misc]


# --- strings ------------------------------------------------------------------------------------


def test_string_round_trip(space: NB101Space, samples: list[NB101Arch]) -> None:
    for arch in [*samples, FIRST, TRIVIAL]:
        text = space.to_string(arch)
        assert space.from_string(text) == arch
    assert space.to_string(TRIVIAL) == "input,output|01,00"
    text = space.to_string(FIRST)
    assert text.split("|")[0].split(",") == list(FIRST.ops)
    assert text.split("|")[1].split(",")[0] == "0100110"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "input,output",  # no matrix
        "input,output|01,00|01",  # two separators
        "input,output|01",  # one row for two labels
        "input,output|010,000",  # rows too long
        "input,output|0x,00",  # not bits
        "input, output|01,00",  # a space inside
        "input,conv5x5,output|010,001,000",  # unknown op
        "input,output|00,00",  # disconnected
        "input,output|01,10",  # not upper-triangular
        "output,input|01,00",  # wrong ends
    ],
)
def test_malformed_strings_raise(space: NB101Space, text: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.from_string(text)
    message = str(err.value)
    assert "\n" not in message and "input,OP,...,output|ROW,ROW,..." in message


def test_from_string_rejects_non_strings(space: NB101Space) -> None:
    with pytest.raises(InvalidArchError, match="str"):
        space.from_string(None)  # type: ignore[arg-type]


# --- decisions, repair, sampling ----------------------------------------------------------------


def test_decisions_shape_and_round_trip(space: NB101Space, samples: list[NB101Arch]) -> None:
    decisions = space.decisions()
    assert decisions.choices == (2,) * 21 + (3,) * 5
    for arch in [*samples, FIRST, INCEPTION, TRIVIAL]:
        sequence = decisions.encode(arch)
        assert len(sequence) == 26
        back = decisions.decode(sequence)
        if arch.num_vertices == 7:
            assert back == arch  # a valid 7 x 7 genotype needs no repair
        assert space.canonical(back) == space.canonical(arch)
        assert space.encode(arch, "index").tolist() == list(sequence)


def test_every_decision_sequence_decodes_to_a_valid_cell(space: NB101Space) -> None:
    decisions = space.decisions()
    rng = np.random.default_rng(2)
    repaired = 0
    for _ in range(1500):
        sequence = [int(rng.integers(c)) for c in decisions.choices]
        arch = decisions.decode(sequence)  # NB101Arch validates: connected, <= 9 live edges
        assert live_edges(arch) <= MAX_EDGES
        again = decisions.decode(decisions.encode(arch))
        assert again == arch  # repair is idempotent
        repaired += list(decisions.encode(arch)) != sequence
    assert repaired > 100  # random sequences do need repair


def test_repair_of_the_extremes(space: NB101Space) -> None:
    decisions = space.decisions()
    empty = decisions.decode([0] * 26)  # no edges: input -> output is added
    assert prune(empty) == TRIVIAL
    full = decisions.decode([1] * 21 + [2] * 5)  # all 21 edges: trimmed, last slots first
    assert 0 < live_edges(full) <= MAX_EDGES
    assert full.matrix[0] == (0, 1, 1, 1, 1, 1, 1)  # the first slots survive
    assert decisions.decode([1] * 21 + [2] * 5) == full  # deterministic
    with pytest.raises(InvalidArchError, match="26 entries"):
        decisions.decode([0] * 25)
    with pytest.raises(InvalidArchError, match="edge bits"):
        decisions.decode([2] * 26)


def test_sample_is_seeded_valid_and_diverse(space: NB101Space, samples: list[NB101Arch]) -> None:
    again = [space.sample(np.random.default_rng(0)) for _ in range(2)]
    assert again[0] == again[1] == samples[0]
    classes = {space.canonical(a) for a in samples}
    assert len(classes) > 150
    assert {a.num_vertices for a in classes} >= {2, 3, 4, 5, 6}  # 7 live vertices are rare
    assert {op for a in samples for op in a.ops[1:-1]} == set(OPS)
    assert all(a.num_vertices == 7 for a in samples)  # the genotype, as the benchmark samples


# --- moves --------------------------------------------------------------------------------------


def test_mutate_gives_a_valid_different_cell(space: NB101Space, samples: list[NB101Arch]) -> None:
    rng = np.random.default_rng(3)
    for arch in [*samples[:100], TRIVIAL, FIRST]:
        child = space.mutate(arch, rng)
        assert isinstance(child, NB101Arch)
        assert space.canonical(child) != space.canonical(arch)


def test_mutate_is_seeded(space: NB101Space) -> None:
    first = [space.mutate(FIRST, np.random.default_rng(5)) for _ in range(2)]
    assert first[0] == first[1]


def test_neighbours_are_single_edits(space: NB101Space, samples: list[NB101Arch]) -> None:
    decisions = space.decisions()
    for arch in [*samples[:30], FIRST]:
        near = space.neighbours(arch)
        assert near == space.neighbours(arch)  # deterministic
        base = decisions.encode(arch)
        keys = {space.canonical(n) for n in near}
        assert len(keys) == len(near) and space.canonical(arch) not in keys
        for neighbour in near:
            diff = sum(x != y for x, y in zip(decisions.encode(neighbour), base, strict=True))
            assert diff == 1
    # every op of FIRST's 5 live vertices can change 2 ways: 10 distinct cells at least
    assert len(space.neighbours(FIRST)) >= 10


def test_the_bare_cell_has_no_single_edit_neighbours(space: NB101Space) -> None:
    # one edit cannot put a new vertex on an input -> output path, nor drop the only edge
    assert space.neighbours(TRIVIAL) == []


def test_crossover_mixes_parents_into_a_valid_child(
    space: NB101Space, samples: list[NB101Arch]
) -> None:
    rng = np.random.default_rng(4)
    decisions = space.decisions()
    mixed = 0
    for a, b in zip(samples[:60], samples[60:120], strict=True):
        child = space.crossover(a, b, rng)
        assert isinstance(child, NB101Arch)
        ea, eb, ec = decisions.encode(a), decisions.encode(b), decisions.encode(child)
        ops_from = [c in (x, y) for x, y, c in zip(ea[21:], eb[21:], ec[21:], strict=True)]
        assert all(ops_from)  # ops are never repaired
        mixed += ec != ea and ec != eb
    assert mixed > 30
    assert space.crossover(FIRST, FIRST, rng) == FIRST


# --- encodings ----------------------------------------------------------------------------------


def test_encodings(space: NB101Space) -> None:
    onehot = space.encode(FIRST)
    index = space.encode(FIRST, "index")
    assert onehot.shape == (57,) and index.shape == (26,) and onehot.sum() == 26
    blocks = [onehot[2 * t : 2 * t + 2] for t in range(21)]
    blocks += [onehot[42 + 3 * k : 45 + 3 * k] for k in range(5)]
    assert [int(np.argmax(b)) for b in blocks] == index.astype(int).tolist()
    assert index[21:].tolist() == [OPS.index(op) for op in FIRST.ops[1:-1]]
    assert [index[t] for t, (i, j) in enumerate(EDGE_SLOTS)] == [
        FIRST.matrix[i][j] for i, j in EDGE_SLOTS
    ]

    adjacency = space.encode(FIRST, "adjacency")
    assert adjacency.shape == (36,) and adjacency[:21].sum() == 9 and adjacency[21:].sum() == 5
    trivial = space.encode(TRIVIAL, "adjacency")
    assert trivial[:21].sum() == 1 and trivial[21:].sum() == 0

    path = space.encode(FIRST, "path")
    assert path.shape == (364,)
    # FIRST's input -> output paths: 0-1-2-6, 0-1-2-3-5-6, 0-4-5-6, 0-5-6
    assert path.sum() == 4
    assert space.encode(TRIVIAL, "path")[0] == 1 and space.encode(TRIVIAL, "path").sum() == 1
    with pytest.raises(UnknownNameError, match="adjacency"):
        space.encode(FIRST, "graph")


# --- the network --------------------------------------------------------------------------------


def test_param_count_matches_the_benchmark(space: NB101Space) -> None:
    assert space.param_count(FIRST) == param_count(FIRST) == FIRST_PARAMS
    assert space.param_count(INCEPTION) == INCEPTION_PARAMS
    built = sum(p.numel() for p in build(INCEPTION).parameters())
    assert built == INCEPTION_PARAMS


def test_param_count_matches_build(space: NB101Space, samples: list[NB101Arch]) -> None:
    nets = [SMALL_NET, dict(stem_channels=13, stacks=2, cells_per_stack=2, in_channels=1)]
    for arch in [*samples[:8], TRIVIAL, FIRST]:
        for net in nets:
            built = sum(p.numel() for p in space.build(arch, **net).parameters())
            assert space.param_count(arch, **net) == built


def test_vertex_channels_follow_the_benchmark_rule() -> None:
    # input feeds 1, 2, 3; 1 -> 4; 2, 3, 4 feed the output: 128 split 43 / 43 / 42 in vertex
    # order, and vertex 1 takes the width of the vertex it feeds (4)
    matrix = (
        (0, 1, 1, 1, 0, 0),
        (0, 0, 0, 0, 1, 0),
        (0, 0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0, 0),
    )
    assert vertex_channels(64, 128, matrix) == [64, 42, 43, 43, 42, 128]
    assert vertex_channels(64, 128, ((0, 1), (0, 0))) == [64, 128]


@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_shapes(space: NB101Space, size: int, channels: int) -> None:
    for arch in (FIRST, INCEPTION, TRIVIAL):
        net = space.build(arch, **SMALL_NET, in_channels=channels, num_classes=7).eval()
        with torch.no_grad():
            assert net(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_odd_sizes_and_gradients(space: NB101Space) -> None:
    net = space.build(FIRST, **SMALL_NET)
    logits = net(torch.randn(2, 3, 15, 15))
    assert logits.shape == (2, 10)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_build_rejects_bad_settings(space: NB101Space) -> None:
    with pytest.raises(ConfigError, match="stem_channels"):
        space.build(FIRST, stem_channels=4)
    with pytest.raises(ConfigError, match="cells_per_stack"):
        space.param_count(FIRST, cells_per_stack=0)
    with pytest.raises(ConfigError, match="num_classes"):
        space.build(FIRST, num_classes=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchError, match="NB101Arch"):
        space.build("not an arch")  # type: ignore[arg-type]
    with pytest.raises(InvalidArchError):
        space.canonical(None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_small_network_trains_on_digits_above_chance(space: NB101Space) -> None:
    digits = load_dataset("digits")
    estimator = Train(
        space,
        digits,
        epochs=1,
        batch_size=32,
        lr=0.05,
        threads=1,
        net=dict(stem_channels=16, stacks=2, cells_per_stack=1),
    )
    result = estimator.evaluate(Candidate(INCEPTION))
    assert result.objective > 30.0  # 10 classes: chance is 10 %
    assert result.metrics["params"] == space.param_count(
        INCEPTION, stem_channels=16, stacks=2, cells_per_stack=1, in_channels=1
    )
