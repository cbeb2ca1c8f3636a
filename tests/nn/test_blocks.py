"""Lightweight blocks: shapes, hand-computed parameter counts, shuffles, residuals, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ConfigError, UnknownNameError
from nasforge.nn.blocks import (
    BLOCK_OPS,
    AsymmetricConv,
    ChannelShuffle,
    DepthwiseSeparableConv,
    Fire,
    HSigmoid,
    HSwish,
    MBConv,
    ShuffleV1Unit,
    ShuffleV2Unit,
    SqueezeExcite,
    channel_shuffle,
    make_activation,
)
from nasforge.nn.ops import make_op, op_names


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def bn(c: int) -> int:  # BatchNorm scale and shift
    return 2 * c


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same random state."""
    torch.manual_seed(0)


# --- activations ------------------------------------------------------------------------------


def test_hard_activations_follow_the_mobilenetv3_formulas() -> None:
    x = torch.linspace(-5, 5, 101)
    expected_sigmoid = torch.clamp(x + 3, 0, 6) / 6
    assert torch.allclose(HSigmoid()(x), expected_sigmoid)
    assert torch.allclose(HSwish()(x), x * expected_sigmoid)
    assert torch.equal(HSigmoid()(torch.tensor([-4.0, 4.0])), torch.tensor([0.0, 1.0]))
    assert isinstance(make_activation("relu6"), nn.ReLU6)
    with pytest.raises(UnknownNameError, match="hswish"):
        make_activation("gelu")


# --- depthwise separable ------------------------------------------------------------------------


@pytest.mark.parametrize(("c_in", "c_out", "k"), [(8, 16, 3), (16, 16, 5), (3, 32, 7)])
def test_depthwise_separable_parameter_count(c_in: int, c_out: int, k: int) -> None:
    block = DepthwiseSeparableConv(c_in, c_out, k)
    assert params(block) == k * k * c_in + bn(c_in) + c_in * c_out + bn(c_out)
    # far fewer weights than the dense conv it replaces
    assert params(block) < k * k * c_in * c_out


@pytest.mark.parametrize(("stride", "size", "side"), [(1, 8, 8), (2, 8, 4), (2, 7, 4)])
def test_depthwise_separable_shapes(stride: int, size: int, side: int) -> None:
    out = DepthwiseSeparableConv(4, 6, 3, stride)(torch.randn(2, 4, size, size))
    assert out.shape == (2, 6, side, side)


# --- squeeze-and-excitation ---------------------------------------------------------------------


def test_squeeze_excite_parameters_and_channel_gating() -> None:
    se = SqueezeExcite(64, ratio=1 / 16)  # Hu et al.'s reduction r = 16
    squeeze = 4
    assert params(se) == 64 * squeeze + squeeze + squeeze * 64 + 64
    x = torch.rand(2, 64, 5, 5) + 0.1
    scale = se(x) / x
    # one gate per (image, channel), strictly between 0 and 1, the same at every position
    assert torch.all((scale > 0) & (scale < 1))
    assert torch.allclose(scale, scale[:, :, :1, :1].expand_as(scale), atol=1e-6)
    assert not torch.allclose(scale[:, 0], scale[:, 1])
    with pytest.raises(ConfigError, match="ratio"):
        SqueezeExcite(8, ratio=0.0)


# --- MBConv -------------------------------------------------------------------------------------


def test_mbconv_parameter_count_by_hand() -> None:
    # 8 -> 8 channels, expansion 6 (hidden 48), 3x3
    hidden = 48
    expand = 8 * hidden + bn(hidden)
    depthwise = 9 * hidden + bn(hidden)
    project = hidden * 8 + bn(8)
    assert params(MBConv(8, 8, 3, 1, 6)) == expand + depthwise + project
    # SE squeezes to 0.25 * c_in = 2 channels and acts on the 48 expanded ones
    se = hidden * 2 + 2 + 2 * hidden + hidden
    assert params(MBConv(8, 8, 3, 1, 6, se_ratio=0.25)) == expand + depthwise + project + se
    # expansion 1 has no 1x1 expansion conv (MobileNetV2's first block), 5x5 depthwise
    assert params(MBConv(16, 24, 5, 2, 1)) == 25 * 16 + bn(16) + 16 * 24 + bn(24)


def zero_last_bn(block: nn.Module) -> None:
    last = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


@pytest.mark.parametrize(
    ("make", "residual"),
    [
        (lambda: MBConv(8, 8, 3, 1, 6), True),
        (lambda: MBConv(8, 8, 3, 1, 6, residual=False), False),
        (lambda: MBConv(8, 16, 3, 1, 6), False),
        (lambda: MBConv(8, 8, 3, 2, 6), False),
        (lambda: DepthwiseSeparableConv(8, 8, final_act=False, residual=True), True),
        (lambda: DepthwiseSeparableConv(8, 8, final_act=False), False),
    ],
)
def test_residual_path_present_exactly_when_expected(make, residual: bool) -> None:
    block = make().eval()
    assert block.use_residual is residual
    zero_last_bn(block)  # the branch now outputs zeros: only a shortcut can carry the input
    x = torch.randn(2, 8, 6, 6)
    out = block(x)
    if residual:
        assert torch.allclose(out, x)
    else:
        assert torch.count_nonzero(out) == 0


def test_impossible_residual_and_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="residual"):
        MBConv(8, 8, 3, 2, 6, residual=True)
    with pytest.raises(ConfigError, match="stride"):
        MBConv(8, 8, 3, 3)
    with pytest.raises(ConfigError, match="odd"):
        MBConv(8, 8, 4)
    with pytest.raises(UnknownNameError, match="relu6"):
        MBConv(8, 8, act="tanh")


# --- ShuffleNet ---------------------------------------------------------------------------------


def test_channel_shuffle_interleaves_groups() -> None:
    channels, groups = 12, 3
    x = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1).repeat(2, 1, 2, 2)
    out = channel_shuffle(x, groups)
    order = out[0, :, 0, 0].long().tolist()
    assert sorted(order) == list(range(channels))  # a permutation
    # the first channel of each group, then the second of each, ...
    assert order == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert torch.equal(out[:, :, 1, 1], out[:, :, 0, 0])  # same at every position
    # shuffling with the transposed grouping undoes it
    assert torch.equal(ChannelShuffle(channels // groups)(out), x)
    with pytest.raises(ConfigError, match="divisible"):
        channel_shuffle(x, 5)


def test_shufflenet_v1_unit_shapes_and_parameters() -> None:
    unit = ShuffleV1Unit(24, 24, 1, groups=3)
    mid = 6  # c_out // 4
    compress = 24 * mid // 3 + bn(mid)
    depthwise = 9 * mid + bn(mid)
    expand = mid * 24 // 3 + bn(24)
    assert params(unit) == compress + depthwise + expand
    assert unit(torch.randn(2, 24, 7, 7)).shape == (2, 24, 7, 7)
    down = ShuffleV1Unit(24, 48, 2, groups=3)  # the branch makes 48 - 24 channels
    mid = 12
    assert params(down) == 24 * mid // 3 + bn(mid) + 9 * mid + bn(mid) + mid * 24 // 3 + bn(24)
    assert down(torch.randn(2, 24, 7, 7)).shape == (2, 48, 4, 4)
    with pytest.raises(ConfigError, match="groups"):
        ShuffleV1Unit(24, 24, 1, groups=5)


def test_shufflenet_v2_unit_keeps_half_the_channels_untouched() -> None:
    unit = ShuffleV2Unit(16, 16, 1)
    half = 8
    # the branch on one half: 1x1, 3x3 depthwise, 1x1, each with BN; the other half is free
    assert params(unit) == (half * half + bn(half)) + (9 * half + bn(half)) + (
        half * half + bn(half)
    )
    x = torch.randn(2, 16, 5, 5)
    out = unit(x)
    assert out.shape == x.shape
    # after the 2-group shuffle the even channels are the untouched first half of the input
    assert torch.equal(out[:, 0::2], x[:, :half])
    down = ShuffleV2Unit(16, 32, 2)
    assert down(torch.randn(2, 16, 7, 7)).shape == (2, 32, 4, 4)
    with pytest.raises(ConfigError, match="c_in == c_out"):
        ShuffleV2Unit(16, 32, 1)


# --- Fire and asymmetric convolutions -----------------------------------------------------------


def test_fire_module_shapes_and_parameters() -> None:
    fire = Fire(16, squeeze=4, expand1x1=8, expand3x3=12)
    assert params(fire) == (16 * 4 + 4) + (4 * 8 + 8) + (9 * 4 * 12 + 12)
    out = fire(torch.randn(2, 16, 7, 7))
    assert out.shape == (2, 20, 7, 7)
    assert torch.all(out >= 0)


def test_asymmetric_conv_sees_a_full_k_by_k_window() -> None:
    k = 7
    conv = AsymmetricConv(3, 4, k).eval()
    assert params(conv) == k * 3 * 4 + k * 4 * 4 + bn(4)
    x = (torch.rand(1, 3, 15, 15) + 0.1).requires_grad_()  # positive: the leading ReLU passes all
    conv(x)[0, :, 7, 7].sum().backward()
    support = (x.grad.abs().sum(dim=1)[0] > 0).nonzero()
    rows, cols = support[:, 0], support[:, 1]
    # the 1x7 then 7x1 pair reaches exactly the 7x7 square around the output pixel
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 10, 4, 10)
    assert len(support) == k * k
    assert AsymmetricConv(3, 4, k, 2)(torch.randn(2, 3, 7, 7)).shape == (2, 4, 4, 4)


# --- every block trains -------------------------------------------------------------------------

TRAINABLE = {
    "dwsep": (lambda: DepthwiseSeparableConv(4, 8, 3), 4, 8),
    "mbconv_se_hswish": (lambda: MBConv(4, 8, 5, 1, 3, se_ratio=0.25, act="hswish"), 4, 8),
    "mbconv_residual": (lambda: MBConv(8, 8, 3, 1, 6), 8, 8),
    "se": (lambda: nn.Sequential(nn.Conv2d(4, 8, 1), SqueezeExcite(8, 0.5)), 4, 8),
    "shuffle_v1": (lambda: ShuffleV1Unit(12, 24, 2, groups=3), 12, 24),
    "shuffle_v2": (lambda: ShuffleV2Unit(8, 8, 1), 8, 8),
    "fire": (lambda: Fire(4, 2, 4, 4), 4, 8),
    "asymmetric": (lambda: AsymmetricConv(4, 8, 3), 4, 8),
}


@pytest.mark.parametrize("name", sorted(TRAINABLE))
def test_block_trains_one_step_and_gradient_reaches_the_first_layer(name: str) -> None:
    make, c_in, c_out = TRAINABLE[name]
    block = make()
    x = torch.randn(4, c_in, 6, 6)
    head = nn.Linear(c_out, 3)
    target = torch.tensor([0, 1, 2, 0])

    def loss() -> torch.Tensor:
        return F.cross_entropy(head(block(x).mean(dim=(2, 3))), target)

    optimiser = torch.optim.SGD([*block.parameters(), *head.parameters()], lr=0.05)
    before = loss()
    optimiser.zero_grad()
    before.backward()
    first = next(m for m in block.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in block.parameters())
    optimiser.step()
    with torch.no_grad():
        assert loss() < before


# --- registered edge ops ------------------------------------------------------------------------


def test_block_ops_are_registered_for_cells() -> None:
    assert set(BLOCK_OPS) <= set(op_names())


@pytest.mark.parametrize("name", sorted(BLOCK_OPS))
@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(4, 4, 1), (4, 8, 1), (4, 8, 2)])
@pytest.mark.parametrize("size", [8, 7])
def test_block_ops_follow_the_op_convention(
    name: str, c_in: int, c_out: int, stride: int, size: int
) -> None:
    op = make_op(name, c_in, c_out, stride)
    side = -(-size // stride)
    assert op(torch.randn(2, c_in, size, size)).shape == (2, c_out, side, side)
    plain = make_op(name, c_in, c_out, stride, affine=False)
    norms = [m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.weight is None for m in norms)
    assert params(op) - params(plain) == sum(2 * m.num_features for m in norms)
