"""The operations of a search space at every shape they occur in: what a latency table measures.

A latency table (`latency.table`) knows nothing of any space. It asks a `SpaceOps` for the
distinct operations of the space (`enumerate`), for the operations one network runs, in order
(`ops`), for a module that computes one operation (`module`) and for the whole network
(`network`). An `Op` is one operation at one input shape, named by a ``key`` that is stable
across processes and machines (it is the table file's key).

Only the mobile space is enumerated now (`MobileOps`): a layer is the block, kernel, SE ratio,
input and output channels, stride, input resolution and residual (the expansion is part of
the block), plus the stem, the head and the classifier (pooling, dropout, linear). Another
space plugs in by adding a `SpaceOps` to `TABLE_SPACES` (NB201: the six edges' ops at each
cell position's channels and resolution, plus stem, reductions and classifier).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn.blocks import ConvBNAct
from nasforge.spaces import mobile


@dataclass(frozen=True)
class Op:
    """One operation at one shape: the ``key`` a table stores it under, one image's input
    shape ``(C, H, W)``, and ``spec``, what its space needs to build it."""

    key: str
    input_shape: tuple[int, int, int]
    spec: Hashable


class SpaceOps(Protocol):
    """A search space seen as a sum of operations (what `LatencyTable` needs of a space)."""

    space: str

    def settings(self) -> dict[str, Any]:
        """JSON-able settings; ``TABLE_SPACES[space](**settings)`` rebuilds this object."""
        ...

    def enumerate(self) -> list[Op]:
        """Every distinct operation any network of this part of the space runs, each once."""
        ...

    def ops(self, arch: Any) -> list[Op]:
        """The operations ``arch``'s network runs, in order."""
        ...

    def module(self, op: Op) -> nn.Module:
        """A module computing ``op`` alone (a fresh one, randomly initialised)."""
        ...

    def network(self, arch: Any) -> nn.Module:
        """``arch``'s whole network at these settings."""
        ...

    def input_shape(self) -> tuple[int, int, int]:
        """One image's shape as the network takes it."""
        ...

    def sample(self, rng: np.random.Generator) -> Any:
        """A random architecture of the part of the space these settings cover."""
        ...

    def covers(self, arch: object) -> bool:
        """Whether ``arch`` lies in the part of the space these settings cover."""
        ...

    def part(self) -> str | None:
        """That part in words when it is not the whole space (None when it is): a search
        with this table keeps to it."""
        ...

    def to_string(self, arch: Any) -> str: ...

    def from_string(self, text: str) -> Any: ...


def _side(size: int, stride: int) -> int:
    """Output side of a conv padded by kernel // 2 (odd kernels): ceil(size / stride)."""
    return math.ceil(size / stride)


class MobileOps:
    """The mobile space (`spaces.mobile`) at some widths, one input size and class count.

    Per width: 7 stages x (5 blocks x 3 kernels x 2 SE ratios) x 3 shapes (the stage's first
    layer; a later layer with and without its residual) = 630 layers, plus stem, head and
    classifier: 633 operations. A table covers the widths it is built for (1.0 by default,
    the mobile supernet's; all four are 2,140 distinct operations, 3.4 times the time).
    """

    space: ClassVar[str] = "mobile"

    def __init__(
        self,
        widths: Sequence[float] = (1.0,),
        input_size: int = 32,
        num_classes: int = 10,
        in_channels: int = 3,
    ):
        widths = tuple(float(w) for w in widths)
        if not widths or any(w not in mobile.WIDTHS for w in widths):
            accepted = ", ".join(f"{w:g}" for w in mobile.WIDTHS)
            raise ConfigError(
                f"mobile widths {', '.join(f'{w:g}' for w in widths) or 'none'} are not "
                f"accepted; give one or more of {accepted}"
            )
        for name, value in (
            ("input_size", input_size),
            ("num_classes", num_classes),
            ("in_channels", in_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"mobile latency table {name} must be an int >= 1, got {value!r}")
        self.widths = tuple(sorted(set(widths)))
        self.input_size, self.num_classes, self.in_channels = input_size, num_classes, in_channels

    def __repr__(self) -> str:
        return f"MobileOps({self.settings()})"

    def settings(self) -> dict[str, Any]:
        return {
            "widths": list(self.widths),
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
        }

    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.input_size, self.input_size)

    # --- ops ------------------------------------------------------------------------------

    def layer_op(self, layer: mobile._Layer, resolution: int) -> Op:
        """The op of one searched layer (a `spaces.mobile.plan_of` layer) at ``resolution``."""
        se = f"{layer.se:g}"
        key = (
            f"{layer.block}_k{layer.kernel}_se{se}_c{layer.c_in}-{layer.c_out}_s{layer.stride}"
            f"_r{resolution}{'_skip' if layer.residual else ''}"
        )
        return Op(key, (layer.c_in, resolution, resolution), layer)

    def _stem(self, c_out: int, stride: int) -> Op:
        side = self.input_size
        key = f"stem_c{self.in_channels}-{c_out}_s{stride}_r{side}"
        return Op(key, (self.in_channels, side, side), ("stem", self.in_channels, c_out, stride))

    def _head(self, c_in: int, c_out: int, side: int) -> Op:
        return Op(f"head_c{c_in}-{c_out}_r{side}", (c_in, side, side), ("head", c_in, c_out))

    def _classifier(self, channels: int, side: int) -> Op:
        key = f"classifier_c{channels}-{self.num_classes}_r{side}"
        return Op(key, (channels, side, side), ("classifier", channels, self.num_classes))

    def covers(self, arch: object) -> bool:
        return isinstance(arch, mobile.MobileArch) and arch.width in self.widths

    def part(self) -> str | None:
        if set(self.widths) == set(mobile.WIDTHS):
            return None
        return (
            f"width{'s' if len(self.widths) > 1 else ''} {', '.join(f'{w:g}' for w in self.widths)}"
        )

    def check(self, arch: object) -> mobile.MobileArch:
        if not isinstance(arch, mobile.MobileArch):
            raise ConfigError(f"expected a mobile architecture, got {type(arch).__name__}")
        if arch.width not in self.widths:
            covered = ", ".join(f"{w:g}" for w in self.widths)
            raise ConfigError(
                f"{mobile.to_string(arch)} has width {arch.width:g}; this latency table covers "
                f"width {covered} (build one with --width {arch.width:g})"
            )
        return arch

    def _walk(self, arch: mobile.MobileArch) -> tuple[Any, list[tuple[mobile._Layer, int, int]]]:
        """``arch``'s plan and each searched layer with its input side and place in its stage."""
        plan = mobile.plan_of(self.check(arch), self.input_size)
        side = _side(self.input_size, plan.stem_stride)
        layers = []
        for stage in plan.stages:
            for place, layer in enumerate(stage):
                layers.append((layer, side, place))
                side = _side(side, layer.stride)
        return plan, layers

    def layers(self, arch: mobile.MobileArch) -> list[tuple[mobile._Layer, int]]:
        """``arch``'s searched layers (`spaces.mobile.plan_of`'s) with their input sides: what
        `LatencyTable.layer_ms` takes."""
        return [(layer, side) for layer, side, _ in self._walk(arch)[1]]

    def ops(self, arch: mobile.MobileArch) -> list[Op]:
        plan, layers = self._walk(arch)
        side = _side(layers[-1][1], layers[-1][0].stride)
        last = plan.stages[-1][-1].c_out
        return [
            self._stem(plan.stem, plan.stem_stride),
            *(self.layer_op(layer, at) for layer, at, _ in layers),
            self._head(last, plan.head, side),
            self._classifier(plan.head, side),
        ]

    def _template(self, width: float) -> mobile.MobileArch:
        """A network of ``width`` whose every stage has two layers or more."""
        return mobile.MobileArch((mobile.MobileStage(delta=1),) * mobile.NUM_STAGES, width)

    def enumerate(self) -> list[Op]:
        """Per width: the template network (every stage two layers deep or more) gives each
        stage's first-layer and later-layer shapes (channels, stride, resolution), crossed with
        every block, kernel and SE ratio, and for later layers residual on and off (a first
        layer changes channels or stride: never a residual)."""
        found: dict[str, Op] = {}
        for width in self.widths:
            template = self._template(width)
            ends = self.ops(template)
            found.setdefault(ends[0].key, ends[0])
            for layer, side, place in self._walk(template)[1]:
                if place > 1:
                    continue
                for block in mobile.BLOCKS:
                    for kernel in mobile.KERNELS:
                        for se in mobile.SE_RATIOS:
                            for residual in (False, True) if place else (False,):
                                changed = dataclasses.replace(
                                    layer, block=block, kernel=kernel, se=se, residual=residual
                                )
                                op = self.layer_op(changed, side)
                                found.setdefault(op.key, op)
            for op in ends[-2:]:
                found.setdefault(op.key, op)
        return list(found.values())

    # --- modules ----------------------------------------------------------------------------

    def module(self, op: Op) -> nn.Module:
        spec = op.spec
        if isinstance(spec, mobile._Layer):
            return mobile.make_layer(spec)
        kind, c_in, c_out, *rest = spec  # type: ignore[misc]
        if kind == "stem":
            return ConvBNAct(c_in, c_out, 3, rest[0], act="relu6")
        if kind == "head":
            return ConvBNAct(c_in, c_out, 1, act="relu6")
        if kind == "classifier":
            return nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2), nn.Linear(c_in, c_out)
            )
        raise ConfigError(f"not a mobile latency-table op: {op.key}")

    def network(self, arch: mobile.MobileArch) -> nn.Module:
        return mobile.build(
            self.check(arch),
            in_channels=self.in_channels,
            num_classes=self.num_classes,
            input_size=self.input_size,
        )

    def sample(self, rng: np.random.Generator) -> mobile.MobileArch:
        """A uniform draw of the mobile space's decisions, with the width drawn from those
        this table covers."""
        arch = mobile.MobileSpace().sample(rng)
        width = self.widths[int(rng.integers(len(self.widths)))]
        return mobile.MobileArch(arch.stages, width)

    def to_string(self, arch: mobile.MobileArch) -> str:
        return mobile.to_string(arch)

    def from_string(self, text: str) -> mobile.MobileArch:
        return mobile.from_string(text)

    def resolution_of(self, layer: mobile._Layer) -> int:
        """The input resolution at which ``layer`` (channels, stride) runs in these networks;
        a one-line error where that is not one resolution (several widths share channels)."""
        shape = (layer.c_in, layer.c_out, layer.stride)
        sides = {
            side
            for width in self.widths
            for found, side, _ in self._walk(self._template(width))[1]
            if (found.c_in, found.c_out, found.stride) == shape
        }
        if len(sides) != 1:
            listed = ", ".join(map(str, sorted(sides))) or "none"
            raise ConfigError(
                f"a layer {layer.c_in}->{layer.c_out} channels at stride {layer.stride} runs at "
                f"resolution {listed} in this table's networks; give resolution= explicitly"
            )
        return sides.pop()


#: Spaces a latency table can be built for: name -> its `SpaceOps` class.
TABLE_SPACES: dict[str, type] = {"mobile": MobileOps}


def space_ops(space: str, **settings: Any) -> SpaceOps:
    """The `SpaceOps` of ``space`` at ``settings``; a one-line error for other spaces."""
    if space not in TABLE_SPACES:
        from nasforge import factory

        accepted = ", ".join(TABLE_SPACES)
        if space in factory.SPACES:
            raise ConfigError(
                f"space {space!r} has no latency table yet (its operations are not enumerated); "
                f"accepted: {accepted}"
            )
        raise ConfigError(f"unknown space {space!r} for a latency table; accepted: {accepted}")
    return TABLE_SPACES[space](**settings)
