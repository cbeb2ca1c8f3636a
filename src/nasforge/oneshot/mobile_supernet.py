"""The weight-sharing supernet of the mobile space (MnasNet's stages on MobileNetV2's skeleton).

Each of the seven stages is one edge of a path, and its ops are every (block, kernel, layer
delta) of the mobile space: 5 blocks x 3 kernels x 3 deltas = 45 columns, the same on every
stage. Per stage the supernet holds one chain of layers per (block, kernel), as deep as the
stage can grow (base n + 1); the three deltas of a (block, kernel) share that chain and run its
first ``max(1, n + delta)`` layers, the weight sharing of depth that ProxylessNAS (Cai et al.,
ICLR 2019) and OFA use. Every layer is built by the stand-alone network's own `make_layer` from
the same plan (`spaces.mobile.plan_of`), so a path's layers are exactly the stand-alone
network's and its weights copy over one to one.

Paths:

- *sampled* (SPOS, FairNAS, RSWS, ENAS, GDAS): one column per stage; the chosen chain runs to
  the chosen depth, times ``weights[e, k]`` when given (straight-through);
- *weighted* (DARTS, SNAS, DrNAS, β-DARTS, FBNet's Gumbel mixing): each (block, kernel)
  chain with any weight runs once, to the deepest delta that has weight, and the stage's output
  is the weighted sum of the chain's outputs at each delta's depth;
- *binary gates* (ProxylessNAS): weighted, with the path's ``active`` columns computed even at
  weight 0 (the two sampled ops of a stage, one gate on, one off).

Fixed, as in the ProxylessNAS and FBNet spaces (`spaces.mobile.MobileSupernetSpace`): the width
(``width``, one of the mobile space's 0.5 / 0.75 / 1.0 / 1.25), the SE ratio (``se``) and the
skips on. The stem, head and classifier are shared by every path. Partial channels, auxiliary
skips and skip dropout (cell-space remedies) do not apply: ``features`` holds only
``binary_gates`` and ``latency_table`` (per-op latencies from a lookup table:
`oneshot.latency_model`), so PC-DARTS, DARTS- and P-DARTS refuse this supernet, and only this
one runs ProxylessNAS and FBNet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn.blocks import ConvBNAct
from nasforge.oneshot.mixed import Path
from nasforge.oneshot.supernet_base import Supernet, use_batch_statistics
from nasforge.spaces import mobile

_CHOICES = tuple((b, k, d) for b in mobile.BLOCKS for k in mobile.KERNELS for d in mobile.DELTAS)
#: columns of a path: every (block, kernel, delta), block-major
OPS: tuple[str, ...] = tuple(f"{b}_k{k}_n{d:+d}" for b, k, d in _CHOICES)
_CHOICE = dict(zip(OPS, _CHOICES, strict=True))


class MixedStage(nn.Module):
    """One stage of the supernet: a chain of layers per (block, kernel), ``max_layers`` deep."""

    def __init__(self, chains: dict[tuple[str, int], Sequence[nn.Module]], base_layers: int):
        super().__init__()
        self.keys = tuple(chains)
        self.chains = nn.ModuleList(nn.ModuleList(layers) for layers in chains.values())
        self.base_layers = base_layers
        # column k -> (chain number, depth it runs)
        self.columns = tuple(
            (self.keys.index((block, kernel)), max(1, base_layers + delta))
            for block, kernel, delta in (_CHOICE[name] for name in OPS)
        )

    def forward(self, x: torch.Tensor, path: Path, e: int) -> torch.Tensor:
        if path.index is not None:
            k = int(path.index[e])
            chain, depth = self.columns[k]
            out = self._run(chain, depth, x)[depth]
            if path.weights is not None:  # straight-through: value 1, gradient of the sample
                out = out * path.weights[e, k]
            return out
        assert path.weights is not None
        weights = path.weights[e]
        wanted: dict[int, list[tuple[int, int]]] = {}  # chain -> [(column, depth)]
        gated = () if path.active is None else path.active[e]
        for k, (chain, depth) in enumerate(self.columns):
            if float(weights[k].detach()) != 0 or k in gated:
                wanted.setdefault(chain, []).append((k, depth))
        if not wanted:
            raise ValueError(f"stage {e} has every mixing weight at 0: nothing to compute")
        total: torch.Tensor | None = None
        for chain, columns in wanted.items():
            outs = self._run(chain, max(d for _, d in columns), x)
            for k, depth in columns:
                term = weights[k] * outs[depth]
                total = term if total is None else total + term
        assert total is not None
        return total

    def _run(self, chain: int, depth: int, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The chain's output after each of its first ``depth`` layers, by depth."""
        outs = {}
        for i, layer in enumerate(self.chains[chain][:depth]):
            x = layer(x)
            outs[i + 1] = x
        return outs


class MobileSupernet(Supernet):
    """The mobile space's supernet: MobileNetV2's stem, seven `MixedStage` edges of 45 ops, the
    1x1 head, pooling, dropout and the classifier, at a fixed ``width`` and SE ratio.
    ``input_size`` < 64 keeps small images' resolution as the stand-alone network does."""

    uniform_edges: ClassVar[bool] = True
    features: ClassVar[frozenset[str]] = frozenset({"binary_gates", "latency_table"})
    #: MobileNetV2 1.0, the paper's network
    default_width: ClassVar[float] = 1.0

    def __init__(
        self,
        width: float = default_width,
        se: float = 0.0,
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int | None = None,
        dropout: float = 0.2,
        partial: int = 1,
    ):
        super().__init__()
        if partial != 1:
            raise ConfigError("the mobile supernet has no partial channels (PC-DARTS)")
        self.space = mobile.MobileSupernetSpace(width, se)
        self.ops = OPS
        self.num_edges = mobile.NUM_STAGES
        self.node_edges = tuple((e,) for e in range(self.num_edges))
        self.net_options = {"width": float(width), "se": float(se), "input_size": input_size}
        deepest = mobile.MobileArch(
            tuple(mobile.MobileStage("mbconv6", 3, float(se), True, 1) for _ in mobile.BASE_STAGES),
            float(width),
        )
        plan = mobile.plan_of(deepest, input_size)
        self.stem = ConvBNAct(in_channels, plan.stem, 3, plan.stem_stride, act="relu6")
        stages = []
        for (_, _, n, _), layers in zip(mobile.BASE_STAGES, plan.stages, strict=True):
            chains = {
                (block, kernel): [
                    mobile.make_layer(replace(layer, block=block, kernel=kernel))
                    for layer in layers
                ]
                for block in mobile.BLOCKS
                for kernel in mobile.KERNELS
            }
            stages.append(MixedStage(chains, n))
        self.stages = nn.ModuleList(stages)
        last = plan.stages[-1][-1].c_out
        self.head = ConvBNAct(last, plan.head, 1, act="relu6")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(plan.head, num_classes)
        mobile.init_weights(self)
        use_batch_statistics(self)

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        x = self.stem(x)
        for e, stage in enumerate(self.stages):
            x = stage(x, path, e)
        features = self.head(x).mean((2, 3))
        return self.classifier(self.dropout(features))

    def indices_of(self, arch: mobile.MobileArch) -> tuple[int, ...]:
        arch = self.space.check(arch)
        return tuple(OPS.index(f"{s.block}_k{s.kernel}_n{s.delta:+d}") for s in arch.stages)

    def arch_of(self, index: Sequence[int]) -> mobile.MobileArch:
        stages = []
        for k in index:
            block, kernel, delta = _CHOICE[OPS[int(k)]]
            stages.append(mobile.MobileStage(block, kernel, self.space.se, True, delta))
        return mobile.MobileArch(tuple(stages), self.space.width)

    def derive(self, weights: torch.Tensor, edge: torch.Tensor | None = None) -> Any:
        """The strongest (block, kernel, delta) of every stage (ProxylessNAS's and FBNet's
        rule)."""
        return self.arch_of(weights.detach().argmax(dim=1).tolist())
