"""The convolutions of the DARTS op set (Liu et al., "DARTS: Differentiable Architecture Search",
ICLR 2019), registered into the shared op registry of ``nasforge.nn.ops``.

Importing this module registers ``sep_conv_3x3``, ``sep_conv_5x5``, ``dil_conv_3x3`` and
``dil_conv_5x5``. The other DARTS ops (``none``, ``skip_connect``, ``avg_pool_3x3``,
``max_pool_3x3``) are already in ``nasforge.nn.ops`` with DARTS's semantics: a stride-2 skip is a
``FactorizedReduce`` and the pools carry no BatchNorm, as in DARTS's evaluation network.

The separable conv is DARTS's (inherited from NASNet, Zoph et al. 2018): the ReLU-depthwise-
pointwise-BN unit applied twice, which is why a ``sep_conv_3x3`` has twice the weights of one
depthwise-separable conv. The dilated conv is a single such unit with a dilated depthwise kernel.
"""

from __future__ import annotations

from torch import nn

from nasforge.nn.ops import register_op


def _relu_dw_pw_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    padding: int,
    dilation: int,
    affine: bool,
) -> list[nn.Module]:
    """ReLU -> depthwise kxk conv -> pointwise 1x1 conv -> BN (no conv bias: BN follows)."""
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(
            c_in,
            c_in,
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=c_in,
            bias=False,
        ),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    ]


class DilConv(nn.Sequential):
    """One ReLU-depthwise(dilated)-pointwise-BN unit: DARTS's ``dil_conv_kxk``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        *,
        affine: bool = True,
    ):
        super().__init__(*_relu_dw_pw_bn(c_in, c_out, kernel, stride, padding, dilation, affine))


class SepConv(nn.Sequential):
    """Two stacked ReLU-depthwise-pointwise-BN units: DARTS's ``sep_conv_kxk``.

    Only the first unit strides and the first keeps ``c_in`` channels, as in DARTS.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        *,
        affine: bool = True,
    ):
        super().__init__(
            *_relu_dw_pw_bn(c_in, c_in, kernel, stride, padding, 1, affine),
            *_relu_dw_pw_bn(c_in, c_out, kernel, 1, padding, 1, affine),
        )


# --- registered edge ops ------------------------------------------------------------------------
# Paddings keep the size at stride 1 and give ceil(size / 2) at stride 2, odd sizes included.


@register_op("sep_conv_3x3")
def _sep3(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return SepConv(c_in, c_out, 3, stride, 1, affine=affine)


@register_op("sep_conv_5x5")
def _sep5(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return SepConv(c_in, c_out, 5, stride, 2, affine=affine)


@register_op("dil_conv_3x3")
def _dil3(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return DilConv(c_in, c_out, 3, stride, 2, 2, affine=affine)


@register_op("dil_conv_5x5")
def _dil5(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return DilConv(c_in, c_out, 5, stride, 4, 2, affine=affine)
