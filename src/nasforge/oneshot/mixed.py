"""The mixed operation of a supernet edge, and the path that says how each edge is used.

One `MixedOp` holds every candidate op of an edge, built by `nn.ops.make_op` exactly as the
stand-alone networks build theirs, so a path's weights are the weights a stand-alone network of
that architecture would have. A forward pass gets a `Path`, which puts every edge in one of the
modes the methods need:

- *weighted*: ``sum_k w[e, k] * op_k(x)`` (DARTS's softmax, SNAS's relaxed Gumbel sample,
  DrNAS's Dirichlet sample); ops of weight exactly 0 and the ``none`` op are not computed, as
  they add nothing;
- *sampled*: one op per edge, ``index[e]``, computed alone, times ``w[e, index[e]]`` when
  weights are given (GDAS's straight-through hard Gumbel sample: forward value 1, gradient of
  the soft sample) or alone (uniform single path of SPOS/RSWS, strict-fair paths of FairNAS,
  ENAS's controller samples, a fixed architecture);
- *partially connected* (PC-DARTS, Xu et al. ICLR 2020): only ``1/partial`` of the channels go
  through the weighted ops, the rest bypass them, then the channels are shuffled; the edge's
  output is scaled by its edge-normalisation weight ``edge[e]``;
- an auxiliary skip ``aux_skip * x`` beside every edge (DARTS-, Chu et al. ICLR 2021);
- dropout on the skip op's output and a shallower network (``depth``: the first cells of each
  stage run, the others pass their input on), P-DARTS's progressive search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.nn.ops import Zero, make_op


@dataclass
class Path:
    """How one forward pass uses the supernet's edges (rows = edges, columns = ops).

    ``weights``: [E, K] mixing weights or None; ``index``: chosen op per edge (a sequence of
    ints, -1 for an edge that is off, as DARTS-space edges a genotype does not use) or None;
    ``edge``: [E] edge-normalisation weights (PC-DARTS) or None; ``aux_skip``: DARTS-'s
    auxiliary skip coefficient (0: none); ``skip_dropout``: dropout rate on ``skip_connect``
    (P-DARTS); ``depth``: cells per stage that run (None: all); ``active``: per edge, the
    columns a weighted pass computes even where their weight is 0 (ProxylessNAS's binary
    gates: the gate that is off still needs its path's output for its gradient; supernets
    with the ``binary_gates`` feature).
    """

    weights: torch.Tensor | None = None
    index: Sequence[int] | None = None
    edge: torch.Tensor | None = None
    aux_skip: float = 0.0
    skip_dropout: float = 0.0
    depth: int | None = None
    active: Sequence[Sequence[int]] | None = None

    def __post_init__(self) -> None:
        if self.weights is None and self.index is None:
            raise ValueError("a Path needs weights, an index per edge, or both")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: interleave ``groups`` blocks of channels."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedOp(nn.Module):
    """Every candidate op of one edge; `forward(x, path, e)` applies edge ``e`` of ``path``.

    ``partial`` > 1 builds the ops on ``c/partial`` channels (PC-DARTS); such an edge can only
    be used in weighted mode. BatchNorm inside the ops is built with ``affine`` (DARTS trains
    supernets without BN scale and shift).
    """

    def __init__(
        self,
        ops: Sequence[str],
        c_in: int,
        c_out: int,
        stride: int,
        *,
        affine: bool = False,
        partial: int = 1,
    ):
        super().__init__()
        if c_in % partial or c_out % partial:
            raise ValueError(f"partial channels 1/{partial} need channels divisible by {partial}")
        self.names = tuple(ops)
        self.stride, self.partial = stride, partial
        self.candidates = nn.ModuleList(
            make_op(name, c_in // partial, c_out // partial, stride, affine=affine) for name in ops
        )
        self._computes = [not isinstance(op, Zero) for op in self.candidates]

    def forward(self, x: torch.Tensor, path: Path, e: int) -> torch.Tensor | None:
        """The edge's output; None when it is exactly zero (a ``none`` op, an edge that is off),
        so the node that sums it skips it."""
        out = self._sampled(x, path, e) if path.index is not None else self._weighted(x, path, e)
        if path.aux_skip and self.stride == 1:
            out = path.aux_skip * x if out is None else out + path.aux_skip * x
        return out

    def _sampled(self, x: torch.Tensor, path: Path, e: int) -> torch.Tensor | None:
        k = int(path.index[e])  # type: ignore[index]
        if k < 0:
            return None
        if self.partial > 1:  # the bypassed channels stay: the op is one-hot weighted
            one_hot = torch.zeros(len(self.candidates), dtype=x.dtype, device=x.device)
            one_hot[k] = 1.0
            return self._mix(x, one_hot, path, e)
        if not self._computes[k]:
            return None
        out = self.candidates[k](x)
        if path.weights is not None:  # straight-through: value 1, gradient of the soft sample
            out = out * path.weights[e, k]
        return out

    def _weighted(self, x: torch.Tensor, path: Path, e: int) -> torch.Tensor | None:
        return self._mix(x, path.weights[e], path, e)  # type: ignore[index]

    def _mix(
        self, x: torch.Tensor, weights: torch.Tensor, path: Path, e: int
    ) -> torch.Tensor | None:
        part = x if self.partial == 1 else x[:, : x.shape[1] // self.partial]
        total = None
        for k, op in enumerate(self.candidates):
            if not self._computes[k] or float(weights[k].detach()) == 0:
                continue  # adds nothing, nor any gradient (a none op, a pruned or removed op)
            out = op(part)
            if path.skip_dropout and self.names[k] == "skip_connect":
                out = F.dropout(out, path.skip_dropout, self.training)
            term = weights[k] * out
            total = term if total is None else total + term
        if self.partial > 1:
            rest = x[:, x.shape[1] // self.partial :]
            if self.stride > 1:
                rest = F.max_pool2d(rest, 2, 2, ceil_mode=True)
            if total is None:
                total = torch.zeros_like(rest[:, : part.shape[1]])
            total = channel_shuffle(torch.cat([total, rest], dim=1), self.partial)
        if total is not None and path.edge is not None:
            total = total * path.edge[e]
        return total
