"""Training and scoring loops shared by the compression methods.

Pruning is followed by fine-tuning, network slimming trains with an L1 penalty on batch-norm
scales, distillation trains a student on a teacher's soft targets, quantisation-aware training
fine-tunes a fake-quantised model: all are "a few epochs of SGD on the training images with one
extra loss term". `fit` is that loop, with the term as a hook, so each method is only its term.
It follows the training estimator's recipe (SGD with Nesterov momentum, per-step cosine
learning rate, weight decay 5e-4) so a compressed model is fine-tuned the way it was trained.
`accuracy` scores any model on a split; both run on the model's own device (CPU or CUDA).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn.profile import device_of, torch_threads

#: ``extra(model, images, labels, logits) -> loss term`` added to the cross-entropy; or, with
#: ``replace_ce=True`` in `fit`, the whole loss.
LossTerm = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``progress(epoch, epochs, mean_loss, seconds)`` after every epoch
EpochProgress = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class FitResult:
    """What a fine-tuning run did: epochs, steps, the last epoch's mean loss, wall seconds."""

    epochs: int
    steps: int
    loss: float
    seconds: float


def fit(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float = 0.01,
    batch_size: int = 64,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
    threads: int | None = None,
    extra: LossTerm | None = None,
    replace_ce: bool = False,
    parameters: list[nn.Parameter] | None = None,
    progress: EpochProgress | None = None,
) -> FitResult:
    """Train ``model`` in place on ``images``/``labels`` for ``epochs`` (0: nothing).

    The loss is cross-entropy plus ``extra(model, x, y, logits)`` (or ``extra`` alone with
    ``replace_ce``); only ``parameters`` train when given (default: all that require grad).
    The default learning rate is a fine-tuning one (a tenth of the training estimator's 0.1).
    A loss that is not finite stops with a one-line error before the step that would spread
    it."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"fine-tuning epochs must be an integer >= 0, got {epochs!r}")
    if not lr > 0 or batch_size < 1:
        raise ConfigError(
            f"fine-tuning needs lr > 0 and batch size >= 1, got {lr!r}, {batch_size!r}"
        )
    if len(images) != len(labels) or len(images) == 0:
        raise ConfigError(
            f"fine-tuning needs as many labels as images (>= 1), got {len(images)} images and "
            f"{len(labels)} labels"
        )
    started = time.perf_counter()
    if epochs == 0:
        return FitResult(0, 0, math.nan, 0.0)
    device = device_of(model)
    trainable = (
        parameters if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    )
    optimiser = torch.optim.SGD(
        trainable, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0
    )
    batches = math.ceil(len(images) / batch_size)
    total, step, mean_loss = epochs * batches, 0, math.nan
    order_rng = torch.Generator().manual_seed(seed)
    with torch_threads(threads):
        model.train()
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            order = torch.randperm(len(images), generator=order_rng)
            loss_sum, seen = 0.0, 0
            for b in range(batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                for group in optimiser.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
                x = images.index_select(0, idx).to(device)
                y = labels.index_select(0, idx).to(device)
                logits = model(x)
                loss = (
                    extra(model, x, y, logits)
                    if (replace_ce and extra)
                    else F.cross_entropy(logits, y)
                )
                if extra is not None and not replace_ce:
                    loss = loss + extra(model, x, y, logits)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise ConfigError(
                        f"fine-tuning diverged (loss {value}) at epoch {epoch}, step {b + 1} of "
                        f"{batches}; try a lower learning rate than {lr:g}"
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                loss_sum += value * len(idx)
                seen += len(idx)
            mean_loss = loss_sum / seen
            if progress is not None:
                progress(epoch, epochs, mean_loss, time.perf_counter() - epoch_start)
    model.eval()
    return FitResult(epochs, step, mean_loss, time.perf_counter() - started)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) for ``images``, batch by batch, on the CPU."""
    model.eval()
    device = device_of(model)
    out = [
        model(images[i : i + batch_size].to(device)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0)


def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500
) -> float:
    """Top-1 accuracy in percent of ``model`` on ``images``/``labels``."""
    if len(images) == 0:
        raise ConfigError("accuracy needs at least one image")
    logits = predict(model, images, batch_size)
    return 100.0 * float((logits.argmax(1) == labels.cpu()).float().mean())
