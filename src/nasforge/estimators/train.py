"""The real-training estimator: build the candidate's network, train it briefly, validate it.

Everything a trial depends on is seeded (weights, split, batch order), so the same seed and
architecture give the same number and a search can be rerun exactly. The test set is scored
after training for the report only; it goes into `Result.report`, which strategies never see.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from nasforge.core import Candidate, Result
from nasforge.data.datasets import ImageDataset, split_train_val
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace

#: Called after every epoch with (epoch counted from 1, mean train loss, epoch seconds);
#: returning True stops training there (early stopping).
EpochHook = Callable[[int, float, float], bool | None]

#: Keys of ``net`` that the estimator sets from the dataset itself.
_DATASET_KEYS = ("in_channels", "num_classes")


def _positive(label: str, value: object, integer: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a finite number > 0 (and whole if ``integer``)."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
        and (not integer or value == int(value))
    )
    if not ok:
        kind = "whole number" if integer else "number"
        raise ConfigError(f"{label} must be a finite {kind} > 0, got {value!r}")


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads for the block, then restore the caller's setting."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Train:
    """Estimate a candidate by SGD training on a dataset's seeded train split.

    The objective is validation accuracy (percent, like NAS-Bench-201's tables) on a held-out
    ``val_fraction`` of the *training* images. ``candidate.fidelity``, when given, is the
    number of epochs; the cosine schedule always spans the epochs actually requested, as in
    NAS-Bench-201's short and full schedules.
    """

    name = "train"
    objective_name = "val_acc"

    def __init__(
        self,
        space: SearchSpace,
        dataset: ImageDataset,
        *,
        epochs: int = 3,
        batch_size: int = 128,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        val_fraction: float = 0.1,
        subset: float = 1.0,
        seed: int = 0,
        net: Mapping[str, Any] | None = None,
        threads: int | None = None,
        eval_batch_size: int = 1000,
        on_epoch: EpochHook | None = None,
    ):
        _positive("epochs", epochs, integer=True)
        _positive("batch_size", batch_size, integer=True)
        _positive("eval_batch_size", eval_batch_size, integer=True)
        _positive("lr", lr)
        if threads is not None:
            _positive("threads", threads, integer=True)
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0.0:
            raise ConfigError("nesterov=True needs momentum > 0; set momentum or nesterov=False")
        if not weight_decay >= 0.0:
            raise ConfigError(f"weight_decay must be >= 0, got {weight_decay!r}")
        net = dict(net or {})
        clash = [k for k in _DATASET_KEYS if k in net]
        if clash:
            raise ConfigError(
                f"net must not set {', '.join(clash)}: they come from the dataset; "
                "accepted: the space's other build options (e.g. C, N)"
            )
        train_idx, val_idx = split_train_val(len(dataset.train_x), val_fraction, seed, subset)
        if len(train_idx) < 2:
            raise ConfigError(
                f"subset={subset} leaves {len(train_idx)} training image(s); need at least 2"
            )
        self.space, self.dataset, self.net = space, dataset, net
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay = weight_decay
        self.val_fraction, self.subset, self.seed = val_fraction, subset, seed
        self.threads = None if threads is None else int(threads)
        self.on_epoch = on_epoch
        #: multi-fidelity strategies pick epochs in this range (candidate.fidelity)
        self.fidelity_range = (1.0, float(self.epochs))
        self.train_idx = torch.from_numpy(train_idx)
        self.val_idx = torch.from_numpy(val_idx)

    @property
    def build_options(self) -> dict[str, Any]:
        """Keywords of ``space.build`` for this dataset and network size; also what a parameter
        constraint must count with, so it counts the network that is trained. Spaces whose
        network adapts its strides to the image (``input_size``) are told the image side."""
        options: dict[str, Any] = {
            "in_channels": self.dataset.channels,
            "num_classes": self.dataset.classes,
            **self.net,
        }
        if "input_size" not in options and _accepts(self.space.build, "input_size"):
            options["input_size"] = self.dataset.size
        return options

    def evaluate(self, candidate: Candidate) -> Result:
        """Train a fresh network for the candidate and score it (objective: val accuracy)."""
        epochs = self._epochs(candidate)
        data = self.dataset
        with _num_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.space.build(candidate.arch, **self.build_options)
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            start = time.perf_counter()
            train_loss, trained = self._fit(model, epochs)
            train_seconds = time.perf_counter() - start
            val_acc, val_loss = self._score(model, data.train_x, data.train_y, self.val_idx)
            test_acc, test_loss = self._score(model, data.test_x, data.test_y, None)
        return Result(
            objective=val_acc,
            metrics={
                "params": float(params),
                "train_seconds": train_seconds,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "epochs": float(trained),
            },
            report={"test_acc": test_acc, "test_loss": test_loss},
            cost=train_seconds,
            fidelity=float(epochs),
        )

    def _epochs(self, candidate: Candidate) -> int:
        if candidate.fidelity is None:
            return self.epochs
        _positive("train estimator fidelity (epochs)", candidate.fidelity, integer=True)
        return int(candidate.fidelity)

    def _batches_per_epoch(self) -> int:
        """Full batches plus the last partial one unless it holds a single image.

        A one-image batch is dropped because batch norm cannot normalise it.
        """
        full, rest = divmod(len(self.train_idx), self.batch_size)
        return full + (rest >= 2)

    def _fit(self, model: torch.nn.Module, epochs: int) -> tuple[float, int]:
        """SGD with a per-step cosine learning rate; returns (last epoch's loss, epochs run)."""
        x, y = self.dataset.train_x, self.dataset.train_y
        optimiser = torch.optim.SGD(
            model.parameters(),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
        )
        batches = self._batches_per_epoch()
        total_steps, step = epochs * batches, 0
        order_rng = torch.Generator().manual_seed(self.seed)
        mean_loss, epoch = math.nan, 0
        model.train()
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            order = self.train_idx[torch.randperm(len(self.train_idx), generator=order_rng)]
            loss_sum, seen = 0.0, 0
            for b in range(batches):
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                for group in optimiser.param_groups:
                    group["lr"] = self.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                loss = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                loss_sum += loss.item() * len(idx)
                seen += len(idx)
            mean_loss = loss_sum / seen
            stop = self.on_epoch is not None and self.on_epoch(
                epoch, mean_loss, time.perf_counter() - epoch_start
            )
            if stop or not math.isfinite(mean_loss):
                break  # a diverged network will not recover: save the remaining epochs
        return mean_loss, epoch

    def _score(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        idx: torch.Tensor | None,
    ) -> tuple[float, float]:
        """(accuracy in percent, mean cross-entropy) over ``x[idx]`` (all of ``x`` if None)."""
        n = len(x) if idx is None else len(idx)
        correct, loss_sum = 0, 0.0
        model.eval()
        with torch.inference_mode():
            for start in range(0, n, self.eval_batch_size):
                stop = min(start + self.eval_batch_size, n)
                if idx is None:
                    xb, yb = x[start:stop], y[start:stop]
                else:
                    xb, yb = x.index_select(0, idx[start:stop]), y.index_select(0, idx[start:stop])
                logits = model(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == yb).sum())
        model.train()
        return 100.0 * correct / n, loss_sum / n


def _accepts(function: Any, keyword: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters  # named explicitly: **kwargs may not mean "any keyword"
