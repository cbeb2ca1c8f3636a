"""Compound scaling: checked against facts computed here, independently of the code under test
(the mobile space's own parameter count and network, pointwise MACs by hand from its plan,
ceil(d·n) layer counts, brute-force scans in place of bisection, the α·β²·γ² filter by hand)."""

from __future__ import annotations

import math
from itertools import pairwise, product

import pytest
import torch
from torch import nn

from nasforge.compress.finetune import accuracy
from nasforge.compress.scaling import (
    DEFAULT_GRID,
    PAPER_COEFFICIENTS,
    Recipe,
    Scaling,
    compound,
    grid_candidates,
    grid_search,
    network_macs,
    repeats,
    resize_images,
    scaled_network,
    single_dimension,
    train_scaled,
)
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError
from nasforge.nn.profile import count_macs, count_params
from nasforge.spaces import mobile

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: MobileNetV2 at width 0.5: channels 16 | 8, 16, 16, 32, 48, 80, 160 | 1280, all multiples of 8
HALF = mobile.MobileArch(mobile.MOBILENETV2_BASE.stages, 0.5)
#: every block type, SE, a stage without skips and layer deltas (layers 1, 1, 4, 5, 2, 3, 1)
MIXED = mobile.from_string(
    "w0.75|mbconv1_k3_se0.25_skip_n+0|mbconv6_k5_se0_noskip_n-1|mbconv3_k3_se0.25_skip_n+1|"
    "dwsep_k3_se0_noskip_n+1|conv_k3_se0.25_skip_n-1|mbconv6_k7_se0.25_skip_n+0|"
    "mbconv1_k3_se0_skip_n+0"
)
NET = {"in_channels": 1, "num_classes": 10}


def build(arch: mobile.MobileArch, scaling: Scaling, base: int) -> nn.Module:
    return scaled_network(arch, scaling, base_resolution=base, **NET)


@pytest.mark.parametrize("arch", [HALF, MIXED], ids=["mobilenetv2-0.5", "mixed"])
@pytest.mark.parametrize("size", [8, 64], ids=["small-layout", "imagenet-layout"])
def test_unit_scaling_is_exactly_the_spaces_own_network(arch: mobile.MobileArch, size: int) -> None:
    scaled = build(arch, Scaling(resolution=size), size)
    reference = mobile.build(arch, input_size=size, **NET)
    assert count_params(scaled) == mobile.param_count(arch, input_size=size, **NET)
    shapes = [tuple(p.shape) for p in scaled.parameters()]
    assert shapes == [tuple(p.shape) for p in reference.parameters()]
    shape = (1, size, size)
    assert count_macs(scaled, shape) == count_macs(reference, shape)


def pointwise_macs_by_hand(arch: mobile.MobileArch, size: int, factor: int) -> int:
    """MACs of the 1x1 convs (MBConv expansions and projections, the head) of ``arch`` with
    every channel count times ``factor``, from the space's plan: an expansion runs at the
    block's input side, a projection at its output side (the depthwise conv carries the
    stride, rounding up)."""
    plan = mobile.plan_of(arch, size)
    side = math.ceil(size / plan.stem_stride)
    total = 0
    for layer in (layer for layers in plan.stages for layer in layers):
        t = {"mbconv1": 1, "mbconv6": 6}[layer.block]
        c_in, hidden, c_out = factor * layer.c_in, factor * layer.c_in * t, factor * layer.c_out
        out = math.ceil(side / layer.stride)
        total += (side * side * c_in * hidden if t > 1 else 0) + out * out * hidden * c_out
        side = out
    return total + side * side * factor * plan.stages[-1][-1].c_out * factor * plan.head


def measured_pointwise_macs(net: nn.Module, size: int) -> int:
    total = 0

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_channels

    pointwise = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    handles = [m.register_forward_hook(hook) for m in pointwise]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 1, size, size))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("size", [8, 20])
def test_doubling_the_width_quadruples_the_pointwise_macs(size: int) -> None:
    by_hand = pointwise_macs_by_hand(HALF, size, 1)
    assert measured_pointwise_macs(build(HALF, Scaling(resolution=size), size), size) == by_hand
    wide = build(HALF, Scaling(resolution=size, width=2.0), size)
    assert measured_pointwise_macs(wide, size) == pointwise_macs_by_hand(HALF, size, 2)
    assert pointwise_macs_by_hand(HALF, size, 2) == 4 * by_hand
    # the depthwise convs and the classifier only double; the stem's input stays 1 channel
    assert wide.classifier.in_features == 2 * 1280
    assert wide.stem[0].out_channels == 32 and wide.stem[0].in_channels == 1


def test_width_rounds_channels_to_multiples_of_eight_as_mobilenetv2_does() -> None:
    net = build(HALF, Scaling(resolution=8, width=1.1), 8)
    # 8, 16, 16, 32, 48, 80, 160 times 1.1 = 8.8, 17.6, 17.6, 35.2, 52.8, 88, 176: nearest
    # multiple of 8, never more than 10% below
    outputs = [stage[0].project[0].out_channels for stage in net.stages]
    assert outputs == [8, 16, 16, 32, 56, 88, 176]
    assert net.stem[0].out_channels == 16 and net.head[0].out_channels == 1408


@pytest.mark.parametrize("depth", [1.5, 0.5, 2.2])
def test_depth_repeats_every_stage_ceil_depth_times_its_layers(depth: float) -> None:
    net = build(MIXED, Scaling(resolution=16, depth=depth), 16)
    base = mobile.build(MIXED, input_size=16, **NET)
    expected = [max(1, math.ceil(depth * n)) for n in MIXED.layers]
    assert [len(stage) for stage in net.stages] == expected
    assert MIXED.layers == (1, 1, 4, 5, 2, 3, 1)
    for stage, base_stage, choice in zip(net.stages, base.stages, MIXED.stages, strict=True):
        # the first layer keeps the stage's stride and input; added layers are its later layers
        first_convs = [tuple(m.stride) for m in stage[0].modules() if isinstance(m, nn.Conv2d)]
        base_convs = [tuple(m.stride) for m in base_stage[0].modules() if isinstance(m, nn.Conv2d)]
        assert first_convs == base_convs
        for block in stage[1:]:
            assert all(m.stride == (1, 1) for m in block.modules() if isinstance(m, nn.Conv2d))
            assert block.use_residual == choice.skip


def test_depth_rounding_ignores_float_noise() -> None:
    assert 2.2 * 25 > 55 and 1.1**2 * 100 > 121  # 55.00000000000001, 121.00000000000001
    assert repeats(25, 2.2) == 55 and repeats(100, 1.1**2) == 121
    assert repeats(4, 1.2) == 5 and repeats(1, 1.2) == 2 and repeats(3, 0.1) == 1


def test_compound_scaling_is_alpha_beta_gamma_to_the_phi() -> None:
    alpha, beta, gamma = PAPER_COEFFICIENTS
    for phi in (0, 1, 2, 3, 1.5):
        scaling = compound(phi, alpha, beta, gamma, 16)
        assert math.isclose(scaling.depth, 1.2**phi)
        assert math.isclose(scaling.width, 1.1**phi)
        assert scaling.resolution == round(16 * 1.15**phi)
    assert compound(2, alpha, beta, gamma, 224).resolution == 296  # 224 * 1.3225 = 296.24
    assert compound(0, alpha, beta, gamma, 16) == Scaling(resolution=16)


def test_a_larger_resolution_keeps_the_base_layout() -> None:
    """Base 48 has the small-input layout (stride-1 stem); at 96 pixels the space alone would
    switch to ImageNet strides, the scaled network must not: every feature map doubles, so the
    convolutions' MACs grow exactly 4x (the classifier's do not)."""
    net = build(HALF, Scaling(resolution=96), 48)
    assert net.stem[0].stride == (1, 1)
    assert mobile.build(HALF, input_size=96, **NET).stem[0].stride == (2, 2)
    classifier = 1280 * 10
    assert count_macs(net, (1, 96, 96)) - classifier == 4 * (
        count_macs(net, (1, 48, 48)) - classifier
    )
    assert build(HALF, Scaling(resolution=32), 64).stem[0].stride == (2, 2)


def at(kind: str, value: float, base: int) -> Scaling:
    if kind == "resolution":
        return Scaling(resolution=int(value))
    return Scaling(resolution=base, **{kind: value})


def depth_breakpoints(layers: tuple[int, ...], top: int) -> list[float]:
    """Every depth at which some stage gains a layer (k/n), up to ``top``: ceil(d·n) is constant
    between them, so these values build every distinct deeper network."""
    return sorted({k / n for n in layers for k in range(n, top * n + 1)})


SCANS = {
    "width": [1.0 + 0.02 * i for i in range(61)],
    "depth": depth_breakpoints(HALF.layers, 4),
    "resolution": list(range(8, 25)),
}


@pytest.mark.parametrize("kind", ["width", "depth", "resolution"])
def test_single_dimension_baselines_match_the_target_as_closely_as_rounding_allows(
    kind: str,
) -> None:
    """The MACs of one dimension grow in steps (channels in 8s, whole layers, whole pixels), so
    no multiplier hits an arbitrary target exactly: the tolerance is half the step the MACs
    take across the target. A brute-force scan of the multiplier (every distinct network, for
    depth) shows MACs never falling as it grows, and no scanned value nearer the target (in
    ratio) than the bisection's answer."""
    base = 8
    macs = [network_macs(HALF, at(kind, v, base), base_resolution=base, **NET) for v in SCANS[kind]]
    assert all(a <= b for a, b in pairwise(macs)), "MACs not monotone"
    found_values = []
    for growth in (1.7, 2.6):
        target = round(macs[0] * growth)
        assert macs[0] < target < macs[-1]
        found = single_dimension(kind, target, HALF, base_resolution=base, **NET)
        got = network_macs(HALF, found, base_resolution=base, **NET)
        error = abs(math.log(got / target))
        assert error <= min(abs(math.log(m / target)) for m in macs) + 1e-12
        below, above = max(m for m in macs if m <= target), min(m for m in macs if m >= target)
        assert error <= math.log(above / below) / 2 + 1e-12
        found_values.append(getattr(found, kind))
        others = {"depth": 1.0, "width": 1.0, "resolution": base}
        assert all(getattr(found, k) == v for k, v in others.items() if k != kind)
    assert found_values[0] < found_values[1]


def test_grid_keeps_exactly_the_points_near_two() -> None:
    for tolerance in (0.05, 0.1, 0.3):
        by_hand = [
            (a, b, g)
            for a, b, g in product(*DEFAULT_GRID)
            if abs(a * b * b * g * g - 2.0) <= tolerance
        ]
        assert grid_candidates(DEFAULT_GRID, tolerance) == by_hand
    small = ((1.2, 2.0), (1.0, 1.1), (1.0, 1.15))  # 1.2*1.1^2*1.15^2 = 1.920; 2*1*1 = 2
    assert grid_candidates(small, 0.1) == [(1.2, 1.1, 1.15), (2.0, 1.0, 1.0)]
    assert grid_candidates(small, 0.05) == [(2.0, 1.0, 1.0)]
    assert PAPER_COEFFICIENTS in grid_candidates(DEFAULT_GRID, 0.1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: Scaling(resolution=16, width=0),
        lambda: Scaling(resolution=16, width=-1.0),
        lambda: Scaling(resolution=16, depth=0.0),
        lambda: Scaling(resolution=16, depth=math.nan),
        lambda: Scaling(resolution=7),
        lambda: Scaling(resolution=16.5),
        lambda: compound(1, 0.0, 1.1, 1.15, 16),
        lambda: compound(-1, 1.2, 1.1, 1.15, 16),
        lambda: compound(1, 1.2, 1.1, 1.15, 4),
        lambda: grid_candidates(((1.0, 1.1), (1.0,), (1.0, 1.05)), 0.1),
        lambda: grid_candidates(((0.5, 2.0), (1.0,), (1.0,)), 0.1),
        lambda: grid_candidates(((2.0,), (1.0,)), 0.1),
        lambda: single_dimension("height", 10**6, HALF, base_resolution=8, **NET),
        lambda: single_dimension("width", 0, HALF, base_resolution=8, **NET),
        lambda: single_dimension("depth", 10**15, HALF, base_resolution=8, **NET),
        lambda: single_dimension("resolution", 10, HALF, base_resolution=8, **NET),
        lambda: Recipe(dropout=1.0),
        lambda: scaled_network("w0.5", Scaling(resolution=8), base_resolution=8, **NET),
    ],
    ids=[
        "width-0",
        "width-negative",
        "depth-0",
        "depth-nan",
        "resolution-7",
        "resolution-float",
        "alpha-0",
        "phi-negative",
        "base-resolution-4",
        "grid-far-from-2",
        "grid-below-1",
        "grid-two-lists",
        "unknown-kind",
        "target-0",
        "target-too-large",
        "target-too-small",
        "dropout-1",
        "arch-not-a-mobile-arch",
    ],
)
def test_bad_inputs_are_one_line_config_errors(call) -> None:
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and ("accepted" in message or "must be" in message)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_grid_search_ranks_on_a_validation_split_and_trains_each_network_once(digits) -> None:
    """α 1.95 and 2, γ 1 and 1.05 build the same network at 8 pixels (ceil(1.95 n) = 2n for
    n <= 4, round(8 * 1.05) = 8): trained once, scored alike. Only training images are given,
    so the test images cannot reach the choice."""
    x, y = digits.train_x[:200], digits.train_y[:200]
    grid = ((1.0, 1.95, 2.0), (1.0,), (1.0, 1.05, 1.41))
    seen = []
    points = grid_search(
        HALF,
        x,
        y,
        base_resolution=8,
        num_classes=10,
        grid=grid,
        tolerance=0.2,
        recipe=Recipe(epochs=1, batch_size=32),
        progress=lambda done, total, point: seen.append((done, total)),
    )
    candidates = {(p.alpha, p.beta, p.gamma) for p in points}
    assert candidates == {(1.95, 1.0, 1.0), (1.95, 1.0, 1.05), (2.0, 1.0, 1.0), (1.0, 1.0, 1.41)}
    assert seen == [(i, 4) for i in range(1, 5)]
    deep = [p for p in points if p.alpha > 1]
    assert sum(p.trained for p in deep) == 1
    assert len({(p.val_accuracy, p.macs, p.params) for p in deep}) == 1
    wide_image = next(p for p in points if p.alpha == 1.0)
    assert wide_image.scaling.resolution == 11 and wide_image.trained
    keys = [(-p.val_accuracy, p.macs) for p in points]
    assert keys == sorted(keys)
    # 20% of 200 validate: accuracies are multiples of 1/40
    for p in points:
        assert math.isclose(p.val_accuracy * 0.4, round(p.val_accuracy * 0.4), abs_tol=1e-4)


def test_a_scaled_network_trains_reproducibly_and_learns(digits) -> None:
    scaling = Scaling(resolution=10, width=1.2, depth=1.2)
    x, y = digits.train_x[:64], digits.train_y[:64]
    options = {"base_resolution": 8, "num_classes": 10, "recipe": Recipe(epochs=1, batch_size=16)}
    first = train_scaled(HALF, scaling, x, y, seed=3, **options)
    again = train_scaled(HALF, scaling, x, y, seed=3, **options)
    other = train_scaled(HALF, scaling, x, y, seed=4, **options)
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.classifier.weight, other.classifier.weight)
    recipe = Recipe(epochs=4, lr=0.02, batch_size=16)
    x, y = digits.train_x[:300], digits.train_y[:300]
    net = train_scaled(
        HALF, Scaling(resolution=10), x, y, base_resolution=8, num_classes=10, recipe=recipe
    )
    test_x = resize_images(digits.test_x, 10)
    assert test_x.shape == (len(digits.test_x), 1, 10, 10)
    assert accuracy(net, test_x, digits.test_y) > 50.0  # chance is 10%
