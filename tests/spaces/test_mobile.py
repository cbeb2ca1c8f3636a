"""The MnasNet-style mobile space: strings, decisions, canonical forms, networks, real training."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.core import Candidate
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.estimators.train import Train
from nasforge.nn.blocks import MBConv
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.mobile import (
    BASE_STAGES,
    MOBILENETV2_BASE,
    MobileArch,
    MobileSpace,
    MobileStage,
    build,
    make_divisible,
    param_count,
)

SPACE = MobileSpace()
#: a small network (width 0.5, most stages one layer shorter) for the slower checks
SMALL = SPACE.from_string(
    "w0.5|mbconv1_k3_se0_skip_n+0|mbconv6_k3_se0.25_skip_n-1|mbconv3_k5_se0_skip_n-1"
    "|dwsep_k3_se0_noskip_n-1|mbconv6_k7_se0_skip_n-1|conv_k3_se0.25_skip_n-1"
    "|mbconv6_k3_se0_skip_n+0"
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def samples(n: int, seed: int = 0) -> list[MobileArch]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def with_stage(arch: MobileArch, index: int, **changes: object) -> MobileArch:
    stages = list(arch.stages)
    stages[index] = dataclasses.replace(stages[index], **changes)
    return MobileArch(tuple(stages), arch.width)


def decision_distance(a: MobileArch, b: MobileArch) -> int:
    da, db = SPACE.decisions().encode(a), SPACE.decisions().encode(b)
    return sum(x != y for x, y in zip(da, db, strict=True))


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_space_satisfies_the_protocol() -> None:
    assert isinstance(SPACE, SearchSpace)
    assert SPACE.name == "mobile"
    assert SPACE.size_options == {"channels": None, "cells": None}


# --- strings ------------------------------------------------------------------------------------


def test_base_string_and_round_trip() -> None:
    text = SPACE.to_string(MOBILENETV2_BASE)
    assert text == "w1.0|mbconv1_k3_se0_skip_n+0" + "|mbconv6_k3_se0_skip_n+0" * 6
    assert SPACE.from_string(text) == MOBILENETV2_BASE
    for arch in samples(200):
        assert SPACE.from_string(SPACE.to_string(arch)) == arch
    assert len({SPACE.to_string(a) for a in samples(200)}) == len(set(samples(200)))


BASE_TEXT = "w1.0|mbconv1_k3_se0_skip_n+0" + "|mbconv6_k3_se0_skip_n+0" * 6


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (BASE_TEXT.replace("w1.0", "w1"), "width"),
        (BASE_TEXT.replace("w1.0", "w0.6"), "width"),
        (BASE_TEXT.replace("mbconv1", "mbconv2"), "block"),
        (BASE_TEXT.replace("_k3_", "_k4_", 1), "kernel"),
        (BASE_TEXT.replace("_se0_", "_se0.5_", 1), "SE"),
        (BASE_TEXT.replace("_se0_", "_se0.0_", 1), "SE"),
        (BASE_TEXT.replace("_skip_", "_yes_", 1), "skip"),
        (BASE_TEXT.replace("n+0", "n0", 1), "delta"),
        (BASE_TEXT.replace("n+0", "n+2", 1), "delta"),
        (BASE_TEXT.rsplit("|", 1)[0], "parts"),
        (BASE_TEXT + "|mbconv6_k3_se0_skip_n+0", "parts"),
        (BASE_TEXT.replace("_skip_n+0", "_n+0", 1), "5"),
        ("", "parts"),
    ],
)
def test_from_string_is_strict(text: str, complaint: str) -> None:
    with pytest.raises(InvalidArchError, match=complaint) as err:
        SPACE.from_string(text)
    assert "expected" in str(err.value)  # and it says what is accepted


def test_arch_values_are_validated() -> None:
    stages = MOBILENETV2_BASE.stages
    with pytest.raises(InvalidArchError, match="7 stages"):
        MobileArch(stages[:6])
    with pytest.raises(InvalidArchError, match="width"):
        MobileArch(stages, width=0.6)
    with pytest.raises(InvalidArchError, match="kernel"):
        MobileStage(kernel=4)
    with pytest.raises(InvalidArchError, match="mbconv6"):
        MobileStage(block="fire")
    with pytest.raises(InvalidArchError, match="skip"):
        MobileStage(skip=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchError, match="MobileArch"):
        SPACE.to_string("w1.0")  # type: ignore[arg-type]
    assert hash(MobileArch(stages, 1)) == hash(MOBILENETV2_BASE)
    assert pickle.loads(pickle.dumps(SMALL)) == SMALL  # worker processes receive archs


# --- parameters ---------------------------------------------------------------------------------


def test_mobilenetv2_base_has_mobilenetv2_parameter_count() -> None:
    net = build(MOBILENETV2_BASE, num_classes=1000)
    count = n_params(net)
    # MobileNetV2 1.0: 3.4 M in the paper, 3,504,872 in torchvision's reference implementation
    assert count == 3_504_872
    assert abs(count - 3.45e6) < 0.1e6
    assert param_count(MOBILENETV2_BASE, num_classes=1000) == count
    blocks = [m for m in net.modules() if isinstance(m, MBConv)]
    assert len(blocks) == sum(n for _, _, n, _ in BASE_STAGES) == 17
    assert sum(b.use_residual for b in blocks) == 10  # MobileNetV2's 10 shortcuts


@pytest.mark.parametrize(
    "net", [{}, {"in_channels": 1, "num_classes": 7, "input_size": 8}, {"num_classes": 100}]
)
def test_analytic_param_count_matches_the_built_network(net: dict) -> None:
    for arch in samples(8, seed=len(net)):
        assert SPACE.param_count(arch, **net) == n_params(SPACE.build(arch, **net))


def test_channels_round_like_mobilenetv2() -> None:
    assert [make_divisible(c * 0.75) for c in (32, 16, 24, 320)] == [24, 16, 24, 240]
    assert make_divisible(160 * 0.5) == 80 and make_divisible(16 * 0.5) == 8
    assert make_divisible(100 * 0.35) == 32  # rounding down loses <= 10%: 35 -> 32
    small = SPACE.param_count(with_width(MOBILENETV2_BASE, 0.5))
    large = SPACE.param_count(with_width(MOBILENETV2_BASE, 1.25))
    assert small < SPACE.param_count(MOBILENETV2_BASE) < large


def with_width(arch: MobileArch, width: float) -> MobileArch:
    return MobileArch(arch.stages, width)


# --- decisions, moves, encodings ----------------------------------------------------------------


def test_every_decision_sequence_decodes_to_a_valid_arch() -> None:
    decisions = SPACE.decisions()
    assert decisions.choices == (4,) + (5, 3, 2, 2, 3) * 7
    rng = np.random.default_rng(1)
    for _ in range(300):
        seq = tuple(int(rng.integers(c)) for c in decisions.choices)
        arch = decisions.decode(seq)
        assert isinstance(arch, MobileArch)
        assert decisions.encode(arch) == seq
    corners = [tuple(0 for _ in decisions.choices), tuple(c - 1 for c in decisions.choices)]
    assert all(isinstance(decisions.decode(s), MobileArch) for s in corners)
    with pytest.raises(InvalidArchError, match="accepted"):
        decisions.decode((4,) + (0,) * 35)


def test_encodings() -> None:
    arch = SMALL
    index = SPACE.encode(arch, "index")
    assert index.tolist() == list(SPACE.decisions().encode(arch))
    onehot = SPACE.encode(arch, "onehot")
    assert onehot.shape == (4 + 7 * 15,) and onehot.sum() == 36
    assert not np.array_equal(onehot, SPACE.encode(MOBILENETV2_BASE))
    with pytest.raises(UnknownNameError, match="onehot"):
        SPACE.encode(arch, "path")


def test_canonical_merges_choices_without_effect_and_is_idempotent() -> None:
    for arch in samples(300, seed=2):
        key = SPACE.canonical(arch)
        assert SPACE.canonical(key) == key
        assert key.layers == arch.layers
    # stage 1 has one base layer: delta -1 is still one layer, and skip has nothing to skip
    twin = with_stage(with_stage(MOBILENETV2_BASE, 0, delta=-1, skip=False), 6, skip=False)
    assert twin != MOBILENETV2_BASE
    assert SPACE.canonical(twin) == SPACE.canonical(MOBILENETV2_BASE) == MOBILENETV2_BASE
    # ... but where a choice changes the network, the forms stay apart
    for changed in (
        with_stage(MOBILENETV2_BASE, 1, skip=False),  # two layers: the second loses its shortcut
        with_stage(MOBILENETV2_BASE, 0, delta=1),
        with_stage(MOBILENETV2_BASE, 3, delta=-1),
        with_stage(MOBILENETV2_BASE, 0, se=0.25),
    ):
        assert SPACE.canonical(changed) != MOBILENETV2_BASE


def test_canonical_twins_compute_the_same_function() -> None:
    arch = with_stage(with_stage(SMALL, 0, delta=-1, skip=False), 6, skip=False)
    assert SPACE.canonical(arch) == SPACE.canonical(SMALL) and arch != SMALL
    a, b = SPACE.build(arch, input_size=16).eval(), SPACE.build(SMALL, input_size=16).eval()
    b.load_state_dict(a.state_dict())  # same parameters, same shapes
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(a(x), b(x))


def test_mutate_changes_the_network_by_one_decision() -> None:
    rng = np.random.default_rng(3)
    for arch in samples(100, seed=4):
        child = SPACE.mutate(arch, rng)
        assert decision_distance(arch, child) == 1
        assert SPACE.canonical(child) != SPACE.canonical(arch)


def test_neighbours_are_every_distinct_single_change() -> None:
    base = SPACE.neighbours(MOBILENETV2_BASE)
    # 3 widths + 7 stages x (4 blocks + 2 kernels + 1 SE + 1 skip + 2 deltas) = 73, minus the
    # skip and delta -1 changes on the two one-layer stages, which are canonical twins
    assert len(base) == 73 - 4
    assert base == SPACE.neighbours(MOBILENETV2_BASE)  # deterministic
    for arch in [MOBILENETV2_BASE, *samples(20, seed=5)]:
        around = SPACE.neighbours(arch)
        keys = [SPACE.canonical(n) for n in around]
        assert len(set(keys)) == len(keys)
        assert SPACE.canonical(arch) not in keys
        assert all(decision_distance(arch, n) == 1 for n in around)


def test_crossover_takes_each_stage_from_a_parent() -> None:
    rng = np.random.default_rng(6)
    a, b = samples(2, seed=7)
    children = [SPACE.crossover(a, b, rng) for _ in range(30)]
    for child in children:
        assert child.width in (a.width, b.width)
        assert all(c in (x, y) for c, x, y in zip(child.stages, a.stages, b.stages, strict=True))
    assert len(set(children)) > 2


# --- networks -----------------------------------------------------------------------------------


def test_stage_layers_and_shortcuts_follow_the_arch() -> None:
    net = SPACE.build(SMALL)
    for stage, module, layers in zip(SMALL.stages, net.stages, SMALL.layers, strict=True):
        assert len(module) == layers
        assert [bool(b.use_residual) for b in module] == [False] + [stage.skip] * (layers - 1)


@pytest.mark.parametrize("size", [8, 28, 32, 224])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_shapes(size: int, channels: int) -> None:
    net = SPACE.build(SMALL, in_channels=channels, num_classes=5, input_size=size)
    out = net(torch.randn(2, channels, size, size))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_small_inputs_keep_their_resolution() -> None:
    x = torch.randn(2, 3, 32, 32)
    cifar = SPACE.build(SMALL, input_size=32).eval()
    imagenet = SPACE.build(SMALL).eval()
    with torch.no_grad():
        # strides 1,1 (stem, stage 2) then 2,2,2: 32 -> 4; the ImageNet layout reaches 1 x 1
        assert cifar.stages(cifar.stem(x)).shape[-1] == 4
        assert imagenet.stages(imagenet.stem(x)).shape[-1] == 1
    assert SPACE.param_count(SMALL, input_size=32) == SPACE.param_count(SMALL)


@pytest.mark.parametrize(
    "bad",
    [
        {"in_channels": 0},
        {"num_classes": 0},
        {"input_size": 0},
        {"dropout": 1.0},
        {"input_size": "8"},
    ],
)
def test_bad_build_options_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        SPACE.build(SMALL, **bad)


@pytest.mark.slow
def test_small_arch_learns_digits_in_one_epoch() -> None:
    data = load_dataset("digits")
    estimator = Train(
        SPACE, data, epochs=1, batch_size=16, lr=0.02, net={"input_size": 8}, threads=1, seed=0
    )
    result = estimator.evaluate(Candidate(SMALL))
    assert result.objective > 40  # chance is 10%
    assert result.report["test_acc"] > 40
    assert result.metrics["params"] == SPACE.param_count(SMALL, in_channels=1, input_size=8)
