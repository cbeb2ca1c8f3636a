"""The real-training estimator: a tiny stand-in space on digits, and an NB201 net on MNIST."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import require_data
from executors.estimators_for_tests import SplitDigests, split_digests
from nasforge.core import Candidate, Result
from nasforge.data.datasets import ImageDataset, from_arrays, load_dataset
from nasforge.errors import ConfigError
from nasforge.estimators.base import Estimator
from nasforge.estimators.train import Train
from nasforge.executors.base import Job
from nasforge.executors.pool import ProcessPoolExecutor
from nasforge.spaces.nb201 import NB201Space

RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


class TinySpace:
    """A stand-in space: an architecture is the width of a one-conv CNN (builds in microseconds)."""

    name = "tiny"

    def __init__(self) -> None:
        self.threads_seen: list[int] = []

    def build(self, arch: int, *, in_channels: int, num_classes: int, scale: int = 1) -> nn.Module:
        self.threads_seen.append(torch.get_num_threads())
        width = arch * scale
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(16 * width, num_classes),
        )


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits")


def test_trains_digits_and_keeps_test_accuracy_out_of_metrics(digits: ImageDataset) -> None:
    estimator = Train(TinySpace(), digits, epochs=3)
    assert isinstance(estimator, Estimator)
    result = estimator.evaluate(Candidate(8))
    assert 80 < result.objective <= 100  # percent, like NAS-Bench-201's tables
    assert set(result.metrics) == {
        *("params", "train_seconds", "train_loss", "val_loss", "epochs", "resolution", "subset")
    }
    assert result.curve == ()  # no early stopping: no per-epoch validation
    assert not any("test" in key for key in result.metrics)
    assert 0 <= result.report["test_acc"] <= 100 and "test_loss" in result.report
    assert result.for_strategy().report == {}
    net = TinySpace().build(8, in_channels=1, num_classes=10)
    assert result.metrics["params"] == sum(p.numel() for p in net.parameters())
    assert result.cost == result.metrics["train_seconds"] > 0
    assert result.fidelity == 3 and result.metrics["epochs"] == 3


def test_same_seed_same_result_and_caller_rng_untouched(digits: ImageDataset) -> None:
    state = torch.get_rng_state()
    first = Train(TinySpace(), digits, epochs=1, seed=5).evaluate(Candidate(4))
    assert torch.equal(torch.get_rng_state(), state)
    second = Train(TinySpace(), digits, epochs=1, seed=5).evaluate(Candidate(4))
    other = Train(TinySpace(), digits, epochs=1, seed=6).evaluate(Candidate(4))
    keys = ("val_loss", "train_loss")
    assert first.objective == second.objective and first.report == second.report
    assert [first.metrics[k] for k in keys] == [second.metrics[k] for k in keys]
    assert first.metrics["val_loss"] != other.metrics["val_loss"]


def test_fidelity_is_epochs_and_hook_sees_each_epoch(digits: ImageDataset) -> None:
    calls: list[tuple[int, float, float]] = []
    estimator = Train(TinySpace(), digits, epochs=3, on_epoch=lambda *a: calls.append(a))
    result = estimator.evaluate(Candidate(4, fidelity=2))
    assert [c[0] for c in calls] == [1, 2] and all(c[1] > 0 and c[2] > 0 for c in calls)
    assert result.fidelity == 2 and result.metrics["epochs"] == 2
    assert result.metrics["train_loss"] == calls[-1][1]


def test_hook_returning_true_stops_training(digits: ImageDataset) -> None:
    estimator = Train(TinySpace(), digits, epochs=3, on_epoch=lambda epoch, *_: epoch == 1)
    result = estimator.evaluate(Candidate(4))
    assert result.metrics["epochs"] == 1 and result.fidelity == 3


@pytest.mark.parametrize("fidelity", [0, -1, 1.5, float("nan"), float("inf")])
def test_bad_fidelity(digits: ImageDataset, fidelity: float) -> None:
    with pytest.raises(ConfigError, match="fidelity"):
        Train(TinySpace(), digits).evaluate(Candidate(4, fidelity=fidelity))


def test_net_options_reach_build_and_threads_are_restored(digits: ImageDataset) -> None:
    space, before = TinySpace(), torch.get_num_threads()
    small = Train(space, digits, epochs=1, threads=1).evaluate(Candidate(4))
    assert space.threads_seen == [1] and torch.get_num_threads() == before
    large = Train(space, digits, epochs=1, net={"scale": 2}).evaluate(Candidate(4))
    assert large.metrics["params"] > small.metrics["params"]
    with pytest.raises(ConfigError, match="in_channels"):
        Train(space, digits, net={"in_channels": 3})


def test_subset_trains_on_a_fraction_and_keeps_validation(digits: ImageDataset) -> None:
    full, half = Train(TinySpace(), digits), Train(TinySpace(), digits, subset=0.5)
    assert len(half.train_idx) == round(len(full.train_idx) / 2)
    assert torch.equal(full.val_idx, half.val_idx)
    assert not set(full.train_idx.tolist()) & set(full.val_idx.tolist())


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"epochs": 1.5},
        {"batch_size": 0},
        {"lr": 0},
        {"momentum": 1.0},
        {"momentum": 0.0},  # with nesterov=True
        {"weight_decay": -1e-4},
        {"val_fraction": 0.0},
        {"val_fraction": 1.0},
        {"subset": 0.0},
        {"subset": 1.5},
        {"threads": 0},
    ],
)
def test_rejects_bad_settings(digits: ImageDataset, bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Train(TinySpace(), digits, **bad)


# --- the required end-to-end check: a real NB201 network on real MNIST ---------------------------


@pytest.fixture
def mnist_runs(mnist_dir: Path) -> tuple[Result, Result]:
    """The ResNet-like NB201 cell (C=8, N=1), one epoch on 10% of MNIST, trained twice."""
    data = load_dataset("mnist", data_dir=mnist_dir.parent)
    space = NB201Space()
    estimator = Train(space, data, epochs=1, subset=0.1, net={"C": 8, "N": 1}, seed=0)
    candidate = Candidate(space.from_string(RESNET_CELL))
    return estimator.evaluate(candidate), estimator.evaluate(candidate)


@pytest.mark.slow
def test_nb201_on_mnist_learns_and_is_reproducible(mnist_runs: tuple[Result, Result]) -> None:
    first, second = mnist_runs
    assert first.objective > 60  # chance is 10%
    assert first.report["test_acc"] > 60
    assert first.metrics["params"] > 0 and first.metrics["epochs"] == 1
    assert "test_acc" not in first.metrics
    assert first.objective == second.objective and first.report == second.report
    assert first.metrics["val_loss"] == second.metrics["val_loss"]


# --- sent to worker processes: a description of the data, not the data ----------------------


def worker_digests(train: Train) -> dict[str, float]:
    """What a spawned pool worker that unpickled ``train`` trains and scores on (digests)."""
    with ProcessPoolExecutor(workers=1, threads_per_worker=1) as pool:
        pool.start(SplitDigests(train))
        pool.submit(Job(0, Candidate("any")))
        outcomes: list = []
        deadline = time.monotonic() + 600
        while not outcomes and time.monotonic() < deadline:
            outcomes = pool.wait(timeout=5.0)
    (outcome,) = outcomes
    assert outcome.error is None, outcome.error
    return dict(outcome.result.metrics)


@pytest.mark.slow
def test_train_on_cifar10_pickles_small_and_a_worker_reloads_the_same_split() -> None:
    require_data("cifar10/cifar-10-batches-py/data_batch_1")
    data = load_dataset("cifar10")
    assert data.train_x.numel() * 4 > 600_000_000  # what used to be pickled: 614 MB of pixels
    train = Train(NB201Space(), data, subset=0.5, resolution=16, seed=3)
    payload = pickle.dumps(train, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(payload) < 100_000
    del data, payload
    expected = split_digests(train)  # the driver's split, resized, as sha256 prefixes
    assert worker_digests(train) == expected


def test_a_worker_reloads_a_described_dataset_bit_for_bit(mnist_dir: Path) -> None:
    data = load_dataset("mnist", data_dir=mnist_dir.parent)
    train = Train(NB201Space(), data, subset=0.2, val_fraction=0.2, resolution=20, seed=5)
    assert len(pickle.dumps(train)) < 20_000
    assert worker_digests(train) == split_digests(train)


def test_data_built_in_memory_is_pickled_whole_and_still_trains(digits: ImageDataset) -> None:
    own = from_arrays(
        "own",
        (digits.train_x.numpy()[:200], digits.train_y.numpy()[:200]),
        (digits.test_x.numpy()[:50], digits.test_y.numpy()[:50]),
        classes=10,
        scale=1.0,
    )
    assert own.source is None  # nothing to load it again from: the fallback sends the arrays
    train = Train(TinySpace(), own, epochs=1, batch_size=32)
    copy = pickle.loads(pickle.dumps(train))
    assert torch.equal(copy.dataset.train_x, own.train_x) and copy.dataset is not own
    assert torch.equal(copy.train_idx, train.train_idx) and torch.equal(copy.val_idx, train.val_idx)
    assert copy.evaluate(Candidate(4)).objective == train.evaluate(Candidate(4)).objective
