"""NAS-Bench-201 space: strings, moves, encodings, the benchmark's isomorphism classes, networks."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.spaces.base import EnumerableSpace
from nasforge.spaces.nb201 import (
    EDGES,
    OPS,
    NB201Arch,
    NB201Cell,
    NB201Space,
    build,
    canonical_key,
    param_count,
)

BEST = (  # the best CIFAR-10 cell in the benchmark
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
ALL_CONV3 = NB201Arch(("nor_conv_3x3",) * 6)
ALL_NONE = NB201Arch(("none",) * 6)


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


def distance(a: NB201Arch, b: NB201Arch) -> int:
    return sum(x != y for x, y in zip(a.ops, b.ops, strict=True))


def test_space_satisfies_the_protocol(space: NB201Space) -> None:
    assert isinstance(space, EnumerableSpace)
    assert space.name == "nb201"


def test_enumerate_lists_every_cell_once(space: NB201Space) -> None:
    cells = list(space.enumerate())
    assert len(cells) == space.size() == 15625
    assert len(set(cells)) == 15625
    assert cells == list(space.enumerate())  # fixed order


def test_string_round_trip_over_all_cells(space: NB201Space) -> None:
    strings = set()
    for arch in space.enumerate():
        text = space.to_string(arch)
        assert space.from_string(text) == arch
        strings.add(text)
    assert len(strings) == 15625


def test_known_cells_parse(space: NB201Space) -> None:
    best = space.from_string(BEST)
    assert best.ops == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "nor_conv_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "nor_conv_1x1",
    )
    resnet = space.from_string(RESNET)
    assert resnet.ops[1] == "none" and resnet.ops[5] == "skip_connect"
    assert space.to_string(best) == BEST and space.to_string(resnet) == RESNET


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        BEST.replace("+", "", 1),  # two node groups
        BEST + "+|none~0|",  # four node groups
        BEST.replace("nor_conv_1x1~2", "nor_conv_1x1~1"),  # wrong input index
        BEST.replace("skip_connect~0", "skip_connect"),  # missing index
        BEST.replace("nor_conv_1x1", "sep_conv_3x3"),  # unknown op
        BEST.replace("|skip_connect~0|", "|skip_connect~0|none~3|"),  # too many inputs
        BEST[1:],  # group not wrapped in '|'
        BEST.replace("|+|", "|+|+|", 1),  # empty group
        BEST.replace("~0", "~00", 1),
    ],
)
def test_malformed_strings_raise(space: NB201Space, text: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.from_string(text)
    message = str(err.value)
    assert "\n" not in message and "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in message


def test_arch_validates_and_is_immutable() -> None:
    with pytest.raises(InvalidArchError, match="avg_pool_3x3"):
        NB201Arch(("conv_5x5",) * 6)
    with pytest.raises(InvalidArchError):
        NB201Arch(("none",) * 5)
    arch = NB201Arch(["none"] * 6)  # a list is frozen into a tuple
    assert arch.ops == ("none",) * 6 and hash(arch) == hash(ALL_NONE)
    with pytest.raises(AttributeError):
        arch.ops = ("none",) * 6  # type: ignore[misc]


def test_mutate_changes_exactly_one_edge(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    arch = space.from_string(BEST)
    changed_edges = set()
    for _ in range(200):
        child = space.mutate(arch, rng)
        assert distance(arch, child) == 1
        changed_edges.add(next(i for i in range(6) if child.ops[i] != arch.ops[i]))
    assert changed_edges == set(range(len(EDGES)))


def unique_strings(nb201_dir) -> dict[str, str]:
    """The benchmark's own isomorphism key of every cell (its UniqueString column)."""
    with open(nb201_dir / "nb201_200ep_test.csv", newline="") as f:
        return {r["ArchitectureString"]: r["UniqueString"] for r in csv.DictReader(f)}


def test_neighbours_are_one_per_benchmark_class(space: NB201Space, nb201_dir) -> None:
    unique = unique_strings(nb201_dir)
    for text in (BEST, RESNET, space.to_string(ALL_NONE)):
        arch = space.from_string(text)
        near = space.neighbours(arch)
        assert near == space.neighbours(arch)
        assert all(distance(arch, n) == 1 for n in near)
        keys = [unique[space.to_string(n)] for n in near]
        # every class the benchmark reaches by one edge-op change, once, never the cell's own
        one_edit = {
            unique[space.to_string(NB201Arch((*arch.ops[:e], op, *arch.ops[e + 1 :])))]
            for e in range(len(EDGES))
            for op in OPS
            if op != arch.ops[e]
        }
        assert len(keys) == len(set(keys)) == len(one_edit - {unique[text]})
        assert set(keys) == one_edit - {unique[text]}
    assert len(space.neighbours(space.from_string(BEST))) == 24  # no twins around this cell
    # around the ResNet cell, 'none' on edge 0 or on edge 2 both cut the conv path: one class
    assert len(space.neighbours(space.from_string(RESNET))) == 21


def test_mutate_never_returns_a_benchmark_twin(space: NB201Space, nb201_dir) -> None:
    unique = unique_strings(nb201_dir)
    rng = np.random.default_rng(1)
    for text in (RESNET, space.to_string(ALL_NONE)):  # cells with many twins one edit away
        for _ in range(100):
            child = space.mutate(space.from_string(text), rng)
            assert unique[space.to_string(child)] != unique[text]


def test_sample_is_seeded_and_covers_every_op(space: NB201Space) -> None:
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    first = [space.sample(r) for r in [np.random.default_rng(7)] * 50]
    again = [space.sample(r) for r in [np.random.default_rng(7)] * 50]
    assert first == again and len(set(a)) == 1
    counts = Counter(op for arch in first for op in arch.ops)
    assert set(counts) == set(OPS)
    assert len(set(first)) > 45


def test_encode(space: NB201Space) -> None:
    arch = space.from_string(BEST)
    onehot = space.encode(arch)
    assert onehot.shape == (30,) and onehot.dtype == np.float64
    assert onehot.sum() == 6 and set(np.unique(onehot)) == {0.0, 1.0}
    assert onehot.reshape(6, 5).argmax(1).tolist() == [3, 3, 3, 1, 3, 2]
    assert space.encode(arch, "index").tolist() == [3.0, 3.0, 3.0, 1.0, 3.0, 2.0]
    with pytest.raises(UnknownNameError, match="onehot"):
        space.encode(arch, "adjacency")


def test_canonical_partition_equals_the_benchmark(space: NB201Space, nb201_dir) -> None:
    with open(nb201_dir / "nb201_200ep_test.csv", newline="") as f:
        rows = [(r["ArchitectureString"], r["UniqueString"]) for r in csv.DictReader(f)]
    assert len(rows) == 15625
    ours: defaultdict[str, set[str]] = defaultdict(set)
    theirs: defaultdict[str, set[str]] = defaultdict(set)
    for text, unique in rows:
        key = space.canonical_key(space.from_string(text))
        assert key == unique  # not only the same groups: the very same string
        ours[key].add(text)
        theirs[unique].add(text)
    groups = {frozenset(g) for g in ours.values()}
    assert len(groups) == 6466
    assert groups == {frozenset(g) for g in theirs.values()}


def test_canonical_picks_one_member_of_each_class(space: NB201Space) -> None:
    reps = {space.canonical(arch) for arch in space.enumerate()}
    assert len(reps) == 6466
    for rep in reps:
        assert space.canonical(rep) == rep
    # Edges that cannot reach the output do not matter ...
    dead = NB201Arch(("nor_conv_3x3", "none", "none", "skip_connect", "none", "none"))
    assert space.canonical(dead) == space.canonical(NB201Arch(("avg_pool_3x3", *dead.ops[1:])))
    # ... and a sum is commutative, seen through skip connections.
    swapped = NB201Arch(("skip_connect", "none", "none", "nor_conv_1x1", "avg_pool_3x3", "none"))
    mirror = NB201Arch(("skip_connect", "none", "none", "avg_pool_3x3", "nor_conv_1x1", "none"))
    assert canonical_key(swapped) == canonical_key(mirror)
    assert space.canonical(swapped) == space.canonical(mirror)
    assert canonical_key(space.from_string(BEST)) != canonical_key(space.from_string(RESNET))


def test_canonical_keeps_the_benchmarks_zero_quirk() -> None:
    # The benchmark only recognises a node as zero when its whole expression is '#', so two
    # cells that both output zero stay in different classes (its UniqueString does the same).
    assert canonical_key(ALL_NONE) == "#+#+#"
    assert canonical_key(NB201Arch(("none",) * 5 + ("skip_connect",))) == "#+#+#+#"
    assert canonical_key(NB201Arch(("none",) * 4 + ("nor_conv_3x3", "none"))) == "#+#+#"


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32), (2, 1, 8, 8), (1, 3, 15, 17)])
def test_build_forward_shapes(space: NB201Space, shape: tuple[int, ...]) -> None:
    net = space.build(space.from_string(BEST), C=8, N=2, in_channels=shape[1], num_classes=7)
    assert net(torch.randn(shape)).shape == (shape[0], 7)


def test_build_default_network_trains_a_step(space: NB201Space) -> None:
    net = space.build(space.from_string(BEST))  # C=16, N=5: the benchmark's network
    logits = net(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 10)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_all_none_cell_still_gives_logits(space: NB201Space) -> None:
    net = space.build(ALL_NONE, C=4, N=1).eval()
    logits = net(torch.randn(3, 3, 32, 32))
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    cells = [m for m in net.cells if isinstance(m, NB201Cell)]
    assert len(cells) == 3 and all(len(cell.edges) == 0 for cell in cells)  # no wasted ops


def test_param_count_of_the_benchmark_network() -> None:
    # NB201 reports 1.53 MB (= M parameters) for this cell at C=16, N=5 on CIFAR-10.
    assert param_count(ALL_CONV3) == 1531546
    assert param_count(ALL_CONV3) == sum(p.numel() for p in build(ALL_CONV3).parameters())


@pytest.mark.parametrize("text", [BEST, RESNET, None])
def test_param_count_matches_build(space: NB201Space, text: str | None) -> None:
    arch = ALL_NONE if text is None else space.from_string(text)
    for net in [dict(C=8, N=2, in_channels=1, num_classes=3), dict(C=16, N=1)]:
        built = sum(p.numel() for p in space.build(arch, **net).parameters())
        assert space.param_count(arch, **net) == built


def test_build_rejects_bad_settings(space: NB201Space) -> None:
    with pytest.raises(ConfigError, match="C"):
        space.build(ALL_CONV3, C=0)
    with pytest.raises(InvalidArchError):
        space.build("not an arch")  # type: ignore[arg-type]
