"""Searched compression: per-layer pruning ratios (AMC) and per-layer bit-widths (HAQ) as
ordinary search spaces, searched by any strategy of the suite under a hard cost budget.

The design note says it: searched compression is a space whose architectures are per-layer
ratios or bit-widths, searched by the ordinary strategies. So there is no compression-specific
search loop here, only what makes a trained network searchable:

- `PruningRatioSpace`: one decision per `prune.prunable_layers` entry (a group of coupled
  channels), each a share of its output channels to remove; `macs` / `params` of a policy are
  counted on a pruned copy (`prune.channel_prune`), once per policy;
- `BitWidthSpace`: per `quantize.quantizable_layers` entry a weight bit-width, or a (weight,
  activation) pair; `size_bits` (bits of the quantised weights) and `bitops` (MACs x weight
  bits x activation bits) are sums over layers, with no network built;
- `PrunedAccuracy`, `QuantizedAccuracy`: estimators whose objective is the compressed copy's
  accuracy on held-out *validation* images, with the cost metrics beside it so a budget bound
  and the reports see them (test accuracy, when given, is report-only);
- `search_compression`: a search under ``budget_fraction`` of the uncompressed cost, the budget
  a `strategies.constraints.MetricBound` checked before a policy is proposed (the mechanism of
  ``--constraint``), and the best uniform policy that meets the same budget beside it.

AMC: He, Lin, Liu, Wang, Li and Han, "AMC: AutoML for Model Compression and Acceleration on
Mobile Devices", ECCV 2018. Its resource-constrained mode is what `PruningRatioSpace` +
`PrunedAccuracy` search: a pruning ratio per layer, the reward the pruned network's accuracy
on a validation split of the training set (no fine-tuning while searching), the FLOPs budget
always met. Departures: no DDPG agent walking the layers, a whole policy is one trial of any
strategy (regularized evolution by default); a ratio is one of a few choices (`RATIOS`) rather
than a continuous action; the budget is met by never proposing a policy over it, where AMC
clips each layer's action to what the remaining budget allows; channels are ranked by filter
L1 norm (the magnitude criterion AMC names), with no least-squares reconstruction of the next
layer; channels joined by residual adds are one decision (`prune` module docstring); and,
where asked (``bn_images``), batch norm is recalibrated before scoring (EagleEye's adaptive
batch norm, `recalibrate_batch_norm`), which AMC does not do. The budget is MACs or
parameters; a latency budget is not offered (a pruned copy's latency would have to be
measured, not counted, for every policy a strategy draws).

HAQ: Wang, Liu, Lin, Lin and Han, "HAQ: Hardware-Aware Automated Quantization with Mixed
Precision", CVPR 2019. `BitWidthSpace` + `QuantizedAccuracy` search its policy: linear
quantisation with a bit-width per layer for weights (and activations), 2 to 8 bits, scored by
the fake-quantised network's accuracy (`quantize.fake_quantize`, calibrated on training
images). Departures: no DDPG agent (as above), bits are a choice among `BITS`; HAQ's hardware
feedback (latency and energy from an accelerator or its simulator) is replaced by two budgets
that need no hardware: the size of the weights in bits (HAQ's own model-size setting) and
BitOps; HAQ lowers bit-widths until a policy fits, here a policy over budget is never proposed;
HAQ fine-tunes each policy for one epoch before scoring it, here ``finetune_epochs`` (default
0: calibration only, as AMC scores its policies). A CPU has no 3- to 7-bit kernels to time,
so a latency budget would measure nothing real for a mixed-precision policy.
"""

from __future__ import annotations

import copy
import math
import numbers
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from nasforge.compress.finetune import accuracy, fit
from nasforge.compress.prune import channel_prune, check_ratio, prunable_layers, removed_count
from nasforge.compress.quantize import MAX_BITS, MIN_BITS, fake_quantize, quantizable_layers
from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError, InvalidArchError
from nasforge.estimators.base import EstimatorBase, EstimatorCapabilities
from nasforge.history import History
from nasforge.nn.profile import (
    batch_shape,
    call_macs,
    count_macs,
    count_params,
    device_of,
    forward_zeros,
)
from nasforge.spaces.vector import DecisionVectorSpace

#: The pruning ratios a layer chooses from by default: whole, a quarter, half, three quarters.
RATIOS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
#: The bit-widths a layer chooses from by default (HAQ's range is 2 to 8).
BITS: tuple[int, ...] = (2, 4, 6, 8)
#: What `search_compression` searches: pruning ratios or bit-widths.
KINDS: tuple[str, ...] = ("prune", "quantize")
#: The budget metrics of each kind; `search_compression` defaults to the first (``bitops``
#: when activation bits are searched too: the size does not depend on them).
METRICS: dict[str, tuple[str, ...]] = {
    "prune": ("macs", "params"),
    "quantize": ("size_bits", "bitops"),
}


# --- checks -------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_fraction(value: object) -> float:
    """The budget as a share of the uncompressed cost, in (0, 1], or a one-line ConfigError."""
    if not _is_number(value) or not 0.0 < float(value) <= 1.0:  # type: ignore[arg-type]
        raise ConfigError(f"budget fraction must be a number in (0, 1], got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_bits(value: object, what: str = "bit-width") -> int:
    """An int from 2 to 8 (the bit-widths `fake_quantize` simulates), or a one-line ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what} must be an int from {MIN_BITS} to {MAX_BITS}, got {value!r}")
    if not MIN_BITS <= int(value) <= MAX_BITS:
        raise ConfigError(f"{what} must be an int from {MIN_BITS} to {MAX_BITS}, got {value!r}")
    return int(value)


def _options(values: object, what: str, check: Callable[[object], Any]) -> tuple[Any, ...]:
    """Distinct checked choices, ascending (so an ``index`` encoding is ordinal)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ConfigError(f"{what} must be a non-empty sequence, got {values!r}")
    checked = [check(v) for v in values]
    if len(set(checked)) != len(checked):
        raise ConfigError(f"{what} must be distinct, got {values!r}")
    return tuple(sorted(checked))


def _check_ratio_choice(value: object) -> float:
    return check_ratio(value, "pruning ratio choice", allow_zero=True)


def _check_bit_choice(value: object) -> int:
    return check_bits(value, "bit-width choice")


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown compression kind {kind!r}; accepted: {', '.join(KINDS)}")
    return str(kind)


def _check_count(value: object, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{what} must be an int >= {low}, got {value!r}")
    return value


def _number(value: float) -> str:
    """A ratio written short (``0.25``, ``0``) yet parsed back to the same float."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


# --- the policy strings -------------------------------------------------------------------------


def _policy_string(layers: Sequence[str], tokens: Sequence[str]) -> str:
    return ",".join(f"{name}={token}" for name, token in zip(layers, tokens, strict=True))


def _policy_tokens(space: str, text: object, layers: Sequence[str], expected: str) -> list[str]:
    """The per-layer tokens of ``layer=token,...``, the layers named in order, else an
    InvalidArchError saying what is accepted."""
    if not isinstance(text, str):
        raise InvalidArchError(f"a {space} policy string must be a str, got {type(text).__name__}")
    parts = text.strip().split(",")
    if len(parts) != len(layers):
        raise InvalidArchError(
            f"invalid {space} policy {text!r}: {len(parts)} ','-separated parts, not "
            f"{len(layers)}; expected 'layer={expected},...' for {', '.join(layers)}"
        )
    tokens = []
    for name, part in zip(layers, parts, strict=True):
        given, sep, token = part.strip().partition("=")
        if not sep or given != name:
            raise InvalidArchError(
                f"invalid {space} policy {text!r}: part {part!r} is not '{name}={expected}'"
            )
        tokens.append(token)
    return tokens


def _as_tuple(space: str, arch: object, size: int, what: str) -> tuple[Any, ...]:
    if not isinstance(arch, tuple | list) or len(arch) != size:
        raise InvalidArchError(f"a {space} policy is a tuple of {size} {what}, got {arch!r}")
    return tuple(arch)


# --- pruning ratios (AMC) -----------------------------------------------------------------------


class PruningRatioSpace(DecisionVectorSpace):
    """Per-layer pruning ratios of a trained ``model`` (AMC's policy; module docstring).

    One decision per `prunable_layers` entry, in forward order, each one of ``ratios`` (shares
    of output channels removed, 0 keeps the layer whole); an architecture is the tuple of
    ratios. The model is copied once: later training of the original changes nothing here.
    Written ``layer=ratio,...`` (``stem.0=0.5,stages.0.0.project.0=0,...``).

    Ratios that remove the same number of channels from a layer (floor(ratio x channels),
    at least one kept) build the same network: ``canonical`` writes each as the smallest such
    ratio, so no strategy spends a trial on a twin. ``macs``/``params`` prune a copy with
    `channel_prune` (filter L1 norm) and are cached per canonical policy.
    """

    name = "pruning-ratios"

    def __init__(
        self, model: nn.Module, example_shape: Sequence[int], ratios: Sequence[float] = RATIOS
    ):
        self.ratios: tuple[float, ...] = _options(ratios, "pruning ratios", _check_ratio_choice)
        batch_shape(example_shape, "PruningRatioSpace")
        self.example_shape = tuple(int(s) for s in example_shape)
        self.model = copy.deepcopy(model).eval()
        self.layers = tuple(prunable_layers(self.model, self.example_shape))
        if not self.layers:
            raise ConfigError(
                f"{type(model).__name__} has no prunable channels (no conv or hidden linear "
                "layer), so there are no pruning ratios to search"
            )
        report = channel_prune(
            copy.deepcopy(self.model), dict.fromkeys(self.layers, 0.0), self.example_shape
        )
        #: output channels of each layer before pruning
        self.channels = {name: before for name, (before, _) in report.channels.items()}
        self.base_macs, self.base_params = report.macs_before, report.params_before
        self._twins = tuple(self._merged(self.channels[name]) for name in self.layers)
        self._counts: dict[Arch, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"PruningRatioSpace({len(self.layers)} layers, ratios={self.ratios})"

    def _merged(self, channels: int) -> dict[float, float]:
        """Each ratio -> the smallest ratio removing as many of ``channels``."""
        first: dict[int, float] = {}
        for ratio in self.ratios:
            first.setdefault(removed_count(channels, ratio), ratio)
        return {ratio: first[removed_count(channels, ratio)] for ratio in self.ratios}

    # --- the decision vector ------------------------------------------------------------

    def _choices(self) -> tuple[int, ...]:
        return (len(self.ratios),) * len(self.layers)

    def _encode(self, arch: Arch) -> tuple[int, ...]:
        return tuple(self.ratios.index(r) for r in arch)  # type: ignore[attr-defined]

    def _decode(self, indices: tuple[int, ...]) -> tuple[float, ...]:
        return tuple(self.ratios[i] for i in indices)

    def _decision_names(self) -> tuple[str, ...]:
        return self.layers

    def check(self, arch: object) -> tuple[float, ...]:
        values = _as_tuple(self.name, arch, len(self.layers), "ratios, one per prunable layer")
        for name, ratio in zip(self.layers, values, strict=True):
            if not _is_number(ratio) or float(ratio) not in self.ratios:
                accepted = ", ".join(map(_number, self.ratios))
                raise InvalidArchError(
                    f"pruning ratio of {name} must be one of {accepted}, got {ratio!r}"
                )
        return tuple(float(r) for r in values)

    def canonical(self, arch: Arch) -> tuple[float, ...]:
        values = self.check(arch)
        return tuple(twins[r] for twins, r in zip(self._twins, values, strict=True))

    def to_string(self, arch: Arch) -> str:
        return _policy_string(self.layers, [_number(r) for r in self.check(arch)])

    def from_string(self, text: str) -> tuple[float, ...]:
        expected = "|".join(map(_number, self.ratios))
        values = []
        for name, token in zip(
            self.layers, _policy_tokens(self.name, text, self.layers, expected), strict=True
        ):
            try:
                value = float(token)
            except ValueError:
                value = math.nan
            if value not in self.ratios:
                raise InvalidArchError(
                    f"invalid {self.name} policy: ratio {token!r} of {name} is not one of "
                    f"{expected.replace('|', ', ')}"
                )
            values.append(value)
        return tuple(values)

    # --- networks and costs -------------------------------------------------------------

    def policy(self, arch: Arch) -> dict[str, float]:
        """``{layer: ratio}``, as `channel_prune` takes it."""
        return dict(zip(self.layers, self.check(arch), strict=True))

    def uniform(self, ratio: float) -> tuple[float, ...]:
        """Every layer at ``ratio`` (one of the space's ratios)."""
        return self.check((ratio,) * len(self.layers))

    def cheapest(self) -> tuple[float, ...]:
        """The largest ratio everywhere: the fewest MACs and parameters of any policy (both
        only fall as a layer loses channels)."""
        return self.uniform(self.ratios[-1])

    def build(self, arch: Arch, **net: object) -> nn.Module:
        """A pruned copy of the model (the original is never touched)."""
        if net:
            raise ConfigError(f"space {self.name!r} takes no build options, got {sorted(net)}")
        model = copy.deepcopy(self.model)
        channel_prune(model, self.policy(arch), self.example_shape)
        return model

    def _count(self, arch: Arch) -> tuple[int, int]:
        key = self.canonical(arch)
        if key not in self._counts:
            report = channel_prune(copy.deepcopy(self.model), self.policy(key), self.example_shape)
            self._counts[key] = (report.macs_after, report.params_after)
        return self._counts[key]

    def macs(self, arch: Arch) -> int:
        """MACs of the pruned network on one ``example_shape`` input (`count_macs`)."""
        return self._count(arch)[0]

    def params(self, arch: Arch) -> int:
        """Parameters of the pruned network."""
        return self._count(arch)[1]

    def param_count(self, arch: Arch, **net: object) -> int:
        """`params`, under the name `strategies.constraints.MaxParams` calls."""
        if net:
            raise ConfigError(f"space {self.name!r} takes no build options, got {sorted(net)}")
        return self.params(arch)


# --- bit-widths (HAQ) ---------------------------------------------------------------------------


def layer_macs(
    model: nn.Module, layers: Sequence[str], example_shape: Sequence[int]
) -> dict[str, int]:
    """MACs of each named layer in one forward pass on ``example_shape`` (as `count_macs`
    counts them, so they sum to its total for conv/linear networks; a layer never reached
    has 0)."""
    shape = batch_shape(example_shape, "layer_macs")
    modules = dict(model.named_modules())
    counts = dict.fromkeys(layers, 0)

    def counter(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            counts[name] += call_macs(module, output)

        return hook

    forward_zeros(model, shape, {modules[name]: counter(name) for name in layers})
    return counts


_PAIR = re.compile(r"w(\d+)a(\d+)")


class BitWidthSpace(DecisionVectorSpace):
    """Per-layer bit-widths of a trained ``model`` (HAQ's policy; module docstring).

    Each `quantizable_layers` entry (convs and linear layers, classifier included) takes a
    weight bit-width from ``bits``; its input is quantised to ``activation_bits`` (default 8).
    With ``activation_bits=None`` the activation bit-width is a second decision per layer.
    Why fixed by default: a size budget depends on weight bits only, so searching activation
    bits under it only spends trials (8 always fits; HAQ's model-size experiments quantise
    weights only); search them jointly under a `bitops` budget. An architecture is a tuple of
    ``(weight_bits, activation_bits)`` pairs, written ``layer=w4a8,...``.

    ``size_bits`` = sum of each layer's weight count x its weight bits (biases, batch norm and
    the other float parameters are the same for every policy and left out); ``bitops`` = sum of
    each layer's MACs (``example_shape`` needed) x weight bits x activation bits. Both accept
    any bit-widths 2..8, not only the space's, so uniform baselines outside ``bits`` can be
    measured.
    """

    name = "bit-widths"

    def __init__(
        self,
        model: nn.Module,
        bits: Sequence[int] = BITS,
        *,
        activation_bits: int | None = 8,
        example_shape: Sequence[int] | None = None,
    ):
        self.bits: tuple[int, ...] = _options(bits, "bit-width choices", _check_bit_choice)
        self.activation_bits = (
            None if activation_bits is None else check_bits(activation_bits, "activation bits")
        )
        self.model = copy.deepcopy(model).eval()
        self.layers = tuple(quantizable_layers(self.model))
        if not self.layers:
            raise ConfigError(
                f"{type(model).__name__} has no convolution or linear layer to give bit-widths to"
            )
        modules = dict(self.model.named_modules())
        #: quantised weights of each layer
        self.weights = {name: modules[name].weight.numel() for name in self.layers}
        self.example_shape = None
        if example_shape is not None:
            batch_shape(example_shape, "BitWidthSpace")
            self.example_shape = tuple(int(s) for s in example_shape)
        self.layer_macs = (
            None
            if self.example_shape is None
            else layer_macs(self.model, self.layers, self.example_shape)
        )

    def __repr__(self) -> str:
        acts = "searched" if self.activation_bits is None else self.activation_bits
        return f"BitWidthSpace({len(self.layers)} layers, bits={self.bits}, activations={acts})"

    @property
    def joint(self) -> bool:
        """Whether activation bit-widths are searched too."""
        return self.activation_bits is None

    # --- the decision vector ------------------------------------------------------------

    def _choices(self) -> tuple[int, ...]:
        return (len(self.bits),) * (len(self.layers) * (2 if self.joint else 1))

    def _encode(self, arch: Arch) -> tuple[int, ...]:
        pairs: tuple[tuple[int, int], ...] = arch  # type: ignore[assignment]
        if self.joint:
            return tuple(self.bits.index(b) for pair in pairs for b in pair)
        return tuple(self.bits.index(w) for w, _ in pairs)

    def _decode(self, indices: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        if self.joint:
            return tuple(
                (self.bits[w], self.bits[a])
                for w, a in zip(indices[0::2], indices[1::2], strict=True)
            )
        return tuple((self.bits[w], self.activation_bits) for w in indices)  # type: ignore[misc]

    def _decision_names(self) -> tuple[str, ...]:
        if self.joint:
            return tuple(f"{name}:{part}" for name in self.layers for part in ("w", "a"))
        return self.layers

    def _genes(self) -> tuple[tuple[int, ...], ...]:
        """A layer's two bit-widths cross over together."""
        if self.joint:
            return tuple((2 * t, 2 * t + 1) for t in range(len(self.layers)))
        return super()._genes()

    def _pairs(self, arch: object) -> tuple[tuple[int, int], ...]:
        """``arch`` as (weight, activation) pairs of any bit-widths 2..8, else InvalidArchError."""
        values = _as_tuple(self.name, arch, len(self.layers), "(weight, activation) bit pairs")
        pairs = []
        for name, pair in zip(self.layers, values, strict=True):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise InvalidArchError(f"bits of {name} must be a (weight, activation) pair")
            try:
                pairs.append(tuple(check_bits(b, f"bits of {name}") for b in pair))
            except ConfigError as err:
                raise InvalidArchError(str(err)) from None
        return tuple(pairs)  # type: ignore[return-value]

    def check(self, arch: object) -> tuple[tuple[int, int], ...]:
        pairs = self._pairs(arch)
        for name, (w, a) in zip(self.layers, pairs, strict=True):
            if w not in self.bits or (self.joint and a not in self.bits):
                raise InvalidArchError(
                    f"bits of {name} must be from {', '.join(map(str, self.bits))}, got w{w}a{a}"
                )
            if not self.joint and a != self.activation_bits:
                raise InvalidArchError(
                    f"activation bits of {name} are fixed at {self.activation_bits}, got {a}"
                )
        return pairs

    def to_string(self, arch: Arch) -> str:
        return _policy_string(self.layers, [f"w{w}a{a}" for w, a in self.check(arch)])

    def from_string(self, text: str) -> tuple[tuple[int, int], ...]:
        pairs = []
        for name, token in zip(
            self.layers, _policy_tokens(self.name, text, self.layers, "wWaA"), strict=True
        ):
            found = _PAIR.fullmatch(token)
            if found is None:
                raise InvalidArchError(
                    f"invalid {self.name} policy: bits {token!r} of {name} are not 'wWaA' "
                    "(weight and activation bit-widths, e.g. w4a8)"
                )
            pairs.append((int(found[1]), int(found[2])))
        return self.check(tuple(pairs))

    # --- networks and costs -------------------------------------------------------------

    def uniform(self, bits: int) -> tuple[tuple[int, int], ...]:
        """Every layer's weights at ``bits`` (any of 2..8), activations at the fixed width or,
        when searched, at ``bits`` too: "uniform k-bit"."""
        bits = check_bits(bits)
        pair = (bits, bits if self.activation_bits is None else self.activation_bits)
        return (pair,) * len(self.layers)

    def cheapest(self) -> tuple[tuple[int, int], ...]:
        """The smallest bit-widths everywhere: the least size and BitOps of any policy."""
        return self.uniform(self.bits[0])

    def policy(self, arch: Arch) -> dict[str, tuple[int, int]]:
        """``{layer: (weight_bits, activation_bits)}``, as `fake_quantize` takes it."""
        return dict(zip(self.layers, self._pairs(arch), strict=True))

    def build(self, arch: Arch, **net: object) -> nn.Module:
        """A fake-quantised copy of the model (activation ranges from the first batch it sees;
        `QuantizedAccuracy` calibrates on training images instead)."""
        if net:
            raise ConfigError(f"space {self.name!r} takes no build options, got {sorted(net)}")
        return fake_quantize(self.model, self.policy(self.check(arch)))

    def size_bits(self, arch: Arch) -> int:
        """Bits of the quantised weights: sum of weight count x weight bits."""
        pairs = self._pairs(arch)
        return sum(self.weights[n] * w for n, (w, _) in zip(self.layers, pairs, strict=True))

    def bitops(self, arch: Arch) -> int:
        """Sum of each layer's MACs x weight bits x activation bits (needs ``example_shape``)."""
        if self.layer_macs is None:
            raise ConfigError("bitops counts MACs per layer: give BitWidthSpace an example_shape")
        pairs = self._pairs(arch)
        return sum(self.layer_macs[n] * w * a for n, (w, a) in zip(self.layers, pairs, strict=True))

    def full_size_bits(self) -> int:
        """`size_bits` of 8-bit weights: what a size budget fraction is a share of."""
        return self.size_bits(((MAX_BITS, MAX_BITS),) * len(self.layers))

    def full_bitops(self) -> int:
        """`bitops` at 8-bit weights and activations: what a BitOps budget is a share of."""
        return self.bitops(((MAX_BITS, MAX_BITS),) * len(self.layers))


# --- estimators ---------------------------------------------------------------------------------

Images = tuple[torch.Tensor, torch.Tensor]


def _images(value: object, what: str) -> Images | None:
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(f"{what} must be an (images, labels) pair, got {type(value).__name__}")
    x, y = value
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y):
        raise ConfigError(f"{what} must be an (images, labels) pair of tensors of one length")
    if len(x) == 0:
        raise ConfigError(f"{what} must hold at least one image")
    return x, y


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, images: torch.Tensor, batch_size: int = 100) -> None:
    """Re-estimate every batch norm's running mean and variance on ``images`` (a plain average
    over the batches), no weight changed: "adaptive batch norm" (Li et al., "EagleEye: Fast
    Sub-net Evaluation for Efficient Neural Network Pruning", ECCV 2020). A pruned network's
    layers see other inputs than the statistics it was trained with describe, which alone can
    put its accuracy at chance; recalibrated, accuracy without fine-tuning ranks pruned
    candidates far better. Only the norms run in training mode (no dropout)."""
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    device = device_of(model)
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches
        norm.train()
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device))
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()


class _CompressedAccuracy(EstimatorBase):
    """Validation accuracy of a compressed copy (the objective), after its batch norms are
    recalibrated on the first ``bn_images`` training images (`recalibrate_batch_norm`; 0:
    not) and ``finetune_epochs`` of `fit` on ``train`` (seeded; 0: none), and test accuracy
    when ``test`` is given (report only: `Result.for_strategy` drops it, so no strategy
    selects on it)."""

    name = "compressed-accuracy"
    objective_name = "val_acc"

    def __init__(
        self,
        val: Images,
        *,
        train: Images | None = None,
        test: Images | None = None,
        finetune_epochs: int = 0,
        bn_images: int = 0,
        lr: float = 0.01,
        seed: int = 0,
    ):
        self.val = _images(val, "validation images")
        self.train = _images(train, "training images")
        self.test = _images(test, "test images")
        self.finetune_epochs = _check_count(finetune_epochs, "fine-tuning epochs", 0)
        self.bn_images = _check_count(bn_images, "batch-norm recalibration images", 0)
        if (self.finetune_epochs or self.bn_images) and self.train is None:
            raise ConfigError(
                "fine-tuning or recalibrating a compressed copy needs training images (train=...)"
            )
        if not _is_number(lr) or not lr > 0:
            raise ConfigError(f"fine-tuning lr must be a number > 0, got {lr!r}")
        self.lr, self.seed = float(lr), int(seed)

    @property
    def capabilities(self) -> EstimatorCapabilities:
        return EstimatorCapabilities(has_cost=True, report_metric="test_acc", setup=self.describe())

    def describe(self) -> dict[str, Any]:
        """What fixes a trial's number: the images scored and the fine-tuning."""
        return {
            "estimator": self.name,
            "val_images": len(self.val[0]),  # type: ignore[index]
            "test_images": 0 if self.test is None else len(self.test[0]),
            "finetune_epochs": self.finetune_epochs,
            "finetune_lr": self.lr,
            "bn_images": self.bn_images,
            "seed": self.seed,
        }

    def score(self, model: nn.Module) -> tuple[float, float | None]:
        """(validation accuracy, test accuracy or None) of ``model``, its batch norms
        recalibrated and then fine-tuned in place first where asked (fine-tuning under a
        forked, seeded torch RNG: dropout draws repeat)."""
        x, y = self.train or (None, None)
        if self.bn_images:
            recalibrate_batch_norm(model, x[: self.bn_images])  # type: ignore[index]
        if self.finetune_epochs:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                fit(model, x, y, epochs=self.finetune_epochs, lr=self.lr, seed=self.seed)
        val = accuracy(model, *self.val)  # type: ignore[misc]
        test = None if self.test is None else accuracy(model, *self.test)
        return val, test

    def result(self, model: nn.Module, metrics: dict[str, float], started: float) -> Result:
        val, test = self.score(model)
        report = {} if test is None else {"test_acc": test}
        return Result(val, metrics, report, cost=time.perf_counter() - started)


class PrunedAccuracy(_CompressedAccuracy):
    """AMC's reward: the pruned copy's accuracy on validation images, by default without
    fine-tuning (AMC scores policies so, on a validation split of the training set). Metrics:
    ``macs``, ``params`` and ``macs_fraction`` (of the unpruned network's MACs). Options:
    ``train``, ``test``, ``bn_images`` (EagleEye's adaptive batch norm before scoring; not in
    AMC), ``finetune_epochs``, ``lr``, ``seed``.

    It takes the `PruningRatioSpace` rather than the model: the space holds the model, the
    input shape and the per-policy cost cache, so the costs a budget bound checks and the
    costs reported are the same numbers."""

    name = "pruned-accuracy"

    def __init__(self, space: PruningRatioSpace, val: Images, **options: Any):
        super().__init__(val, **options)
        self.space = space

    def evaluate(self, candidate: Candidate) -> Result:
        started = time.perf_counter()
        arch = self.space.check(candidate.arch)
        macs = self.space.macs(arch)
        metrics = {
            "macs": float(macs),
            "params": float(self.space.params(arch)),
            "macs_fraction": macs / self.space.base_macs,
        }
        return self.result(self.space.build(arch), metrics, started)


class QuantizedAccuracy(_CompressedAccuracy):
    """HAQ's reward: the fake-quantised copy's accuracy on validation images, its activation
    ranges calibrated on ``calibration`` (training images: the validation images only score),
    optionally after a short fine-tuning (HAQ: one epoch; options ``train``, ``test``,
    ``finetune_epochs``, ``lr``, ``seed``; no ``bn_images``). Metrics: ``size_bits``,
    ``size_fraction`` (of 8-bit weights), ``mean_weight_bits``, and ``bitops`` /
    ``bitops_fraction`` when the space has an example shape."""

    name = "quantized-accuracy"

    def __init__(
        self, space: BitWidthSpace, val: Images, calibration: torch.Tensor, **options: Any
    ):
        if options.get("bn_images"):
            raise ConfigError(
                "quantised accuracy takes no bn_images: recalibrating batch norm after "
                "calibration would leave the activation ranges stale"
            )
        super().__init__(val, **options)
        if not isinstance(calibration, torch.Tensor) or len(calibration) == 0:
            raise ConfigError("quantised accuracy needs calibration images (a non-empty tensor)")
        self.space, self.calibration = space, calibration

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "calibration_images": len(self.calibration)}

    def metrics(self, arch: Arch) -> dict[str, float]:
        """The costs of a policy of any bit-widths 2..8 (a uniform baseline's too)."""
        space = self.space
        size = space.size_bits(arch)
        out = {
            "size_bits": float(size),
            "size_fraction": size / space.full_size_bits(),
            "mean_weight_bits": size / sum(space.weights.values()),
        }
        if space.layer_macs is not None:
            bitops = space.bitops(arch)
            out |= {"bitops": float(bitops), "bitops_fraction": bitops / space.full_bitops()}
        return out

    def measure(self, arch: Arch) -> Result:
        """The result of any policy of bit-widths 2..8, in the space or not."""
        started = time.perf_counter()
        model = fake_quantize(self.space.model, self.space.policy(arch), self.calibration)
        return self.result(model, self.metrics(arch), started)

    def evaluate(self, candidate: Candidate) -> Result:
        return self.measure(self.space.check(candidate.arch))


# --- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompressionData:
    """The images a compression search needs: ``train`` for calibration and fine-tuning,
    ``val`` for the objective (never seen by the network's training), ``test`` for the report
    only (optional)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _images((self.train_x, self.train_y), "training images")
        _images((self.val_x, self.val_y), "validation images")
        if (self.test_x is None) != (self.test_y is None):
            raise ConfigError("give test images and test labels together, or neither")
        if self.test_x is not None:
            _images((self.test_x, self.test_y), "test images")

    @property
    def shape(self) -> tuple[int, ...]:
        """One image's (C, H, W)."""
        return tuple(self.train_x.shape[1:])

    @property
    def test(self) -> Images | None:
        if self.test_x is None or self.test_y is None:
            return None
        return self.test_x, self.test_y


@dataclass(frozen=True)
class Scored:
    """One policy (searched or uniform) and what it scores: ``cost`` is the budget metric's
    value, ``policy`` the space's string form (``all=R``, ``all=wWaA`` for a uniform one)."""

    label: str
    policy: str
    val_acc: float
    test_acc: float | None
    cost: float
    within_budget: bool
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class CompressionSearch:
    """What `search_compression` found: the searched policy, the best uniform policy within
    the same budget (``baseline``, by validation accuracy), every uniform policy scored
    (references such as uniform 8-bit included, within budget or not), and the run."""

    kind: str
    metric: str
    fraction: float
    limit: float
    reference: float
    strategy: str
    seed: int
    searched: Scored
    baseline: Scored
    uniform: list[Scored]
    history: History
    space: PruningRatioSpace | BitWidthSpace

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, every trial's policy, objective and cost included."""
        trials = [
            {"policy": t.arch, "val_acc": r.objective, self.metric: r.metrics[self.metric]}
            for t in self.history.completed
            if (r := t.result) is not None
        ]
        return {
            "kind": self.kind,
            "metric": self.metric,
            "fraction": self.fraction,
            "limit": self.limit,
            "reference": self.reference,
            "strategy": self.strategy,
            "seed": self.seed,
            "searched": asdict(self.searched),
            "baseline": asdict(self.baseline),
            "uniform": [asdict(u) for u in self.uniform],
            "trials": trials,
        }


@dataclass
class _Setup:
    """One kind's space, its estimator for the search (validation only) and for the report
    (test images too), the budget metric (its measure and the uncompressed value) and the
    uniform baselines (``uniform(limit)``, scored for the report)."""

    space: Any
    estimator: Any
    reporter: Any
    metric: str
    measure: Callable[[Arch], float]
    reference: float
    uniform: Callable[[float], list[Scored]]


def _scored(label: str, policy: str, result: Result, metric: str, limit: float) -> Scored:
    cost = float(result.metrics[metric])
    test = result.report.get("test_acc")
    return Scored(label, policy, result.objective, test, cost, cost <= limit, dict(result.metrics))


def _pick_metric(kind: str, metric: object, default: str) -> str:
    name = default if metric is None else metric
    if name not in METRICS[kind]:
        raise ConfigError(
            f"budget metric {metric!r} is not one for {kind}; accepted: {', '.join(METRICS[kind])}"
        )
    return str(name)


def _scoring(data: CompressionData, opts: dict[str, Any]) -> dict[str, Any]:
    """The estimator options both kinds share."""
    return {
        "train": (data.train_x, data.train_y),
        "finetune_epochs": opts["finetune_epochs"],
        "seed": opts["seed"],
    }


def _prune_setup(model: nn.Module, data: CompressionData, metric: object, **opts: Any) -> _Setup:
    name = _pick_metric("prune", metric, "macs")
    space = PruningRatioSpace(model, data.shape, opts["ratios"])
    val, scoring = (data.val_x, data.val_y), _scoring(data, opts)
    scoring["bn_images"] = opts["bn_images"]
    estimator = PrunedAccuracy(space, val, **scoring)
    reporter = PrunedAccuracy(space, val, test=data.test, **scoring)
    measure = space.macs if name == "macs" else space.params
    reference = space.base_macs if name == "macs" else space.base_params

    def uniform(limit: float) -> list[Scored]:
        return _uniform_ratios(space, reporter, name, limit)

    return _Setup(space, estimator, reporter, name, measure, float(reference), uniform)


def _quantize_setup(model: nn.Module, data: CompressionData, metric: object, **opts: Any) -> _Setup:
    joint = opts["activation_bits"] is None
    name = _pick_metric("quantize", metric, "bitops" if joint else "size_bits")
    space = BitWidthSpace(
        model, opts["bits"], activation_bits=opts["activation_bits"], example_shape=data.shape
    )
    val, scoring = (data.val_x, data.val_y), _scoring(data, opts)
    calibration = data.train_x[: opts["calibration_images"]]
    estimator = QuantizedAccuracy(space, val, calibration, **scoring)
    reporter = QuantizedAccuracy(space, val, calibration, test=data.test, **scoring)
    measure = space.size_bits if name == "size_bits" else space.bitops
    reference = space.full_size_bits() if name == "size_bits" else space.full_bitops()

    def uniform(limit: float) -> list[Scored]:
        return _uniform_bits(space, reporter, name, limit)

    return _Setup(space, estimator, reporter, name, measure, float(reference), uniform)


def _uniform_bits(
    space: BitWidthSpace, estimator: QuantizedAccuracy, metric: str, limit: float
) -> list[Scored]:
    """Every layer at each bit-width from 8 down to 2 (activations as `BitWidthSpace.uniform`
    sets them), scored."""
    out = []
    for bits in range(MAX_BITS, MIN_BITS - 1, -1):
        arch = space.uniform(bits)
        w, a = arch[0]
        result = estimator.measure(arch)
        out.append(_scored(f"uniform {bits}-bit", f"all=w{w}a{a}", result, metric, limit))
    return out


def _pruned_result(space: PruningRatioSpace, estimator: PrunedAccuracy, ratio: float) -> Result:
    """The result of every layer pruned at ``ratio`` (any share in [0, 1), not only the
    space's choices), with the estimator's metrics."""
    started = time.perf_counter()
    model = copy.deepcopy(space.model)
    if ratio > 0:
        channel_prune(model, ratio, space.example_shape)
    macs = count_macs(model, space.example_shape)
    metrics = {
        "macs": float(macs),
        "params": float(count_params(model)),
        "macs_fraction": macs / space.base_macs,
    }
    return estimator.result(model, metrics, started)


def smallest_uniform_ratio(
    space: PruningRatioSpace, metric: str, limit: float, steps: int = 14
) -> float:
    """The smallest ratio that, applied to every layer, keeps ``metric`` (``macs`` or
    ``params``) <= ``limit``: bisection on pruned copies (both fall monotonically with the
    ratio). 0 when the unpruned network fits; a ConfigError when even one channel per layer
    does not."""

    def cost(ratio: float) -> int:
        if ratio == 0:
            return space.base_macs if metric == "macs" else space.base_params
        report = channel_prune(copy.deepcopy(space.model), ratio, space.example_shape)
        return report.macs_after if metric == "macs" else report.params_after

    low, high = 0.0, 1.0 - 1e-6
    if cost(low) <= limit:
        return 0.0
    if cost(high) > limit:
        raise ConfigError(
            f"no uniform pruning ratio keeps {metric} <= {limit:,.0f}: one channel per layer "
            f"keeps {cost(high):,}"
        )
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (low, middle) if cost(middle) <= limit else (middle, high)
    return high


def _uniform_ratios(
    space: PruningRatioSpace, estimator: PrunedAccuracy, metric: str, limit: float
) -> list[Scored]:
    """The unpruned network, each of the space's ratios on every layer, and the smallest
    uniform ratio within ``limit`` (bisected, any share), all scored."""
    out = []
    for ratio in space.ratios:
        arch = space.uniform(ratio)
        label = "unpruned" if ratio == 0 else f"uniform {_number(ratio)}"
        result = estimator.evaluate(Candidate(arch))
        out.append(_scored(label, f"all={_number(ratio)}", result, metric, limit))
    ratio = smallest_uniform_ratio(space, metric, limit)
    if ratio not in space.ratios:
        label = "unpruned" if ratio == 0 else f"uniform {ratio:.4f}"
        result = _pruned_result(space, estimator, ratio)
        out.append(_scored(label, f"all={_number(ratio)}", result, metric, limit))
    return out


def _searched(history: History, setup: _Setup, limit: float) -> Scored:
    """The best trial by validation accuracy, scored again with the test images when there
    are any (the search itself never scores them: cheaper, and nothing to leak)."""
    best = history.best
    if best is None or best.result is None:
        errors = [t.error for t in history.failed if t.error]
        raise RuntimeError(
            f"every trial of the compression search failed (first: {errors[0] if errors else '?'})"
        )
    result = best.result
    if setup.reporter.test is not None:
        result = setup.reporter.evaluate(Candidate(best.candidate.arch))
    return _scored("searched", best.arch, result, setup.metric, limit)


def search_compression(
    kind: str,
    model: nn.Module,
    data: CompressionData,
    budget_fraction: float,
    *,
    strategy: str = "evolution",
    trials: int = 40,
    seed: int = 0,
    metric: str | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    ratios: Sequence[float] = RATIOS,
    bits: Sequence[int] = BITS,
    activation_bits: int | None = 8,
    finetune_epochs: int = 0,
    bn_images: int = 0,
    calibration_images: int = 256,
) -> CompressionSearch:
    """Search per-layer pruning ratios (``kind="prune"``, AMC) or bit-widths
    (``kind="quantize"``, HAQ) of a trained ``model`` with ``strategy`` (any name of
    `factory.STRATEGIES` that needs no fidelity), ``trials`` policies, under
    ``budget_fraction`` of the uncompressed cost:

    - prune: ``metric`` ``macs`` (default) or ``params``, a share of the unpruned network's;
    - quantize: ``size_bits`` (default) or ``bitops``, a share of the 8-bit network's (0.5 is
      the size of uniform 4-bit weights); ``bitops`` is the default when activation bits are
      searched too (``activation_bits=None``).

    The budget is a `MetricBound` given to the strategy as its constraint, so no policy over it
    is ever proposed (nor trained: the costs are counted, not measured). A budget that even
    the cheapest policy misses is a one-line ConfigError before any trial. The best policy is
    chosen on ``data.val`` only; the test images score the chosen and the uniform policies
    for the report (never a trial of the search). The baseline is the uniform policy
    within the budget with the best validation accuracy (uniform ratios: the space's and the
    smallest one within the budget; uniform bit-widths: 2 to 8), scored alike. Every policy is
    scored as the estimators do: a pruned one after ``bn_images`` training images recalibrate
    its batch norms (0: not, as AMC; but a pruned network with batch norm is often at chance
    without it), a quantised one after ``calibration_images`` set its activation ranges; both
    then after ``finetune_epochs`` of fine-tuning (0: none). Deterministic for a seed."""
    from nasforge.experiment import Experiment
    from nasforge.factory import make_strategy
    from nasforge.strategies.constraints import MetricBound

    kind = _check_kind(kind)
    fraction = check_fraction(budget_fraction)
    trials = _check_count(trials, "trials", 1)
    calibration_images = _check_count(calibration_images, "calibration images", 1)
    if not isinstance(data, CompressionData):
        raise ConfigError(f"data must be a CompressionData, got {type(data).__name__}")
    make = _prune_setup if kind == "prune" else _quantize_setup
    setup = make(
        model,
        data,
        metric,
        ratios=ratios,
        bits=bits,
        activation_bits=activation_bits,
        finetune_epochs=finetune_epochs,
        bn_images=bn_images,
        calibration_images=calibration_images,
        seed=seed,
    )
    limit = fraction * setup.reference
    least = setup.measure(setup.space.cheapest())
    if least > limit:
        raise ConfigError(
            f"a {setup.metric} budget of {fraction:g} x {setup.reference:,.0f} is out of reach: "
            f"the cheapest policy has {least:,.0f}; accepted: a fraction of at least "
            f"{math.ceil(least / setup.reference * 1000) / 1000:g}"
        )
    bound = MetricBound(setup.metric, limit, setup.measure, "counted")
    searcher = make_strategy(
        strategy,
        setup.space,
        seed,
        options=dict(strategy_options or {}),
        estimator=setup.estimator,
        constraint=bound,
    )
    history = Experiment(
        setup.space, searcher, setup.estimator, budget=trials, progress=False
    ).run()
    uniform = setup.uniform(limit)
    fitting = [u for u in uniform if u.within_budget]
    baseline = max(fitting, key=lambda u: (u.val_acc, -u.cost))
    return CompressionSearch(
        kind,
        setup.metric,
        fraction,
        limit,
        setup.reference,
        strategy,
        seed,
        _searched(history, setup, limit),
        baseline,
        uniform,
        history,
        setup.space,
    )
