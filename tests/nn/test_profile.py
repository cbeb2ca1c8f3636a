"""Profiling: parameter and MAC counts against hand computation and NAS-Bench-201's published
range, latency on the CPU."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn.profile import _percentile, count_macs, count_params, measure_latency
from nasforge.spaces.nb201 import NB201Space

ALL_CONV = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
#: kernel areas of the convolutions in each cell (every edge's op runs, even on a dead node)
KERNEL_AREAS = {ALL_CONV: [9] * 6, ALL_NONE: [], MIXED: [9, 1, 9]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_net() -> nn.Module:
    """conv 3->8 3x3 pad 1 on 5x5; grouped conv 8->8 3x3 stride 2 (groups 4); BN; linear."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 10),
    )


# by hand: outputs x (in_channels / groups) x kernel area, for each counted layer
SMALL_MACS = 8 * 5 * 5 * 3 * 9 + 8 * 3 * 3 * 2 * 9 + 10 * 72  # 5400 + 1296 + 720
SMALL_PARAMS = (8 * 3 * 9 + 8) + (8 * 2 * 9 + 8) + 2 * 8 + (72 * 10 + 10)


def test_counts_match_hand_computation() -> None:
    net = small_net()
    assert count_params(net) == SMALL_PARAMS == 1122
    assert count_macs(net, (3, 5, 5)) == SMALL_MACS == 7416
    assert count_macs(net, (2, 3, 5, 5)) == 2 * SMALL_MACS  # a batch counts every image


def test_frozen_parameters_count_only_when_asked() -> None:
    net = small_net()
    net[0].weight.requires_grad_(False)
    assert count_params(net) == SMALL_PARAMS - 8 * 3 * 9
    assert count_params(net, trainable_only=False) == SMALL_PARAMS


class Twice(nn.Module):
    """One linear layer applied twice, to a sequence of 4 vectors: counted per call."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x))


def test_a_layer_called_twice_counts_twice_and_sequences_count_every_position() -> None:
    assert count_macs(Twice(), (1, 4, 6)) == 2 * 4 * 6 * 6


def test_counting_leaves_the_model_as_it_was() -> None:
    net = small_net().train()
    count_macs(net, (3, 5, 5))
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    assert float(net[3].num_batches_tracked) == 0  # eval mode: BN statistics untouched


@pytest.mark.parametrize("arch", [ALL_CONV, ALL_NONE, MIXED])
@pytest.mark.parametrize(("c", "n", "channels", "classes"), [(16, 5, 3, 10), (4, 1, 1, 7)])
def test_nb201_parameters_agree_with_the_space(
    arch: str, c: int, n: int, channels: int, classes: int
) -> None:
    space = NB201Space()
    cell = space.from_string(arch)
    options = {"C": c, "N": n, "in_channels": channels, "num_classes": classes}
    assert count_params(space.build(cell, **options)) == space.param_count(cell, **options)


def nb201_macs(arch: str, c: int, n: int, side: int, channels: int, classes: int) -> int:
    """NB201's network by hand: a 3x3 stem conv; three stages of N cells (side, side/2, side/4;
    C, 2C, 4C channels) where each conv edge is a c->c conv at the stage's size; between stages
    a residual block of two 3x3 convs (the first of stride 2) and a 1x1 shortcut conv; a
    linear classifier."""
    total = side * side * c * channels * 9
    for stage in range(3):
        s, width = side // 2**stage, c * 2**stage
        total += n * sum(s * s * width * width * k for k in KERNEL_AREAS[arch])
        if stage:
            before = width // 2
            total += s * s * width * (before * 9 + width * 9 + before)
    return total + 4 * c * classes


@pytest.mark.parametrize("arch", [ALL_CONV, ALL_NONE, MIXED])
@pytest.mark.parametrize(("c", "n", "side", "channels"), [(16, 5, 32, 3), (4, 1, 8, 1)])
def test_nb201_macs_match_hand_computation(
    arch: str, c: int, n: int, side: int, channels: int
) -> None:
    space = NB201Space()
    net = space.build(space.from_string(arch), C=c, N=n, in_channels=channels, num_classes=10)
    assert count_macs(net, (channels, side, side)) == nb201_macs(arch, c, n, side, channels, 10)


def test_nb201_macs_span_the_benchmarks_published_range() -> None:
    """NAS-Bench-201 reports CIFAR-10 "FLOPs" (MACs) from about 7.78 M (no conv in the cell)
    to about 220.1 M (all 3x3 convs) for its C=16, N=5 networks on 32x32 images."""
    space = NB201Space()
    high = count_macs(space.build(space.from_string(ALL_CONV)), (3, 32, 32))
    low = count_macs(space.build(space.from_string(ALL_NONE)), (3, 32, 32))
    assert high / 1e6 == pytest.approx(220.11, abs=0.02)
    assert low / 1e6 == pytest.approx(7.78, abs=0.01)


class Sleeper(nn.Module):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.threads: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.append(torch.get_num_threads())
        time.sleep(self.seconds)
        return x


def test_latency_times_forward_passes_with_the_thread_setting() -> None:
    torch.set_num_threads(2)
    net = Sleeper(0.003).train()
    latency = measure_latency(net, (1, 4, 4), threads=1, warmup=2, repeats=5)
    assert set(latency) == {"median_ms", "p90_ms"}
    assert 3.0 <= latency["median_ms"] <= latency["p90_ms"]
    assert latency["median_ms"] < 100.0
    assert len(net.threads) == 7 and set(net.threads) == {1}
    assert torch.get_num_threads() == 2  # the caller's setting is restored
    assert net.training


def test_latency_of_a_real_network_is_positive() -> None:
    latency = measure_latency(small_net(), (3, 5, 5), repeats=5)
    assert 0 < latency["median_ms"] <= latency["p90_ms"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"repeats": 0}, "repeats must be an int >= 1"),
        ({"warmup": -1}, "warmup must be an int >= 0"),
        ({"threads": 0}, "threads must be an int >= 1"),
    ],
)
def test_latency_rejects_bad_settings(kwargs: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        measure_latency(small_net(), (3, 5, 5), **kwargs)


@pytest.mark.parametrize("shape", [(5,), (0, 5, 5), (1, 2, 3, 4, 5)])
def test_bad_input_shapes_are_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="input_shape"):
        count_macs(small_net(), shape)


def test_percentile_agrees_with_numpy() -> None:
    values = list(np.random.default_rng(0).random(17))
    for q in (0, 50, 90, 100):
        assert _percentile(values, q) == pytest.approx(np.percentile(values, q))
