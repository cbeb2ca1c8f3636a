"""`Train`'s low-fidelity knobs, augmentation, recorded description and early-stopping hook,
on scikit-learn's real digits with a tiny stand-in network."""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.core import Candidate, SearchContext
from nasforge.data.augment import Augmentation
from nasforge.data.datasets import ImageDataset, load_dataset
from nasforge.errors import ConfigError
from nasforge.estimators.train import Train
from nasforge.executors.base import Job, run_job


class Recorder(nn.Module):
    """Passes input through, keeping the training-mode batches it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.train_batches: list[torch.Tensor] = []
        self.eval_batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (self.train_batches if self.training else self.eval_batches).append(x.detach().clone())
        return x


class SmallSpace:
    """An architecture is a width; ``input_size`` is accepted, as spaces that adapt strides do."""

    name = "small"

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.recorders: list[Recorder] = []

    def build(
        self, arch: int, *, in_channels: int, num_classes: int, input_size: int = 0
    ) -> nn.Module:
        self.sizes.append(input_size)
        recorder = Recorder()
        self.recorders.append(recorder)
        return nn.Sequential(
            recorder,
            nn.Conv2d(in_channels, arch, 3, padding=1, bias=False),
            nn.BatchNorm2d(arch),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * arch, num_classes),
        )


class StopAfter:
    """A stopper defined here: stops once the curve has ``n`` points; records its calls."""

    def __init__(self, n: int) -> None:
        self.name = f"stop-after-{n}"
        self.n = n
        self.calls: list[tuple[tuple[float, ...], int, SearchContext]] = []

    def should_stop(
        self, curve: Sequence[float], planned_epochs: int, context: SearchContext
    ) -> bool:
        self.calls.append((tuple(curve), planned_epochs, context))
        return len(curve) >= self.n


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits")


# --- resolution ----------------------------------------------------------------------------------


def test_resolution_resizes_once_and_reaches_the_network(digits: ImageDataset) -> None:
    space = SmallSpace()
    estimator = Train(space, digits, epochs=1, subset=0.3, resolution=16)
    assert estimator.dataset.train_x.shape[1:] == (1, 16, 16) and estimator.dataset.size == 16
    assert estimator.dataset.test_x.shape[1:] == (1, 16, 16)
    assert digits.size == 8  # the caller's dataset is not changed
    assert estimator.build_options["input_size"] == 16
    result = estimator.evaluate(Candidate(4))
    assert space.sizes == [16] and result.metrics["resolution"] == 16
    assert space.recorders[0].train_batches[0].shape[-2:] == (16, 16)
    assert space.recorders[0].eval_batches[0].shape[-2:] == (16, 16)  # val and test too


def checkerboards(side: int) -> ImageDataset:
    """A dataset of ±1 checkerboards: all detail, no content at low resolution."""
    board = (torch.arange(side)[:, None] + torch.arange(side)) % 2 * 2.0 - 1.0
    x = board.expand(4, 1, side, side).contiguous()
    y = torch.tensor([0, 1, 0, 1])
    return ImageDataset("boards", x, y, x.clone(), y.clone(), classes=2, channels=1, size=side)


def test_downscaling_is_antialiased() -> None:
    """Shrinking 12 -> 4 samples every third pixel: plain bilinear keeps the full ±1 pattern
    (aliasing); an antialiased resize averages the detail away, towards the mean 0."""
    data = checkerboards(12)
    small = Train(SmallSpace(), data, resolution=4).dataset
    aliased = F.interpolate(data.train_x, size=(4, 4), mode="bilinear", align_corners=False)
    assert aliased.abs().min() == 1.0
    assert small.train_x.abs().max() < 0.2 and small.test_x.abs().max() < 0.2
    assert small.train_x.shape == (4, 1, 4, 4) and small.name == "boards"


def test_upscaling_keeps_constant_images() -> None:
    x, y = torch.full((4, 1, 8, 8), 0.5), torch.tensor([0, 1, 0, 1])
    flat = ImageDataset("flat", x, y, -x, y, classes=2, channels=1, size=8)
    big = Train(SmallSpace(), flat, resolution=20).dataset
    assert big.train_x.shape == (4, 1, 20, 20)
    assert torch.allclose(big.train_x, x[:1, :1, :1, :1]) and torch.allclose(
        big.test_x, -x[0, 0, 0, 0]
    )


def test_resolution_equal_to_the_data_keeps_it(digits: ImageDataset) -> None:
    estimator = Train(SmallSpace(), digits, resolution=8)
    assert estimator.dataset is digits


@pytest.mark.parametrize("bad", [0, -8, 2.5, True, "16"])
def test_bad_resolution(digits: ImageDataset, bad: object) -> None:
    with pytest.raises(ConfigError, match="resolution"):
        Train(SmallSpace(), digits, resolution=bad)  # type: ignore[arg-type]


# --- describe / metrics --------------------------------------------------------------------------


def test_describe_records_data_split_fidelity_and_recipe(digits: ImageDataset) -> None:
    aug = Augmentation(crop_padding=1, flip=True)
    estimator = Train(
        SmallSpace(),
        digits,
        epochs=2,
        subset=0.5,
        resolution=12,
        seed=3,
        val_fraction=0.2,
        augment=aug,
        early_stopping=StopAfter(1),
        net={},
    )
    record = json.loads(json.dumps(estimator.describe()))  # plain JSON values
    assert record["dataset"] == "digits" and record["image_size"] == 8
    assert record["resolution"] == 12 and record["channels"] == 1 and record["classes"] == 10
    n = len(digits.train_x)
    assert record["val_images"] == round(n * 0.2)
    assert record["train_images"] == round((n - record["val_images"]) * 0.5)
    assert record["test_images"] == len(digits.test_x)
    assert record["split_seed"] == 3 and record["val_fraction"] == 0.2
    assert record["subset"] == 0.5 and record["epochs"] == 2
    assert record["augmentation"] == aug.describe()
    assert record["early_stopping"] == "stop-after-1" and record["net"] == {}
    plain = Train(SmallSpace(), digits).describe()
    assert plain["augmentation"] is None and plain["early_stopping"] is None
    assert plain["resolution"] == plain["image_size"] == 8


def test_subset_and_resolution_are_in_the_metrics(digits: ImageDataset) -> None:
    result = Train(SmallSpace(), digits, epochs=1, subset=0.25).evaluate(Candidate(2))
    assert result.metrics["subset"] == 0.25 and result.metrics["resolution"] == 8
    assert "stopped_early" not in result.metrics and result.curve == ()


def test_skipping_the_test_set_never_shows_it_to_the_network(digits: ImageDataset) -> None:
    space = SmallSpace()
    skipped = Train(space, digits, epochs=1, score_test=False).evaluate(Candidate(2))
    assert skipped.report == {}
    evaluated = [len(batch) for batch in space.recorders[-1].eval_batches]
    assert sum(evaluated) == len(Train(space, digits).val_idx)  # validation only
    scored = Train(space, digits, epochs=1).evaluate(Candidate(2))
    assert set(scored.report) == {"test_acc", "test_loss"}
    assert scored.objective == skipped.objective  # the search's number does not change
    assert Train(SmallSpace(), digits, score_test=False).describe()["score_test"] is False


def test_channels_last_trains_the_same_network_in_nhwc(digits: ImageDataset) -> None:
    # three channels: with one, NCHW and NHWC are the same layout
    rgb = dataclasses.replace(
        digits,
        train_x=digits.train_x.repeat(1, 3, 1, 1),
        test_x=digits.test_x.repeat(1, 3, 1, 1),
        channels=3,
        mean=digits.mean * 3,
        std=digits.std * 3,
    )
    results, layouts = [], []
    for channels_last in (False, True):
        space = SmallSpace()
        estimator = Train(space, rgb, epochs=1, channels_last=channels_last)
        model, result = estimator.train(Candidate(4))
        conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        seen = space.recorders[-1].train_batches[0]
        layouts.append(
            (
                conv.weight.is_contiguous(memory_format=torch.channels_last),
                seen.is_contiguous(memory_format=torch.channels_last),
            )
        )
        results.append(result)
        assert estimator.describe()["channels_last"] is channels_last
    assert layouts == [(False, False), (True, True)]
    plain, fast = results
    assert fast.metrics["train_loss"] == pytest.approx(plain.metrics["train_loss"], rel=1e-3)
    assert abs(fast.objective - plain.objective) <= 1.0  # the same training up to rounding


# --- augmentation --------------------------------------------------------------------------------


def test_augmentation_changes_training_batches_only(digits: ImageDataset) -> None:
    plain_space, aug_space = SmallSpace(), SmallSpace()
    Train(plain_space, digits, epochs=1, subset=0.5, batch_size=256).evaluate(Candidate(2))
    aug = Augmentation(crop_padding=2, flip=True, cutout=3)
    Train(aug_space, digits, epochs=1, subset=0.5, batch_size=256, augment=aug).evaluate(
        Candidate(2)
    )
    plain, augmented = plain_space.recorders[0], aug_space.recorders[0]
    assert len(plain.train_batches) == len(augmented.train_batches)
    for a, b in zip(plain.train_batches, augmented.train_batches, strict=True):
        assert a.shape == b.shape and not torch.equal(a, b)
        # cutout's squares are zero in the normalised images
        assert (b == 0).all(dim=1).flatten(1).any(dim=1).all()
    for a, b in zip(plain.eval_batches, augmented.eval_batches, strict=True):
        assert torch.equal(a, b)  # validation and test images are never augmented


def test_augmented_training_is_seeded(digits: ImageDataset) -> None:
    aug = Augmentation.standard(cutout=4)

    def run(seed: int) -> tuple[float, float]:
        estimator = Train(SmallSpace(), digits, epochs=1, subset=0.3, seed=seed, augment=aug)
        result = estimator.evaluate(Candidate(2))
        return result.metrics["train_loss"], result.metrics["val_loss"]

    first = run(0)
    assert run(0) == first and run(1) != first


def test_augment_must_be_an_augmentation(digits: ImageDataset) -> None:
    with pytest.raises(ConfigError, match="augment must be an Augmentation"):
        Train(SmallSpace(), digits, augment={"flip": True})  # type: ignore[arg-type]


def test_train_pickles_with_its_knobs(digits: ImageDataset) -> None:
    estimator = Train(
        SmallSpace(),
        digits,
        epochs=2,
        resolution=12,
        augment=Augmentation(flip=True),
        early_stopping=StopAfter(1),
    )
    clone = pickle.loads(pickle.dumps(estimator))
    assert clone.describe() == estimator.describe() and clone.uses_context
    a, b = estimator.evaluate(Candidate(2)), clone.evaluate(Candidate(2))
    assert a.objective == b.objective and a.curve == b.curve


# --- early stopping ------------------------------------------------------------------------------


def test_stopper_ends_training_and_result_records_it(digits: ImageDataset) -> None:
    stopper = StopAfter(2)
    estimator = Train(SmallSpace(), digits, epochs=4, early_stopping=stopper)
    assert estimator.uses_context
    context = SearchContext(incumbent=90.0, curves=((50.0, 80.0),))
    result = estimator.evaluate(Candidate(4), context=context)
    assert [len(c[0]) for c in stopper.calls] == [1, 2]
    assert all(planned == 4 and seen is context for _, planned, seen in stopper.calls)
    assert result.metrics["epochs"] == 2 and result.metrics["stopped_early"] == 1.0
    assert len(result.curve) == 2 and result.curve == stopper.calls[-1][0]
    assert result.objective == result.curve[-1]
    assert all(0 <= v <= 100 for v in result.curve)
    assert result.fidelity == 4 and result.cost == result.metrics["train_seconds"] > 0


def test_stopper_that_never_fires_leaves_training_unchanged(digits: ImageDataset) -> None:
    never = StopAfter(99)
    watched = Train(SmallSpace(), digits, epochs=3, early_stopping=never).evaluate(Candidate(4))
    plain = Train(SmallSpace(), digits, epochs=3).evaluate(Candidate(4))
    # per-epoch validation must not disturb training: same seed, same network, same numbers
    assert watched.objective == plain.objective and watched.report == plain.report
    assert watched.metrics["val_loss"] == plain.metrics["val_loss"]
    assert watched.metrics["stopped_early"] == 0.0 and watched.metrics["epochs"] == 3
    assert len(watched.curve) == 3 and watched.curve[-1] == watched.objective
    assert len(never.calls) == 2  # not asked after the last planned epoch
    assert isinstance(never.calls[0][2], SearchContext)  # a default context when none is sent
    assert not Train(SmallSpace(), digits).uses_context


def test_stopped_curve_is_a_prefix_of_the_full_one(digits: ImageDataset) -> None:
    """The cosine schedule spans the planned epochs, so stopping only truncates the curve."""
    full = Train(SmallSpace(), digits, epochs=3, early_stopping=StopAfter(99))
    cut = Train(SmallSpace(), digits, epochs=3, early_stopping=StopAfter(1))
    assert cut.evaluate(Candidate(3)).curve == full.evaluate(Candidate(3)).curve[:1]


def test_context_travels_through_run_job(digits: ImageDataset) -> None:
    stopper = StopAfter(1)
    estimator = Train(SmallSpace(), digits, epochs=2, early_stopping=stopper)
    context = SearchContext(incumbent=42.0)
    outcome = run_job(estimator, Job(0, Candidate(2), context))
    assert outcome.result is not None and outcome.result.metrics["stopped_early"] == 1.0
    assert stopper.calls[0][2] is context


def test_stopper_must_have_should_stop(digits: ImageDataset) -> None:
    with pytest.raises(ConfigError, match="should_stop"):
        Train(SmallSpace(), digits, early_stopping=object())  # type: ignore[arg-type]
