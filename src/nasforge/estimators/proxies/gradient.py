"""Gradient-based proxies at initialisation: grad_norm, snip, fisher, zico and grasp from one
shared pass, and synflow.

Definitions follow Abdelfattah, Mehrotra, Dudziak, Lane (2021), "Zero-Cost Proxies for
Lightweight NAS" (ICLR), which adapted them from pruning at initialisation; every sum runs over
the weights of the ``Conv2d`` and ``Linear`` layers, the loss is the mean cross-entropy of the
minibatch, batch norm is in training mode (batch statistics), float32:

* grad_norm: sum over layers of the L2 norm of the weight gradient.
* snip (Lee, Ajanthan, Torr 2019, "SNIP: Single-shot Network Pruning based on Connection
  Sensitivity"): sum of |dL/dW * W|.
* fisher (Theis et al. 2018; Turner et al. 2020, "BlockSwap"): for each conv/linear output
  activation a, per sample and channel s = sum over positions of a * dL/da; 0.5 * mean over the
  samples of s^2, summed over channels and layers.
* zico (Li, Chen, Sui, Zhang, Wang, Marculescu 2023, "ZiCo: Zero-shot NAS via Inverse
  Coefficient of Variation on Gradients", ICLR): per layer log(sum over weights of
  mean|g| / std(g)), the mean and std over minibatches, summed over layers.
* grasp (Wang, Zhang, Grosse 2020, "Picking Winning Tickets Before Training by Preserving
  Gradient Flow"): sum of -W * (H g), the Hessian-gradient product of the loss.

Departures, stated so numbers can be compared: the shared pass splits the minibatch into
``splits`` (default 2) equal parts, one forward/backward each, because ZiCo needs gradients of
more than one minibatch; grad_norm, snip and fisher use the mean of the parts' gradients, which
differs from one full-batch pass only through each part's batch-norm statistics. ZiCo's paper
uses two batches of 64 images; here two parts of 4 by default (see the registry's batch sizes).
grasp reuses the first part's forward pass (``create_graph``), so it sees that part only (4
images by default) and costs one double backward instead of two more passes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.estimators.proxies._common import check_logits, finite, weight_layers


def gradient_scores(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    splits: int = 2,
    grasp: bool = False,
) -> dict[str, float]:
    """grad_norm, snip, fisher and zico (and grasp, if asked) of ``net`` on (x, y)."""
    layers = weight_layers(net)
    weights = [m.weight for m in layers]
    net.train()
    parts = max(1, min(splits, len(x)))
    chunks = list(zip(torch.chunk(x, parts), torch.chunk(y, parts), strict=True))
    grads: list[list[torch.Tensor]] = []
    graphs: list[list[torch.Tensor]] = []
    fisher = 0.0
    acts: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if output.requires_grad:
            acts.append(output)

    for number, (cx, cy) in enumerate(chunks):
        graph = grasp and number == 0  # GraSP on the first part only: a double backward costs
        acts.clear()
        handles = [m.register_forward_hook(keep) for m in layers]
        try:
            out = check_logits(net(cx), len(cx), classes)
        finally:
            for handle in handles:
                handle.remove()
        found = list(acts)
        got = torch.autograd.grad(
            F.cross_entropy(out, cy), [*weights, *found], create_graph=graph, allow_unused=True
        )
        part = [
            torch.zeros_like(w) if g is None else g
            for g, w in zip(got[: len(weights)], weights, strict=True)
        ]
        if graph:
            graphs.append(part)
        grads.append([g.detach() for g in part])
        for act, grad in zip(found, got[len(weights) :], strict=True):
            if grad is None:
                continue
            prod = act.detach() * grad.detach()
            per = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
            fisher += float(0.5 * per.pow(2).mean(0).sum()) * len(cx) / len(x)
    mean = [torch.stack(gs).mean(0) for gs in zip(*grads, strict=True)]
    grad_norm = sum(float(g.norm()) for g in mean)
    snip = sum(float((g * w.detach()).abs().sum()) for g, w in zip(mean, weights, strict=True))
    scores = {
        "grad_norm": finite(grad_norm),
        "snip": finite(snip),
        "fisher": finite(fisher),
        "zico": finite(_zico(grads)),
    }
    if grasp:
        scores["grasp"] = _grasp(weights, graphs, [g.detach() for g in graphs[0]])
    return scores


def _grasp(
    weights: list[torch.Tensor], graphs: list[list[torch.Tensor]], mean: list[torch.Tensor]
) -> float:
    """sum of -W * (H g): H g is the gradient of mean_p (grad L_p . g), g held constant (the
    caller passes the graphs of the parts GraSP uses and their mean gradient)."""
    z = sum(
        ((gp * g).sum() for part in graphs for gp, g in zip(part, mean, strict=True)),
        torch.zeros((), device=mean[0].device if mean else None),
    ) / max(1, len(graphs))
    if not z.requires_grad:
        return -math.inf
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    score = sum(
        float((-w.detach() * h).sum()) for w, h in zip(weights, hg, strict=True) if h is not None
    )
    return finite(score)


def _grad(module: nn.Module) -> torch.Tensor:
    grad = module.weight.grad
    return torch.zeros_like(module.weight) if grad is None else grad.detach().clone()


def _zico(grads: list[list[torch.Tensor]]) -> float:
    """Sum over layers of log(sum of mean|g| / std(g)), over the minibatch parts; weights whose
    gradient does not vary (std 0) are left out, layers with nothing left too (as ZiCo does)."""
    if len(grads) < 2:
        return math.nan
    total, used = 0.0, 0
    for per_layer in zip(*grads, strict=True):
        g = torch.stack(per_layer).flatten(1).double()
        std = g.std(0)
        keep = std > 0
        if not bool(keep.any()):
            continue
        value = float((g.abs().mean(0)[keep] / std[keep]).sum())
        if value > 0:
            total += math.log(value)
            used += 1
    return total if used else math.nan


def synflow_score(net: nn.Module, input_shape: tuple[int, ...]) -> float:
    """SynFlow (Tanaka, Kunin, Yamins, Ganguli 2020, "Pruning neural networks without any data by
    iteratively conserving synaptic flow"; as a NAS proxy in Abdelfattah et al. 2021): every
    parameter and buffer made non-negative (|.|), an all-ones input of one image in float64,
    R = sum of the output; score = sum of |W * dR/dW| over conv/linear weights.

    ``net`` is modified (absolute weights, float64): pass a fresh copy. Departure: batch norm is
    in eval mode with its initial running statistics (mean 0, variance 1), i.e. an identity up
    to its (non-negative) affine weights; in training mode one constant image would be
    normalised to nothing. The score is returned as is (it can be ~1e30; its rank is what
    matters)."""
    net.double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    layers = weight_layers(net)
    device = layers[0].weight.device if layers else torch.device("cpu")
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    net.zero_grad(set_to_none=True)
    net(ones).sum().backward()
    score = sum(
        float((m.weight.detach() * m.weight.grad).abs().sum())
        for m in layers
        if m.weight.grad is not None
    )
    return finite(score)
