"""The supernet training loop every one-shot method shares, resumable at epoch boundaries.

Every random draw of an epoch comes from generators seeded by (seed, epoch): the order of the
training and validation images, the method's path samples (numpy) and torch's global generator
(Gumbel noise, Dirichlet samples). A run resumed from the checkpoint written after epoch e
therefore repeats epochs e+1... exactly as the uninterrupted run would (same thread count).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import TrainingDiverged
from nasforge.oneshot.estimator import path_accuracy
from nasforge.oneshot.methods import OneShotMethod, param_free_count
from nasforge.oneshot.mixed import Path


@dataclass(frozen=True)
class OneShotRecipe:
    """How the supernet is trained (DARTS's recipe by default); stored with the run."""

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    #: validation images that score paths (the epoch log, the derived cell, searches, check)
    eval_images: int = 1000
    eval_batch: int = 250
    #: NB201 cells of the weight-sharing check (supernet vs table); 0: no check
    check_sample: int = 200
    #: the mobile supernet's width multiplier (None: its default, 1.0; other spaces: None)
    width: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Without ``width`` when it is None, so the configuration (and the checkpoint key)
        of a run stored before the field existed reads back unchanged."""
        values = dataclasses.asdict(self)
        if values["width"] is None:
            del values["width"]
        return values

    def lr_at(self, epoch: int) -> float:
        """DARTS's per-epoch cosine from ``lr`` to ``lr_min``."""
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (
            1 + math.cos(math.pi * epoch / self.epochs)
        )


def _detached(path: Path) -> Path:
    """The weight step's path: the architecture is a constant there (no α gradient)."""
    return dataclasses.replace(
        path,
        weights=None if path.weights is None else path.weights.detach(),
        edge=None if path.edge is None else path.edge.detach(),
    )


class SupernetTrainer:
    """Trains ``method``'s supernet on the training half and steps its architecture on the
    validation half, one batch of each per step."""

    def __init__(
        self,
        method: OneShotMethod,
        recipe: OneShotRecipe,
        data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
        seed: int,
        device: torch.device,
        progress: Callable[[str], None] | None = None,
    ):
        self.method, self.net, self.recipe = method, method.net, recipe
        self.train_x, self.train_y, self.val_x, self.val_y = data
        self.seed, self.device, self.progress = seed, device, progress
        weights = [p for p in self.net.parameters() if p.requires_grad]
        self.optimiser = torch.optim.SGD(
            weights, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
        self.steps = len(self.train_x) // recipe.batch_size
        if self.steps < 1:
            raise ValueError(
                f"{len(self.train_x)} training images make no batch of {recipe.batch_size}"
            )

    def eval_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.recipe.eval_images
        return self.val_x[:n], self.val_y[:n]

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One epoch; returns its record (losses, accuracies, α, derived cell, seconds)."""
        r, method, net = self.recipe, self.method, self.net
        method.begin_epoch(epoch)
        torch.manual_seed(self.seed * 1_000_003 + epoch)
        rng = np.random.default_rng([self.seed, epoch])
        order_gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
        train_order = torch.randperm(len(self.train_x), generator=order_gen)
        val_order = torch.randperm(len(self.val_x), generator=order_gen)
        lr = r.lr_at(epoch)
        for group in self.optimiser.param_groups:
            group["lr"] = lr
        started, last_line = time.perf_counter(), 0.0
        loss_sum, correct, seen = 0.0, 0, 0
        net.train()
        for step in range(self.steps):
            idx = train_order[step * r.batch_size : (step + 1) * r.batch_size]
            v_start = (step * r.batch_size) % max(1, len(self.val_x) - r.batch_size + 1)
            v_idx = val_order[v_start : v_start + r.batch_size]
            xb, yb = self._batch(self.train_x, self.train_y, idx)
            xv, yv = self._batch(self.val_x, self.val_y, v_idx)
            method.arch_step((xb, yb), (xv, yv), lr)
            self.optimiser.zero_grad(set_to_none=True)
            paths = [_detached(p) for p in method.train_paths(rng)]
            for path in paths:
                logits = net(xb, path)
                loss = F.cross_entropy(logits, yb)
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"supernet training diverged: loss {value} at epoch {epoch + 1}, step "
                        f"{step + 1} (learning rate {lr:.3g}); try a lower --lr"
                    )
                loss.backward()
                loss_sum += value * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
            torch.nn.utils.clip_grad_norm_(self.optimiser.param_groups[0]["params"], r.grad_clip)
            self.optimiser.step()
            now = time.perf_counter()
            if self.progress is not None and (now - last_line > 10 or step + 1 == self.steps):
                last_line = now
                self._report(epoch, step, now - started, loss_sum / max(1, seen))
        seconds = time.perf_counter() - started
        net.eval()
        derived = method.derive()
        x, y = self.eval_data()
        eval_path = method.eval_path()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum / max(1, seen),
            "train_acc": 100.0 * correct / max(1, seen),
            "val_acc": path_accuracy(
                net, eval_path, x.to(self.device), y.to(self.device), r.eval_batch
            ),
            "seconds": seconds,
            "step_seconds": seconds / self.steps,
        }
        if derived is not None:
            record["derived"] = self.net.space.to_string(derived)
            record["param_free"] = param_free_count(self.net.space, derived)
        if method.snapshot() is not None:
            record["alpha"] = method.snapshot()
        if method.temperature() is not None:
            record["temperature"] = method.temperature()
        if method.aux_skip():
            record["aux_skip"] = method.aux_skip()
        record.update(method.log_values())
        return record

    def _batch(
        self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return x.index_select(0, idx).to(self.device), y.index_select(0, idx).to(self.device)

    def _report(self, epoch: int, step: int, elapsed: float, loss: float) -> None:
        done = epoch * self.steps + step + 1
        total = self.recipe.epochs * self.steps
        per_step = elapsed / (step + 1)
        eta = per_step * (total - done)
        self.progress(  # type: ignore[misc]
            f"oneshot {self.method.name} [epoch {epoch + 1}/{self.recipe.epochs} step "
            f"{step + 1}/{self.steps}] loss {loss:.3f} | {per_step:.2f} s/step | "
            f"ETA {_clock(eta)}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "supernet": self.net.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "method": self.method.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["supernet"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.method.load_state_dict(state["method"])


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
