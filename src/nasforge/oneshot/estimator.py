"""A supernet as a performance estimator: a path's accuracy with inherited weights.

This is what turns weight sharing into an ordinary estimator: any `Strategy` searches with it
(SPOS's evolution, RSWS's random search), `nasforge rank`-style checks measure it against a
table, and nothing in the strategies knows a supernet is behind it.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from nasforge.core import Candidate, Result
from nasforge.estimators.base import EstimatorBase
from nasforge.oneshot.mixed import Path


def path_accuracy(
    net: torch.nn.Module, path: Path, x: torch.Tensor, y: torch.Tensor, batch: int
) -> float:
    """Top-1 accuracy in percent of ``net`` along ``path`` on ``(x, y)``, in batches of
    ``batch`` images (batch statistics normalise: batches should hold a few hundred)."""
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            logits = net(x[start : start + batch], path)
            correct += int((logits.argmax(1) == y[start : start + batch]).sum())
    return 100.0 * correct / max(1, len(x))


class SupernetEstimator(EstimatorBase):
    """Scores an architecture by the validation accuracy of its path through a trained
    supernet. ``x``/``y`` are the held-out validation images (never the test set); the cost is
    the seconds the forward passes took."""

    name = "supernet"
    objective_name = "val_acc"

    def __init__(self, supernet: Any, x: torch.Tensor, y: torch.Tensor, batch: int = 500):
        self.net, self.x, self.y, self.batch = supernet, x, y, int(batch)

    def evaluate(self, candidate: Candidate) -> Result:
        start = time.perf_counter()
        accuracy = path_accuracy(
            self.net, self.net.path_of(candidate.arch), self.x, self.y, self.batch
        )
        return Result(
            objective=accuracy,
            metrics={"supernet_val_acc": accuracy},
            cost=time.perf_counter() - start,
        )

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.name, "images": len(self.x), "batch": self.batch}
