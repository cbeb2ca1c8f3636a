"""Model scaling: EfficientNet's compound scaling and the single-dimension baselines.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
scale a base network's depth by d = α^φ, its width by w = β^φ and its input resolution by
r = γ^φ. Since a CNN's FLOPs grow about linearly in depth and quadratically in width and
resolution, the constraint α·β²·γ² ≈ 2 makes each unit of φ about double the FLOPs. α, β, γ
(each >= 1) are found once by a small grid search at φ = 1 on the base network (theirs:
α = 1.2, β = 1.1, γ = 1.15, `PAPER_COEFFICIENTS`); larger networks are then φ = 2, 3, ...
Scaling only one dimension to the same FLOPs is the baseline compound scaling beats.

Here the base network is any `spaces.mobile` architecture (MobileNetV2 stages), built through
that space's own `plan_of` and `make_layer`, so a scaled layer is the searched layer with other
channel and layer counts:

- width: every channel count of the base network (stem, each stage, head) times ``width``,
  rounded to a multiple of 8 by `mobile.make_divisible` (EfficientNet's and MobileNetV2's
  rounding). Expanded and squeeze-excite channels follow from the block's input, as in the space;
- depth: each stage's layer count n becomes ceil(depth · n) (EfficientNet's rounding); added
  layers repeat the stage's non-first layer (stride 1, the stage's skip);
- resolution: the pixel side the images are resized to (`resize_images`: bilinear, antialiased
  when shrinking). The images are resized once, as a data step, not inside the network: each
  epoch then costs no resize, and the MACs and latency reported are those of the network at its
  input size, as the paper reports them (the resize is the input pipeline's). Every resolution
  is resampled from the source images, not from the base resolution's.

The small-input layout: `mobile.plan_of` keeps full resolution in the stem and the first
stride-2 stage for inputs below 64 pixels. The scaled network's layout is always that of the
*base* resolution, whatever its own resolution is, so scaling the resolution only makes every
feature map larger (as in EfficientNet, whose strides are fixed) and never silently changes
the strides by crossing 64.

Where this departs from the paper: the base network is not EfficientNet-B0 (a searched
MobileNetV2-like network, trained on CPU-sized images, e.g. 16 pixels instead of 224); the
grid is small and each candidate trains a few epochs on a subset (the paper trains fully);
dropout is not raised with φ; and because channels round to multiples of 8, layer counts to
whole layers and resolutions to whole pixels, a network's real MACs growth is not exactly
(α·β²·γ²)^φ, so the single-dimension baselines are matched to the compound network's *counted*
MACs (`single_dimension`), not to 2^φ. On CPU-sized images that gap is large: a stride-2
conv rounds an odd side up (18 -> 9 -> 5 -> 3 against 16 -> 8 -> 4 -> 2), so later stages grow
faster than γ², and a one-layer stage gains a whole layer at any α > 1; MobileNetV2 0.5 at 16
pixels grows 2.95x in MACs at φ = 1 with the paper's coefficients. `grid_search` reports each
candidate's counted MACs beside its nominal α·β²·γ².
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import product
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.compress.finetune import accuracy, fit
from nasforge.data.datasets import split_train_val
from nasforge.errors import ConfigError
from nasforge.nn.blocks import ConvBNAct
from nasforge.nn.profile import count_macs, count_params, torch_threads
from nasforge.spaces import mobile
from nasforge.spaces.net_options import fraction_option, int_option, positive_option

#: the dimensions one scales alone (the baselines)
KINDS: tuple[str, ...] = ("width", "depth", "resolution")
#: the smallest input side the mobile networks accept
MIN_RESOLUTION = 8
#: Tan & Le's (α, β, γ) for EfficientNet-B0
PAPER_COEFFICIENTS: tuple[float, float, float] = (1.2, 1.1, 1.15)
#: FLOPs growth per unit of φ that α·β²·γ² should hit
FLOPS_BASE = 2.0
#: the default (α, β, γ) grid: α 1 to 2 in steps of 0.1, β and γ 1 to 1.4 in steps of 0.05 (the
#: paper's search region, coarser); 60 points are within 0.1 of 2, 26 within 0.05: too many to
#: train on a CPU, so the benchmark passes a smaller grid
DEFAULT_GRID: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] = (
    tuple(round(1.0 + 0.1 * i, 2) for i in range(11)),
    tuple(round(1.0 + 0.05 * i, 2) for i in range(9)),
    tuple(round(1.0 + 0.05 * i, 2) for i in range(9)),
)
#: the multipliers `single_dimension` searches within (MACs beyond them are refused)
_WIDTH_LIMITS = (1 / 16, 8.0)
_DEPTH_LIMITS = (1 / 64, 16.0)
_RESOLUTION_LIMIT = 512

Plan = Any  # `mobile.plan_of`'s (private) plan type


def _resolution(what: str, value: object) -> int:
    return int_option(what, value, low=MIN_RESOLUTION)


@dataclass(frozen=True, kw_only=True)
class Scaling:
    """One scaled network's multipliers: layers per stage x ``depth``, channels x ``width``,
    images resized to ``resolution`` pixels (an absolute side, as the paper's 224, 240, ...)."""

    resolution: int
    depth: float = 1.0
    width: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolution", _resolution("scaling resolution", self.resolution))
        object.__setattr__(self, "depth", positive_option("scaling depth", self.depth))
        object.__setattr__(self, "width", positive_option("scaling width", self.width))

    def label(self) -> str:
        """Short form for tables and progress lines: ``d1.44 w1.21 r21``."""
        return f"d{self.depth:.3g} w{self.width:.3g} r{self.resolution}"


def repeats(layers: int, depth: float) -> int:
    """ceil(depth · layers), at least 1 (the 1e-9 keeps 2.2 · 25 = 55.00000000000001 at 55)."""
    return max(1, math.ceil(depth * layers - 1e-9))


def scaled_plan(arch: mobile.MobileArch, scaling: Scaling, base_resolution: int) -> Plan:
    """The base network's `mobile.plan_of` plan, laid out for ``base_resolution``, with channels
    times ``scaling.width`` (rounded to multiples of 8) and layers times ``scaling.depth``."""
    base_resolution = _resolution("base resolution", base_resolution)
    base = mobile.plan_of(arch, base_resolution)

    def channels(count: int) -> int:
        return mobile.make_divisible(count * scaling.width)

    c_in, stages = channels(base.stem), []
    for stage, layers in zip(arch.stages, base.stages, strict=True):
        first, c_out = layers[0], channels(layers[0].c_out)
        rest = replace(first, c_in=c_out, c_out=c_out, stride=1, residual=stage.skip)
        count = repeats(len(layers), scaling.depth)
        stages.append((replace(first, c_in=c_in, c_out=c_out), *[rest] * (count - 1)))
        c_in = c_out
    return replace(base, stem=channels(base.stem), stages=tuple(stages), head=channels(base.head))


class ScaledNetwork(nn.Module):
    """`mobile.MobileNetwork`'s layout (stem, stages, 1x1 head, pooling, dropout, classifier)
    built from a scaled plan with the space's own blocks and initialisation."""

    def __init__(self, plan: Plan, in_channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.stem = ConvBNAct(in_channels, plan.stem, 3, plan.stem_stride, act="relu6")
        self.stages = nn.Sequential(
            *(nn.Sequential(*map(mobile.make_layer, layers)) for layers in plan.stages)
        )
        self.head = ConvBNAct(plan.stages[-1][-1].c_out, plan.head, 1, act="relu6")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(plan.head, num_classes)
        mobile.init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.head(self.stages(self.stem(x)))).flatten(1)
        return self.classifier(self.dropout(features))


def scaled_network(
    arch: mobile.MobileArch,
    scaling: Scaling,
    *,
    in_channels: int,
    num_classes: int,
    base_resolution: int,
    dropout: float = 0.2,
) -> ScaledNetwork:
    """``arch`` scaled by ``scaling``, for ``scaling.resolution``-pixel inputs, with the layout
    (small-input or ImageNet strides) of ``base_resolution``. Width 1, depth 1 is exactly
    ``mobile.build(arch, input_size=base_resolution)``."""
    if not isinstance(arch, mobile.MobileArch):
        raise ConfigError(
            "the base network must be a mobile.MobileArch (mobile.from_string parses one), got "
            f"{type(arch).__name__}"
        )
    if not isinstance(scaling, Scaling):
        raise ConfigError(f"the scaling must be a Scaling, got {type(scaling).__name__}")
    plan = scaled_plan(arch, scaling, base_resolution)
    return ScaledNetwork(
        plan,
        int_option("scaled network in_channels", in_channels),
        int_option("scaled network num_classes", num_classes),
        fraction_option("scaled network dropout", dropout),
    )


def describe(arch: mobile.MobileArch, scaling: Scaling, base_resolution: int) -> dict[str, Any]:
    """What a scaling builds: its multipliers, layers and output channels per stage, the stem
    and head channels (for tables and JSON)."""
    plan = scaled_plan(arch, scaling, base_resolution)
    return {
        **asdict(scaling),
        "layers": [len(layers) for layers in plan.stages],
        "channels": [layers[0].c_out for layers in plan.stages],
        "stem": plan.stem,
        "head": plan.head,
    }


def resize_images(images: torch.Tensor, side: int) -> torch.Tensor:
    """N×C×H×W images at ``side``×``side``: bilinear, antialiased when shrinking (so detail is
    averaged rather than aliased), as `data.datasets.resized` does; the same tensor when the
    side is already right."""
    side = _resolution("image side", side)
    if images.shape[-1] == side and images.shape[-2] == side:
        return images
    shrinking = side < images.shape[-1]
    return F.interpolate(
        images, size=(side, side), mode="bilinear", align_corners=False, antialias=shrinking
    )


def compound(phi: float, alpha: float, beta: float, gamma: float, base_resolution: int) -> Scaling:
    """EfficientNet's scaling at ``phi``: depth α^φ, width β^φ, resolution round(base · γ^φ)."""
    if isinstance(phi, bool) or not isinstance(phi, int | float) or not 0 <= phi < math.inf:
        raise ConfigError(f"compound scaling phi must be a finite number >= 0, got {phi!r}")
    a, b, g = (
        positive_option(n, v) for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma))
    )
    base = _resolution("base resolution", base_resolution)
    return Scaling(depth=a**phi, width=b**phi, resolution=max(MIN_RESOLUTION, round(base * g**phi)))


def network_macs(
    arch: mobile.MobileArch,
    scaling: Scaling,
    *,
    in_channels: int,
    num_classes: int,
    base_resolution: int,
) -> int:
    """Multiply-accumulates of one image through the scaled network (`nn.profile.count_macs`)."""
    net = scaled_network(
        arch,
        scaling,
        in_channels=in_channels,
        num_classes=num_classes,
        base_resolution=base_resolution,
    )
    return count_macs(net, (in_channels, scaling.resolution, scaling.resolution))


# --- single-dimension baselines -------------------------------------------------------------


def _closer(target: int, low: tuple[float, int], high: tuple[float, int]) -> float:
    """Of two (multiplier, MACs) points around ``target``, the multiplier with MACs nearer in
    ratio (MACs scale multiplicatively, so 10% over and 10% under are equally far)."""
    return low[0] if abs(math.log(target / low[1])) <= abs(math.log(high[1] / target)) else high[0]


def _search(
    macs_at: Callable[[float], int],
    target: int,
    start: float,
    limits: tuple[float, float],
    kind: str,
) -> float:
    """The multiplier in ``limits`` whose MACs are closest to ``target``: bracket it by doubling
    or halving from ``start``, then bisect. MACs never fall as the multiplier grows (more
    channels, layers or pixels), but they grow in steps (rounding), so the answer is the nearer
    side of the step that crosses the target. Resolution is searched over whole pixels."""
    integer = kind == "resolution"
    low = high = start
    while macs_at(high) < target:
        low, high = high, min(high * 2, limits[1])
        if low == high:
            raise _unreachable(kind, target, high, macs_at(high))
    while macs_at(low) > target:
        low, high = max(low / 2, limits[0]), low
        if low == high:
            raise _unreachable(kind, target, low, macs_at(low))
        if integer:
            low = math.floor(low)
    while (high - low > 1) if integer else (high - low > 1e-4 * high):
        middle = (low + high) // 2 if integer else (low + high) / 2
        if macs_at(middle) < target:
            low = middle
        else:
            high = middle
    return _closer(target, (low, macs_at(low)), (high, macs_at(high)))


def _unreachable(kind: str, target: int, limit: float, macs: int) -> ConfigError:
    """The error for a target beyond ``limit``, the bound the bracketing stopped at."""
    most = "most" if macs < target else "fewest"
    return ConfigError(
        f"{kind}-only scaling cannot reach {target:,} MACs: the {most} it gives is {macs:,} (at "
        f"{kind} {limit:g}); accepted: a target between the {kind} limits' MACs"
    )


def single_dimension(
    kind: str,
    target_macs: int,
    arch: mobile.MobileArch,
    *,
    base_resolution: int,
    in_channels: int,
    num_classes: int,
) -> Scaling:
    """The scaling of ``kind`` alone (``width``, ``depth`` or ``resolution``; the other two stay
    at the base) whose counted MACs are nearest ``target_macs``: the paper's baselines, matched
    in FLOPs to a compound network. Found by bisection on the multiplier, since MACs grow
    monotonically with it; the match is as close as the rounding steps allow."""
    if kind not in KINDS:
        raise ConfigError(f"unknown scaling dimension {kind!r}; accepted: {', '.join(KINDS)}")
    if isinstance(target_macs, bool) or not isinstance(target_macs, int) or target_macs < 1:
        raise ConfigError(f"target MACs must be a whole number >= 1, got {target_macs!r}")
    base = _resolution("base resolution", base_resolution)
    macs_at = _macs_of(kind, arch, base, in_channels, num_classes)
    if kind == "resolution":
        limits: tuple[float, float] = (MIN_RESOLUTION, _RESOLUTION_LIMIT)
    else:
        limits = _WIDTH_LIMITS if kind == "width" else _DEPTH_LIMITS
    value = _search(macs_at, target_macs, base if kind == "resolution" else 1.0, limits, kind)
    return _alone(kind, value, base)


def _alone(kind: str, value: float, base_resolution: int) -> Scaling:
    """The scaling with ``kind`` at ``value`` and the other dimensions at the base."""
    if kind == "resolution":
        return Scaling(resolution=int(value))
    return Scaling(resolution=base_resolution, **{kind: value})


def _macs_of(
    kind: str, arch: mobile.MobileArch, base: int, in_channels: int, num_classes: int
) -> Callable[[float], int]:
    """MACs as a function of ``kind``'s multiplier alone (memoised: bisection revisits its
    bracket's ends). For resolution one network serves every input side."""
    options = {"in_channels": in_channels, "num_classes": num_classes, "base_resolution": base}
    net = scaled_network(arch, Scaling(resolution=base), **options)
    cache: dict[float, int] = {}

    def macs_at(value: float) -> int:
        if value in cache:
            return cache[value]
        with torch_threads(1):  # one pass of a small network: more threads only wait
            if kind == "resolution":
                cache[value] = count_macs(net, (in_channels, int(value), int(value)))
            else:
                cache[value] = network_macs(arch, _alone(kind, value, base), **options)
        return cache[value]

    return macs_at


# --- the grid search ------------------------------------------------------------------------


def grid_candidates(
    grid: Sequence[Sequence[float]] = DEFAULT_GRID, tolerance: float = 0.1
) -> list[tuple[float, float, float]]:
    """The (α, β, γ) of the grid (all combinations of its three value lists) with
    |α·β²·γ² − 2| <= ``tolerance``, in grid order. Values must be >= 1, as in the paper (a
    value below 1 would shrink that dimension while the network grows)."""
    if len(grid) != 3:
        raise ConfigError(f"an (alpha, beta, gamma) grid must be 3 value lists, got {len(grid)}")
    tolerance = positive_option("grid tolerance", tolerance)
    for name, values in zip(("alpha", "beta", "gamma"), grid, strict=True):
        if not values or any(positive_option(name, v) < 1 for v in values):
            raise ConfigError(
                f"grid {name} values must be a non-empty list of numbers >= 1, got {values!r}"
            )
    points = list(product(*(tuple(float(v) for v in values) for values in grid)))
    kept = [p for p in points if abs(flops_factor(*p) - FLOPS_BASE) <= tolerance]
    if not kept:
        nearest = min(points, key=lambda p: abs(flops_factor(*p) - FLOPS_BASE))
        raise ConfigError(
            f"no (alpha, beta, gamma) in the grid has alpha*beta^2*gamma^2 within {tolerance:g} "
            f"of {FLOPS_BASE:g} (nearest {flops_factor(*nearest):.3g} at {nearest}); accepted: "
            "a grid with at least one such point or a larger tolerance"
        )
    return kept


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    """α·β²·γ²: how much one unit of φ multiplies FLOPs, nominally."""
    return alpha * beta**2 * gamma**2


@dataclass(frozen=True)
class Recipe:
    """How every scaled network trains (the same for all, so they compare): `finetune.fit`'s SGD
    with Nesterov momentum and a cosine schedule, from scratch, for ``epochs``."""

    epochs: int = 3
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    dropout: float = 0.2

    def __post_init__(self) -> None:
        int_option("training epochs", self.epochs, low=0)
        positive_option("learning rate", self.lr)
        int_option("batch size", self.batch_size)
        fraction_option("dropout", self.dropout)
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay!r}")


def train_scaled(
    arch: mobile.MobileArch,
    scaling: Scaling,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    base_resolution: int,
    num_classes: int,
    recipe: Recipe = Recipe(),
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> ScaledNetwork:
    """A scaled network initialised from ``seed`` and trained on ``images`` (at any side; they
    are resized to ``scaling.resolution`` here) with ``recipe``, in eval mode on ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = scaled_network(
            arch,
            scaling,
            in_channels=images.shape[1],
            num_classes=num_classes,
            base_resolution=base_resolution,
            dropout=recipe.dropout,
        ).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout draws
        fit(
            net,
            resize_images(images, scaling.resolution),
            labels,
            epochs=recipe.epochs,
            lr=recipe.lr,
            batch_size=recipe.batch_size,
            weight_decay=recipe.weight_decay,
            seed=seed,
        )
    return net


@dataclass(frozen=True)
class GridPoint:
    """One (α, β, γ) candidate: its scaling at the search's φ, cost and validation accuracy.
    ``trained`` is False where an earlier candidate built the very same network (rounding makes
    nearby coefficients coincide) and its accuracy was reused."""

    alpha: float
    beta: float
    gamma: float
    factor: float
    scaling: Scaling
    layers: tuple[int, ...]
    macs: int
    params: int
    val_accuracy: float
    seconds: float
    trained: bool = True


#: ``progress(done, total, point)`` after each candidate
GridProgress = Callable[[int, int, GridPoint], None]


def grid_search(
    arch: mobile.MobileArch,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    base_resolution: int,
    num_classes: int,
    grid: Sequence[Sequence[float]] = DEFAULT_GRID,
    tolerance: float = 0.1,
    phi: float = 1.0,
    recipe: Recipe = Recipe(),
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: GridProgress | None = None,
) -> list[GridPoint]:
    """The paper's step 1: every (α, β, γ) of `grid_candidates` scales ``arch`` at ``phi``, trains
    with ``recipe`` on the training images and is scored on a validation split carved from them
    (``val_fraction``, seeded): only training images are given, so the test set cannot leak into
    the choice. Returns the candidates best first (validation accuracy, then fewer MACs)."""
    candidates = grid_candidates(grid, tolerance)
    train_idx, val_idx = (
        torch.as_tensor(i) for i in split_train_val(len(images), val_fraction, seed)
    )
    train_x, train_y = images[train_idx], labels[train_idx]
    val_x, val_y = images[val_idx], labels[val_idx]
    seen: dict[tuple[Plan, int], GridPoint] = {}
    points: list[GridPoint] = []
    for done, (a, b, g) in enumerate(candidates, start=1):
        scaling = compound(phi, a, b, g, base_resolution)
        key = (scaled_plan(arch, scaling, base_resolution), scaling.resolution)
        if key in seen:  # the same network as an earlier candidate: its score holds
            point = replace(
                seen[key],
                alpha=a,
                beta=b,
                gamma=g,
                factor=flops_factor(a, b, g),
                scaling=scaling,
                seconds=0.0,
                trained=False,
            )
        else:
            started = time.perf_counter()
            net = train_scaled(
                arch,
                scaling,
                train_x,
                train_y,
                base_resolution=base_resolution,
                num_classes=num_classes,
                recipe=recipe,
                seed=seed,
                device=device,
            )
            point = GridPoint(
                alpha=a,
                beta=b,
                gamma=g,
                factor=flops_factor(a, b, g),
                scaling=scaling,
                layers=tuple(len(layers) for layers in key[0].stages),
                macs=count_macs(net, (images.shape[1], scaling.resolution, scaling.resolution)),
                params=count_params(net),
                val_accuracy=accuracy(net, resize_images(val_x, scaling.resolution), val_y),
                seconds=time.perf_counter() - started,
            )
            seen[key] = point
        points.append(point)
        if progress is not None:
            progress(done, len(candidates), point)
    return sorted(points, key=lambda p: (-p.val_accuracy, p.macs))
