"""The op library: registry lookups and shapes for every op at stride 1 and 2, odd sizes too."""

from __future__ import annotations

import pytest
import torch

from nasforge.errors import UnknownNameError
from nasforge.nn.ops import AvgPool3x3, ResNetBasicBlock, Zero, make_op, op_names, register_op


@pytest.mark.parametrize("name", op_names())
@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(4, 4, 1), (4, 8, 1), (4, 8, 2)])
@pytest.mark.parametrize("size", [8, 7])
def test_every_op_gives_the_expected_shape(
    name: str, c_in: int, c_out: int, stride: int, size: int
) -> None:
    op = make_op(name, c_in, c_out, stride)
    out = op(torch.randn(2, c_in, size, size))
    side = -(-size // stride)
    assert out.shape == (2, c_out, side, side)


def test_nb201_ops_are_registered() -> None:
    expected = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}
    assert expected <= set(op_names())
    assert isinstance(make_op("skip_connect", 4, 4, 1), torch.nn.Identity)
    assert sum(p.numel() for p in make_op("avg_pool_3x3", 4, 4, 1).parameters()) == 0


def test_unknown_op_lists_the_accepted_names() -> None:
    with pytest.raises(UnknownNameError, match="nor_conv_3x3"):
        make_op("conv_9x9", 4, 4, 1)


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_op("none")(lambda c_in, c_out, stride, *, affine=True: Zero(c_out))


def test_affine_false_drops_batchnorm_parameters() -> None:
    op = make_op("nor_conv_1x1", 4, 4, 1, affine=False)
    assert sum(p.numel() for p in op.parameters()) == 16


def test_zero_is_zero_and_avg_pool_ignores_padding() -> None:
    x = torch.randn(1, 3, 5, 5)
    assert torch.equal(make_op("none", 3, 3, 1)(x), torch.zeros_like(x))
    ones = torch.ones(1, 1, 5, 5)
    assert torch.allclose(make_op("avg_pool_3x3", 1, 1, 1)(ones), ones)  # corners stay 1


@pytest.mark.parametrize("size", [32, 7])
def test_resnet_block_reduces(size: int) -> None:
    block = ResNetBasicBlock(4, 8, stride=2)
    assert block(torch.randn(2, 4, size, size)).shape == (2, 8, -(-size // 2), -(-size // 2))
    assert ResNetBasicBlock(4, 4)(torch.randn(1, 4, 5, 5)).shape == (1, 4, 5, 5)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (3, 4, 8, 8), (1, 3, 5, 6)])
def test_avg_pool_3x3_equals_torchs_average_pooling_without_padding_counted(stride, shape):
    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    ours = AvgPool3x3(stride)(x)
    theirs = torch.nn.AvgPool2d(3, stride, padding=1, count_include_pad=False)(x)
    assert torch.allclose(ours, theirs, atol=1e-6)
    (g_ours,) = torch.autograd.grad(ours.square().sum(), x)
    (g_theirs,) = torch.autograd.grad(theirs.square().sum(), x)
    assert torch.allclose(g_ours, g_theirs, atol=1e-5)
