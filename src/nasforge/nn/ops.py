"""Reusable PyTorch building blocks for cell-based search spaces, and a registry of edge ops.

Cell spaces (NAS-Bench-201, DARTS, ...) name the operation on each edge. The registry maps such a
name to a constructor ``(c_in, c_out, stride, *, affine=True) -> nn.Module`` so that every space
builds its networks from one shared, tested set of blocks instead of its own copies. ``affine``
exists because weight-sharing supernets (DARTS) train without BatchNorm affine parameters.

All blocks are device-agnostic (no ``.cuda()``) and accept any spatial size, odd ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import UnknownNameError


class OpFactory(Protocol):
    """Builds one edge op; ``stride`` 2 halves the spatial size (rounding up)."""

    def __call__(self, c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module: ...


_REGISTRY: dict[str, OpFactory] = {}


def register_op(name: str) -> Callable[[OpFactory], OpFactory]:
    """Decorator adding an op constructor under ``name``; a name can be registered only once."""

    def add(factory: OpFactory) -> OpFactory:
        if name in _REGISTRY:
            raise ValueError(f"op {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return add


def op_names() -> tuple[str, ...]:
    """Every registered op name, sorted."""
    return tuple(sorted(_REGISTRY))


def make_op(name: str, c_in: int, c_out: int, stride: int = 1, *, affine: bool = True) -> nn.Module:
    """Build the op registered as ``name``; UnknownNameError lists the registered names."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("op", name, _REGISTRY) from None
    return factory(c_in, c_out, stride, affine=affine)


# --- blocks -------------------------------------------------------------------------------------


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias: BN follows) -> BN: the pre-activation conv used by NB201 and DARTS."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        *,
        affine: bool = True,
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in,
                c_out,
                kernel_size,
                stride=stride,
                padding=dilation * (kernel_size // 2),
                dilation=dilation,
                bias=False,
            ),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape, without computing anything from the input."""

    def __init__(self, c_out: int, stride: int = 1):
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and x.shape[1] == self.c_out:
            return torch.zeros_like(x)
        n, _, h, w = x.shape
        s = self.stride
        return x.new_zeros(n, self.c_out, -(-h // s), -(-w // s))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convs, so no pixel is simply dropped.

    The second conv sees the input shifted by one pixel; padding the far edge first keeps both
    halves the same size on odd inputs.
    """

    def __init__(self, c_in: int, c_out: int, *, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


class AvgPool3x3(nn.Module):
    """3x3 average pooling with padding 1 where border pixels average their real neighbours
    only (``count_include_pad=False``), computed as a depthwise convolution with a kernel of
    ones divided by each pixel's neighbour count: the same numbers as ``nn.AvgPool2d`` (exactly
    on the tests' inputs), about 2.8 times faster forward and backward on a CPU, where
    PyTorch's average-pooling kernels are slow (benchmarks/oneshot_step_time.py profiles it)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1], x.shape[-2], x.shape[-1]
        kernel = x.new_ones(c, 1, 3, 3)
        total = F.conv2d(x, kernel, stride=self.stride, padding=1, groups=c)
        ones = x.new_ones(1, 1, h, w)
        count = F.conv2d(ones, ones.new_ones(1, 1, 3, 3), stride=self.stride, padding=1)
        return total / count


class Pool(nn.Module):
    """3x3 average or max pooling; a 1x1 ReLU-Conv-BN first when the channel count changes."""

    def __init__(self, kind: str, c_in: int, c_out: int, stride: int = 1, *, affine: bool = True):
        super().__init__()
        self.pre = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, affine=affine)
        if kind == "avg":
            # border pixels are averaged over real neighbours only
            self.pool: nn.Module = AvgPool3x3(stride)
        elif kind == "max":
            self.pool = nn.MaxPool2d(3, stride, padding=1)
        else:
            raise ValueError(f"pool kind must be 'avg' or 'max', got {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x if self.pre is None else self.pre(x))


class ResNetBasicBlock(nn.Module):
    """Two 3x3 ReLU-Conv-BN with a shortcut: NAS-Bench-201's fixed reduction block.

    With stride 2 the shortcut is 2x2 average pooling then a 1x1 conv, as in NB201.
    ``ceil_mode`` makes the pooling round up like the strided conv does, so odd sizes (e.g. 7x7)
    line up; on even sizes it is exactly NB201's block.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, *, affine: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ResNetBasicBlock stride must be 1 or 2, got {stride}")
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, affine=affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, affine=affine)
        self.shortcut: nn.Module
        if stride == 2:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(2, 2, ceil_mode=True),
                nn.Conv2d(c_in, c_out, 1, bias=False),
            )
        elif c_in != c_out:
            self.shortcut = ReLUConvBN(c_in, c_out, 1, affine=affine)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


# --- registered edge ops ------------------------------------------------------------------------


@register_op("none")
def _none(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return Zero(c_out, stride)


@register_op("skip_connect")
def _skip(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if stride == 1:
        return ReLUConvBN(c_in, c_out, 1, affine=affine)
    return FactorizedReduce(c_in, c_out, affine=affine)


@register_op("nor_conv_1x1")
def _conv1(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return ReLUConvBN(c_in, c_out, 1, stride, affine=affine)


@register_op("nor_conv_3x3")
def _conv3(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return ReLUConvBN(c_in, c_out, 3, stride, affine=affine)


@register_op("avg_pool_3x3")
def _avg3(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return Pool("avg", c_in, c_out, stride, affine=affine)


@register_op("max_pool_3x3")
def _max3(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
    return Pool("max", c_in, c_out, stride, affine=affine)
