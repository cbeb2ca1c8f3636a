"""Lightweight convolutional blocks from the mobile-network literature.

These are the building blocks that NAS surveys list for mobile and macro search spaces
(MnasNet, ProxylessNAS, FBNet, Single-Path NAS, ...): each is a small ``nn.Module`` that follows
its paper, with its options checked up front so a bad setting fails at construction with a
``ConfigError`` rather than as a shape error deep in ``forward``.

Importing this module also registers a few of them as cell edge ops (``dw_sep_conv_3x3``,
``conv_1x7_7x1``, ``mbconv_3x3_e3`` ... see the bottom of the file) for ``nasforge.nn.ops.make_op``.
Those keep the op convention of ``ops.py``: ``(c_in, c_out, stride, *, affine)``, any spatial
size, stride 2 rounds up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ConfigError, UnknownNameError
from nasforge.nn.ops import register_op

#: Activation names accepted by the blocks that take ``act``.
ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "hswish")


def _positive_int(block: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{block} {name} must be an int >= 1, got {value!r}")


def _check_stride(block: str, stride: int) -> None:
    if stride not in (1, 2):
        raise ConfigError(f"{block} stride must be 1 or 2, got {stride!r}")


def _check_kernel(block: str, kernel: int) -> None:
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"{block} kernel must be an odd int >= 1 (3, 5, 7 ...), got {kernel!r}")


# --- activations (Howard et al., "Searching for MobileNetV3", ICCV 2019) ------------------------


class HSigmoid(nn.Module):
    """Hard sigmoid ``relu6(x + 3) / 6``: MobileNetV3's piecewise-linear, quantisation-friendly
    stand-in for the sigmoid (used as the SE gate there)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) / 6.0


class HSwish(nn.Module):
    """Hard swish ``x * relu6(x + 3) / 6``: MobileNetV3's cheap approximation of swish."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (F.relu6(x + 3.0) / 6.0)


def make_activation(name: str) -> nn.Module:
    """``relu``, ``relu6`` (MobileNetV2) or ``hswish`` (MobileNetV3) as a module."""
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "relu6":
        return nn.ReLU6(inplace=False)
    if name == "hswish":
        return HSwish()
    raise UnknownNameError("activation", name, ACTIVATIONS)


class ConvBNAct(nn.Sequential):
    """Conv (no bias: BN follows) -> BN -> activation (``act=None``: linear). Padding keeps the
    size at stride 1 and rounds up at stride 2; ``groups=c_in`` gives a depthwise conv."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        *,
        groups: int = 1,
        act: str | None = "relu",
        affine: bool = True,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        ]
        if act is not None:
            layers.append(make_activation(act))
        super().__init__(*layers)


# --- squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018) -----------


class SqueezeExcite(nn.Module):
    """Reweight channels by a gate computed from their global average.

    Squeeze: global average pool; excite: FC (``squeeze_channels``) -> ReLU -> FC -> gate, the FCs
    as 1x1 convs with bias. ``ratio`` is squeeze/channels, so Hu et al.'s reduction r=16 is
    ``ratio=1/16`` and MnasNet's 0.25 is ``ratio=0.25``; ``squeeze_channels`` overrides it
    (MnasNet and EfficientNet size it from the *block's input* channels, not the expanded ones).
    ``gate`` is ``sigmoid`` (Hu et al., MnasNet) or ``hsigmoid`` (MobileNetV3).
    """

    def __init__(
        self,
        channels: int,
        ratio: float = 0.25,
        *,
        squeeze_channels: int | None = None,
        gate: str = "sigmoid",
    ):
        super().__init__()
        _positive_int("SqueezeExcite", channels=channels)
        if squeeze_channels is None:
            if not 0.0 < ratio <= 1.0:
                raise ConfigError(f"SqueezeExcite ratio must be in (0, 1], got {ratio!r}")
            squeeze_channels = max(1, int(channels * ratio))
        _positive_int("SqueezeExcite", squeeze_channels=squeeze_channels)
        if gate not in ("sigmoid", "hsigmoid"):
            raise UnknownNameError("SE gate", gate, ("sigmoid", "hsigmoid"))
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = nn.ReLU(inplace=False)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate: nn.Module = nn.Sigmoid() if gate == "sigmoid" else HSigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.expand(self.act(self.reduce(scale))))


# --- MobileNet v1 / v2 --------------------------------------------------------------------------


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k x k conv then pointwise 1x1 conv, each with BN and activation (Howard et al.,
    "MobileNets", 2017): ``k*k*c_in + c_in*c_out`` weights instead of ``k*k*c_in*c_out``.

    ``final_act=False`` drops the last activation (the form used as a cell edge op and in
    MnasNet's SepConv). ``se_ratio`` > 0 inserts SE after the depthwise conv, squeezing to
    ``se_ratio * c_in`` channels. ``residual=True`` adds the input (needs stride 1, c_in == c_out).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        *,
        act: str = "relu",
        final_act: bool = True,
        se_ratio: float = 0.0,
        residual: bool = False,
        affine: bool = True,
    ):
        super().__init__()
        _positive_int("DepthwiseSeparableConv", c_in=c_in, c_out=c_out)
        _check_kernel("DepthwiseSeparableConv", kernel)
        _check_stride("DepthwiseSeparableConv", stride)
        self.use_residual = _residual("DepthwiseSeparableConv", residual, c_in, c_out, stride)
        self.depthwise = ConvBNAct(c_in, c_in, kernel, stride, groups=c_in, act=act, affine=affine)
        self.se = _maybe_se(c_in, c_in, se_ratio, act)
        self.pointwise = ConvBNAct(c_in, c_out, 1, act=act if final_act else None, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.se(self.depthwise(x)))
        return x + out if self.use_residual else out


def _residual(block: str, residual: bool | None, c_in: int, c_out: int, stride: int) -> bool:
    """Resolve a residual request: None means "where shapes allow" (MobileNetV2's rule)."""
    possible = stride == 1 and c_in == c_out
    if residual is None:
        return possible
    if residual and not possible:
        raise ConfigError(
            f"{block} residual=True needs stride 1 and c_in == c_out, got stride {stride}, "
            f"{c_in} -> {c_out} channels; accepted: residual=False or None"
        )
    return bool(residual)


def _maybe_se(channels: int, base: int, se_ratio: float, act: str) -> nn.Module:
    """SE squeezing to ``se_ratio * base`` channels, or an identity when ``se_ratio`` is 0."""
    if not 0.0 <= se_ratio <= 1.0:
        raise ConfigError(f"se_ratio must be in [0, 1] (0 = no SE), got {se_ratio!r}")
    if se_ratio == 0.0:
        return nn.Identity()
    gate = "hsigmoid" if act == "hswish" else "sigmoid"
    return SqueezeExcite(channels, squeeze_channels=max(1, int(base * se_ratio)), gate=gate)


class MBConv(nn.Module):
    """Inverted residual with linear bottleneck (Sandler et al., "MobileNetV2", CVPR 2018).

    1x1 expansion to ``round(c_in * expand_ratio)`` channels (skipped when the ratio is 1), a
    depthwise k x k conv carrying the stride, optional SE (Tan et al., "MnasNet", 2019: squeeze to
    ``se_ratio * c_in``; hard-sigmoid gate with ``hswish`` as in MobileNetV3), then a *linear* 1x1
    projection: no activation, because ReLU on a low-dimensional bottleneck loses information.
    The identity shortcut is added where shapes allow (stride 1, c_in == c_out) unless
    ``residual=False``.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        expand_ratio: float = 6,
        *,
        se_ratio: float = 0.0,
        act: str = "relu6",
        residual: bool | None = None,
        affine: bool = True,
    ):
        super().__init__()
        _positive_int("MBConv", c_in=c_in, c_out=c_out)
        _check_kernel("MBConv", kernel)
        _check_stride("MBConv", stride)
        if not expand_ratio >= 1:
            raise ConfigError(f"MBConv expand_ratio must be >= 1, got {expand_ratio!r}")
        make_activation(act)  # validates the name before any layer is built
        self.use_residual = _residual("MBConv", residual, c_in, c_out, stride)
        hidden = round(c_in * expand_ratio)
        self.expand: nn.Module = (
            nn.Identity()
            if expand_ratio == 1
            else ConvBNAct(c_in, hidden, 1, act=act, affine=affine)
        )
        self.depthwise = ConvBNAct(
            hidden, hidden, kernel, stride, groups=hidden, act=act, affine=affine
        )
        self.se = _maybe_se(hidden, c_in, se_ratio, act)
        self.project = ConvBNAct(hidden, c_out, 1, act=None, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + out if self.use_residual else out


# --- ShuffleNet (Zhang et al., CVPR 2018; Ma et al., "ShuffleNet V2", ECCV 2018) ----------------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` equal channel groups: output channel ``i * groups + g`` is input
    channel ``g * (C // groups) + i``, so the next group conv sees channels of every group."""
    n, c, h, w = x.shape
    if c % groups:
        raise ConfigError(f"channel_shuffle needs channels ({c}) divisible by groups ({groups})")
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    """``channel_shuffle`` as a module."""

    def __init__(self, groups: int):
        super().__init__()
        _positive_int("ChannelShuffle", groups=groups)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)


class ShuffleV1Unit(nn.Module):
    """ShuffleNet v1 unit: 1x1 group conv -> shuffle -> 3x3 depthwise -> 1x1 group conv.

    The bottleneck has ``c_out // 4`` channels, as in the paper. Stride 1 adds the input
    (needs c_in == c_out); stride 2 concatenates a 3x3 average-pooled copy of the input, so the
    branch only makes ``c_out - c_in`` channels. ``group_first=False`` makes the first 1x1 conv
    dense (the paper does so in the first stage, whose input has few channels).
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int = 1, *, groups: int = 3, group_first: bool = True
    ):
        super().__init__()
        _positive_int("ShuffleV1Unit", c_in=c_in, c_out=c_out, groups=groups)
        _check_stride("ShuffleV1Unit", stride)
        branch_out = c_out - c_in if stride == 2 else c_out
        mid = c_out // 4
        first_groups = groups if group_first else 1
        if stride == 1 and c_in != c_out:
            raise ConfigError(f"ShuffleV1Unit stride 1 needs c_in == c_out, got {c_in}, {c_out}")
        if branch_out < 1 or mid < 1:
            raise ConfigError(
                f"ShuffleV1Unit needs c_out >= 4 and, at stride 2, c_out > c_in; got {c_in}, "
                f"{c_out}"
            )
        if c_in % first_groups or mid % groups or branch_out % groups:
            raise ConfigError(
                f"ShuffleV1Unit groups={groups} must divide c_in={c_in} (unless group_first="
                f"False), the bottleneck c_out//4={mid} and the branch output {branch_out}"
            )
        self.stride, self.groups = stride, groups
        self.compress = ConvBNAct(c_in, mid, 1, groups=first_groups, act="relu")
        self.depthwise = ConvBNAct(mid, mid, 3, stride, groups=mid, act=None)
        self.expand = ConvBNAct(mid, branch_out, 1, groups=groups, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(self.compress(x), self.groups)
        out = self.expand(self.depthwise(out))
        if self.stride == 1:
            return F.relu(x + out)
        shortcut = F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)
        return F.relu(torch.cat([shortcut, out], dim=1))


class ShuffleV2Unit(nn.Module):
    """ShuffleNet v2 unit, following its guidelines (equal widths, no group convs, fewer adds).

    Stride 1: channel split in halves; one half passes unchanged, the other goes through
    1x1 -> 3x3 depthwise -> 1x1; concatenate and shuffle with 2 groups (needs even
    c_in == c_out). Stride 2 (the down-sampling variant): no split, both branches see the whole
    input (3x3 depthwise s2 -> 1x1, and 1x1 -> 3x3 depthwise s2 -> 1x1), each giving c_out // 2
    channels, so the output width doubles when ``c_out = 2 * c_in``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        _positive_int("ShuffleV2Unit", c_in=c_in, c_out=c_out)
        _check_stride("ShuffleV2Unit", stride)
        if c_out % 2 or (stride == 1 and c_in != c_out):
            raise ConfigError(
                f"ShuffleV2Unit needs an even c_out and, at stride 1, c_in == c_out; got {c_in}, "
                f"{c_out}"
            )
        half = c_out // 2
        self.stride = stride
        branch_in = c_in // 2 if stride == 1 else c_in
        self.branch = nn.Sequential(
            ConvBNAct(branch_in, half, 1, act="relu"),
            ConvBNAct(half, half, 3, stride, groups=half, act=None),
            ConvBNAct(half, half, 1, act="relu"),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride == 2:
            self.shortcut = nn.Sequential(
                ConvBNAct(c_in, c_in, 3, 2, groups=c_in, act=None),
                ConvBNAct(c_in, half, 1, act="relu"),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, used = x.chunk(2, dim=1)
            out = torch.cat([kept, self.branch(used)], dim=1)
        else:
            out = torch.cat([self.shortcut(x), self.branch(x)], dim=1)
        return channel_shuffle(out, 2)


# --- SqueezeNet (Iandola et al., 2016) ----------------------------------------------------------


class Fire(nn.Module):
    """SqueezeNet's Fire module: a 1x1 "squeeze" to few channels, then parallel 1x1 and 3x3
    "expand" convs whose outputs are concatenated (``expand1x1 + expand3x3`` channels). As in
    the paper: convs with bias, ReLU after each, no batch norm."""

    def __init__(self, c_in: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        _positive_int("Fire", c_in=c_in, squeeze=squeeze, expand1x1=expand1x1, expand3x3=expand3x3)
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], dim=1)


# --- Inception v3 factorisation (Szegedy et al., "Rethinking the Inception Architecture", 2016) --


class AsymmetricConv(nn.Module):
    """A k x k conv factorised into 1 x k then k x 1: ``2k`` weights per channel pair instead of
    ``k*k`` for the same receptive field. Pre-activation ReLU -> 1xk -> kx1 -> BN, the form NASNet
    and DARTS-style cells use as the "1x7 then 7x1" edge op; the stride is split over the two
    convs (width first, then height)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int = 7, stride: int = 1, *, affine: bool = True
    ):
        super().__init__()
        _positive_int("AsymmetricConv", c_in=c_in, c_out=c_out)
        _check_kernel("AsymmetricConv", kernel)
        _check_stride("AsymmetricConv", stride)
        pad = kernel // 2
        self.relu = nn.ReLU(inplace=False)
        self.row = nn.Conv2d(c_in, c_out, (1, kernel), (1, stride), (0, pad), bias=False)
        self.col = nn.Conv2d(c_out, c_out, (kernel, 1), (stride, 1), (pad, 0), bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.col(self.row(self.relu(x))))


# --- registered edge ops ------------------------------------------------------------------------


def _dw_sep(kernel: int):
    def factory(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
        return DepthwiseSeparableConv(c_in, c_out, kernel, stride, final_act=False, affine=affine)

    return factory


def _asym(kernel: int):
    def factory(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
        return AsymmetricConv(c_in, c_out, kernel, stride, affine=affine)

    return factory


def _mbconv(kernel: int, expand: int):
    def factory(c_in: int, c_out: int, stride: int, *, affine: bool = True) -> nn.Module:
        return MBConv(c_in, c_out, kernel, stride, expand, affine=affine)

    return factory


#: The ops this module registers, name -> factory (``(c_in, c_out, stride, *, affine)``).
BLOCK_OPS = {
    "dw_sep_conv_3x3": _dw_sep(3),
    "dw_sep_conv_5x5": _dw_sep(5),
    "conv_1x3_3x1": _asym(3),
    "conv_1x7_7x1": _asym(7),
    "mbconv_3x3_e3": _mbconv(3, 3),
    "mbconv_5x5_e6": _mbconv(5, 6),
}
for _name, _factory in BLOCK_OPS.items():
    register_op(_name)(_factory)
