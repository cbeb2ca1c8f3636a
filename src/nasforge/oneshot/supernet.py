"""Weight-sharing supernets of the NB201 and DARTS spaces, built from the op library (`nn.ops`),
and the registry of every space's supernet (the mobile space's is `oneshot.mobile_supernet`).

A supernet is the space's network with a `MixedOp` on every searchable edge. Its architecture
parameters live with the methods, not here: the supernet only maps between the space's
architectures and its rows of edges (``indices_of``, ``arch_of``), derives an architecture from
mixing weights (``derive``) and runs a forward pass along a `Path`. Every BN normalises with
batch statistics (`oneshot.supernet_base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError, InvalidArchError
from nasforge.nn.ops import FactorizedReduce, ReLUConvBN
from nasforge.oneshot.mixed import MixedOp, Path
from nasforge.oneshot.mobile_supernet import MobileSupernet
from nasforge.oneshot.supernet_base import Supernet, use_batch_statistics
from nasforge.spaces import darts as darts_space
from nasforge.spaces import mobile as mobile_space
from nasforge.spaces import nb201 as nb201_space

# --- NAS-Bench-201 -------------------------------------------------------------------------------


class NB201SearchCell(nn.Module):
    """The NB201 cell with a mixed op on each of its six edges (node j sums edges i -> j)."""

    def __init__(self, channels: int, ops: Sequence[str], partial: int):
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp(ops, channels, channels, 1, partial=partial) for _ in nb201_space.EDGES
        )

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        nodes = [x]
        for target in range(1, nb201_space.NUM_NODES):
            total = None
            for e, (source, dst) in enumerate(nb201_space.EDGES):
                if dst != target:
                    continue
                out = self.edges[e](nodes[source], path, e)
                if out is not None:
                    total = out if total is None else total + out
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class NB201Supernet(Supernet):
    """NB201's network (stem, three stages of N cells joined by ResNet blocks, C/2C/4C) with
    the searchable cell shared by all 3N cell positions, as in NB201's one-shot baselines (one
    set of architecture weights, six edges by five ops)."""

    uniform_edges = True

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        in_channels: int = 3,
        num_classes: int = 10,
        partial: int = 1,
    ):
        super().__init__()
        self.space = nb201_space.NB201Space()
        self.ops = nb201_space.OPS
        self.num_edges = len(nb201_space.EDGES)
        self.node_edges = tuple(
            tuple(e for e, (_, t) in enumerate(nb201_space.EDGES) if t == target)
            for target in range(1, nb201_space.NUM_NODES)
        )
        self.net_options = {"C": C, "N": N}
        self.stem, layers, channels = nb201_space.stages(
            C, N, in_channels, lambda c: NB201SearchCell(c, self.ops, partial)
        )
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(channels, num_classes)
        use_batch_statistics(self)

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        x = self.stem(x)
        position = 0  # of the cell within its stage
        for layer in self.cells:
            if not isinstance(layer, NB201SearchCell):
                x, position = layer(x), 0
                continue
            if path.depth is None or position < path.depth:  # a cell left out passes x on
                x = layer(x, path)
            position += 1
        return self.classifier(self.lastact(x).mean((2, 3)))

    def indices_of(self, arch: nb201_space.NB201Arch) -> tuple[int, ...]:
        return self.space.check(arch).indices

    def arch_of(self, index: Sequence[int]) -> nb201_space.NB201Arch:
        return nb201_space.NB201Arch.from_indices(index)

    def derive(self, weights: torch.Tensor, edge: torch.Tensor | None = None) -> Any:
        """The argmax op of every edge, ``none`` included (how NB201 derives DARTS cells)."""
        return self.arch_of(weights.argmax(dim=1).tolist())


# --- DARTS ---------------------------------------------------------------------------------------

_DARTS_EDGES = darts_space._EDGES  # (node k, input i), 14 per cell
_DARTS_EDGE_INDEX = darts_space._EDGE_INDEX


class DartsSearchCell(nn.Module):
    """DARTS's search cell: both inputs preprocessed to C channels, node k mixes all k + 2
    earlier states, the cell concatenates its four nodes. Pooling candidates get a BN after
    them, as in DARTS's supernet (their output scale otherwise differs from the convs')."""

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        partial: int,
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, c, affine=False)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, c, 1, affine=False)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, affine=False)
        self.edges = nn.ModuleList()
        for _, source in _DARTS_EDGES:
            stride = 2 if reduction and source < 2 else 1
            mixed = MixedOp(darts_space.OPS, c, c, stride, partial=partial)
            for name, op in zip(darts_space.OPS, mixed.candidates, strict=True):
                if "pool" in name:
                    bn = nn.BatchNorm2d(c // partial, affine=False)
                    mixed.candidates[darts_space.OPS.index(name)] = nn.Sequential(op, bn)
            self.edges.append(mixed)
        self.multiplier = len(darts_space.CONCAT)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, path: Path, offset: int) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(darts_space.NUM_NODES):
            total = None
            for i in range(k + 2):
                e = _DARTS_EDGE_INDEX[(k, i)]
                out = self.edges[e](states[i], path, offset + e)
                if out is not None:
                    total = out if total is None else total + out
            states.append(self._zeros(states[1]) if total is None else total)
        return torch.cat(states[2:], dim=1)

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        """A node whose every input is off (a sampled path's ``none`` ops): zeros of the node's
        size, halved in a reduction cell."""
        if not self.reduction:
            return torch.zeros_like(x)
        n, c, h, w = x.shape
        return x.new_zeros(n, c, -(-h // 2), -(-w // 2))


class DartsSupernet(Supernet):
    """DARTS's search network (Liu et al., ICLR 2019): stem to 3C, ``layers`` cells with
    reductions at 1/3 and 2/3 of the depth, global pooling, a linear layer. Rows 0-13 of a path
    are the normal cell's edges, 14-27 the reduction cell's; the eight DARTS ops, ``none``
    included, are the columns."""

    def __init__(
        self,
        C: int = 16,
        layers: int = 8,
        in_channels: int = 3,
        num_classes: int = 10,
        partial: int = 1,
    ):
        super().__init__()
        if layers < 3:
            raise ConfigError(
                f"a DARTS supernet needs at least 3 layers (two reductions), got {layers}"
            )
        self.space = darts_space.DartsSpace()
        self.ops = darts_space.OPS
        per_cell = len(_DARTS_EDGES)
        self.num_edges = 2 * per_cell
        self.node_edges = tuple(
            tuple(offset + _DARTS_EDGE_INDEX[(k, i)] for i in range(k + 2))
            for offset in (0, per_cell)
            for k in range(darts_space.NUM_NODES)
        )
        self.net_options = {"C": C, "layers": layers}
        c_curr = 3 * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        reductions = {layers // 3, 2 * layers // 3}
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cell = DartsSearchCell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev, partial)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.classifier = nn.Linear(c_prev, num_classes)
        use_batch_statistics(self)

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        per_cell = len(_DARTS_EDGES)
        position = 0  # of the normal cell within its stage
        for cell in self.cells:
            if cell.reduction:
                s0, s1, position = s1, cell(s0, s1, path, per_cell), 0
                continue
            if path.depth is None or position < path.depth:
                s0, s1 = s1, cell(s0, s1, path, 0)
            else:  # a normal cell left out passes its input on, as both of the next inputs
                s0 = s1
            position += 1
        return self.classifier(s1.mean((2, 3)))

    def indices_of(self, arch: darts_space.DartsArch) -> tuple[int, ...]:
        index = [-1] * self.num_edges
        for offset, cell in ((0, arch.normal), (len(_DARTS_EDGES), arch.reduce)):
            for position, (op, source) in enumerate(cell):
                index[offset + _DARTS_EDGE_INDEX[(position // 2, source)]] = self.ops.index(op)
        return tuple(index)

    def arch_of(self, index: Sequence[int]) -> darts_space.DartsArch:
        cells = []
        for offset in (0, len(_DARTS_EDGES)):
            cell: list[tuple[str, int]] = []
            for k in range(darts_space.NUM_NODES):
                used = [
                    (self.ops[int(index[offset + _DARTS_EDGE_INDEX[(k, i)]])], i)
                    for i in range(k + 2)
                    if int(index[offset + _DARTS_EDGE_INDEX[(k, i)]]) >= 0
                ]
                if len(used) != 2:
                    raise InvalidArchError(
                        f"DARTS node {k} must use 2 inputs, path uses {len(used)}"
                    )
                cell.extend(used)
            cells.append(tuple(cell))
        return darts_space.DartsArch(cells[0], cells[1])

    def derive(self, weights: torch.Tensor, edge: torch.Tensor | None = None) -> Any:
        """DARTS's rule: per node the two incoming edges with the strongest non-``none`` op
        (times the edge weight with PC-DARTS's edge normalisation), each with that op."""
        w = weights.detach().clone()
        if edge is not None:
            w = w * edge.detach()[:, None]
        none = self.ops.index("none")
        w[:, none] = -1.0
        index = [-1] * self.num_edges
        for offset in (0, len(_DARTS_EDGES)):
            for k in range(darts_space.NUM_NODES):
                rows = [offset + _DARTS_EDGE_INDEX[(k, i)] for i in range(k + 2)]
                strength = sorted(rows, key=lambda r: -float(w[r].max()))
                for r in strength[:2]:
                    index[r] = int(w[r].argmax())
        return self.arch_of(index)


SUPERNETS: dict[str, type[Supernet]] = {
    "nb201": NB201Supernet,
    "darts": DartsSupernet,
    "mobile": MobileSupernet,
}


def check_size(space: str, channels: int | None, cells: int | None, width: float | None) -> None:
    """Refuse size knobs the space's supernet does not have: the mobile supernet's size is its
    ``width`` multiplier (its depth is searched), the cell supernets' ``channels`` and ``cells``."""
    if space == "mobile":
        if channels is not None or cells is not None:
            raise ConfigError(
                "the mobile supernet takes no --channels or --cells: its width is --width "
                f"({', '.join(map(str, mobile_space.WIDTHS))}) and its depth is searched"
            )
        if width is not None and float(width) not in mobile_space.WIDTHS:
            raise ConfigError(
                f"--width must be one of the mobile space's "
                f"{', '.join(map(str, mobile_space.WIDTHS))}, got {width:g}"
            )
    elif width is not None:
        raise ConfigError(
            f"--width is the mobile supernet's width multiplier; the {space} supernet's width "
            "is --channels"
        )


def make_supernet(
    space: str,
    *,
    channels: int | None = None,
    cells: int | None = None,
    width: float | None = None,
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int | None = None,
    partial: int = 1,
) -> Supernet:
    """The supernet of a space by name, at the space's generic width and depth knobs
    (``channels``: C; ``cells``: NB201 N or DARTS layers; the mobile space's ``width``
    multiplier instead, its depth being searched); defaults are the papers' search networks
    (NB201 C=16 N=5, DARTS C=16 with 8 layers, MobileNetV2 width 1.0). ``input_size`` is the
    image side (the mobile network keeps small images' resolution longer)."""
    if space not in SUPERNETS:
        raise ConfigError(
            f"space {space!r} has no supernet; one-shot methods accept: {', '.join(SUPERNETS)} "
            "(a user space would need edges that choose among ops)"
        )
    check_size(space, channels, cells, width)
    options: dict[str, Any] = {"in_channels": in_channels, "num_classes": num_classes}
    if space == "mobile":
        if width is not None:
            options["width"] = float(width)
        return SUPERNETS[space](partial=partial, input_size=input_size, **options)
    depth = {"nb201": "N", "darts": "layers"}[space]
    if channels is not None:
        options["C"] = channels
    if cells is not None:
        options[depth] = cells
    return SUPERNETS[space](partial=partial, **options)
