"""The chain space of MetaQNN and NAS-RL: a plain, variable-length stack of layers.

Baker et al., "Designing Neural Network Architectures using Reinforcement Learning" (MetaQNN,
ICLR 2017) and Zoph & Le, "Neural Architecture Search with Reinforcement Learning" (NAS-RL, ICLR
2017) search networks layer by layer. An architecture is 1..``max_layers`` (default 8) layers:

* ``conv<k>-<filters>-s<stride>``: conv (bias-free) -> BatchNorm -> ReLU, kernel k in {1, 3, 5},
  filters in {16, 32, 64, 128} (CPU-sized; MetaQNN used 64..512), stride in {1, 2}, "same"
  padding; optionally ``+skip<i>``: NAS-RL's skip connection, the output of the earlier conv
  layer ``i`` (0-based layer index) is average-pooled to this layer's input size and
  *concatenated* to its input along channels, as NAS-RL concatenates in depth. One skip per
  conv layer; it must come from a conv layer other than the direct predecessor.
* ``pool<k>``: max pooling, kernel k in {2, 3}, stride 2 (MetaQNN's pooling layers).
* ``fc<units>``: fully connected layer + ReLU, units in {64, 128, 256}.

Written ``conv3-32-s1|pool2|conv5-64-s2+skip0|fc128``. ``build`` appends global average pooling
before the first fc layer (or before the classifier if there is none) and a linear classifier,
so the network takes any image size. Its size knob is the float ``width_multiplier`` (scales
every conv's filters and fc layer's units); the CLI's integer ``--channels``/``--cells`` knobs map
to nothing (``size_options``), since a chain has neither a base width nor a cell count.

Validity (MetaQNN's rules; the arch checks the first five, the space the rest since they depend
on its ``input_size`` and ``max_layers``): at least one layer; no pooling first; once an fc
layer appears only fc layers follow; at most 2 fc layers; a skip names an earlier conv layer that
is not the direct input; at most ``max_layers`` layers; the resolution is tracked from
``input_size`` (default 32) and each downsampling layer (pooling, stride-2 conv) maps r to
ceil(r/2), so it never drops below 1, but downsampling is only allowed while r >= 2; an fc layer
needs r <= 8 (MetaQNN's "representation size").

``decisions()`` sees the space as ``max_layers`` slots: slot t chooses a layer token (24 convs, 2
pools, 3 fcs, or ``end``) and, for t >= 2, a skip (0 = none, s = from layer s-1). ``decode``
repairs deterministically: it reads slots in order, stops at ``end``, drops each layer (or skip)
that would break a rule given the layers kept so far, and falls back to ``conv3-32-s1`` if no
layer survives. Even for ``max_layers`` = 8 the space is far too large to enumerate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidArchError
from nasforge.spaces.net_options import int_option, positive_option
from nasforge.spaces.vector import DecisionVectorSpace

CONV_KERNELS: tuple[int, ...] = (1, 3, 5)
CONV_FILTERS: tuple[int, ...] = (16, 32, 64, 128)
CONV_STRIDES: tuple[int, ...] = (1, 2)
POOL_KERNELS: tuple[int, ...] = (2, 3)
FC_UNITS: tuple[int, ...] = (64, 128, 256)
MAX_FC = 2
#: MetaQNN allows a fully connected layer only once the representation is at most 8 x 8.
FC_MAX_RESOLUTION = 8
ENCODINGS: tuple[str, ...] = ("onehot", "index")
GRAMMAR = (
    "expected LAYER('|'LAYER)* with LAYER one of conv<k>-<filters>-s<stride>[+skip<i>] "
    f"(k in {', '.join(map(str, CONV_KERNELS))}; filters in {', '.join(map(str, CONV_FILTERS))}; "
    f"stride in {', '.join(map(str, CONV_STRIDES))}; i = an earlier conv layer's 0-based index), "
    f"pool<k> (max pool, k in {', '.join(map(str, POOL_KERNELS))}, stride 2), "
    f"fc<units> (units in {', '.join(map(str, FC_UNITS))})"
)

_NUM = r"(0|[1-9][0-9]*)"  # no leading zeros, so every layer has exactly one spelling
_CONV_RE = re.compile(rf"conv{_NUM}-{_NUM}-s{_NUM}(?:\+skip{_NUM})?")
_POOL_RE = re.compile(rf"pool{_NUM}")
_FC_RE = re.compile(rf"fc{_NUM}")


def _check_choice(what: str, value: object, allowed: tuple[int, ...]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in allowed:
        raise InvalidArchError(
            f"{what} must be one of {', '.join(map(str, allowed))}, got {value!r}"
        )
    return int(value)


@dataclass(frozen=True)
class Conv:
    """conv -> BN -> ReLU; ``skip``: index of an earlier conv layer concatenated to the input."""

    kernel: int
    filters: int
    stride: int = 1
    skip: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _check_choice("conv kernel", self.kernel, CONV_KERNELS))
        filters = _check_choice("conv filters", self.filters, CONV_FILTERS)
        object.__setattr__(self, "filters", filters)
        object.__setattr__(self, "stride", _check_choice("conv stride", self.stride, CONV_STRIDES))
        if self.skip is not None:
            if isinstance(self.skip, bool) or not isinstance(self.skip, int | np.integer):
                raise InvalidArchError(
                    f"conv skip must be a layer index or None, got {self.skip!r}"
                )
            if self.skip < 0:
                raise InvalidArchError(f"conv skip must be a layer index >= 0, got {self.skip}")
            object.__setattr__(self, "skip", int(self.skip))

    def token(self) -> str:
        text = f"conv{self.kernel}-{self.filters}-s{self.stride}"
        return text if self.skip is None else f"{text}+skip{self.skip}"


@dataclass(frozen=True)
class Pool:
    """Max pooling with stride 2."""

    kernel: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _check_choice("pool kernel", self.kernel, POOL_KERNELS))

    def token(self) -> str:
        return f"pool{self.kernel}"


@dataclass(frozen=True)
class FC:
    """Fully connected layer + ReLU."""

    units: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _check_choice("fc units", self.units, FC_UNITS))

    def token(self) -> str:
        return f"fc{self.units}"


Layer = Conv | Pool | FC

#: Every layer a decision slot can choose (convs without skip; the skip is its own decision).
LAYER_OPTIONS: tuple[Layer, ...] = (
    *(Conv(k, f, s) for k in CONV_KERNELS for f in CONV_FILTERS for s in CONV_STRIDES),
    *(Pool(k) for k in POOL_KERNELS),
    *(FC(u) for u in FC_UNITS),
)
END = len(LAYER_OPTIONS)  # the option index meaning "no more layers"
_OPTION_INDEX = {layer: i for i, layer in enumerate(LAYER_OPTIONS)}
FALLBACK: Layer = Conv(3, 32, 1)


def _structure_error(layers: Sequence[Layer]) -> str | None:
    """The first space-independent rule ``layers`` breaks, or None."""
    if not layers:
        return "it has no layers; at least one layer is needed"
    if isinstance(layers[0], Pool):
        return f"layer 0 {layers[0].token()!r} is pooling; the first layer must be conv or fc"
    seen_fc = 0
    for i, layer in enumerate(layers):
        if seen_fc and not isinstance(layer, FC):
            return f"layer {i} {layer.token()!r} follows an fc layer; only fc layers may follow fc"
        if isinstance(layer, FC):
            seen_fc += 1
            if seen_fc > MAX_FC:
                return (
                    f"layer {i} {layer.token()!r} is fc layer {seen_fc}; at most {MAX_FC} allowed"
                )
        if isinstance(layer, Conv) and layer.skip is not None:
            j = layer.skip
            if j > i - 2:
                return (
                    f"layer {i} {layer.token()!r} skips from layer {j}; a skip must come from an "
                    f"earlier layer that is not the direct input (index <= {i - 2})"
                )
            if not isinstance(layers[j], Conv):
                return (
                    f"layer {i} {layer.token()!r} skips from layer {j} {layers[j].token()!r}; "
                    "a skip must come from a conv layer"
                )
    return None


@dataclass(frozen=True)
class ChainArch:
    """A chain of layers. Validated (space-independent rules), immutable and hashable."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Conv | Pool | FC):
                raise InvalidArchError(
                    f"chain layer {i} must be a Conv, Pool or FC, got {type(layer).__name__}"
                )
        object.__setattr__(self, "layers", layers)
        error = _structure_error(layers)
        if error:
            raise InvalidArchError(f"invalid chain {to_string(self)!r}: {error}")


def to_string(arch: ChainArch) -> str:
    """``conv3-32-s1|pool2|conv5-64-s2+skip0|fc128``."""
    return "|".join(layer.token() for layer in arch.layers)


def _parse_layer(token: str) -> Layer:
    match = _CONV_RE.fullmatch(token)
    if match:
        k, f, s, skip = match.groups()
        return Conv(int(k), int(f), int(s), None if skip is None else int(skip))
    match = _POOL_RE.fullmatch(token)
    if match:
        return Pool(int(match.group(1)))
    match = _FC_RE.fullmatch(token)
    if match:
        return FC(int(match.group(1)))
    raise InvalidArchError(f"unrecognised layer {token!r}")


def from_string(text: str) -> ChainArch:
    """Parse strictly: every token must match the grammar exactly (no spaces, no leading zeros)."""
    if not isinstance(text, str):
        raise InvalidArchError(f"a chain string must be a str, got {type(text).__name__}")
    if not text.strip():
        raise InvalidArchError(f"empty chain string; {GRAMMAR}")
    layers = []
    for i, token in enumerate(text.strip().split("|")):
        try:
            layers.append(_parse_layer(token))
        except InvalidArchError as err:
            raise InvalidArchError(
                f"invalid chain {text!r}: token {i} {token!r}: {err}; {GRAMMAR}"
            ) from None
    return ChainArch(tuple(layers))


def _check(arch: object) -> ChainArch:
    if not isinstance(arch, ChainArch):
        raise InvalidArchError(f"expected a ChainArch, got {type(arch).__name__}")
    return arch


def _downsamples(layer: Layer) -> bool:
    return isinstance(layer, Pool) or (isinstance(layer, Conv) and layer.stride == 2)


# --- one-layer edits (mutate, neighbours) ------------------------------------------------------

MOVE_KINDS: tuple[str, ...] = ("delete", "replace", "skip", "insert")


def _with_skip(layer: Conv, skip: int | None) -> Conv:
    return Conv(layer.kernel, layer.filters, layer.stride, skip)


def _delete(layers: Sequence[Layer], i: int) -> list[Layer]:
    """Remove layer ``i``; later skips are re-indexed, and a skip that read from the removed
    layer, or that would now read from its own direct input, goes with it."""
    out = list(layers[:i])
    for layer in layers[i + 1 :]:
        if isinstance(layer, Conv) and layer.skip is not None and layer.skip >= i:
            layer = _with_skip(layer, None if layer.skip == i else layer.skip - 1)
        if isinstance(layer, Conv) and layer.skip is not None and layer.skip > len(out) - 2:
            layer = _with_skip(layer, None)
        out.append(layer)
    return out


def _insert(layers: Sequence[Layer], i: int, option: Layer) -> list[Layer]:
    """Put ``option`` before layer ``i``; skips into layers at or after ``i`` are re-indexed."""
    after = [
        _with_skip(layer, layer.skip + 1)
        if isinstance(layer, Conv) and layer.skip is not None and layer.skip >= i
        else layer
        for layer in layers[i:]
    ]
    return [*layers[:i], option, *after]


def _replace(layers: Sequence[Layer], i: int, option: Layer) -> list[Layer]:
    """Swap layer ``i`` for ``option``; a conv replacing a conv keeps its skip."""
    old = layers[i]
    if isinstance(option, Conv) and isinstance(old, Conv):
        option = _with_skip(option, old.skip)
    return [*layers[:i], option, *layers[i + 1 :]]


def _set_skip(layers: Sequence[Layer], i: int, skip: int | None) -> list[Layer] | None:
    old = layers[i]
    if not isinstance(old, Conv):
        return None
    return [*layers[:i], _with_skip(old, skip), *layers[i + 1 :]]


def _edits(layers: Sequence[Layer], kind: str) -> Iterator[list[Layer] | None]:
    """Every edit of ``kind`` in a fixed order (some may be invalid or no change)."""
    n = len(layers)
    if kind == "delete":
        yield from (_delete(layers, i) for i in range(n))
    elif kind == "replace":
        yield from (_replace(layers, i, o) for i in range(n) for o in LAYER_OPTIONS)
    elif kind == "skip":
        yield from (_set_skip(layers, i, s) for i in range(n) for s in (None, *range(i - 1)))
    else:
        yield from (_insert(layers, i, o) for i in range(n + 1) for o in LAYER_OPTIONS)


def _random_edit(
    layers: Sequence[Layer], kind: str, rng: np.random.Generator
) -> list[Layer] | None:
    """One random edit of ``kind`` (possibly invalid or no change: the caller checks)."""
    n = len(layers)
    option = LAYER_OPTIONS[int(rng.integers(len(LAYER_OPTIONS)))]
    if kind == "delete":
        return _delete(layers, int(rng.integers(n)))
    if kind == "replace":
        return _replace(layers, int(rng.integers(n)), option)
    if kind == "skip":
        i = int(rng.integers(n))
        skip = int(rng.integers(-1, max(i - 1, 0)))
        return _set_skip(layers, i, None if skip < 0 else skip)
    return _insert(layers, int(rng.integers(n + 1)), option)


# --- the network --------------------------------------------------------------------------------


def _scaled(width: int, multiplier: float) -> int:
    return max(1, round(width * multiplier))


def _channel_plan(arch: ChainArch, in_channels: int, multiplier: float) -> list[tuple[int, int]]:
    """(input channels, output channels) of each layer; an fc layer's input is after pooling."""
    plan: list[tuple[int, int]] = []
    channels = in_channels
    for layer in arch.layers:
        if isinstance(layer, Conv):
            c_in = channels + (plan[layer.skip][1] if layer.skip is not None else 0)
            channels = _scaled(layer.filters, multiplier)
            plan.append((c_in, channels))
        elif isinstance(layer, Pool):
            plan.append((channels, channels))
        else:
            units = _scaled(layer.units, multiplier)
            plan.append((channels, units))
            channels = units
    return plan


class ChainNetwork(nn.Module):
    """The layers in order, then global average pooling, the fc layers and a classifier."""

    def __init__(
        self, arch: ChainArch, in_channels: int, num_classes: int, width_multiplier: float
    ):
        super().__init__()
        plan = _channel_plan(arch, in_channels, width_multiplier)
        self.skips = [layer.skip if isinstance(layer, Conv) else None for layer in arch.layers]
        self.num_spatial = sum(not isinstance(layer, FC) for layer in arch.layers)
        blocks: list[nn.Module] = []
        for layer, (c_in, c_out) in zip(arch.layers, plan, strict=True):
            if isinstance(layer, Conv):
                blocks.append(
                    nn.Sequential(
                        nn.Conv2d(
                            c_in,
                            c_out,
                            layer.kernel,
                            stride=layer.stride,
                            padding=layer.kernel // 2,
                            bias=False,
                        ),
                        nn.BatchNorm2d(c_out),
                        nn.ReLU(inplace=False),
                    )
                )
            elif isinstance(layer, Pool):
                # both give ceil(r/2) for every r >= 1, like a stride-2 "same" conv
                if layer.kernel == 2:
                    blocks.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                else:
                    blocks.append(nn.MaxPool2d(3, 2, padding=1))
            else:
                blocks.append(nn.Sequential(nn.Linear(c_in, c_out), nn.ReLU(inplace=False)))
        self.blocks = nn.ModuleList(blocks)
        features = plan[-1][1]
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for i in range(self.num_spatial):
            skip = self.skips[i]
            if skip is not None:
                source = outputs[skip]
                if source.shape[-2:] != x.shape[-2:]:
                    source = F.adaptive_avg_pool2d(source, x.shape[-2:])
                x = torch.cat([x, source], dim=1)
            x = self.blocks[i](x)
            outputs.append(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        for block in self.blocks[self.num_spatial :]:
            x = block(x)
        return self.classifier(x)


def _check_net(in_channels: object, num_classes: object, width_multiplier: object) -> None:
    int_option("chain network in_channels", in_channels)
    int_option("chain network num_classes", num_classes)
    positive_option("chain network width_multiplier", width_multiplier)


# --- the space ----------------------------------------------------------------------------------


class ChainSpace(DecisionVectorSpace):
    """MetaQNN / NAS-RL chain space as a SearchSpace: architectures are ChainArch values.

    ``input_size`` is the image side the resolution rules are tracked from (the network itself
    takes any size); ``max_layers`` bounds the depth (classifier not counted).

    As decisions, slot t chooses a layer (30 options: ``LAYER_OPTIONS`` + end) and, for t >= 2,
    a skip (t options: none or from layer 0..t-2); any sequence decodes to a valid arch (see the
    module docstring for the repair). ``DecisionVectorSpace`` gives ``sample`` (uniform over the
    decisions, then repaired, so shallow chains are rarer), the ``index``/``onehot`` encodings
    of the decisions and ``crossover`` (uniform over the decisions, repaired by decoding).
    ``mutate`` and ``neighbours`` are this space's own layer edits (insert, delete, replace, set
    a skip), which keep the rest of the chain in place where a decision change would shift it;
    ``canonical`` is the identity, so "different" is "not equal".
    """

    name = "chain"
    #: no integer base-width or depth knob: the width knob is the float ``width_multiplier``
    size_options: ClassVar[dict[str, str | None]] = {"channels": None, "cells": None}

    def __init__(self, input_size: int = 32, max_layers: int = 8):
        self.input_size = int_option("chain space input_size", input_size)
        self.max_layers = int_option("chain space max_layers", max_layers)
        self._choice_counts = self._count_choices()

    def __repr__(self) -> str:
        return f"ChainSpace(input_size={self.input_size}, max_layers={self.max_layers})"

    # --- validity -------------------------------------------------------------------------------

    def _step_error(self, layer: Layer, index: int, resolution: int) -> str | None:
        """Why ``layer`` cannot be layer ``index`` at ``resolution`` (space rules), or None."""
        if index >= self.max_layers:
            return f"it has more than max_layers={self.max_layers} layers"
        if _downsamples(layer) and resolution < 2:
            return (
                f"layer {index} {layer.token()!r} downsamples a {resolution}x{resolution} map; "
                "pooling and stride-2 convs need resolution >= 2"
            )
        if isinstance(layer, FC) and resolution > FC_MAX_RESOLUTION:
            return (
                f"layer {index} {layer.token()!r} comes at resolution {resolution}; fc layers "
                f"need resolution <= {FC_MAX_RESOLUTION} (input_size={self.input_size})"
            )
        return None

    def check(self, arch: object) -> ChainArch:
        """``arch`` if it is valid in this space, else InvalidArchError naming the broken rule."""
        arch = _check(arch)
        resolution = self.input_size
        for index, layer in enumerate(arch.layers):
            error = self._step_error(layer, index, resolution)
            if error:
                raise InvalidArchError(f"invalid chain {to_string(arch)!r}: {error}")
            if _downsamples(layer):
                resolution = (resolution + 1) // 2
        return arch

    def is_valid(self, arch: object) -> bool:
        try:
            self.check(arch)
        except InvalidArchError:
            return False
        return True

    def resolutions(self, arch: ChainArch) -> list[int]:
        """The spatial side after each layer, for an ``input_size`` image."""
        out, resolution = [], self.input_size
        for layer in _check(arch).layers:
            if _downsamples(layer):
                resolution = (resolution + 1) // 2
            out.append(resolution)
        return out

    # --- decisions ------------------------------------------------------------------------------

    def _slot_choices(self) -> list[tuple[int, int]]:
        """(layer decision position, skip decision position or -1) of each slot."""
        slots, position = [], 0
        for t in range(self.max_layers):
            skip = position + 1 if t >= 2 else -1
            slots.append((position, skip))
            position += 2 if t >= 2 else 1
        return slots

    def _decode(self, seq: Sequence[int]) -> ChainArch:
        """Deterministic repair: read slots in order, stop at end, drop what breaks a rule."""
        layers: list[Layer] = []
        resolution = self.input_size
        for layer_pos, skip_pos in self._slot_choices():
            option = int(seq[layer_pos])
            if option == END:
                break
            layer = LAYER_OPTIONS[option]
            if isinstance(layer, Conv) and skip_pos >= 0 and int(seq[skip_pos]) > 0:
                with_skip = Conv(layer.kernel, layer.filters, layer.stride, int(seq[skip_pos]) - 1)
                if _structure_error([*layers, with_skip]) is None:
                    layer = with_skip
            if _structure_error([*layers, layer]) is not None:
                continue
            if self._step_error(layer, len(layers), resolution) is not None:
                continue
            layers.append(layer)
            if _downsamples(layer):
                resolution = (resolution + 1) // 2
        return ChainArch(tuple(layers) or (FALLBACK,))

    def _encode(self, arch: object) -> tuple[int, ...]:
        layers = self.check(arch).layers
        seq = [0] * len(self._choices())
        for t, (layer_pos, skip_pos) in enumerate(self._slot_choices()):
            if t >= len(layers):
                seq[layer_pos] = END
                continue
            layer = layers[t]
            if isinstance(layer, Conv):
                seq[layer_pos] = _OPTION_INDEX[Conv(layer.kernel, layer.filters, layer.stride)]
                if skip_pos >= 0 and layer.skip is not None:
                    seq[skip_pos] = layer.skip + 1
            else:
                seq[layer_pos] = _OPTION_INDEX[layer]
        return tuple(seq)

    def _choices(self) -> tuple[int, ...]:
        return self._choice_counts

    def _count_choices(self) -> tuple[int, ...]:
        out: list[int] = []
        for t in range(self.max_layers):
            out.append(len(LAYER_OPTIONS) + 1)
            if t >= 2:
                out.append(t)  # none, or from layer 0..t-2
        return tuple(out)

    # --- the protocol ---------------------------------------------------------------------------

    def _child(self, arch: ChainArch, layers: Sequence[Layer] | None) -> ChainArch | None:
        """``layers`` as an arch if it is valid here and differs from ``arch``, else None."""
        if layers is None or _structure_error(layers) is not None:
            return None
        child = ChainArch(tuple(layers))
        return child if child != arch and self.is_valid(child) else None

    def _moves(self, arch: ChainArch, kind: str) -> list[ChainArch]:
        """Valid, distinct results of one kind of edit, in a fixed order."""
        out: list[ChainArch] = []
        seen = {arch}
        for edit in _edits(arch.layers, kind):
            child = self._child(arch, edit)
            if child is not None and child not in seen:
                seen.add(child)
                out.append(child)
        return out

    def mutate(self, arch: ChainArch, rng: np.random.Generator) -> ChainArch:
        """Insert, delete or replace one layer, or change one conv's skip (MetaQNN-style edits).

        An edit kind is picked uniformly, then a random edit of that kind (a few tries, then
        uniformly among all its valid results); a kind without valid results passes to the next.
        """
        arch = self.check(arch)
        for k in rng.permutation(len(MOVE_KINDS)):
            kind = MOVE_KINDS[int(k)]
            for _ in range(20):
                child = self._child(arch, _random_edit(arch.layers, kind, rng))
                if child is not None:
                    return child
            moves = self._moves(arch, kind)
            if moves:
                return moves[int(rng.integers(len(moves)))]
        raise InvalidArchError(f"chain {to_string(arch)!r} has no valid one-edit neighbour")

    def neighbours(self, arch: ChainArch) -> list[ChainArch]:
        """Every valid chain one edit away: deletions, replacements, skip changes, insertions.

        A deleted layer takes the skips that read from it along; inserted convs have no skip."""
        arch = self.check(arch)
        out: list[ChainArch] = []
        seen: set[ChainArch] = set()
        for kind in MOVE_KINDS:
            for child in self._moves(arch, kind):
                if child not in seen:
                    seen.add(child)
                    out.append(child)
        return out

    def to_string(self, arch: ChainArch) -> str:
        return to_string(self.check(arch))

    def from_string(self, text: str) -> ChainArch:
        return self.check(from_string(text))

    def canonical(self, arch: ChainArch) -> ChainArch:
        """Identity: distinct valid chains build distinct networks."""
        return self.check(arch)

    def build(
        self,
        arch: ChainArch,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        width_multiplier: float = 1.0,
    ) -> ChainNetwork:
        """The chain as a network; ``width_multiplier`` scales every conv's filters and every fc
        layer's units (rounded, at least 1)."""
        _check_net(in_channels, num_classes, width_multiplier)
        return ChainNetwork(
            self.check(arch), int(in_channels), int(num_classes), float(width_multiplier)
        )

    def param_count(
        self,
        arch: ChainArch,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        width_multiplier: float = 1.0,
    ) -> int:
        """Trainable parameters of ``build(arch, ...)``, computed without building it."""
        _check_net(in_channels, num_classes, width_multiplier)
        arch = self.check(arch)
        plan = _channel_plan(arch, int(in_channels), float(width_multiplier))
        total = 0
        for layer, (c_in, c_out) in zip(arch.layers, plan, strict=True):
            if isinstance(layer, Conv):
                total += layer.kernel**2 * c_in * c_out + 2 * c_out  # conv weights + BN
            elif isinstance(layer, FC):
                total += c_in * c_out + c_out
        return total + plan[-1][1] * num_classes + num_classes
