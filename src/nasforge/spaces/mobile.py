"""A mobile macro search space: MnasNet's factorized hierarchical space around MobileNetV2.

Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019, search a
network split into stages where each stage repeats one searched block, so layers in different
stages may differ (unlike cell spaces, where one cell is stacked everywhere). The skeleton here is
MobileNetV2's (Sandler et al., CVPR 2018): a 3x3 stride-2 stem of 32 channels, seven stages with
base (expansion t, channels c, layers n, stride s) = (1,16,1,1), (6,24,2,2), (6,32,3,2),
(6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1), a 1x1 head of 1280 channels, global average
pooling, dropout and a linear classifier. The stride sits on each stage's first layer.

Per stage the architecture chooses (5 decisions):

- block: ``mbconv1`` / ``mbconv3`` / ``mbconv6`` (inverted residual, expansion 1/3/6),
  ``dwsep`` (MobileNet v1 depthwise-separable conv, activation after both convs) or ``conv``
  (a plain k x k conv-BN-ReLU6); the base expansion t is only used by ``MOBILENETV2_BASE``;
- kernel 3, 5 or 7 (of the depthwise conv, or of the plain conv);
- SE ratio 0 or 0.25 (squeeze-and-excitation squeezing to 0.25 x the block's input channels);
- skip: an identity residual on the stage's non-first layers, or none (first layers change
  stride or channels, so they never have one);
- layers: a delta of -1, 0 or +1 around the base n, at least 1;

plus one global width multiplier from ``WIDTHS`` = 0.5, 0.75, 1.0, 1.25 (MobileNetV2 reports
0.35 to 1.4; these four span the usual range). Channels are ``width * c`` rounded to a multiple
of 8 as MobileNetV2 does; the head keeps 1280 channels for widths below 1 (as MobileNetV2 does).
Activations are ReLU6 throughout, as in MobileNetV2.

That is 36 decisions and 4 * 180**7 (about 2.4e16) strings. Some name the same network, and
``canonical`` merges them: on the one-layer stages (1 and 7), delta -1 is delta 0 (the minimum
is one layer), and on any stage that ends up with one layer, skip has nothing to act on.

String form: ``w1.0|mbconv1_k3_se0_skip_n+0|mbconv6_k5_se0.25_noskip_n-1|...`` (width, then the
seven stages in order), parsed strictly. ``MOBILENETV2_BASE`` is MobileNetV2 1.0: at 224x224
and 1000 classes it has 3,504,872 parameters, exactly torchvision's ``mobilenet_v2`` (the paper
rounds to 3.4 M).

``build(arch, in_channels=3, num_classes=10, input_size=None, dropout=0.2)``: with
``input_size`` below 64 (CIFAR, MNIST, 8x8 digits) the stem and the first stride-2 stage use
stride 1 so small images keep their resolution (common CIFAR practice); ``None`` or >= 64 is the
ImageNet layout. Any input size 8..224 works either way (global pooling). The space has no
generic channels/cells knob (``size_options`` maps both to None): width and depth are part of
the architecture.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidArchError
from nasforge.nn.blocks import ConvBNAct, DepthwiseSeparableConv, MBConv, SqueezeExcite
from nasforge.spaces.net_options import fraction_option, int_option, optional_int_option
from nasforge.spaces.vector import DecisionVectorSpace, checked_sequence

BLOCKS: tuple[str, ...] = ("mbconv1", "mbconv3", "mbconv6", "dwsep", "conv")
KERNELS: tuple[int, ...] = (3, 5, 7)
SE_RATIOS: tuple[float, ...] = (0.0, 0.25)
SKIPS: tuple[bool, ...] = (True, False)
DELTAS: tuple[int, ...] = (-1, 0, 1)
WIDTHS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25)
#: MobileNetV2's stages: (expansion t, channels c, layers n, stride s).
BASE_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
NUM_STAGES = len(BASE_STAGES)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: Inputs smaller than this keep the stem and the first stride-2 stage at stride 1.
SMALL_INPUT = 64
ENCODINGS: tuple[str, ...] = ("onehot", "index")

_EXPANSION = {"mbconv1": 1, "mbconv3": 3, "mbconv6": 6}
_SE_TOKEN = {0.0: "0", 0.25: "0.25"}
_WIDTH_TOKEN = {0.5: "0.5", 0.75: "0.75", 1.0: "1.0", 1.25: "1.25"}
_STAGE_FORMAT = (
    f"block_kK_seR_skip|noskip_n±D with block in {', '.join(BLOCKS)}, K in "
    f"{', '.join(map(str, KERNELS))}, R in {', '.join(_SE_TOKEN.values())}, D in -1, +0, +1"
)
_EXPECTED = (
    f"expected 'wW|stage|...' with W in {', '.join(_WIDTH_TOKEN.values())} and "
    f"{NUM_STAGES} stages '{_STAGE_FORMAT}'"
)
#: options per decision of one stage, in decision order
_STAGE_OPTIONS: tuple[tuple[object, ...], ...] = (BLOCKS, KERNELS, SE_RATIOS, SKIPS, DELTAS)


@dataclass(frozen=True)
class MobileStage:
    """One stage's choices: block type, kernel, SE ratio, skip on non-first layers, layer delta."""

    block: str = "mbconv6"
    kernel: int = 3
    se: float = 0.0
    skip: bool = True
    delta: int = 0

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise InvalidArchError(f"unknown block {self.block!r}; accepted: {', '.join(BLOCKS)}")
        if isinstance(self.kernel, bool) or self.kernel not in KERNELS:
            raise InvalidArchError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if isinstance(self.se, bool) or self.se not in SE_RATIOS:
            raise InvalidArchError(f"SE ratio must be one of {SE_RATIOS}, got {self.se!r}")
        if not isinstance(self.skip, bool | np.bool_):
            raise InvalidArchError(f"skip must be True or False, got {self.skip!r}")
        if isinstance(self.delta, bool) or self.delta not in DELTAS:
            raise InvalidArchError(f"layer delta must be one of {DELTAS}, got {self.delta!r}")
        object.__setattr__(self, "kernel", int(self.kernel))
        object.__setattr__(self, "se", float(self.se))
        object.__setattr__(self, "skip", bool(self.skip))
        object.__setattr__(self, "delta", int(self.delta))

    @property
    def indices(self) -> tuple[int, ...]:
        values = (self.block, self.kernel, self.se, self.skip, self.delta)
        return tuple(options.index(v) for options, v in zip(_STAGE_OPTIONS, values, strict=True))

    @classmethod
    def from_indices(cls, indices: Sequence[int]) -> MobileStage:
        values = [options[int(i)] for options, i in zip(_STAGE_OPTIONS, indices, strict=True)]
        return cls(*values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MobileArch:
    """A whole network: one ``MobileStage`` per MobileNetV2 stage and a global width multiplier."""

    stages: tuple[MobileStage, ...]
    width: float = 1.0

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if len(stages) != NUM_STAGES:
            raise InvalidArchError(f"a mobile arch has {NUM_STAGES} stages, got {len(stages)}")
        for stage in stages:
            if not isinstance(stage, MobileStage):
                raise InvalidArchError(f"stages must be MobileStage, got {type(stage).__name__}")
        if isinstance(self.width, bool) or self.width not in WIDTHS:
            raise InvalidArchError(f"width must be one of {WIDTHS}, got {self.width!r}")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "width", float(self.width))

    @property
    def layers(self) -> tuple[int, ...]:
        """Layers per stage: base n + delta, at least 1."""
        return tuple(
            max(1, n + s.delta) for (_, _, n, _), s in zip(BASE_STAGES, self.stages, strict=True)
        )


#: MobileNetV2 1.0: stage 1 ``mbconv1``, the rest ``mbconv6``, 3x3 kernels, no SE, skips.
MOBILENETV2_BASE = MobileArch(
    (MobileStage("mbconv1"),) + (MobileStage("mbconv6"),) * (NUM_STAGES - 1), width=1.0
)


def _check(arch: object) -> MobileArch:
    if not isinstance(arch, MobileArch):
        raise InvalidArchError(f"expected a MobileArch, got {type(arch).__name__}")
    return arch


# --- strings ------------------------------------------------------------------------------------


def _stage_string(stage: MobileStage) -> str:
    skip = "skip" if stage.skip else "noskip"
    return f"{stage.block}_k{stage.kernel}_se{_SE_TOKEN[stage.se]}_{skip}_n{stage.delta:+d}"


def to_string(arch: MobileArch) -> str:
    """``w1.0|mbconv1_k3_se0_skip_n+0|...``: width, then each stage's choices."""
    arch = _check(arch)
    return "|".join([f"w{_WIDTH_TOKEN[arch.width]}", *map(_stage_string, arch.stages)])


def from_string(text: str) -> MobileArch:
    """Parse ``to_string``'s form strictly (exact tokens, no other spellings)."""

    def fail(reason: str) -> InvalidArchError:
        return InvalidArchError(f"invalid mobile arch {text!r}: {reason}; {_EXPECTED}")

    if not isinstance(text, str):
        raise InvalidArchError(f"a mobile arch string must be a str, got {type(text).__name__}")
    parts = text.strip().split("|")
    if len(parts) != NUM_STAGES + 1:
        raise fail(f"{len(parts)} '|'-separated parts, not {NUM_STAGES + 1}")
    widths = {f"w{token}": width for width, token in _WIDTH_TOKEN.items()}
    if parts[0] not in widths:
        raise fail(f"width {parts[0]!r} is not one of {', '.join(widths)}")
    kernels = {f"k{k}": k for k in KERNELS}
    ses = {f"se{token}": se for se, token in _SE_TOKEN.items()}
    skips = {"skip": True, "noskip": False}
    deltas = {f"n{d:+d}": d for d in DELTAS}
    stages = []
    for number, part in enumerate(parts[1:], start=1):
        fields = part.split("_")
        if len(fields) != 5:
            raise fail(f"stage {number} {part!r} does not have 5 '_'-separated fields")
        block, kernel, se, skip, delta = fields
        for value, table, what in (
            (block, BLOCKS, "block"),
            (kernel, kernels, "kernel"),
            (se, ses, "SE ratio"),
            (skip, skips, "skip"),
            (delta, deltas, "layer delta"),
        ):
            if value not in table:
                raise fail(f"stage {number} {what} {value!r} is not one of {', '.join(table)}")
        stages.append(MobileStage(block, kernels[kernel], ses[se], skips[skip], deltas[delta]))
    return MobileArch(tuple(stages), widths[parts[0]])


# --- the network --------------------------------------------------------------------------------


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``) without losing more
    than 10%: MobileNetV2's channel rounding."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class _Layer:
    """One block of the network, fully resolved."""

    block: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    se: float
    residual: bool


@dataclass(frozen=True)
class _Plan:
    stem: int
    stem_stride: int
    stages: tuple[tuple[_Layer, ...], ...]
    head: int


def _small(input_size: int | None) -> bool:
    return input_size is not None and input_size < SMALL_INPUT


def plan_of(arch: MobileArch, input_size: int | None) -> _Plan:
    """Channels, strides and residuals of every layer (shared by build and param_count)."""
    small = _small(input_size)
    stem = make_divisible(STEM_CHANNELS * arch.width)
    c_in, stages, first_reduction = stem, [], True
    for (_, c, _, s), stage, n in zip(BASE_STAGES, arch.stages, arch.layers, strict=True):
        c_out = make_divisible(c * arch.width)
        stride = s
        if s == 2 and first_reduction:
            first_reduction = False
            stride = 1 if small else 2
        layers = []
        for i in range(n):
            layers.append(
                _Layer(
                    stage.block,
                    c_in if i == 0 else c_out,
                    c_out,
                    stage.kernel,
                    stride if i == 0 else 1,
                    stage.se,
                    i > 0 and stage.skip,
                )
            )
        stages.append(tuple(layers))
        c_in = c_out
    head = make_divisible(HEAD_CHANNELS * max(1.0, arch.width))
    return _Plan(stem, 1 if small else 2, tuple(stages), head)


def init_weights(network: nn.Module) -> None:
    """MobileNetV2's initialisation: He (fan-out) convs, unit BN, small-normal classifier (the
    stand-alone network and the supernet start alike)."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            if module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


class PlainConvBlock(nn.Module):
    """The ``conv`` block: k x k conv-BN-ReLU6, optional SE, optional identity residual."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, se: float, residual: bool):
        super().__init__()
        self.conv = ConvBNAct(c_in, c_out, kernel, stride, act="relu6")
        self.se: nn.Module = nn.Identity()
        if se:
            self.se = SqueezeExcite(c_out, squeeze_channels=max(1, int(c_in * se)))
        self.use_residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.conv(x))
        return x + out if self.use_residual else out


def make_layer(layer: _Layer) -> nn.Module:
    args = (layer.c_in, layer.c_out, layer.kernel, layer.stride)
    if layer.block in _EXPANSION:
        return MBConv(
            *args, _EXPANSION[layer.block], se_ratio=layer.se, act="relu6", residual=layer.residual
        )
    if layer.block == "dwsep":
        return DepthwiseSeparableConv(
            *args, act="relu6", se_ratio=layer.se, residual=layer.residual
        )
    return PlainConvBlock(*args, layer.se, layer.residual)


class MobileNetwork(nn.Module):
    """Stem, the seven searched stages, 1x1 head, global average pool, dropout, classifier."""

    def __init__(
        self,
        arch: MobileArch,
        in_channels: int,
        num_classes: int,
        input_size: int | None,
        dropout: float,
    ):
        super().__init__()
        plan = plan_of(arch, input_size)
        self.stem = ConvBNAct(in_channels, plan.stem, 3, plan.stem_stride, act="relu6")
        self.stages = nn.Sequential(
            *(nn.Sequential(*map(make_layer, layers)) for layers in plan.stages)
        )
        last = plan.stages[-1][-1].c_out
        self.head = ConvBNAct(last, plan.head, 1, act="relu6")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(plan.head, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.head(self.stages(self.stem(x)))).flatten(1)
        return self.classifier(self.dropout(features))


def _check_net(
    in_channels: object, num_classes: object, input_size: object, dropout: object
) -> None:
    int_option("mobile network in_channels", in_channels)
    int_option("mobile network num_classes", num_classes)
    optional_int_option("mobile network input_size", input_size)
    fraction_option("mobile network dropout", dropout)


def build(
    arch: MobileArch,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int | None = None,
    dropout: float = 0.2,
) -> MobileNetwork:
    """The network for ``arch``; ``input_size`` < 64 keeps small images' resolution longer."""
    _check_net(in_channels, num_classes, input_size, dropout)
    return MobileNetwork(
        _check(arch),
        int(in_channels),
        int(num_classes),
        None if input_size is None else int(input_size),
        float(dropout),
    )


def _conv_bn(c_in: int, c_out: int, kernel: int, groups: int = 1) -> int:
    return kernel * kernel * c_in * c_out // groups + 2 * c_out


def _se(channels: int, c_in: int, ratio: float) -> int:
    if not ratio:
        return 0
    squeeze = max(1, int(c_in * ratio))
    return 2 * channels * squeeze + squeeze + channels


def _layer_params(layer: _Layer) -> int:
    c_in, c_out, k, se = layer.c_in, layer.c_out, layer.kernel, layer.se
    if layer.block in _EXPANSION:
        t = _EXPANSION[layer.block]
        hidden = round(c_in * t)
        expand = 0 if t == 1 else _conv_bn(c_in, hidden, 1)
        depthwise = _conv_bn(hidden, hidden, k, hidden)
        return expand + depthwise + _se(hidden, c_in, se) + _conv_bn(hidden, c_out, 1)
    if layer.block == "dwsep":
        return _conv_bn(c_in, c_in, k, c_in) + _se(c_in, c_in, se) + _conv_bn(c_in, c_out, 1)
    return _conv_bn(c_in, c_out, k) + _se(c_out, c_in, se)


def param_count(
    arch: MobileArch,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int | None = None,
    dropout: float = 0.2,
) -> int:
    """Trainable parameters of ``build(arch, ...)``, computed from the plan without building.

    ``MOBILENETV2_BASE`` with 1000 classes gives 3,504,872 (torchvision's MobileNetV2 1.0).
    ``input_size`` and ``dropout`` change no parameter; they are accepted for symmetry.
    """
    _check_net(in_channels, num_classes, input_size, dropout)
    plan = plan_of(_check(arch), input_size)
    total = _conv_bn(int(in_channels), plan.stem, 3)
    total += sum(_layer_params(layer) for layers in plan.stages for layer in layers)
    total += _conv_bn(plan.stages[-1][-1].c_out, plan.head, 1)
    return int(total + plan.head * int(num_classes) + int(num_classes))


# --- the space ----------------------------------------------------------------------------------

#: options per decision: the width, then each stage's block, kernel, SE, skip, delta
_CHOICES: tuple[int, ...] = (len(WIDTHS),) + tuple(len(o) for o in _STAGE_OPTIONS) * NUM_STAGES
_PER_STAGE = len(_STAGE_OPTIONS)


def encode_indices(arch: MobileArch) -> tuple[int, ...]:
    """The decision indices: width, then (block, kernel, SE, skip, delta) per stage."""
    arch = _check(arch)
    return (WIDTHS.index(arch.width), *(i for s in arch.stages for i in s.indices))


def decode_indices(indices: Sequence[int]) -> MobileArch:
    """The arch for any sequence of decision indices (every in-range sequence is valid)."""
    return _from_indices(checked_sequence("mobile", indices, _CHOICES))


def _from_indices(indices: Sequence[int]) -> MobileArch:
    stages = tuple(
        MobileStage.from_indices(indices[1 + s * _PER_STAGE : 1 + (s + 1) * _PER_STAGE])
        for s in range(NUM_STAGES)
    )
    return MobileArch(stages, WIDTHS[int(indices[0])])


@functools.lru_cache(maxsize=65536)
def canonical(arch: MobileArch) -> MobileArch:
    """Merge choices that do not change the network: on a one-layer stage, skip is set to True
    (nothing to skip over), and a delta that the one-layer minimum clips is written as the
    smallest delta giving that depth (delta -1 on a base-1 stage becomes 0)."""
    stages = []
    for (_, _, n, _), stage, layers in zip(
        BASE_STAGES, _check(arch).stages, arch.layers, strict=True
    ):
        delta = layers - n
        skip = stage.skip if layers > 1 else True
        stages.append(MobileStage(stage.block, stage.kernel, stage.se, skip, delta))
    return MobileArch(tuple(stages), arch.width)


class MobileSpace(DecisionVectorSpace):
    """MnasNet-style factorized hierarchical space on MobileNetV2 (architectures: MobileArch).

    36 decisions: the width (4 options), then per stage block (5), kernel (3), SE (2), skip (2)
    and layer delta (3); every sequence decodes to a valid arch. ``DecisionVectorSpace`` gives
    the moves: ``sample`` draws each decision uniformly; ``mutate`` changes one decision,
    redrawn until the network changes (not just to a ``canonical`` twin); ``neighbours`` are the
    single-decision changes, one per canonical class (at most 73); ``onehot`` is 109 floats;
    ``crossover`` takes the width, and each stage's five choices together, from either parent.
    """

    name = "mobile"
    #: width and depth are part of the architecture: no generic size knobs
    size_options: ClassVar[dict[str, str | None]] = {"channels": None, "cells": None}

    def _choices(self) -> tuple[int, ...]:
        return _CHOICES

    def _encode(self, arch: MobileArch) -> tuple[int, ...]:
        return encode_indices(arch)

    def _decode(self, indices: tuple[int, ...]) -> MobileArch:
        return _from_indices(indices)

    def check(self, arch: object) -> MobileArch:
        return _check(arch)

    def _genes(self) -> tuple[tuple[int, ...], ...]:
        stages = tuple(
            tuple(range(1 + s * _PER_STAGE, 1 + (s + 1) * _PER_STAGE)) for s in range(NUM_STAGES)
        )
        return ((0,), *stages)

    def to_string(self, arch: MobileArch) -> str:
        return to_string(arch)

    def from_string(self, text: str) -> MobileArch:
        return from_string(text)

    def canonical(self, arch: MobileArch) -> MobileArch:
        return canonical(arch)

    #: the module functions, so the signature (keywords and defaults) is stated once
    build = staticmethod(build)
    param_count = staticmethod(param_count)


class MobileSupernetSpace(MobileSpace):
    """The part of the mobile space one weight-sharing supernet holds (`oneshot.mobile_supernet`):
    the width and the SE ratio are fixed (one set of channel counts to share weights over), skips
    are on, and each stage chooses its block, kernel and layer delta: 21 decisions, (5·3·3)^7
    (about 3.7e11) networks, written in the mobile space's own strings. ProxylessNAS and FBNet
    search a space of this kind (per-layer blocks and kernels at a fixed width)."""

    def __init__(self, width: float = 1.0, se: float = 0.0):
        if isinstance(width, bool) or width not in WIDTHS:
            raise InvalidArchError(f"width must be one of {WIDTHS}, got {width!r}")
        if isinstance(se, bool) or se not in SE_RATIOS:
            raise InvalidArchError(f"SE ratio must be one of {SE_RATIOS}, got {se!r}")
        self.width, self.se = float(width), float(se)

    def __repr__(self) -> str:
        return f"MobileSupernetSpace(width={self.width}, se={self.se})"

    def _choices(self) -> tuple[int, ...]:
        return (len(BLOCKS), len(KERNELS), len(DELTAS)) * NUM_STAGES

    def _encode(self, arch: MobileArch) -> tuple[int, ...]:
        return tuple(
            i
            for s in arch.stages
            for i in (BLOCKS.index(s.block), KERNELS.index(s.kernel), DELTAS.index(s.delta))
        )

    def _decode(self, indices: tuple[int, ...]) -> MobileArch:
        stages = tuple(
            MobileStage(BLOCKS[b], KERNELS[k], self.se, True, DELTAS[d])
            for b, k, d in zip(indices[0::3], indices[1::3], indices[2::3], strict=True)
        )
        return MobileArch(stages, self.width)

    def check(self, arch: object) -> MobileArch:
        arch = _check(arch)
        held = f"this supernet holds width {self.width:g}, SE {self.se:g} and skips on"
        if arch.width != self.width:
            raise InvalidArchError(f"{to_string(arch)} has width {arch.width:g}; {held}")
        for number, (stage, layers) in enumerate(
            zip(arch.stages, arch.layers, strict=True), start=1
        ):
            if stage.se != self.se:
                raise InvalidArchError(
                    f"{to_string(arch)}: stage {number} has SE {stage.se:g}; {held}"
                )
            if layers > 1 and not stage.skip:
                raise InvalidArchError(f"{to_string(arch)}: stage {number} has no skip; {held}")
        return arch

    def _genes(self) -> tuple[tuple[int, ...], ...]:
        return tuple((3 * s, 3 * s + 1, 3 * s + 2) for s in range(NUM_STAGES))
