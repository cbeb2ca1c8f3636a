"""Helpers the proxy modules share: the weight layers they measure and the logits check."""

from __future__ import annotations

import math

import torch
from torch import nn

from nasforge.errors import ConfigError

#: Layers whose weights the gradient and saliency proxies sum over (Abdelfattah et al. 2021).
WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def weight_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, WEIGHT_LAYERS)]


def check_logits(out: object, batch: int, classes: int) -> torch.Tensor:
    """The network's output, if it is logits of shape (batch, classes); else a ConfigError."""
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch, classes):
        raise ConfigError(
            f"zero-cost proxies need a network whose output is logits of shape (batch, classes) "
            f"= ({batch}, {classes}); this network returned {shape}"
        )
    return out


def finite(value: float) -> float:
    """A score as a float; NaN (a network that gives no signal, e.g. no input-output path)
    becomes -inf, the worst score, so rankings and `Result` stay well defined."""
    value = float(value)
    return -math.inf if math.isnan(value) else value
