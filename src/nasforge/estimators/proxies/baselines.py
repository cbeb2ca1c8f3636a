"""The baselines every zero-cost paper compares against: size and compute, no data needed.

* params: trainable parameters (``nasforge.nn.profile.count_params``).
* flops: multiply-accumulates of one image's forward pass (``count_macs``: the "MFLOPs" of
  NAS-Bench-201 and most NAS papers; see that module for why it is MACs).
* l2_norm (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"): sum over conv and
  linear layers of the L2 norm of the weights at initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nasforge.estimators.proxies._common import weight_layers
from nasforge.nn.profile import count_macs, count_params


def baseline_scores(net: nn.Module, input_shape: Sequence[int]) -> dict[str, float]:
    """params, flops and l2_norm of ``net`` for one input of ``input_shape`` (an image's
    (C, H, W), or a feature vector's (D,))."""
    shape = tuple(input_shape) if len(input_shape) > 1 else (1, *input_shape)
    return {
        "params": float(count_params(net)),
        "flops": float(count_macs(net, shape)),
        "l2_norm": float(sum(float(m.weight.detach().norm()) for m in weight_layers(net))),
    }
