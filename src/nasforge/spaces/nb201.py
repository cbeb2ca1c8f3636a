"""The NAS-Bench-201 cell space (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible
Neural Architecture Search", ICLR 2020).

A cell is a DAG on 4 nodes: node 0 is the input, node j sums one op applied to each earlier node,
node 3 is the output. Each of the 6 edges picks one of 5 ops, giving 5**6 = 15,625 cells; every
cell has been trained, so a benchmark table turns any strategy into a cheap experiment. The
network stacks the cell in three stages, exactly as the benchmark trained it, so ``build`` gives
the real, trainable network and not a stand-in.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidArchError
from nasforge.nn.ops import ResNetBasicBlock, make_op
from nasforge.spaces.net_options import int_option
from nasforge.spaces.vector import DecisionVectorSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source, target) of each edge, in the order of the benchmark's string.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_NODES = 4
ENCODINGS: tuple[str, ...] = ("onehot", "index", "path")

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
_EXPECTED = "expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op in " + ", ".join(OPS)
_ZERO = "#"
_CHOICES: tuple[int, ...] = (len(OPS),) * len(EDGES)


@dataclass(frozen=True)
class NB201Arch:
    """One cell: the op on each edge, in ``EDGES`` order. Validated, immutable and hashable."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != len(EDGES):
            raise InvalidArchError(f"an NB201 cell has {len(EDGES)} edge ops, got {len(ops)}")
        for op in ops:
            if op not in _OP_INDEX:
                raise InvalidArchError(f"unknown NB201 op {op!r}; accepted: {', '.join(OPS)}")
        object.__setattr__(self, "ops", ops)

    @property
    def indices(self) -> tuple[int, ...]:
        """Each edge's op as its position in ``OPS``."""
        return tuple(_OP_INDEX[op] for op in self.ops)

    @classmethod
    def from_indices(cls, indices: Sequence[int]) -> NB201Arch:
        return cls(tuple(OPS[int(i)] for i in indices))


def _check(arch: object) -> NB201Arch:
    if not isinstance(arch, NB201Arch):
        raise InvalidArchError(f"expected an NB201Arch, got {type(arch).__name__}")
    return arch


def canonical_key(arch: NB201Arch) -> str:
    """The benchmark's own isomorphism key (its ``UniqueString``), rebuilt from the cell.

    Each node is written as the sorted ``+``-join of its incoming terms, bottom-up: an edge whose
    op is ``none``, or whose source expression is exactly ``#``, contributes the zero term ``#``;
    ``skip_connect`` passes its source's expression through unchanged; any other op wraps it as
    ``(src)@op``. The key is node 3's expression. Sorting makes the sum commutative and
    skip_connect makes identities transparent, but zeros are never simplified away: ``#+0`` stays
    distinct from ``0``, and a node whose inputs are all ``none`` reads ``#+#``, not ``#``, so only
    node 1 is ever recognised as zero. The benchmark's classes are therefore finer than "computes
    the same function" (e.g. ``#+#+#`` and ``#+#+#+#`` are both the zero cell); this key follows
    the benchmark, and reproduces its UniqueString column exactly (6,466 classes).
    """
    nodes = ["0"]
    for target in range(1, NUM_NODES):
        terms = []
        for (source, dst), op in zip(EDGES, _check(arch).ops, strict=True):
            if dst != target:
                continue
            src = nodes[source]
            if op == "none" or src == _ZERO:
                terms.append(_ZERO)
            elif op == "skip_connect":
                terms.append(src)
            else:
                terms.append(f"({src})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]


def _all_cells() -> Iterator[NB201Arch]:
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        yield NB201Arch(ops)


@functools.cache
def _key_by_cell() -> dict[NB201Arch, str]:
    """Every cell -> its `canonical_key` (built once, ~0.1 s): strategies canonicalise each
    draw, and rebuilding the key string each time made that most of random search's cost."""
    return {arch: canonical_key(arch) for arch in _all_cells()}


@functools.cache
def _representatives() -> dict[str, NB201Arch]:
    """key -> the cell with the smallest string among those sharing the key (built once)."""
    best: dict[str, tuple[str, NB201Arch]] = {}
    for arch, key in _key_by_cell().items():
        text = to_string(arch)
        if key not in best or text < best[key][0]:
            best[key] = (text, arch)
    return {key: arch for key, (_, arch) in best.items()}


def to_string(arch: NB201Arch) -> str:
    """The benchmark's string, e.g. ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~2|``."""
    ops = _check(arch).ops
    nodes, start = [], 0
    for target in range(1, NUM_NODES):
        edges = ops[start : start + target]
        nodes.append("|" + "|".join(f"{op}~{i}" for i, op in enumerate(edges)) + "|")
        start += target
    return "+".join(nodes)


def from_string(text: str) -> NB201Arch:
    """Parse the benchmark's string strictly: node order, input indices and op names."""

    def fail(reason: str) -> InvalidArchError:
        return InvalidArchError(f"invalid NB201 cell {text!r}: {reason}; {_EXPECTED}")

    if not isinstance(text, str):
        raise InvalidArchError(f"an NB201 cell string must be a str, got {type(text).__name__}")
    parts = text.strip().split("+")
    if len(parts) != NUM_NODES - 1:
        raise fail(f"{len(parts)} node groups separated by '+', not {NUM_NODES - 1}")
    ops: list[str] = []
    for target, part in enumerate(parts, start=1):
        if len(part) < 2 or part[0] != "|" or part[-1] != "|":
            raise fail(f"node {target} group {part!r} is not wrapped in '|'")
        entries = part[1:-1].split("|")
        if len(entries) != target:
            raise fail(f"node {target} needs {target} inputs, got {len(entries)}")
        for source, entry in enumerate(entries):
            op, sep, index = entry.partition("~")
            if not sep or index != str(source):
                raise fail(f"node {target} entry {entry!r} should be 'op~{source}'")
            if op not in _OP_INDEX:
                raise fail(f"unknown op {op!r}")
            ops.append(op)
    return NB201Arch(tuple(ops))


# --- the network --------------------------------------------------------------------------------


class NB201Cell(nn.Module):
    """node j = sum of op(node i) over i < j; ``none`` edges get no module and cost nothing."""

    def __init__(self, arch: NB201Arch, channels: int):
        super().__init__()
        self.edges = nn.ModuleDict()
        self.incoming: list[list[tuple[int, str]]] = [[] for _ in range(NUM_NODES)]
        for (source, target), op in zip(EDGES, arch.ops, strict=True):
            if op == "none":
                continue
            name = f"e{source}_{target}"
            self.edges[name] = make_op(op, channels, channels, 1)
            self.incoming[target].append((source, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, NUM_NODES):
            terms = [self.edges[name](nodes[source]) for source, name in self.incoming[target]]
            if not terms:
                nodes.append(torch.zeros_like(x))
                continue
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            nodes.append(total)
        return nodes[-1]


def stages(
    C: int, N: int, in_channels: int, make_cell: Callable[[int], nn.Module]
) -> tuple[nn.Module, list[nn.Module], int]:
    """NB201's macro skeleton: the stem, then three stages of N cells (C, 2C, 4C channels;
    ``make_cell(channels)``) joined by ResNet reductions; returns (stem, layers, last width).
    The stand-alone network and the supernet share it, so their skeletons cannot drift."""
    stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
    layers: list[nn.Module] = []
    channels = C
    for stage in range(3):
        if stage:
            layers.append(ResNetBasicBlock(channels, 2 * channels, stride=2))
            channels *= 2
        layers.extend(make_cell(channels) for _ in range(N))
    return stem, layers, channels


class NB201Network(nn.Module):
    """Stem, three stages of N cells (C, 2C, 4C) joined by ResNet reductions, BN-ReLU, pool, FC.

    ``forward`` returns logits only (the benchmark's code also returns the pooled features).
    """

    def __init__(self, arch: NB201Arch, C: int, N: int, in_channels: int, num_classes: int):
        super().__init__()
        self.stem, layers, channels = stages(C, N, in_channels, lambda c: NB201Cell(arch, c))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.lastact(self.cells(self.stem(x))))
        return self.classifier(features.flatten(1))


def _check_net(C: object, N: object, in_channels: object, num_classes: object) -> None:
    int_option("NB201 network C", C)
    int_option("NB201 network N", N, low=0)
    int_option("NB201 network in_channels", in_channels)
    int_option("NB201 network num_classes", num_classes)


def build(
    arch: NB201Arch, *, C: int = 16, N: int = 5, in_channels: int = 3, num_classes: int = 10
) -> NB201Network:
    """The benchmark's network for ``arch`` (C=16, N=5 is what NB201 trained)."""
    _check_net(C, N, in_channels, num_classes)
    return NB201Network(_check(arch), int(C), int(N), int(in_channels), int(num_classes))


def param_count(
    arch: NB201Arch, *, C: int = 16, N: int = 5, in_channels: int = 3, num_classes: int = 10
) -> int:
    """Trainable parameters of ``build(arch, ...)``, computed without building it.

    All-``nor_conv_3x3`` at the defaults gives 1,531,546: the benchmark's reported 1.53 M.
    """
    _check_net(C, N, in_channels, num_classes)
    kernels = [_KERNEL[op] for op in _check(arch).ops if op in _KERNEL]

    def cell(c: int) -> int:  # conv weights + BN scale and shift; other ops have no weights
        return sum(k * k * c * c + 2 * c for k in kernels)

    def reduction(a: int, b: int) -> int:  # two 3x3 ReLU-Conv-BN + 1x1 shortcut conv
        return 9 * a * b + 2 * b + 9 * b * b + 2 * b + a * b

    stem = 9 * in_channels * C + 2 * C
    stages = N * (cell(C) + cell(2 * C) + cell(4 * C))
    reductions = reduction(C, 2 * C) + reduction(2 * C, 4 * C)
    head = 2 * 4 * C + 4 * C * num_classes + num_classes
    return int(stem + stages + reductions + head)


# --- the space ----------------------------------------------------------------------------------


def _path_encoding(indices: Sequence[int]) -> np.ndarray:
    """One bit per input->output path of ops (White et al., "BANANAS", AAAI 2021).

    The cell has four paths from node 0 to node 3: 0-3 (edge 3), 0-1-3 (edges 0, 4), 0-2-3
    (edges 1, 5) and 0-1-2-3 (edges 0, 2, 5). A path of length L has 5**L possible op
    sequences, one bit each (5 + 25 + 25 + 125 = 180 bits); a path through a ``none`` edge
    carries nothing and stays 0, so edges that no path uses (dead edges) do not show.
    """
    paths = ((3,), (0, 4), (1, 5), (0, 2, 5))  # edges (positions in EDGES) along each path
    none, base = _OP_INDEX["none"], len(OPS)
    bits = np.zeros(sum(base ** len(path) for path in paths))
    offset = 0
    for path in paths:
        position = 0
        for edge in path:
            position = position * base + int(indices[edge])
        if all(int(indices[edge]) != none for edge in path):
            bits[offset + position] = 1.0
        offset += base ** len(path)
    return bits


class NB201Space(DecisionVectorSpace):
    """NAS-Bench-201 as a SearchSpace: architectures are NB201Arch values, six decisions of
    five options (one op per edge, in ``EDGES`` order).

    ``DecisionVectorSpace`` gives the moves: ``sample`` is uniform over all 15,625 cells;
    ``mutate`` changes one edge's op (Real et al. 2019; NB201's REA), redrawn while the child is
    in the parent's class of the benchmark's partition (``canonical``); ``neighbours`` are the
    one edge-op changes, edge by edge and ops in ``OPS`` order, the first of each class only (at
    most 24); ``crossover`` takes each edge's op from either parent; ``onehot`` is 30 floats (5
    per edge in ``OPS`` order), ``index`` the 6 op indices, and ``path`` is this space's own.
    """

    name = "nb201"
    encodings: ClassVar[tuple[str, ...]] = ENCODINGS
    #: the CLI's generic --channels/--cells knobs, as ``build`` keywords
    size_options: ClassVar[dict[str, str | None]] = {"channels": "C", "cells": "N"}
    #: the proxy network of a low-fidelity search (C=8, one cell per stage): about 20 times
    #: cheaper than the benchmark's C=16 N=5, so a CPU search of a dozen cells takes minutes
    search_size: ClassVar[dict[str, int]] = {"channels": 8, "cells": 1}

    def _choices(self) -> tuple[int, ...]:
        return _CHOICES

    def _encode(self, arch: NB201Arch) -> tuple[int, ...]:
        return arch.indices

    def _decode(self, indices: tuple[int, ...]) -> NB201Arch:
        return NB201Arch.from_indices(indices)

    def check(self, arch: object) -> NB201Arch:
        return _check(arch)

    def _encode_extra(self, arch: NB201Arch, kind: str) -> np.ndarray:
        """``path``: 180 bits, one per input->output sequence of ops (see ``_path_encoding``)."""
        return _path_encoding(arch.indices)

    def to_string(self, arch: NB201Arch) -> str:
        return to_string(arch)

    def from_string(self, text: str) -> NB201Arch:
        return from_string(text)

    def canonical_key(self, arch: NB201Arch) -> str:
        return canonical_key(arch)

    def canonical(self, arch: NB201Arch) -> NB201Arch:
        """The cell with the smallest string among those the benchmark deems isomorphic.

        The benchmark's classes (see ``canonical_key``) leave a few function-equal cells apart, such
        as different all-zero cells; we keep its partition so results line up with its tables.
        """
        key = _key_by_cell().get(arch)
        return _representatives()[canonical_key(arch) if key is None else key]

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def enumerate(self) -> Iterator[NB201Arch]:
        """Every cell once, in ``itertools.product`` order over ``OPS`` (last edge fastest)."""
        return _all_cells()

    #: the module functions, so the signature (keywords and defaults) is stated once
    build = staticmethod(build)
    param_count = staticmethod(param_count)
