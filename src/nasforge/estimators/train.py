"""The real-training estimator: build the candidate's network, train it briefly, validate it.

Everything a trial depends on is seeded (weights, split, batch order, augmentation), so the same
seed and architecture give the same number and a search can be rerun exactly. The test set is
scored after training for the report only (``score_test=False`` skips it during a search); it
goes into `Result.report`, which strategies never see. Low fidelity is a set of explicit knobs
(epochs, ``subset``, ``resolution``, the network's size in ``net``), all recorded by
`Train.describe` and in each result's metrics.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from nasforge.core import Candidate, Result, SearchContext
from nasforge.data.augment import Augmentation
from nasforge.data.datasets import ImageDataset, resized, split_train_val
from nasforge.errors import ConfigError, FewStepsWarning, TrainingDiverged
from nasforge.estimators.base import EstimatorBase, EstimatorCapabilities
from nasforge.estimators.early_stopping import Stopper
from nasforge.nn.profile import torch_threads
from nasforge.spaces.base import SearchSpace

#: Called after every epoch with (epoch counted from 1, mean train loss, epoch seconds);
#: returning True stops training there (early stopping).
EpochHook = Callable[[int, float, float], bool | None]

#: Keys of ``net`` that the estimator sets from the dataset itself.
_DATASET_KEYS = ("in_channels", "num_classes")

#: Fewer SGD steps than this per trial leave most networks near chance level, so a search would
#: rank noise (digits at the CLI's 10 % subset: 2 epochs of ~130 images, 2-4 steps).
MIN_USEFUL_STEPS = 50


#: Seed offset of the augmentation's generator, so turning augmentation on leaves the batch
#: order (seeded with ``seed`` itself) unchanged.
_AUGMENT_SEED_OFFSET = 1


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


class Train(EstimatorBase):
    """Estimate a candidate by SGD training on a dataset's seeded train split.

    The objective is validation accuracy (percent, like NAS-Bench-201's tables) on a held-out
    ``val_fraction`` of the *training* images. ``candidate.fidelity``, when given, is the
    number of epochs; the cosine schedule always spans the epochs actually requested, as in
    NAS-Bench-201's short and full schedules.

    ``resolution`` resizes every image once, here, to that side (cheaper low-fidelity trials);
    ``augment`` is applied to each training batch only; ``early_stopping`` (a `Stopper`)
    validates after every epoch and may end a trial early. `describe` records all of it.

    Sent to a worker process, a `Train` pickles small (a few kB): a dataset from `load_dataset`
    travels as its description (name, data roots, resolution; see `DataSource`), each worker
    loads the files once, and the split is recomputed from its seed. A dataset built in memory
    with no description (your own arrays, `from_arrays`) is pickled whole, tensors and all.
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
        augment: Augmentation | None = None,
        resolution: int | None = None,
        early_stopping: Stopper | None = None,
        score_test: bool = True,
        channels_last: bool = False,
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
        if augment is not None and not isinstance(augment, Augmentation):
            raise ConfigError(
                f"augment must be an Augmentation or None, got {type(augment).__name__}"
            )
        if resolution is not None:
            _positive("resolution", resolution, integer=True)
        if early_stopping is not None and not callable(
            getattr(early_stopping, "should_stop", None)
        ):
            raise ConfigError(
                f"early_stopping must have a should_stop(curve, planned_epochs, context) method, "
                f"got {type(early_stopping).__name__}"
            )
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
        self.source_size = dataset.size
        self.resolution = dataset.size if resolution is None else int(resolution)
        self.space, self.dataset, self.net = space, resized(dataset, self.resolution), net
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay = weight_decay
        self.val_fraction, self.subset, self.seed = val_fraction, subset, seed
        self.threads = None if threads is None else int(threads)
        self.on_epoch = on_epoch
        self.augment = augment if augment is not None and augment.active else None
        self.early_stopping = early_stopping
        #: False skips the test set after each trial: at low fidelity scoring 10,000 test images
        #: can cost as much as training, and a search never reads the test score anyway
        self.score_test = bool(score_test)
        #: NHWC memory format for network and batches: oneDNN's CPU convolutions run faster on
        #: it (benchmarks/train_throughput.py); results differ from NCHW in the last bits only
        self.channels_last = bool(channels_last)
        #: multi-fidelity strategies pick epochs in this range (candidate.fidelity)
        self.fidelity_range = (1.0, float(self.epochs))
        self.train_idx = torch.from_numpy(train_idx)
        self.val_idx = torch.from_numpy(val_idx)
        advice = self.few_steps_advice()
        if advice is not None:
            warnings.warn(advice, FewStepsWarning, stacklevel=2)

    @property
    def steps_per_trial(self) -> int:
        """SGD steps of one trial at full fidelity (``epochs`` × batches per epoch)."""
        return self.epochs * self._batches_per_epoch()

    def few_steps_advice(self) -> str | None:
        """What to change when a trial has fewer than `MIN_USEFUL_STEPS` optimisation steps
        (None when it has enough): small data at the default subset trains at chance level."""
        steps = self.steps_per_trial
        if steps >= MIN_USEFUL_STEPS:
            return None
        images = len(self.train_idx)
        per_epoch = math.ceil(MIN_USEFUL_STEPS / self.epochs)
        batch = max(1, images // per_epoch)
        raise_ = f"--epochs (now {self.epochs})"
        if self.subset < 1:
            raise_ = f"--subset (now {self.subset:g}) or {raise_}"
        fix = f"raise {raise_}"
        if 8 <= batch < self.batch_size:
            fix += f", or lower --batch-size to {batch}"
        return (
            f"each trial trains only {steps} SGD step(s) ({images} training images of "
            f"{self.dataset.name}, batch size {self.batch_size}, {self.epochs} epoch(s)), too few "
            f"to tell architectures apart (at least {MIN_USEFUL_STEPS} are advised): {fix}"
        )

    @property
    def uses_context(self) -> bool:
        """Whether the experiment should send a `SearchContext` with each job: only an
        early-stopping rule reads it (derived, so clearing ``early_stopping`` clears it too)."""
        return self.early_stopping is not None

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

    @property
    def capabilities(self) -> EstimatorCapabilities:
        """Cost = wall time; fidelity = epochs, 1 to ``epochs``; the context only with an
        early-stopping rule; the network's build options and the recipe (``describe``)."""
        return EstimatorCapabilities(
            has_cost=True,
            report_metric="test_acc",
            uses_context=self.uses_context,
            fidelity_range=self.fidelity_range,
            build_options=self.build_options,
            setup=self.describe(),
        )

    def describe(self) -> dict[str, Any]:
        """Everything that fixes what a trial's number means (data, split, fidelity, recipe), as
        plain JSON values, so a run can record it beside its trials."""
        data = self.dataset
        return {
            "estimator": self.name,
            "dataset": data.name,
            "image_size": self.source_size,
            "resolution": self.resolution,
            "channels": data.channels,
            "classes": data.classes,
            "train_images": len(self.train_idx),
            "val_images": len(self.val_idx),
            "test_images": len(data.test_x),
            "score_test": self.score_test,
            "channels_last": self.channels_last,
            "split_seed": self.seed,
            "val_fraction": self.val_fraction,
            "subset": self.subset,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "schedule": "cosine",
            "augmentation": None if self.augment is None else self.augment.describe(),
            "early_stopping": None
            if self.early_stopping is None
            else getattr(self.early_stopping, "name", type(self.early_stopping).__name__),
            "net": dict(self.net),
        }

    def evaluate(self, candidate: Candidate, context: SearchContext | None = None) -> Result:
        """Train a fresh network for the candidate and score it (objective: val accuracy).

        With an early-stopping rule, validation accuracy is measured after every epoch (the
        learning curve, `Result.curve`) and the rule, given ``context``, may end training
        early; the objective is then the last measured accuracy and the cost includes those
        per-epoch validations."""
        return self.train(candidate, context)[1]

    def train(
        self, candidate: Candidate, context: SearchContext | None = None
    ) -> tuple[torch.nn.Module, Result]:
        """``evaluate``, keeping the trained network (in eval mode): final training and export
        need the model, a search only its scores."""
        epochs = self._epochs(candidate)
        data = self.dataset
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.space.build(candidate.arch, **self.build_options)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            curve: list[float] = []
            scores: list[tuple[float, float]] = []  # (val acc, val loss) after each epoch
            seen = context if context is not None else SearchContext()

            def after_epoch(net: torch.nn.Module) -> bool:
                scores.append(self._score(net, data.train_x, data.train_y, self.val_idx))
                curve.append(scores[-1][0])
                stopper = self.early_stopping
                # after the last planned epoch there is nothing left to stop
                return (
                    stopper is not None
                    and len(curve) < epochs
                    and bool(stopper.should_stop(tuple(curve), epochs, seen))
                )

            start = time.perf_counter()
            hook = after_epoch if self.early_stopping is not None else None
            train_loss, trained = self._fit(model, epochs, hook)
            train_seconds = time.perf_counter() - start
            if scores:  # the curve's last point is the trained model's validation score
                val_acc, val_loss = scores[-1]
            else:
                val_acc, val_loss = self._score(model, data.train_x, data.train_y, self.val_idx)
            report: dict[str, float] = {}
            if self.score_test:
                test_acc, test_loss = self._score(model, data.test_x, data.test_y, None)
                report = {"test_acc": test_acc, "test_loss": test_loss}
        metrics = {
            "params": float(params),
            "train_seconds": train_seconds,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "epochs": float(trained),
            "resolution": float(self.resolution),
            "subset": float(self.subset),
        }
        if self.early_stopping is not None:
            metrics["stopped_early"] = 1.0 if trained < epochs else 0.0
        return model.eval(), Result(
            objective=val_acc,
            metrics=metrics,
            report=report,
            cost=train_seconds,
            fidelity=float(epochs),
            curve=tuple(curve),
        )

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the split indices (CIFAR-10's are ~400 kB), which `__setstate__`
        recomputes from the seed; the dataset pickles as its description where it has one."""
        return {k: v for k, v in self.__dict__.items() if k not in ("train_idx", "val_idx")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        train_idx, val_idx = split_train_val(
            len(self.dataset.train_x), self.val_fraction, self.seed, self.subset
        )
        self.train_idx = torch.from_numpy(train_idx)
        self.val_idx = torch.from_numpy(val_idx)

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

    def _fit(
        self,
        model: torch.nn.Module,
        epochs: int,
        after_epoch: Callable[[torch.nn.Module], bool] | None = None,
    ) -> tuple[float, int]:
        """SGD with a per-step cosine learning rate; returns (last epoch's loss, epochs run).

        ``after_epoch(model)`` (early stopping) runs after each epoch; True ends training."""
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
        augment = self.augment
        augment_rng = torch.Generator().manual_seed(self.seed + _AUGMENT_SEED_OFFSET)
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
                xb = x.index_select(0, idx)
                if augment is not None:
                    xb = augment(xb, augment_rng)
                xb = self._layout(xb)
                loss = F.cross_entropy(model(xb), y.index_select(0, idx))
                value = loss.item()
                if not math.isfinite(value):  # before the step: no NaN reaches the weights
                    raise self._diverged(value, epoch, b + 1, batches, group["lr"])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                loss_sum += value * len(idx)
                seen += len(idx)
            mean_loss = loss_sum / seen
            stop = self.on_epoch is not None and self.on_epoch(
                epoch, mean_loss, time.perf_counter() - epoch_start
            )
            if after_epoch is not None and after_epoch(model):
                stop = True
            if stop:
                break
        return mean_loss, epoch

    def _diverged(
        self, loss: float, epoch: int, step: int, steps: int, lr: float
    ) -> TrainingDiverged:
        """The error of a loss that became NaN or infinite: where, with which recipe, and what
        to change. Raised at once: a diverged network does not recover, and a NaN model would
        otherwise be scored, stored as the incumbent, and exported."""
        return TrainingDiverged(
            f"training diverged: loss {loss} at epoch {epoch}, step {step} of {steps} "
            f"(learning rate {lr:.3g} of --lr {self.lr:g}, batch size {self.batch_size}, "
            f"{len(self.train_idx)} training images); try a lower --lr such as "
            f"{self.lr / 10:g}, or a larger --batch-size"
        )

    def _layout(self, batch: torch.Tensor) -> torch.Tensor:
        if self.channels_last and batch.dim() == 4:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

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
                logits = model(self._layout(xb))
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
