"""Activation-based proxies from one forward pass, jacob_cov, and Zen-score.

One forward pass (no gradients) in training-mode batch norm, float32, on the minibatch, with
hooks on every ``ReLU`` output, every ``Conv2d`` output and every block output, gives naswot,
meco, swap and the AZ-NAS components; jacob_cov has its own forward and input-gradient pass on
fewer images (the backward costs more than the forward):

* naswot (Mellor, Turner, Storkey, Crowley 2021, "Neural Architecture Search without Training",
  ICML): binary ReLU codes c of each image; K = sum over ReLUs of (c c^T + (1-c)(1-c)^T), i.e.
  the number of units minus the Hamming distance; score log|K|. The paper uses 128 images.
* jacob_cov (Mellor et al.'s first version, arXiv 2020; as in Abdelfattah et al. 2021): the
  Jacobian of the summed logits with respect to each input image; v = eigenvalues of the
  correlation matrix of those Jacobians; score -sum(log(v + k) + 1/(v + k)), k = 1e-5.
* meco (Jiang, Wang, Bie 2023, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
  Minimum Eigenvalue of Correlation", NeurIPS): for each conv output of one image, the Pearson
  correlation matrix of its channels; score = sum over layers of channels * its minimum
  eigenvalue. Departure: the image is the first of the minibatch and earlier batch norms use the
  minibatch's statistics (MeCo passes the one image alone); undefined correlations (a constant
  channel) count as 0, as MeCo does.
* swap (Peng, Song, Xu, Ho 2024, "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast
  NAS", ICLR): the number of distinct sample-wise activation patterns, the binary vector over
  the minibatch of each ReLU unit, over all units (a ReLU applied to a tensor another ReLU has
  already seen adds no new pattern, and is not recomputed; naswot counts it again, as its
  definition sums over ReLU modules); times the paper's parameter regulariser
  exp(-(P - mu)^2 / sigma) with P thousands of parameters. Departure: mu and sigma are ours
  (`SWAP_MU`, `SWAP_SIGMA`, near the upper end of NB201's 70k-1.5M parameters), not the paper's
  tuned values.
* az_expressivity, az_progressivity (Lee, Ham 2024, "AZ-NAS: Assembling Zero-Cost Proxies for
  Network Architecture Search", CVPR): for each block output, the entropy of the normalised
  eigenvalues of the channel covariance over all images and positions (isotropy of the feature
  space); expressivity is their sum, progressivity their smallest increase from one block to the
  next. Blocks are the items of the network's ``cells`` sequence where it has one (NB201), else
  its conv outputs.

zen (Lin, Wang, Sun, Chen, Sun, Qian, Li, Jin 2021, "Zen-NAS: A Zero-Shot NAS for
High-Performance Image Recognition", ICCV) has its own pass on a fresh network with Gaussian
weights (conv/linear N(0, 1), batch-norm affine 1/0) and Gaussian inputs x, x' = x + 0.01 e:
log(mean over images of sum |f(x) - f(x')|) + sum over batch norms of log sqrt(mean of the
batch variance), f the feature map before global pooling. Departures: one repeat instead of the
paper's 32, and the batch variance of the pass instead of running statistics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.estimators.proxies._common import check_logits, finite

JACOB_K = 1e-5
SWAP_MU = 1500.0  # thousands of parameters
SWAP_SIGMA = 1.5e6
ZEN_MIXUP = 1e-2


def _blocks(net: nn.Module) -> list[nn.Module]:
    cells = getattr(net, "cells", None)
    if isinstance(cells, nn.Sequential | nn.ModuleList) and len(cells) > 1:
        return list(cells)
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def activation_scores(
    net: nn.Module, x: torch.Tensor, classes: int, params: int
) -> dict[str, float]:
    """naswot, swap, az_expressivity and az_progressivity of ``net`` on x (forward only)."""
    net.train()
    batch = len(x)
    kernel = torch.zeros((batch, batch), dtype=torch.float64, device=x.device)
    patterns: list[torch.Tensor] = []
    expressivity: list[float] = []
    blocks = set(map(id, _blocks(net)))
    weights = 2.0 ** torch.arange(batch, device=x.device, dtype=torch.float64)

    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def on_relu(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal kernel
        source = inputs[0]
        if id(source) in seen:  # a node feeding several ops: the same codes again (NB201 cells)
            kernel += seen[id(source)][1]
            return
        code = (output.detach() > 0).flatten(1)
        c = code.float()
        ones = c.sum(1, dtype=torch.float64)
        # c c^T + (1-c)(1-c)^T = 2 c c^T - s_i - s_j + n (s: ones per image); exact in float32
        # for the unit counts of one layer (< 2^24), accumulated in float64
        same = 2.0 * (c @ c.T).double() - ones[:, None] - ones[None, :] + c.shape[1]
        kernel += same
        seen[id(source)] = (source, same)  # the tensor is kept so that its id stays unique
        if batch <= 52:  # each unit's pattern as one exact float64 number (52-bit mantissa)
            patterns.append(torch.unique(code.T.double() @ weights))
        else:
            patterns.append(torch.unique(code.T, dim=0))

    def on_block(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        expressivity.append(_isotropy(output.detach()))

    handles = []
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            handles.append(module.register_forward_hook(on_relu))
        if id(module) in blocks:
            handles.append(module.register_forward_hook(on_block))
    try:
        with torch.no_grad():
            check_logits(net(x), batch, classes)
    finally:
        for handle in handles:
            handle.remove()
    if patterns and batch <= 52:
        distinct = int(torch.unique(torch.cat(patterns)).numel())
    elif patterns:
        distinct = int(torch.unique(torch.cat(patterns), dim=0).shape[0])
    else:
        distinct = 0
    steps = np.diff(expressivity) if len(expressivity) > 1 else np.array([math.nan])
    return {
        "naswot": finite(torch.linalg.slogdet(kernel)[1]) if patterns else -math.inf,
        "swap": finite(distinct * swap_regulariser(params)),
        "az_expressivity": finite(sum(expressivity)) if expressivity else -math.inf,
        "az_progressivity": finite(float(np.min(steps))),
    }


def swap_regulariser(params: int, mu: float = SWAP_MU, sigma: float = SWAP_SIGMA) -> float:
    """SWAP's parameter regulariser exp(-(P - mu)^2 / sigma), P in thousands of parameters."""
    return math.exp(-((params / 1e3 - mu) ** 2) / sigma)


def jacob_cov_score(net: nn.Module, x: torch.Tensor, classes: int) -> float:
    """jacob_cov of ``net`` on x: one forward and one backward of the summed logits."""
    net.train()
    inp = x.detach().clone().requires_grad_(True)
    out = check_logits(net(inp), len(x), classes)
    out.backward(torch.ones_like(out))
    if inp.grad is None:  # no path from the input to the logits (NB201 cells of "none" edges)
        return -math.inf
    return finite(_jacob_cov(inp.grad.reshape(len(x), -1).double().cpu().numpy()))


def _jacob_cov(jac: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return math.nan
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + JACOB_K) + 1.0 / (v + JACOB_K)))


def meco_score(net: nn.Module, x: torch.Tensor, classes: int) -> float:
    """MeCo of ``net`` on one image (Jiang et al. 2023): the sum over convolutions of channels
    times the smallest eigenvalue of the Pearson correlation between the channels' feature
    maps. Train-mode batch norm, as at initialisation in the paper; ``x`` holds that image.
    Departure: a batch norm that sees one value per channel (a 1x1 map of small inputs, such as
    8x8 digits through a mobile network) has no batch statistics and torch refuses it in train
    mode; that layer alone uses its initial running statistics (the identity) instead."""
    net.train()
    total = 0.0

    def on_conv(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += _meco_layer(output.detach()[0])

    handles = [m.register_forward_hook(on_conv) for m in net.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    handles += [m.register_forward_pre_hook(_one_value_per_channel_in_eval) for m in norms]
    try:
        with torch.no_grad():
            check_logits(net(x), len(x), classes)
    finally:
        for handle in handles:
            handle.remove()
        for norm in norms:
            norm.train()
    return finite(total)


def _one_value_per_channel_in_eval(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """A batch norm given a single value per channel runs on its running statistics."""
    x = inputs[0]
    module.train(x.numel() != x.shape[1])


def _meco_layer(feature: torch.Tensor) -> float:
    """channels * minimum eigenvalue of the channels' Pearson correlation (one image). A 1x1
    map (a squeeze-excite conv) has no correlation to measure: 0, as NaNs would give, without
    torch's degrees-of-freedom warning reaching the user."""
    channels = feature.shape[0]
    f = feature.reshape(channels, -1).double()
    if channels < 2 or f.shape[1] < 2:
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(f), nan=0.0, posinf=0.0, neginf=0.0)
    return channels * float(torch.linalg.eigvalsh(corr)[0])


def _isotropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance (AZ-NAS expressivity)."""
    channels = feature.shape[1] if feature.dim() > 1 else 1
    f = feature.transpose(0, 1).reshape(channels, -1).double() if feature.dim() > 1 else feature
    if channels < 2:
        return 0.0
    f = f - f.mean(1, keepdim=True)
    cov = f @ f.T / max(1, f.shape[1] - 1)
    v = torch.linalg.eigvalsh(cov).clamp(min=0)
    if float(v.sum()) <= 0:
        return 0.0
    p = v / v.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def zen_score(net: nn.Module, shape: tuple[int, ...], batch: int, seed: int, classes: int) -> float:
    """Zen-score of ``net`` (modified: Gaussian weights; pass a fresh copy)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                w = torch.randn(module.weight.shape, generator=generator)
                module.weight.copy_(w)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()
    first = next(net.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    x = torch.randn((batch, *shape), generator=generator).to(device)
    x2 = x + ZEN_MIXUP * torch.randn((batch, *shape), generator=generator).to(device)
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    target = pools[-1] if pools else [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    features: list[torch.Tensor] = []
    variances: list[float] = []

    def on_target(module: nn.Module, inputs: Any) -> None:
        features.append(inputs[0].detach())

    def on_bn(module: nn.Module, inputs: Any) -> None:
        if len(features) == 0:  # the first pass only
            var = inputs[0].detach().transpose(0, 1).flatten(1).var(1, unbiased=False)
            variances.append(float(var.mean()))

    handles = [target.register_forward_pre_hook(on_target)]
    handles += [
        m.register_forward_pre_hook(on_bn) for m in net.modules() if isinstance(m, nn.BatchNorm2d)
    ]
    net.train()
    try:
        with torch.no_grad():
            check_logits(net(x), batch, classes)
            net(x2)
    finally:
        for handle in handles:
            handle.remove()
    delta = (features[0] - features[1]).abs().flatten(1).sum(1).mean()
    score = math.log(float(delta)) if float(delta) > 0 else -math.inf
    score += sum(0.5 * math.log(v) for v in variances if v > 0)
    return finite(score)
