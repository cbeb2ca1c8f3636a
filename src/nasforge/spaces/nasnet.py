"""The NASNet cell space (Zoph et al., "Learning Transferable Architectures for Scalable Image
Recognition", CVPR 2018), also the space of PNAS (Liu et al., "Progressive Neural Architecture
Search", ECCV 2018).

A cell turns the outputs of the two previous cells, ``h_{i-2}`` and ``h_{i-1}``, into a new
state by ``B`` blocks (5 in both papers). Each block makes five decisions: two inputs, chosen
among the two cell inputs and the outputs of earlier blocks; one op for each input, from the 13
ops of NASNet (``OPS``); and how the two results combine (``add`` or ``concat``). Inputs are
numbered as in DARTS genotypes: 0 is ``h_{i-2}``, 1 is ``h_{i-1}`` and ``k >= 2`` is the output
of block ``k - 2`` of the same cell. A normal cell keeps the resolution; a reduction cell applies
its ops to the cell inputs with stride 2. The cell's output concatenates the outputs of the
blocks that no other block of the cell uses (NASNet's rule).

Choices this implementation makes (the papers leave them open):

* ``concat`` combiner: the two C-channel results are concatenated and projected back to C by a
  1x1 conv + BN, so every block output has the cell's C channels and only the cell output's width
  (C times its number of unused blocks) varies. The next cell's 1x1 input conv absorbs that.
* A cell input that no block reads gets no input adapter (its weights could never train).
* ``canonical``: the two (input, op) halves of a block are unordered (a sum is commutative, and a
  concatenation followed by a 1x1 conv is the same function class in either order), so they are
  sorted. Relabelling blocks (two independent blocks listed in the other order) is not merged:
  cheap canonical forms matter more here than catching every twin.
* ``tied=True`` (the PNAS setup): one cell structure, used both as the normal and as the
  reduction cell (the latter with stride 2). Sampling, mutation, crossover and growth keep both
  equal; decisions and encodings then cover the one cell.

Size: with B=5 and all 13 ops, one cell has ``prod_b ((b+2)*13)**2 * 2`` = 2.3e18 decision
sequences (8.0e16 after sorting halves); an untied architecture is the square of that.

**Growth (PNAS)**: architectures may have fewer than ``blocks`` blocks (1..blocks, the same
number in both cells). ``seeds()`` lists the one-block architectures, ``grow(arch)`` every
architecture with one more block appended, ``num_blocks(arch)`` the current count; the padded
``onehot``/``index`` encodings keep one fixed length at every size, and the ``blocks`` encoding
(a position-free average of per-block features, like PNAS's MLP predictor input) lets a
predictor trained on b-block cells score (b+1)-block cells.

The network (``build``) is NASNet's CIFAR network: a 3x3 conv stem of 3C channels, N normal
cells, a reduction cell (2C), N normal cells, a reduction cell (4C), N normal cells, then ReLU,
global average pooling and a linear classifier; the paper's CIFAR setting N=6, C(=F)=32 is the
default. Auxiliary heads and drop-path are training tricks, not architecture, and are left out.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.nn.blocks import AsymmetricConv
from nasforge.nn.darts_ops import DilConv, SepConv
from nasforge.nn.ops import FactorizedReduce, ReLUConvBN
from nasforge.spaces.decisions import Decisions
from nasforge.spaces.net_options import int_option
from nasforge.spaces.vector import checked_sequence, one_hot

#: NASNet's op list, in the paper's order.
OPS: tuple[str, ...] = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)
COMBINERS: tuple[str, ...] = ("add", "concat")
ENCODINGS: tuple[str, ...] = ("onehot", "index", "blocks")
#: The decisions of one block, in the order of ``decisions()`` and the encodings.
BLOCK_DECISIONS: tuple[str, ...] = ("input1", "input2", "op1", "op2", "combiner")

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EXPECTED = (
    "expected 'normal=[BLOCK,...];reduce=[BLOCK,...]' with BLOCK 'add(i:op,j:op)' or "
    "'concat(i:op,j:op)', i and j the inputs (0: h_{i-2}, 1: h_{i-1}, k>=2: block k-2)"
)


@dataclass(frozen=True)
class NASNetBlock:
    """One block: ``combiner(op1(input1), op2(input2))``. Inputs are numbered as in the module
    docstring; whether they exist is checked by the cell holding the block."""

    input1: int
    input2: int
    op1: str
    op2: str
    combiner: str = "add"

    def __post_init__(self) -> None:
        for name in ("input1", "input2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise InvalidArchError(f"NASNet block {name} must be an int >= 0, got {value!r}")
            object.__setattr__(self, name, int(value))
        for op in (self.op1, self.op2):
            if op not in _OP_INDEX:
                raise InvalidArchError(f"unknown NASNet op {op!r}; accepted: {', '.join(OPS)}")
        if self.combiner not in COMBINERS:
            raise InvalidArchError(
                f"unknown NASNet combiner {self.combiner!r}; accepted: {', '.join(COMBINERS)}"
            )

    @property
    def halves(self) -> tuple[tuple[int, str], tuple[int, str]]:
        return (self.input1, self.op1), (self.input2, self.op2)

    def is_sorted(self) -> bool:
        """Whether the halves are in (input, position in ``OPS``) order: the canonical form."""
        return (self.input1, _OP_INDEX[self.op1]) <= (self.input2, _OP_INDEX[self.op2])

    def sorted(self) -> NASNetBlock:
        """The same block with its halves in canonical order."""
        if self.is_sorted():
            return self
        return NASNetBlock(self.input2, self.input1, self.op2, self.op1, self.combiner)


def _check_cell(blocks: object, label: str) -> tuple[NASNetBlock, ...]:
    if not isinstance(blocks, tuple | list):
        raise InvalidArchError(f"NASNet {label} cell must be a tuple of NASNetBlock values")
    blocks = tuple(blocks)
    if not blocks:
        raise InvalidArchError(f"NASNet {label} cell needs at least one block")
    for position, block in enumerate(blocks):
        if not isinstance(block, NASNetBlock):
            raise InvalidArchError(
                f"NASNet {label} cell holds a {type(block).__name__}, expected NASNetBlock"
            )
        if max(block.input1, block.input2) > position + 1:
            raise InvalidArchError(
                f"NASNet {label} block {position} uses input "
                f"{max(block.input1, block.input2)}; accepted: 0..{position + 1} "
                "(the two cell inputs and earlier blocks)"
            )
    return blocks


@dataclass(frozen=True)
class NASNetArch:
    """A normal and a reduction cell, each a tuple of blocks, with the same number of blocks
    (1..the space's ``blocks``; fewer while PNAS grows them)."""

    normal: tuple[NASNetBlock, ...]
    reduce: tuple[NASNetBlock, ...]

    def __post_init__(self) -> None:
        normal = _check_cell(self.normal, "normal")
        reduce = _check_cell(self.reduce, "reduce")
        if len(normal) != len(reduce):
            raise InvalidArchError(
                f"NASNet normal and reduce cells must have the same number of blocks, got "
                f"{len(normal)} and {len(reduce)}"
            )
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)

    def __len__(self) -> int:
        return len(self.normal)


def unused_blocks(cell: Sequence[NASNetBlock]) -> list[int]:
    """Positions of the blocks no later block reads: their outputs form the cell's output."""
    used = {i - 2 for block in cell for i in (block.input1, block.input2) if i >= 2}
    return [b for b in range(len(cell)) if b not in used]


def _canonical_cell(cell: tuple[NASNetBlock, ...]) -> tuple[NASNetBlock, ...]:
    return tuple(block.sorted() for block in cell)


# --- strings ------------------------------------------------------------------------------------


def _block_string(block: NASNetBlock) -> str:
    return f"{block.combiner}({block.input1}:{block.op1},{block.input2}:{block.op2})"


def to_string(arch: NASNetArch) -> str:
    """``normal=[add(0:sep_conv_3x3,1:identity),...];reduce=[...]``."""
    arch = _check_type(arch)
    cells = (("normal", arch.normal), ("reduce", arch.reduce))
    return ";".join(f"{name}=[{','.join(map(_block_string, cell))}]" for name, cell in cells)


_BLOCK_RE = re.compile(r"(\w+)\((\d+):(\w+),(\d+):(\w+)\)")


def from_string(text: str) -> NASNetArch:
    """Parse ``to_string``'s form strictly (no spaces inside; surrounding whitespace is ignored)."""

    def fail(reason: str) -> InvalidArchError:
        return InvalidArchError(f"invalid NASNet architecture {text!r}: {reason}; {_EXPECTED}")

    if not isinstance(text, str):
        raise InvalidArchError(f"a NASNet string must be a str, got {type(text).__name__}")
    parts = text.strip().split(";")
    if len(parts) != 2:
        raise fail(f"{len(parts)} cells separated by ';', not 2")
    cells = []
    for name, part in zip(("normal", "reduce"), parts, strict=True):
        prefix = f"{name}=["
        if not part.startswith(prefix) or not part.endswith("]"):
            raise fail(f"cell {part!r} does not read '{prefix}...]'")
        body = part[len(prefix) : -1]
        tokens = re.split(r"(?<=\)),", body) if body else []
        blocks = []
        for position, token in enumerate(tokens):
            match = _BLOCK_RE.fullmatch(token)
            if match is None:
                raise fail(f"{name} block {position} {token!r} is not 'combiner(i:op,j:op)'")
            combiner, a, op1, b, op2 = match.groups()
            if any(len(digits) > 1 and digits[0] == "0" for digits in (a, b)):
                raise fail(f"{name} block {position} has an input with a leading zero")
            try:
                blocks.append(NASNetBlock(int(a), int(b), op1, op2, combiner))
            except InvalidArchError as err:
                raise fail(str(err)) from None
        cells.append(tuple(blocks))
    try:
        return NASNetArch(cells[0], cells[1])
    except InvalidArchError as err:
        raise fail(str(err)) from None


def _check_type(arch: object) -> NASNetArch:
    if not isinstance(arch, NASNetArch):
        raise InvalidArchError(f"expected a NASNetArch, got {type(arch).__name__}")
    return arch


# --- the network --------------------------------------------------------------------------------


def make_nasnet_op(op: str, channels: int, stride: int) -> nn.Module:
    """The module for ``op`` at ``channels`` in and out; ``stride`` 2 in reduction cells."""
    if op == "identity":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
    if op.startswith("conv_1x"):  # conv_1x3_3x1, conv_1x7_7x1
        return AsymmetricConv(channels, channels, int(op[len("conv_1x")]), stride)
    if op == "dil_conv_3x3":
        return DilConv(channels, channels, 3, stride, 2, 2)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, padding=1, count_include_pad=False)
    if op.startswith("max_pool_"):
        kernel = int(op[-1])
        return nn.MaxPool2d(kernel, stride, padding=kernel // 2)
    if op in ("conv_1x1", "conv_3x3"):
        return ReLUConvBN(channels, channels, int(op[-1]), stride)
    if op.startswith("sep_conv_"):
        kernel = int(op[-1])
        return SepConv(channels, channels, kernel, stride, kernel // 2)
    raise UnknownNameError("NASNet op", op, OPS)


def _concat_projection(channels: int) -> nn.Module:
    """A concat block's 2C channels back to C: 1x1 conv + BN (see the module docstring)."""
    return nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels))


def _input_adapter(c_in: int, c_out: int, reduce: bool) -> nn.Module:
    """Bring a cell input to C channels (and to this cell's input resolution when it is the
    previous-previous state and the previous cell was a reduction)."""
    return FactorizedReduce(c_in, c_out) if reduce else ReLUConvBN(c_in, c_out, 1)


class NASNetCell(nn.Module):
    """One cell: adapt both inputs to C channels, run the blocks, concatenate unused outputs."""

    def __init__(
        self,
        blocks: Sequence[NASNetBlock],
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
    ):
        super().__init__()
        self.blocks = tuple(blocks)
        read = {i for block in self.blocks for i in (block.input1, block.input2)}
        # a cell input no block reads gets no adapter (it would hold untrained weights)
        self.pre0 = _input_adapter(c_prev_prev, channels, reduction_prev) if 0 in read else None
        self.pre1 = _input_adapter(c_prev, channels, False) if 1 in read else None
        self.ops = nn.ModuleList()
        self.projections = nn.ModuleDict()
        for position, block in enumerate(self.blocks):
            for source, op in block.halves:
                stride = 2 if reduction and source < 2 else 1
                self.ops.append(make_nasnet_op(op, channels, stride))
            if block.combiner == "concat":
                self.projections[str(position)] = _concat_projection(channels)
        self.outputs = unused_blocks(self.blocks)
        self.out_channels = len(self.outputs) * channels

    def forward(self, prev_prev: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        states = [
            None if self.pre0 is None else self.pre0(prev_prev),
            None if self.pre1 is None else self.pre1(prev),
        ]
        for position, block in enumerate(self.blocks):
            a = self.ops[2 * position](states[block.input1])
            b = self.ops[2 * position + 1](states[block.input2])
            if block.combiner == "add":
                states.append(a + b)
            else:
                states.append(self.projections[str(position)](torch.cat([a, b], dim=1)))
        return torch.cat([states[2 + i] for i in self.outputs], dim=1)


def _cell_plan(C: int, N: int) -> list[tuple[bool, int]]:
    """(is reduction, channels) of every cell: N normal, reduce at 2C, N, reduce at 4C, N."""
    plan = [(False, C)] * N + [(True, 2 * C)] + [(False, 2 * C)] * N
    return plan + [(True, 4 * C)] + [(False, 4 * C)] * N


class NASNetNetwork(nn.Module):
    """NASNet's CIFAR network (see the module docstring); ``forward`` returns logits."""

    def __init__(self, arch: NASNetArch, C: int, N: int, in_channels: int, num_classes: int):
        super().__init__()
        stem = 3 * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem)
        )
        self.cells = nn.ModuleList()
        c_prev_prev, c_prev, reduction_prev = stem, stem, False
        for reduction, channels in _cell_plan(C, N):
            blocks = arch.reduce if reduction else arch.normal
            cell = NASNetCell(blocks, c_prev_prev, c_prev, channels, reduction, reduction_prev)
            self.cells.append(cell)
            c_prev_prev, c_prev, reduction_prev = c_prev, cell.out_channels, reduction
        self.head = nn.Sequential(nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev_prev = prev = self.stem(x)
        for cell in self.cells:
            prev_prev, prev = prev, cell(prev_prev, prev)
        return self.classifier(self.head(prev))


def _check_net(C: object, N: object, in_channels: object, num_classes: object) -> None:
    int_option("NASNet network C", C)
    int_option("NASNet network N", N, low=0)
    int_option("NASNet network in_channels", in_channels)
    int_option("NASNet network num_classes", num_classes)


@functools.cache
def _params(module_key: tuple[object, ...]) -> int:
    """Trainable parameters of one small module, built once per distinct key."""
    kind, *args = module_key
    if kind == "op":
        module = make_nasnet_op(*args)  # type: ignore[arg-type]
    elif kind == "adapter":
        module = _input_adapter(*args)  # type: ignore[arg-type]
    else:
        module = _concat_projection(*args)  # type: ignore[arg-type]
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def param_count(
    arch: NASNetArch, *, C: int = 32, N: int = 6, in_channels: int = 3, num_classes: int = 10
) -> int:
    """Trainable parameters of ``build(arch, ...)`` without building the network: each distinct
    op / input adapter / projection is built once (cached) and the counts are summed."""
    _check_net(C, N, in_channels, num_classes)
    arch = _check_type(arch)
    stem = 3 * C
    total = 9 * in_channels * stem + 2 * stem
    c_prev_prev, c_prev, reduction_prev = stem, stem, False
    for reduction, channels in _cell_plan(int(C), int(N)):
        blocks = arch.reduce if reduction else arch.normal
        read = {i for block in blocks for i in (block.input1, block.input2)}
        if 0 in read:
            total += _params(("adapter", c_prev_prev, channels, reduction_prev))
        if 1 in read:
            total += _params(("adapter", c_prev, channels, False))
        for block in blocks:
            for source, op in block.halves:
                total += _params(("op", op, channels, 2 if reduction and source < 2 else 1))
            if block.combiner == "concat":
                total += _params(("projection", channels))
        out = len(unused_blocks(blocks)) * channels
        c_prev_prev, c_prev, reduction_prev = c_prev, out, reduction
    return int(total + c_prev * num_classes + num_classes)


# --- the space ----------------------------------------------------------------------------------


class NASNetSpace:
    """The NASNet (``tied=False``) or PNAS (``tied=True``) cell space over ``ops`` with up to
    ``blocks`` blocks per cell. Architectures are ``NASNetArch`` values."""

    name = "nasnet"
    size_options: ClassVar[dict[str, str | None]] = {"channels": "C", "cells": "N"}

    def __init__(self, blocks: int = 5, ops: Sequence[str] = OPS, tied: bool = False):
        blocks = int_option("NASNet blocks", blocks)
        if isinstance(ops, str):
            raise ConfigError(f"NASNet ops must be a sequence of op names from: {', '.join(OPS)}")
        ops = tuple(ops)
        for op in ops:
            if op not in _OP_INDEX:
                raise UnknownNameError("NASNet op", op, OPS)
        if not ops or len(set(ops)) != len(ops):
            raise ConfigError(f"NASNet ops must be distinct and non-empty, got {ops!r}")
        self.blocks = int(blocks)
        self.ops = tuple(sorted(ops, key=_OP_INDEX.__getitem__))  # paper order, always
        self.tied = bool(tied)
        self._op_index = {op: i for i, op in enumerate(self.ops)}
        # one block's halves at each position, in canonical (input, op) order
        self._halves = [
            [(i, op) for i in range(position + 2) for op in self.ops]
            for position in range(self.blocks)
        ]
        self._cells_per_arch = 1 if self.tied else 2

    # --- validation -----------------------------------------------------------------------

    def check(self, arch: object) -> NASNetArch:
        """``arch`` if it belongs to this space, else InvalidArchError saying why."""
        arch = _check_type(arch)
        if len(arch) > self.blocks:
            raise InvalidArchError(
                f"NASNet cell has {len(arch)} blocks; this space accepts 1..{self.blocks}"
            )
        for block in (*arch.normal, *arch.reduce):
            for op in (block.op1, block.op2):
                if op not in self._op_index:
                    raise InvalidArchError(
                        f"op {op!r} is not in this space; accepted: {', '.join(self.ops)}"
                    )
        if self.tied and arch.normal != arch.reduce:
            raise InvalidArchError(
                "this space is tied (one cell, also used for reduction): normal and reduce "
                "cells must be equal"
            )
        return arch

    def _arch(self, normal: Sequence[NASNetBlock], reduce: Sequence[NASNetBlock]) -> NASNetArch:
        return NASNetArch(tuple(normal), tuple(normal) if self.tied else tuple(reduce))

    def _cells(self, arch: NASNetArch) -> list[tuple[NASNetBlock, ...]]:
        """The cells the decisions cover: the normal one, and the reduction one if untied."""
        return [arch.normal] if self.tied else [arch.normal, arch.reduce]

    def _from_cells(self, cells: Sequence[Sequence[NASNetBlock]]) -> NASNetArch:
        return self._arch(cells[0], cells[-1])

    # --- sampling and moves ---------------------------------------------------------------

    def _random_block(self, position: int, rng: np.random.Generator) -> NASNetBlock:
        inputs = rng.integers(0, position + 2, size=2)
        ops = rng.integers(0, len(self.ops), size=2)
        combiner = COMBINERS[int(rng.integers(len(COMBINERS)))]
        return NASNetBlock(
            int(inputs[0]), int(inputs[1]), self.ops[ops[0]], self.ops[ops[1]], combiner
        )

    def sample(self, rng: np.random.Generator, blocks: int | None = None) -> NASNetArch:
        """Every decision uniform; ``blocks`` cells of that many blocks (default: full size)."""
        count = self.blocks if blocks is None else int(blocks)
        if not 1 <= count <= self.blocks:
            raise ConfigError(f"blocks must be in 1..{self.blocks}, got {blocks!r}")
        cells = [
            [self._random_block(p, rng) for p in range(count)] for _ in range(self._cells_per_arch)
        ]
        return self._from_cells(cells)

    def _block_options(self, position: int, block: NASNetBlock) -> list[list[NASNetBlock]]:
        """For each of the block's five decisions, the blocks with that decision changed."""
        values = {
            "input1": range(position + 2),
            "input2": range(position + 2),
            "op1": self.ops,
            "op2": self.ops,
            "combiner": COMBINERS,
        }
        fields = [[replace(block, **{name: v}) for v in values[name]] for name in BLOCK_DECISIONS]
        return [[b for b in options if b != block] for options in fields]

    def mutate(self, arch: NASNetArch, rng: np.random.Generator) -> NASNetArch:
        """Change one decision (an input, an op or the combiner) of one block of one cell."""
        cells = [list(cell) for cell in self._cells(self.check(arch))]
        cell = cells[int(rng.integers(len(cells)))]
        position = int(rng.integers(len(cell)))
        options = [o for o in self._block_options(position, cell[position]) if o]
        choices = options[int(rng.integers(len(options)))]
        cell[position] = choices[int(rng.integers(len(choices)))]
        return self._from_cells(cells)

    def neighbours(self, arch: NASNetArch) -> list[NASNetArch]:
        """Every architecture one decision away (cell, block, decision, option order), without
        canonical twins (changing either of two equal halves gives the same cell)."""
        cells = self._cells(self.check(arch))
        out: dict[tuple[int, int, NASNetBlock], NASNetArch] = {}
        for c, cell in enumerate(cells):
            for position, block in enumerate(cell):
                for options in self._block_options(position, block):
                    for new in options:
                        key = (c, position, new.sorted())  # only this block differs
                        if key not in out:
                            changed = list(cells)
                            changed[c] = (*cell[:position], new, *cell[position + 1 :])
                            out[key] = self._from_cells(changed)
        return list(out.values())

    def crossover(self, a: NASNetArch, b: NASNetArch, rng: np.random.Generator) -> NASNetArch:
        """Block-wise uniform crossover, cell by cell; the child has the size of a random parent
        (blocks beyond the shorter parent come from the longer). Inputs stay valid because a
        block keeps its position."""
        cells_a, cells_b = self._cells(self.check(a)), self._cells(self.check(b))
        count = len(a) if rng.random() < 0.5 else len(b)
        children = []
        for x, y in zip(cells_a, cells_b, strict=True):
            child = []
            for position in range(count):
                pick = [cell[position] for cell in (x, y) if position < len(cell)]
                child.append(pick[int(rng.integers(len(pick)))])
            children.append(child)
        return self._from_cells(children)

    # --- identity -------------------------------------------------------------------------

    def canonical(self, arch: NASNetArch) -> NASNetArch:
        """Halves of each block sorted (see the module docstring); idempotent."""
        arch = _check_type(arch)
        if all(block.is_sorted() for block in (*arch.normal, *arch.reduce)):
            return arch
        return NASNetArch(_canonical_cell(arch.normal), _canonical_cell(arch.reduce))

    def to_string(self, arch: NASNetArch) -> str:
        return to_string(self.check(arch))

    def from_string(self, text: str) -> NASNetArch:
        return self.check(from_string(text))

    # --- decisions and encodings ----------------------------------------------------------

    def _choices(self) -> tuple[int, ...]:
        per_cell = []
        for position in range(self.blocks):
            n_in = position + 2
            per_cell += [n_in, n_in, len(self.ops), len(self.ops), len(COMBINERS)]
        return tuple(per_cell) * self._cells_per_arch

    def _block_indices(self, block: NASNetBlock) -> tuple[int, ...]:
        combiner = COMBINERS.index(block.combiner)
        ops = self._op_index[block.op1], self._op_index[block.op2]
        return (block.input1, block.input2, *ops, combiner)

    def _decode(self, sequence: Sequence[int]) -> NASNetArch:
        values = checked_sequence(self.name, sequence, self._choices())
        cells = []
        for c in range(self._cells_per_arch):
            cell = []
            for position in range(self.blocks):
                start = (c * self.blocks + position) * len(BLOCK_DECISIONS)
                i1, i2, o1, o2, comb = values[start : start + len(BLOCK_DECISIONS)]
                cell.append(NASNetBlock(i1, i2, self.ops[o1], self.ops[o2], COMBINERS[comb]))
            cells.append(cell)
        return self._from_cells(cells)

    def _encode_decisions(self, arch: NASNetArch) -> tuple[int, ...]:
        arch = self.check(arch)
        if len(arch) != self.blocks:
            raise InvalidArchError(
                f"decisions cover full cells of {self.blocks} blocks; this one has {len(arch)}"
            )
        return tuple(
            v for cell in self._cells(arch) for block in cell for v in self._block_indices(block)
        )

    def decisions(self) -> Decisions:
        """Per block (cell by cell, block by block): input1, input2 (``position + 2`` options
        each), op1, op2 (``len(ops)`` each) and the combiner (2). Every sequence is a valid
        full-size architecture; with ``tied`` only the one cell is decided."""
        return Decisions(self._choices(), self._decode, self._encode_decisions)

    def encode(self, arch: NASNetArch, kind: str = "onehot") -> np.ndarray:
        """Fixed-length vectors at every cell size (blocks not yet grown are padding):

        * ``index``: the decision indices (``decisions().encode``), -1 for missing blocks;
        * ``onehot``: a one-hot per decision, all zeros for missing blocks;
        * ``blocks``: per cell, the mean over its blocks of a block's features, a count of
          (input kind, op) for its two halves (input kinds: h_{i-2}, h_{i-1}, a block output)
          and a one-hot of its combiner. Position-free like PNAS's MLP predictor input, so what
          a model learns about b-block cells carries over to b+1 blocks.

        With ``tied`` only the one cell is encoded.
        """
        arch = self.check(arch)
        if kind == "blocks":
            return np.concatenate([self._block_features(cell) for cell in self._cells(arch)])
        if kind not in ("onehot", "index"):
            raise UnknownNameError("encoding", kind, ENCODINGS)
        per_cell = self.blocks * len(BLOCK_DECISIONS)
        index = np.full(len(self._choices()), -1, dtype=int)
        for c, cell in enumerate(self._cells(arch)):
            start = c * per_cell
            values = [v for block in cell for v in self._block_indices(block)]
            index[start : start + len(values)] = values
        if kind == "index":
            return index.astype(float)
        return one_hot(index, self._choices())

    def _block_features(self, cell: Sequence[NASNetBlock]) -> np.ndarray:
        n_ops = len(self.ops)
        features = np.zeros(3 * n_ops + len(COMBINERS))
        for block in cell:
            for source, op in block.halves:
                features[min(source, 2) * n_ops + self._op_index[op]] += 1.0
            features[3 * n_ops + COMBINERS.index(block.combiner)] += 1.0
        return features / len(cell)

    # --- growth (PNAS) --------------------------------------------------------------------

    def num_blocks(self, arch: NASNetArch) -> int:
        return len(self.check(arch))

    def _canonical_blocks(self, position: int) -> list[NASNetBlock]:
        """Every block at ``position`` once in canonical form: halves i <= j, both combiners."""
        return _canonical_blocks(tuple(self._halves[position]))

    def _children(self, cells: list[tuple[NASNetBlock, ...]]) -> tuple[int, list[list]]:
        options = [self._canonical_blocks(len(cell)) for cell in cells]
        return int(np.prod([len(o) for o in options])), options

    def _pick(
        self,
        cells: list[tuple[NASNetBlock, ...]],
        limit: int | None,
        rng: np.random.Generator | None,
    ) -> list[NASNetArch]:
        """Every way to append one canonical block to each cell, or ``limit`` of them drawn
        uniformly without replacement (in enumeration order) when there are more."""
        total, options = self._children(cells)
        if limit is None or total <= limit:
            picks = itertools.product(*options)
        else:
            if rng is None:
                raise ConfigError("a limit on the number of architectures needs an rng")
            chosen = np.sort(rng.choice(total, size=int(limit), replace=False))
            sizes = [len(o) for o in options]
            picks = (
                tuple(o[i] for o, i in zip(options, np.unravel_index(k, sizes), strict=True))
                for k in chosen
            )
        return [
            self._from_cells([(*cell, new) for cell, new in zip(cells, pick, strict=True)])
            for pick in picks
        ]

    def seeds(
        self, *, limit: int | None = None, rng: np.random.Generator | None = None
    ) -> list[NASNetArch]:
        """Every one-block architecture once (canonical forms), in a fixed order; with ``limit``,
        at most that many drawn uniformly with ``rng``. Tied with all 13 ops: 702 (26 halves
        make 351 unordered pairs, times 2 combiners); untied: 702**2, so pass a limit."""
        return self._pick([(), ()][: self._cells_per_arch], limit, rng)

    def grow(
        self,
        arch: NASNetArch,
        *,
        limit: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> list[NASNetArch]:
        """Every architecture with one block appended to each cell (canonical forms of the new
        block; the parent's blocks are kept as they are); empty at full size. ``limit``/``rng``
        as in ``seeds``."""
        arch = self.check(arch)
        if len(arch) >= self.blocks:
            return []
        return self._pick(self._cells(arch), limit, rng)

    # --- networks -------------------------------------------------------------------------

    def build(
        self,
        arch: NASNetArch,
        *,
        C: int = 32,
        N: int = 6,
        in_channels: int = 3,
        num_classes: int = 10,
    ) -> NASNetNetwork:
        """NASNet's CIFAR network (defaults: the paper's N=6, F=32)."""
        _check_net(C, N, in_channels, num_classes)
        return NASNetNetwork(self.check(arch), int(C), int(N), int(in_channels), int(num_classes))

    def param_count(
        self,
        arch: NASNetArch,
        *,
        C: int = 32,
        N: int = 6,
        in_channels: int = 3,
        num_classes: int = 10,
    ) -> int:
        return param_count(
            self.check(arch), C=C, N=N, in_channels=in_channels, num_classes=num_classes
        )


@functools.cache
def _canonical_blocks(halves: tuple[tuple[int, str], ...]) -> list[NASNetBlock]:
    return [
        NASNetBlock(halves[i][0], halves[j][0], halves[i][1], halves[j][1], combiner)
        for i in range(len(halves))
        for j in range(i, len(halves))
        for combiner in COMBINERS
    ]
