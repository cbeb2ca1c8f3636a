"""The expected latency a hardware-aware one-shot method differentiates: per supernet stage and
op, the latency-table entries of the layers that op runs.

ProxylessNAS (Cai et al., ICLR 2019, eq. 5) and FBNet (Wu et al., CVPR 2019, eq. 4) make a
network's latency differentiable in the architecture weights by summing, over the searched
layers, each candidate's table latency weighted by its probability (ProxylessNAS) or its
Gumbel-softmax mask (FBNet). Here a "layer" is a mobile stage and a candidate one of its 45
(block, kernel, depth) ops, so an entry is the sum of the table's entries of the layers the op
runs; the rest of the network (stem, head, classifier) and the table's fitted constant are one
constant, found as a whole network's prediction minus its stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch


@dataclass(frozen=True)
class LatencyModel:
    """``matrix[e, k]``: predicted ms of op ``k`` on stage ``e``; ``constant``: the rest."""

    matrix: torch.Tensor
    constant: float
    source: str

    def expected(self, weights: torch.Tensor) -> torch.Tensor:
        """Σ_e Σ_k weights[e, k] · matrix[e, k] + constant (differentiable in ``weights``)."""
        return (weights * self.matrix.to(weights)).sum() + self.constant

    def of(self, index: Any) -> float:
        """The predicted ms of the path with op ``index[e]`` on every stage."""
        return float(sum(self.matrix[e, int(k)] for e, k in enumerate(index))) + self.constant


def load_table(path: str) -> Any:
    """A latency table for predictions on this machine with the runtime it was measured with
    (a table of another machine is refused, naming both: `LatencyTable.check`)."""
    import json

    from nasforge.latency.table import LatencyTable

    try:
        with open(path) as handle:
            runtime = json.load(handle).get("runtime")
    except (OSError, ValueError, AttributeError):
        runtime = None  # load() names what is wrong with the file
    return LatencyTable.load(path, runtime=str(runtime))


def mobile_latency_model(net: Any, path: str) -> LatencyModel:
    """The latency model of a `MobileSupernet` from the latency table at ``path``, which must
    have been built for the supernet's width, input size and classes (refused otherwise)."""
    from nasforge.oneshot.mobile_supernet import _CHOICE, OPS
    from nasforge.spaces import mobile

    table = load_table(path)
    options = net.net_options
    width, se, input_size = options["width"], options["se"], options["input_size"]
    deepest = mobile.MobileArch(
        tuple(mobile.MobileStage("mbconv6", 3, se, True, 1) for _ in mobile.BASE_STAGES), width
    )
    plan = mobile.plan_of(deepest, input_size)
    side = math.ceil(table.ops.input_size / plan.stem_stride)  # each layer's input side
    rows = []
    for e, layers in enumerate(plan.stages):
        sides = [side] + [math.ceil(side / layers[0].stride)] * (len(layers) - 1)
        row = []
        for name in OPS:
            block, kernel, delta = _CHOICE[name]
            depth = max(1, mobile.BASE_STAGES[e][2] + delta)
            summed = sum(
                table.layer_ms(replace(layer, block=block, kernel=kernel), at)
                for layer, at in zip(layers[:depth], sides, strict=False)
            )
            row.append(table.scale * summed)  # the table's fitted scale applies to every op
        rows.append(row)
        side = sides[-1] if len(layers) > 1 else math.ceil(side / layers[0].stride)
    matrix = torch.tensor(rows, dtype=torch.float32)
    probe = net.arch_of([0] * net.num_edges)
    settings = {"input_size": input_size, "num_classes": net.classifier.out_features}
    whole = table.predict(probe, **settings)
    return LatencyModel(matrix, whole - float(matrix[:, 0].sum()), str(path))
