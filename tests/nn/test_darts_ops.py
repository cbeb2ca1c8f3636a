"""DARTS's separable and dilated convs: registration, shapes, receptive field and weights."""

from __future__ import annotations

import pytest
import torch

from nasforge.nn.darts_ops import DilConv, SepConv
from nasforge.nn.ops import make_op, op_names

DARTS_CONVS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def test_importing_registers_the_darts_convs() -> None:
    assert set(DARTS_CONVS) <= set(op_names())
    assert isinstance(make_op("sep_conv_3x3", 4, 4, 1), SepConv)
    assert isinstance(make_op("dil_conv_5x5", 4, 4, 1), DilConv)


@pytest.mark.parametrize("name", DARTS_CONVS)
@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(4, 4, 1), (4, 6, 1), (4, 6, 2)])
@pytest.mark.parametrize("size", [8, 7, 1])
def test_shapes_at_stride_1_and_2(name: str, c_in: int, c_out: int, stride: int, size: int) -> None:
    out = make_op(name, c_in, c_out, stride)(torch.randn(2, c_in, size, size))
    side = -(-size // stride)
    assert out.shape == (2, c_out, side, side)


@pytest.mark.parametrize(
    ("name", "reach"),
    [("sep_conv_3x3", 2), ("sep_conv_5x5", 4), ("dil_conv_3x3", 2), ("dil_conv_5x5", 4)],
)
def test_receptive_field(name: str, reach: int) -> None:
    # A stacked 3x3 (5x5) separable conv sees 2 (4) pixels away; a dilation-2 3x3 (5x5) conv
    # sees 2 (4) pixels away too, in one unit. The centre output moves iff the input moves.
    op = make_op(name, 1, 1, 1).eval()
    with torch.no_grad():
        for p in op.parameters():
            p.copy_(torch.rand_like(p) + 0.5)
    x = torch.rand(1, 1, 11, 11) + 0.5  # positive: ReLUs stay open
    centre = op(x)[0, 0, 5, 5]
    near, far = x.clone(), x.clone()
    near[0, 0, 5, 5 + reach] += 10.0
    far[0, 0, 5, 5 + reach + 1] += 10.0
    assert op(near)[0, 0, 5, 5] != centre
    assert op(far)[0, 0, 5, 5] == centre


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_follow_darts() -> None:
    c = 16
    # two ReLU-depthwise-pointwise-BN units for sep_conv, one for dil_conv
    assert count(SepConv(c, c, 3, 1, 1)) == 2 * (9 * c + c * c + 2 * c)
    assert count(DilConv(c, c, 5, 1, 4, 2)) == 25 * c + c * c + 2 * c
    assert count(SepConv(c, c, 3, 1, 1, affine=False)) == 2 * (9 * c + c * c)


def test_gradients_flow() -> None:
    op = make_op("sep_conv_5x5", 3, 5, 2)
    op(torch.randn(2, 3, 9, 9)).sum().backward()
    assert all(p.grad is not None for p in op.parameters())
