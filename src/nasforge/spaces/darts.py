"""The DARTS cell space (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019) as a
discrete space, with DARTS's CIFAR evaluation network.

An architecture is two cells, ``normal`` and ``reduce``. Each cell has two inputs (the outputs
of the two previous cells, numbered 0 and 1) and four intermediate nodes (numbered 2..5); node k
(k = 0..3) sums two ops applied to two *distinct* earlier states (inputs 0..k+1), and the cell
outputs the channel-concatenation of nodes 2..5. This is the space of DARTS's derived genotypes
and of NAS-Bench-301 (Siems et al. 2020). With the 7 non-``none`` ops used by default there are
(1 * 3 * 6 * 10) * 7**8 ~ 1.04e9 cells of each kind up to the order of a node's two edges (which
``canonical`` removes), so ~1.1e18 architectures. ``DartsSpace(include_none=True)`` adds ``none``
(8 ops) as the DARTS supernet had; parsing always accepts all 8. As a decision sequence the space
is 22 choices: per cell and node, the input pair (node 0 has only one) and the two edges' ops.

The string form is DARTS's own ``Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=[2, 3,
4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``, so genotypes printed by DARTS-family code
paste straight in. ``build`` gives DARTS's ``NetworkCIFAR`` (C=36, 20 cells, reductions at 1/3
and 2/3 depth, drop-path, optional auxiliary head): DARTS_V2 at the defaults has 3.3 M
parameters, the paper's figure (``param_count`` leaves the auxiliary head out, as DARTS does,
since it is dropped after training). When the auxiliary head is on, ``forward`` still returns logits
only and leaves the auxiliary logits in ``network.aux_logits`` for a trainer that wants them.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nasforge.nn.darts_ops  # noqa: F401  (registers the sep/dil convs in the op registry)
from nasforge.errors import InvalidArchError, UnknownNameError
from nasforge.nn.ops import FactorizedReduce, ReLUConvBN, make_op
from nasforge.spaces.decisions import Decisions
from nasforge.spaces.net_options import bool_option, fraction_option, int_option
from nasforge.spaces.vector import checked_sequence, one_hot

#: every DARTS op, in DARTS's PRIMITIVES order
OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: the ops sampled by default: derived DARTS genotypes and NAS-Bench-301 never contain ``none``
SEARCH_OPS: tuple[str, ...] = OPS[1:]
NUM_NODES = 4
CONCAT: tuple[int, ...] = (2, 3, 4, 5)
CELLS: tuple[str, ...] = ("normal", "reduce")
ENCODINGS: tuple[str, ...] = ("onehot", "index", "edges")

#: unordered input pairs of node k, as (smaller, larger)
_PAIRS: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple(itertools.combinations(range(k + 2), 2)) for k in range(NUM_NODES)
)
_PAIR_INDEX = [{pair: i for i, pair in enumerate(pairs)} for pairs in _PAIRS]
#: every possible edge (node k, input i) of a cell: 2 + 3 + 4 + 5 = 14
_EDGES: tuple[tuple[int, int], ...] = tuple((k, i) for k in range(NUM_NODES) for i in range(k + 2))
_EDGE_INDEX = {edge: e for e, edge in enumerate(_EDGES)}
_EXPECTED = (
    "expected Genotype(normal=[(op, input), ... 8 pairs], normal_concat=[2, 3, 4, 5], "
    "reduce=[... 8 pairs], reduce_concat=[2, 3, 4, 5]) with op in " + ", ".join(OPS)
)

Cell = tuple[tuple[str, int], ...]


def _check_cell(name: str, cell: object) -> Cell:
    """Freeze ``cell`` into a tuple of 8 (op, input) pairs or raise InvalidArchError."""
    if not isinstance(cell, tuple | list) and (
        isinstance(cell, str) or not isinstance(cell, Sequence)
    ):
        raise InvalidArchError(f"DARTS {name} cell must be a sequence of (op, input) pairs")
    if len(cell) != 2 * NUM_NODES:
        raise InvalidArchError(
            f"DARTS {name} cell needs {2 * NUM_NODES} (op, input) pairs, got {len(cell)}"
        )
    out: list[tuple[str, int]] = []
    for position, entry in enumerate(cell):
        node = position // 2
        pair = isinstance(entry, tuple | list) or (
            not isinstance(entry, str) and isinstance(entry, Sequence)
        )
        if not pair or len(entry) != 2:
            raise InvalidArchError(f"DARTS {name} cell entry {entry!r} is not an (op, input) pair")
        op, source = entry
        if op not in OPS:
            raise InvalidArchError(f"unknown DARTS op {op!r}; accepted: {', '.join(OPS)}")
        if isinstance(source, bool) or not isinstance(source, int | np.integer):
            raise InvalidArchError(f"DARTS {name} cell input {source!r} is not an int")
        if not 0 <= source <= node + 1:
            raise InvalidArchError(
                f"DARTS {name} cell node {node} input {source} is out of range; "
                f"accepted: 0..{node + 1}"
            )
        out.append((str(op), int(source)))
    for node in range(NUM_NODES):
        if out[2 * node][1] == out[2 * node + 1][1]:
            raise InvalidArchError(
                f"DARTS {name} cell node {node} uses input {out[2 * node][1]} twice; "
                "a node's two inputs must be distinct"
            )
    return tuple(out)


@dataclass(frozen=True)
class DartsArch:
    """A DARTS genotype: 8 (op, input) pairs per cell; node k owns entries 2k and 2k+1.

    Input 0 and 1 are the cell inputs (c_{k-2}, c_{k-1}), input 2+j is intermediate node j.
    Both cells concatenate nodes 2..5 (``CONCAT``). Validated, immutable and hashable.
    """

    normal: Cell
    reduce: Cell

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_cell("normal", self.normal))
        object.__setattr__(self, "reduce", _check_cell("reduce", self.reduce))

    def cell(self, name: str) -> Cell:
        return self.normal if name == "normal" else self.reduce


def _check(arch: object) -> DartsArch:
    if not isinstance(arch, DartsArch):
        raise InvalidArchError(f"expected a DartsArch, got {type(arch).__name__}")
    return arch


# --- strings ------------------------------------------------------------------------------------


def to_string(arch: DartsArch) -> str:
    """DARTS's ``Genotype(...)`` repr, with list concat fields as DARTS_V1/V2 are written."""
    arch = _check(arch)
    concat = list(CONCAT)
    return (
        f"Genotype(normal={list(arch.normal)}, normal_concat={concat}, "
        f"reduce={list(arch.reduce)}, reduce_concat={concat})"
    )


def from_string(text: str) -> DartsArch:
    """Parse a ``Genotype(...)`` string strictly, without evaluating any code.

    The four keyword fields must each appear once; the concat fields must be nodes 2..5, as a
    list/tuple or ``range(2, 6)``.
    """
    if not isinstance(text, str):
        raise InvalidArchError(f"a DARTS genotype string must be a str, got {type(text).__name__}")

    def fail(reason: str) -> InvalidArchError:
        shown = text if len(text) <= 80 else text[:77] + "..."
        return InvalidArchError(f"invalid DARTS genotype {shown!r}: {reason}; {_EXPECTED}")

    def literal(name: str) -> object:
        try:
            return ast.literal_eval(fields[name])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise fail(f"{name} is not a plain literal") from None

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise fail("not a Genotype(...) expression") from None
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "Genotype"
    ):
        raise fail("not a Genotype(...) call")
    if call.args:
        raise fail("fields must be given by keyword")
    fields: dict[str, ast.expr] = {}
    for keyword in call.keywords:
        if keyword.arg not in ("normal", "normal_concat", "reduce", "reduce_concat"):
            raise fail(f"unknown field {keyword.arg!r}")
        if keyword.arg in fields:
            raise fail(f"field {keyword.arg!r} given twice")
        fields[keyword.arg] = keyword.value
    missing = [f for f in ("normal", "normal_concat", "reduce", "reduce_concat") if f not in fields]
    if missing:
        raise fail(f"missing field(s) {', '.join(missing)}")
    for name in ("normal_concat", "reduce_concat"):
        node = fields[name]
        if isinstance(node, ast.Call):
            args = [
                a.value if isinstance(a, ast.Constant) and type(a.value) is int else None
                for a in node.args
            ]
            is_range = isinstance(node.func, ast.Name) and node.func.id == "range"
            if not is_range or node.keywords or args != [CONCAT[0], CONCAT[-1] + 1]:
                raise fail(f"{name} must be [2, 3, 4, 5] or range(2, 6)")
            continue
        value = literal(name)
        plain = isinstance(value, list | tuple) and all(type(v) is int for v in value)
        if not plain or tuple(value) != CONCAT:  # type: ignore[arg-type]
            raise fail(f"{name} must be [2, 3, 4, 5] or range(2, 6)")
    cells = {}
    for name in CELLS:
        try:
            cells[name] = _check_cell(name, literal(name))
        except InvalidArchError as err:
            raise fail(str(err)) from None
    return DartsArch(cells["normal"], cells["reduce"])


#: DARTS (first order), CIFAR-10: the genotype published in DARTS's ``cnn/genotypes.py``.
DARTS_V1 = from_string(
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
#: DARTS (second order), CIFAR-10: the paper's 2.76% error, 3.3 M parameter cell.
DARTS_V2 = from_string(
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


# --- canonical form -----------------------------------------------------------------------------


def _sorted_cell(cell: Cell) -> Cell:
    """Each node's two entries ordered by input (inputs are distinct, so this is total)."""
    out: list[tuple[str, int]] = []
    for k in range(NUM_NODES):
        out.extend(sorted(cell[2 * k : 2 * k + 2], key=lambda entry: entry[1]))
    return tuple(out)


def _canonical_cell(cell: Cell) -> Cell:
    """A node sums its two edges, so their order is irrelevant; and a ``none`` edge outputs
    zeros whatever it reads, so its input is set to the smallest one distinct from its partner's.
    """
    out: list[tuple[str, int]] = []
    for k in range(NUM_NODES):
        (op_a, in_a), (op_b, in_b) = cell[2 * k], cell[2 * k + 1]
        if op_a == "none" and op_b == "none":
            in_a, in_b = 0, 1
        elif op_a == "none":
            in_a = 0 if in_b != 0 else 1
        elif op_b == "none":
            in_b = 0 if in_a != 0 else 1
        out.extend(sorted([(op_a, in_a), (op_b, in_b)], key=lambda entry: entry[1]))
    return tuple(out)


def canonical(arch: DartsArch) -> DartsArch:
    arch = _check(arch)
    return DartsArch(_canonical_cell(arch.normal), _canonical_cell(arch.reduce))


# --- the network --------------------------------------------------------------------------------


def _drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a path with probability ``drop_prob``, rescaling the survivors
    (Larsson et al., FractalNet; DARTS's evaluation schedule)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    """DARTS's evaluation cell: preprocess both inputs to C channels, four nodes, concat 2..5.

    In a reduction cell the ops that read the cell inputs have stride 2. When the previous cell
    reduced, input 0 is twice the size of input 1, so it is preprocessed by FactorizedReduce.
    """

    def __init__(
        self,
        cell: Cell,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1)
        self.ops = nn.ModuleList(
            make_op(op, c, c, 2 if reduction and source < 2 else 1) for op, source in cell
        )
        self.inputs = tuple(source for _, source in cell)
        self.multiplier = len(CONCAT)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(NUM_NODES):
            total = None
            for e in (2 * k, 2 * k + 1):
                op = self.ops[e]
                h = op(states[self.inputs[e]])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = _drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)  # type: ignore[arg-type]
        return torch.cat([states[i] for i in CONCAT], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary classifier, made size-agnostic.

    DARTS pools its 8x8 input with a 5x5 stride-3 average to 2x2; here that pooling is applied
    when the map is at least 5x5 and an adaptive average pool then makes the result 2x2 for any
    size (on 8x8 maps this is exactly DARTS's head).
    """

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, stride=3, padding=0, count_include_pad=False)
        x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))


class NetworkCIFAR(nn.Module):
    """DARTS's evaluation network: a 3x3 stem to 3C channels, ``layers`` cells (the channel
    count doubles at the reductions at layers//3 and 2*layers//3), global pooling, a linear layer.

    ``drop_path_prob`` is an attribute so a trainer can schedule it (DARTS raises it linearly
    over the epochs); drop-path only acts in training mode. ``forward`` returns logits; with
    ``auxiliary`` it also stores the auxiliary head's logits (training mode only) in
    ``aux_logits``.
    """

    def __init__(
        self,
        arch: DartsArch,
        C: int,
        layers: int,
        auxiliary: bool,
        drop_path_prob: float,
        in_channels: int,
        num_classes: int,
    ):
        super().__init__()
        self.drop_path_prob = drop_path_prob
        self.aux_logits: torch.Tensor | None = None
        c_curr = 3 * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        reductions = {layers // 3, 2 * layers // 3}
        self.aux_position = 2 * layers // 3
        self.cells = nn.ModuleList()
        reduction_prev, c_aux = False, c_prev
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cell = DartsCell(
                arch.reduce if reduction else arch.normal,
                c_prev_prev,
                c_prev,
                c_curr,
                reduction,
                reduction_prev,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.aux_logits = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def _check_net(
    C: object,
    layers: object,
    auxiliary: object,
    drop_path_prob: object,
    in_channels: object,
    num_classes: object,
) -> None:
    for name, value in (
        ("C", C),
        ("layers", layers),
        ("in_channels", in_channels),
        ("num_classes", num_classes),
    ):
        int_option(f"DARTS network {name}", value)
    bool_option("DARTS network auxiliary", auxiliary)
    fraction_option("DARTS network drop_path_prob", drop_path_prob)


def build(
    arch: DartsArch,
    *,
    C: int = 36,
    layers: int = 20,
    auxiliary: bool = False,
    drop_path_prob: float = 0.0,
    in_channels: int = 3,
    num_classes: int = 10,
) -> NetworkCIFAR:
    """DARTS's CIFAR evaluation network for ``arch`` (C=36, 20 cells is the paper's setting)."""
    _check_net(C, layers, auxiliary, drop_path_prob, in_channels, num_classes)
    return NetworkCIFAR(
        _check(arch),
        int(C),
        int(layers),
        bool(auxiliary),
        float(drop_path_prob),
        int(in_channels),
        int(num_classes),
    )


def _op_params(op: str, c: int, stride: int) -> int:
    """Parameters of one edge op on c channels (BN has weight and bias: 2c)."""
    if op.startswith("sep_conv_"):
        k = int(op[-1])
        return 2 * (k * k * c + c * c + 2 * c)
    if op.startswith("dil_conv_"):
        k = int(op[-1])
        return k * k * c + c * c + 2 * c
    if op == "skip_connect" and stride == 2:
        return c * c + 2 * c  # FactorizedReduce: two c -> c/2 1x1 convs and a BN
    return 0  # none, pools, identity


def param_count(
    arch: DartsArch,
    *,
    C: int = 36,
    layers: int = 20,
    auxiliary: bool = False,
    drop_path_prob: float = 0.0,
    in_channels: int = 3,
    num_classes: int = 10,
) -> int:
    """Trainable parameters of ``build(arch, ...)`` without the auxiliary head, computed
    without building it (DARTS also leaves the head out: it is dropped after training).

    DARTS_V2 at the defaults gives 3,349,342: the paper's 3.3 M.
    """
    _check_net(C, layers, auxiliary, drop_path_prob, in_channels, num_classes)
    arch = _check(arch)
    c_curr = 3 * C
    total = 9 * in_channels * c_curr + 2 * c_curr  # stem conv + BN
    c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
    reductions = {layers // 3, 2 * layers // 3}
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        # preprocess0 (ReLUConvBN or FactorizedReduce: the same count) and preprocess1
        total += c_prev_prev * c_curr + 2 * c_curr + c_prev * c_curr + 2 * c_curr
        for op, source in arch.reduce if reduction else arch.normal:
            total += _op_params(op, c_curr, 2 if reduction and source < 2 else 1)
        c_prev_prev, c_prev = c_prev, len(CONCAT) * c_curr
    return int(total + c_prev * num_classes + num_classes)


# --- the space ----------------------------------------------------------------------------------


class DartsSpace:
    """The DARTS / NAS-Bench-301 space as a SearchSpace: architectures are DartsArch values.

    ``include_none``: let sampling, mutation and decisions use the ``none`` op too (8 ops, as in
    the DARTS supernet); by default the 7 ops of derived genotypes and NAS-Bench-301 are used.
    """

    name = "darts"
    size_options: ClassVar[dict[str, str | None]] = {"channels": "C", "cells": "layers"}
    #: DARTS's own search network (C=16, 8 layers) rather than its C=36, 20-layer evaluation one
    search_size: ClassVar[dict[str, int]] = {"channels": 16, "cells": 8}

    def __init__(self, include_none: bool = False):
        self.include_none = bool_option("DARTS space include_none", include_none)
        self.ops: tuple[str, ...] = OPS if self.include_none else SEARCH_OPS
        self._op_index = {op: i for i, op in enumerate(self.ops)}

    # -- decisions: per cell, per node: input pair, op of the first edge, op of the second -----
    # Node 0 can only read (0, 1), so it has no pair decision: a one-option decision carries no
    # information and trips strategies that model each decision as a choice (BOHB's KDE, TPE).

    def _choices(self) -> tuple[int, ...]:
        per_cell: list[int] = []
        for k in range(NUM_NODES):
            if len(_PAIRS[k]) > 1:
                per_cell.append(len(_PAIRS[k]))
            per_cell.extend((len(self.ops), len(self.ops)))
        return tuple(per_cell) * len(CELLS)

    def _op_position(self, op: str) -> int:
        try:
            return self._op_index[op]
        except KeyError:
            raise InvalidArchError(
                f"op {op!r} is not in this DARTS space (include_none={self.include_none}); "
                f"accepted: {', '.join(self.ops)}"
            ) from None

    def _encode_decisions(self, arch: DartsArch) -> tuple[int, ...]:
        out: list[int] = []
        for name in CELLS:
            cell = _sorted_cell(_check(arch).cell(name))
            for k in range(NUM_NODES):
                (op_a, in_a), (op_b, in_b) = cell[2 * k], cell[2 * k + 1]
                if len(_PAIRS[k]) > 1:
                    out.append(_PAIR_INDEX[k][(in_a, in_b)])
                out.extend((self._op_position(op_a), self._op_position(op_b)))
        return tuple(out)

    def _decode_decisions(self, seq: Sequence[int]) -> DartsArch:
        stream = iter(checked_sequence(self.name, seq, self._choices()))
        cells = []
        for _ in CELLS:
            cell: list[tuple[str, int]] = []
            for k in range(NUM_NODES):
                pair = next(stream) if len(_PAIRS[k]) > 1 else 0
                in_a, in_b = _PAIRS[k][pair]
                op_a, op_b = next(stream), next(stream)
                cell.extend(((self.ops[op_a], in_a), (self.ops[op_b], in_b)))
            cells.append(tuple(cell))
        return DartsArch(cells[0], cells[1])

    def decisions(self) -> Decisions:
        """22 decisions: for each cell (normal, reduce) and node k, the unordered input pair
        (C(k+2, 2) options: 3, 6, 10; none for node 0, which always reads inputs 0 and 1), then
        the op of the edge from the smaller input and the op of the edge from the larger one.
        Every sequence decodes to a valid arch."""
        return Decisions(
            choices=self._choices(), decode=self._decode_decisions, encode=self._encode_decisions
        )

    # -- moves ---------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> DartsArch:
        """Uniform over the decisions: per node a uniform pair of distinct inputs, uniform ops."""
        return self._decode_decisions([int(rng.integers(n)) for n in self._choices()])

    def _edits(self, arch: DartsArch) -> list[tuple[str, int, str | None, int | None]]:
        """Every single edit as (cell, entry, new op, new input), in a fixed order: op changes
        (ops in space order), then input changes (inputs ascending); ``none`` edges read nothing,
        so their input is never changed."""
        edits: list[tuple[str, int, str | None, int | None]] = []
        for name in CELLS:
            cell = arch.cell(name)
            for e, (op, _) in enumerate(cell):
                edits.extend((name, e, new, None) for new in self.ops if new != op)
            for e, (op, source) in enumerate(cell):
                if op == "none":
                    continue
                partner = cell[e ^ 1][1]
                edits.extend(
                    (name, e, None, new)
                    for new in range(e // 2 + 2)
                    if new not in (source, partner)
                )
        return edits

    @staticmethod
    def _apply(arch: DartsArch, edit: tuple[str, int, str | None, int | None]) -> DartsArch:
        name, e, op, source = edit
        cell = list(arch.cell(name))
        old_op, old_source = cell[e]
        cell[e] = (old_op if op is None else op, old_source if source is None else source)
        if name == "normal":
            return DartsArch(tuple(cell), arch.reduce)
        return DartsArch(arch.normal, tuple(cell))

    def mutate(self, arch: DartsArch, rng: np.random.Generator) -> DartsArch:
        """One random edit as in BANANAS / NAS-Bench-301's evolution: pick a cell and an edge,
        then with equal probability change its op or (keeping the node's inputs distinct) its
        input; where no other input exists (node 0, ``none`` edges) the op changes."""
        arch = _check(arch)
        name = CELLS[int(rng.integers(len(CELLS)))]
        e = int(rng.integers(2 * NUM_NODES))
        op, source = arch.cell(name)[e]
        partner = arch.cell(name)[e ^ 1][1]
        inputs = [i for i in range(e // 2 + 2) if i not in (source, partner)]
        if inputs and op != "none" and rng.random() < 0.5:
            return self._apply(arch, (name, e, None, inputs[int(rng.integers(len(inputs)))]))
        ops = [o for o in self.ops if o != op]
        return self._apply(arch, (name, e, ops[int(rng.integers(len(ops)))], None))

    def neighbours(self, arch: DartsArch) -> list[DartsArch]:
        """Every arch one op change or one input change away, in canonical form, without
        duplicates or ``arch``'s own class (120 for an arch without ``none``)."""
        arch = _check(arch)
        own = canonical(arch)
        seen: set[DartsArch] = set()
        out: list[DartsArch] = []
        for edit in self._edits(arch):
            near = canonical(self._apply(arch, edit))
            if near != own and near not in seen:
                seen.add(near)
                out.append(near)
        return out

    def crossover(self, a: DartsArch, b: DartsArch, rng: np.random.Generator) -> DartsArch:
        """Uniform crossover over nodes: each node's two edges come from one parent, so every
        child is valid (inputs of a node stay distinct)."""
        a, b = _check(a), _check(b)
        take_a = rng.random(len(CELLS) * NUM_NODES) < 0.5
        cells = []
        for c, name in enumerate(CELLS):
            cell: list[tuple[str, int]] = []
            for k in range(NUM_NODES):
                parent = a if take_a[c * NUM_NODES + k] else b
                cell.extend(parent.cell(name)[2 * k : 2 * k + 2])
            cells.append(tuple(cell))
        return DartsArch(cells[0], cells[1])

    # -- representations -----------------------------------------------------------------------

    def encode(self, arch: DartsArch, kind: str = "onehot") -> np.ndarray:
        """``index``: the 22 decision indices; ``onehot``: their one-hots concatenated (150
        floats by default); ``edges``: for each cell and each of its 14 possible edges (node k,
        input i) a one-hot of the op on it, zeros where the edge is absent (196 floats by
        default), which is invariant to the order of a node's two entries."""
        arch = _check(arch)
        if kind == "index":
            return np.asarray(self._encode_decisions(arch), dtype=float)
        if kind == "onehot":
            return one_hot(self._encode_decisions(arch), self._choices())
        if kind == "edges":
            out = np.zeros((len(CELLS), len(_EDGES), len(self.ops)))
            for c, name in enumerate(CELLS):
                for e, (op, source) in enumerate(arch.cell(name)):
                    out[c, _EDGE_INDEX[(e // 2, source)], self._op_position(op)] = 1.0
            return out.ravel()
        raise UnknownNameError("encoding", kind, ENCODINGS)

    def to_string(self, arch: DartsArch) -> str:
        return to_string(arch)

    def from_string(self, text: str) -> DartsArch:
        return from_string(text)

    def canonical(self, arch: DartsArch) -> DartsArch:
        """Each node's two edges ordered by input (a sum does not care), and the input of a
        ``none`` edge fixed (zeros do not depend on it). Cheap: no graph search."""
        return canonical(arch)

    def size(self) -> int:
        """Number of distinct genotypes up to the order of a node's edges."""
        per_cell = math.prod(len(p) for p in _PAIRS) * len(self.ops) ** (2 * NUM_NODES)
        return per_cell ** len(CELLS)

    # -- networks ------------------------------------------------------------------------------

    #: the module functions, so the signature (keywords and defaults) is stated once
    build = staticmethod(build)
    param_count = staticmethod(param_count)
