"""Pruning: make a searched network smaller after the search.

Two kinds, as the pruning literature separates them:

- **unstructured** (`magnitude_prune`): zero the smallest weights of the whole network. The
  tensors keep their shapes, so the model is only smaller once stored sparse and only faster on
  sparse kernels; it is the baseline every structured method is compared with.
- **structured** (`channel_prune`): remove whole output channels of convolutions (and every
  tensor slice that depends on them), so the pruned network has really fewer parameters and
  MACs on any hardware. Channels are ranked by the L1 norm of their filters (Li et al. 2017) or
  by their batch-norm scale (network slimming, Liu et al. 2017, after training with
  `slimming_penalty`). `prune_to_macs` finds the uniform ratio that meets a MACs budget.

Which tensors a removed channel touches is the hard part in networks with residual adds,
depthwise convolutions and squeeze-excite gates: channels joined by an add must go together,
a depthwise conv loses the channel on both sides, an SE gate's expand conv loses an output and
its reduce conv an input. We use torch-pruning's dependency graph for that (Fang et al.,
"DepGraph: Towards Any Structural Pruning", CVPR 2023): it traces the network once and groups
every coupled slice. Each group is one pruning decision, named by its first conv or linear
layer in forward order (`prunable_layers`); the criteria, ratios and reports are ours. Groups
tied to the network's output (the classifier) and groups holding a grouped, non-depthwise conv
(whose input slicing torch-pruning gets wrong) are never pruned.

All of this is in place; fine-tune afterwards with `nasforge.compress.finetune.fit`
(`hold_zeros` keeps an unstructured model's zeros at zero while it trains).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from nasforge.compress.finetune import LossTerm
from nasforge.errors import ConfigError
from nasforge.nn.profile import batch_shape, count_macs, count_params, device_of

#: The methods a user picks: unstructured magnitude, L1-norm filters, network slimming.
PRUNE_METHODS: tuple[str, ...] = ("magnitude", "l1", "slimming")
#: How `channel_prune` ranks a layer's channels: filter L1 norm or batch-norm |gamma|.
CRITERIA: tuple[str, ...] = ("l1", "bn")
#: Where channels compete: within each layer (uniform ratio) or across all layers at once.
SCOPES: tuple[str, ...] = ("layer", "global")
#: The channel criterion each structured method of `PRUNE_METHODS` uses.
METHOD_CRITERION: dict[str, str] = {"l1": "l1", "slimming": "bn"}

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


# --- checks and the report ----------------------------------------------------------------------


def check_ratio(ratio: object, what: str = "pruning ratio", *, allow_zero: bool = False) -> float:
    """``ratio`` as a float in (0, 1) (``[0, 1)`` with ``allow_zero``), else a one-line
    ConfigError: pruning nothing or everything is never what was meant."""
    low = "[0" if allow_zero else "(0"
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise ConfigError(f"{what} must be a number in {low}, 1), got {ratio!r}")
    value = float(ratio)
    if not (0.0 <= value < 1.0 if allow_zero else 0.0 < value < 1.0):
        raise ConfigError(f"{what} must be in {low}, 1), got {ratio!r}")
    return value


def _check_criterion(criterion: object, scope: object) -> None:
    if criterion not in CRITERIA:
        raise ConfigError(
            f"unknown channel criterion {criterion!r}; accepted: {', '.join(CRITERIA)}"
        )
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}; accepted: {', '.join(SCOPES)}")
    if scope == "global" and criterion != "bn":
        raise ConfigError(
            f"scope 'global' ranks channels of different layers against each other, which needs "
            f"criterion 'bn' (batch-norm scales are comparable, filter L1 norms are not); got "
            f"{criterion!r}"
        )


@dataclass(frozen=True)
class PruneReport:
    """What a pruning did, for the CLI and the run log.

    ``method`` is ``magnitude`` or the channel criterion (``l1``, ``bn``); ``ratio`` the uniform
    ratio or the per-layer ratios given; ``channels`` maps each prunable layer to its output
    channels (before, after) (empty for magnitude); ``sparsity`` is the share of exactly-zero
    weights in conv and linear layers afterwards (what magnitude pruning creates; parameters are
    counted whether zero or not)."""

    method: str
    ratio: float | dict[str, float]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    sparsity: float
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)
    scope: str = "layer"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (channel pairs as lists)."""
        out = asdict(self)
        out["channels"] = {name: list(pair) for name, pair in self.channels.items()}
        return out


def _example(model: nn.Module, example_shape: Sequence[int], what: str) -> torch.Tensor:
    return torch.zeros(batch_shape(example_shape, what), device=device_of(model))


def sparsity(model: nn.Module) -> float:
    """Share of exactly-zero weights over all conv and linear layers (0 when there are none)."""
    weights = [m.weight for m in model.modules() if isinstance(m, _WEIGHTED)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / total if total else 0.0


# --- unstructured magnitude pruning -------------------------------------------------------------


def magnitude_prune(model: nn.Module, ratio: float, example_shape: Sequence[int]) -> PruneReport:
    """Zero the ``ratio`` share of conv and linear weights with the smallest |w|, network-wide.

    Han et al., "Learning both Weights and Connections for Efficient Neural Networks", NeurIPS
    2015: magnitude is the criterion and one global threshold lets layers end up with different
    sparsities. Departures: one shot rather than their iterative prune-retrain rounds (call it
    again after `fit` for those), and biases, batch norm and the classifier's bias stay dense.
    Permanent (the mask is folded into the weights); use `hold_zeros` while fine-tuning."""
    ratio = check_ratio(ratio)
    layers = [m for m in model.modules() if isinstance(m, _WEIGHTED)]
    if not layers:
        raise ConfigError("magnitude pruning needs a model with conv or linear layers, found none")
    params, macs = count_params(model), count_macs(model, example_shape)
    torch_prune.global_unstructured(
        [(m, "weight") for m in layers], pruning_method=torch_prune.L1Unstructured, amount=ratio
    )
    for m in layers:
        torch_prune.remove(m, "weight")
    return PruneReport(
        "magnitude",
        ratio,
        params,
        count_params(model),
        macs,
        count_macs(model, example_shape),
        sparsity(model),
    )


def hold_zeros(model: nn.Module) -> list[RemovableHandle]:
    """Gradient hooks that keep every conv/linear weight that is zero now at zero in training.

    SGD (with momentum, Nesterov and weight decay, as `fit` uses) never moves a weight that is
    0 and whose gradient is always 0, so masking gradients is enough to fine-tune a
    magnitude-pruned model without losing its sparsity. Remove the handles afterwards."""
    handles = []
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            mask = (m.weight.detach() != 0).to(m.weight.dtype)
            handles.append(m.weight.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


# --- the dependency groups ----------------------------------------------------------------------


@dataclass
class _Group:
    """One pruning decision: coupled channels, named by their first layer in forward order."""

    name: str
    group: Any  # a torch_pruning Group holding every channel index
    graph: Any  # the torch_pruning DependencyGraph it belongs to
    channels: int

    def items(self) -> list[tuple[nn.Module, list[int], list[int], bool]]:
        """(module, its indices, the root indices they map to, is an output-side slice)."""
        graph = self.graph
        return [
            (
                item.dep.target.module,
                list(item.idxs),
                list(item.root_idxs),
                graph.is_out_channel_pruning_fn(item.dep.handler),
            )
            for item in self.group
        ]

    def producers(self) -> list[tuple[nn.Module, list[int], list[int]]]:
        """The conv/linear layers whose output channels these are (incl. depthwise convs)."""
        return [(m, i, r) for m, i, r, out in self.items() if out and isinstance(m, _WEIGHTED)]

    def norms(self) -> list[tuple[nn.Module, list[int], list[int]]]:
        """The affine batch norms that scale these channels."""
        return [(m, i, r) for m, i, r, _ in self.items() if isinstance(m, _NORMS) and m.affine]


#: Functions whose result takes its channels from their input without an autograd link.
_SHAPED_LIKE = (torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like)


class _Produced(TorchFunctionMode):
    """Records every tensor with an autograd history that a forward pass produces, and ties a
    tensor made in another's shape (``torch.zeros_like(x)``: an NB201 node whose edges are all
    ``none``) to that tensor, so that the trace sees their channels are the same."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors: list[torch.Tensor] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        if func in _SHAPED_LIKE and args and isinstance(args[0], torch.Tensor) and args[0].grad_fn:
            result = result + args[0] * 0  # the same values, now linked to the source
        found = result if isinstance(result, tuple | list) else (result,)
        self.tensors.extend(t for t in found if isinstance(t, torch.Tensor) and t.grad_fn)
        return result


@dataclass
class _Traced:
    """One forward pass as the dependency graph sees it: the weighted layers' call order and
    the output's autograd nodes."""

    order: dict[nn.Module, int] = field(default_factory=dict)
    outputs: set[Any] = field(default_factory=set)

    def forward(self, model: nn.Module, example: torch.Tensor) -> list[torch.Tensor]:
        """The output plus every dead end (a tensor computed but never used, like an NB201
        node no edge reads): torch-pruning traces back from the tensors returned, so a branch
        it never reached would keep its old input width and break the pruned network."""

        def seen(module: nn.Module, inputs: Any, output: Any) -> None:  # None: output unchanged
            self.order.setdefault(module, len(self.order))

        hooks = [m.register_forward_hook(seen) for m in model.modules() if isinstance(m, _WEIGHTED)]
        try:
            with _Produced() as produced:
                out = model(example)
        finally:
            for hook in hooks:
                hook.remove()
        results = [t for t in (out if isinstance(out, tuple | list) else (out,)) if t.grad_fn]
        self.outputs = {t.grad_fn for t in results}
        used = {f for t in produced.tensors for f, _ in t.grad_fn.next_functions}
        dead = {t.grad_fn: t for t in produced.tensors if t.grad_fn not in used | self.outputs}
        return results + list(dead.values())


def _usable(group: Any, graph: Any, outputs: set[Any]) -> bool:
    """Not tied to the network's output, no grouped non-depthwise conv (torch-pruning slices
    such a conv's input wrongly)."""
    for item in group:
        node, module = item.dep.target, item.dep.target.module
        if graph.is_out_channel_pruning_fn(item.dep.handler) and node.grad_fn in outputs:
            return False
        if (
            isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
            and module.groups > 1
            and not (module.groups == module.in_channels == module.out_channels)
        ):
            return False
    return True


def _groups(model: nn.Module, example_shape: Sequence[int], what: str) -> list[_Group]:
    """The prunable channel groups of ``model``, in forward order of their first layer."""
    example = _example(model, example_shape, what)
    graph, traced = tp.DependencyGraph(), _Traced()
    was_training = model.training
    try:
        with torch.enable_grad():
            graph.build_dependency(model, example, forward_fn=traced.forward, verbose=False)
    finally:
        model.train(was_training)  # tracing switches to eval mode
    order = traced.order
    names = {m: n for n, m in model.named_modules()}
    ranked = []
    for group in graph.get_all_groups(root_module_types=_WEIGHTED):
        if not _usable(group, graph, traced.outputs):
            continue
        candidate = _Group("", group, graph, len(group[0].idxs))
        reached = [order[m] for m, _, _ in candidate.producers() if m in order]
        if reached:
            ranked.append((min(reached), candidate))
    heads = {i: m for m, i in order.items()}
    ranked.sort(key=lambda pair: pair[0])
    for first, candidate in ranked:
        candidate.name = names[heads[first]]
    return [candidate for _, candidate in ranked]


def prunable_layers(model: nn.Module, example_shape: Sequence[int]) -> list[str]:
    """Names of the layers whose output channels `channel_prune` can remove, in forward order.

    One name per group of coupled channels (a residual stage's convs are one name: its first
    conv), so these are exactly the per-layer decisions of an AMC-style search. The classifier
    and anything tied to the network's output are left out."""
    return [g.name for g in _groups(model, example_shape, "prunable_layers")]


# --- channel scores -----------------------------------------------------------------------------


def _l1_scores(group: _Group) -> torch.Tensor:
    """Per channel: the L1 norm of its filter, summed over every layer that produces it."""
    scores = torch.zeros(group.channels, dtype=torch.float64)
    for module, idxs, roots in group.producers():
        norms = module.weight.detach().abs().flatten(1).sum(1).double().cpu()
        scores.index_add_(0, torch.tensor(roots), norms[idxs])
    return scores


def _bn_scores(group: _Group) -> torch.Tensor | None:
    """Per channel: the mean |gamma| of the batch norms that scale it (None: no batch norm)."""
    norms = group.norms()
    if not norms:
        return None
    scores = torch.zeros(group.channels, dtype=torch.float64)
    counts = torch.zeros(group.channels, dtype=torch.float64)
    for module, idxs, roots in norms:
        gammas = module.weight.detach().abs().double().cpu()
        scores.index_add_(0, torch.tensor(roots), gammas[idxs])
        counts.index_add_(0, torch.tensor(roots), torch.ones(len(roots), dtype=torch.float64))
    return scores / counts.clamp(min=1)


def _scores(group: _Group, criterion: str) -> torch.Tensor | None:
    return _l1_scores(group) if criterion == "l1" else _bn_scores(group)


def removed_count(channels: int, ratio: float) -> int:
    """floor(ratio x channels), leaving at least one channel (the small epsilon keeps 0.3 x 10
    at 3 despite floating point)."""
    return min(channels - 1, math.floor(channels * ratio + 1e-9))


def _lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores (ties: lower index first)."""
    order = torch.sort(scores, stable=True).indices
    return sorted(order[:count].tolist())


# --- choosing what to remove --------------------------------------------------------------------


def _ratios(ratio: object, names: list[str]) -> dict[str, float]:
    """A uniform ratio or per-layer ratios as {layer: ratio}, checked against ``names``."""
    if not isinstance(ratio, dict):
        value = check_ratio(ratio)
        return dict.fromkeys(names, value)
    if not ratio:
        raise ConfigError("per-layer pruning ratios are empty; give at least one layer")
    unknown = [name for name in ratio if name not in names]
    if unknown:
        raise ConfigError(
            f"unknown prunable layer {unknown[0]!r} in the pruning ratios; accepted: "
            f"{', '.join(names)}"
        )
    return {
        name: check_ratio(value, f"pruning ratio of {name}", allow_zero=True)
        for name, value in ratio.items()
    }


def _choose_per_layer(
    groups: list[_Group], ratios: dict[str, float], criterion: str, named: bool
) -> dict[str, list[int]]:
    """Each group's lowest-scoring channels. Layers without a score under ``criterion`` (no
    batch norm for ``bn``) stay whole, or fail when ``named`` explicitly."""
    chosen = {}
    for group in groups:
        if group.name not in ratios:
            continue
        scores = _scores(group, criterion)
        if scores is None:
            if named:
                raise ConfigError(
                    f"layer {group.name!r} has no batch norm to rank its channels by; criterion "
                    "'bn' accepts only layers followed by batch norm, 'l1' accepts every layer"
                )
            continue
        chosen[group.name] = _lowest(scores, removed_count(group.channels, ratios[group.name]))
    return chosen


def _choose_global(groups: list[_Group], ratio: float, criterion: str) -> dict[str, list[int]]:
    """The ``ratio`` share of all ranked channels with the lowest scores network-wide, each
    layer keeping at least one (network slimming's global threshold)."""
    ranked = [(g, s) for g in groups if (s := _scores(g, criterion)) is not None]
    pool = [(float(s[i]), n, i) for n, (_, s) in enumerate(ranked) for i in range(len(s))]
    pool.sort()
    target = math.floor(len(pool) * ratio + 1e-9)
    removed: list[list[int]] = [[] for _ in ranked]
    done = 0
    for _, n, i in pool:
        if done == target:
            break
        if len(removed[n]) < ranked[n][0].channels - 1:
            removed[n].append(i)
            done += 1
    return {g.name: sorted(r) for (g, _), r in zip(ranked, removed, strict=True)}


# --- structured channel pruning -----------------------------------------------------------------


def channel_prune(
    model: nn.Module,
    ratio: float | dict[str, float],
    example_shape: Sequence[int],
    criterion: str = "l1",
    *,
    scope: str = "layer",
) -> PruneReport:
    """Remove output channels for real, in place, with everything that depends on them.

    ``ratio`` is one share for every layer of `prunable_layers`, or {layer: share} for some
    of them (share 0 or a layer left out: kept whole); each layer loses floor(share x
    channels), keeping at least one. ``criterion``:

    - ``l1``: Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017: drop the filters
      with the smallest sum of absolute kernel weights. Like their "independent" strategy all
      scores come from the unpruned model. Departure: a channel that several layers produce
      (convs joined by a residual add, a depthwise conv after its expansion, an SE gate) scores
      the sum of those filters' norms and is removed from all of them (DepGraph's grouping),
      where Li et al. leave such layers unpruned.
    - ``bn``: Liu et al., "Learning Efficient Convolutional Networks through Network Slimming",
      ICCV 2017: drop the channels with the smallest batch-norm |gamma| (train with
      `slimming_penalty` first). A channel scaled by several batch norms scores their mean.
      The paper's one global threshold is ``scope="global"`` with a uniform ratio (a share of
      all channels, each layer keeping one); ``scope="layer"`` prunes each layer alike.
      Layers without batch norm are left whole under ``bn``.

    ``example_shape`` is one input's (C, H, W) (or a batch's shape), used to trace the network.
    """
    _check_criterion(criterion, scope)
    uniform = not isinstance(ratio, dict)
    if uniform:
        check_ratio(ratio)  # before tracing: a bad ratio is the first thing to hear about
    elif scope == "global":
        raise ConfigError("scope 'global' takes one uniform ratio, not per-layer ratios")
    groups = _groups(model, example_shape, "channel_prune")
    if not groups:
        raise ConfigError("the model has no prunable channels (no conv or hidden linear layer)")
    ratios = _ratios(ratio, [g.name for g in groups])
    if scope == "global":
        chosen = _choose_global(groups, check_ratio(ratio), criterion)
    else:
        chosen = _choose_per_layer(groups, ratios, criterion, named=not uniform)
    params, macs = count_params(model), count_macs(model, example_shape)
    out_shape = _output_shape(model, example_shape)
    for group in groups:
        if chosen.get(group.name):
            group.group.prune(idxs=chosen[group.name])
    if _output_shape(model, example_shape) != out_shape:  # pragma: no cover - a surgery bug
        raise RuntimeError("channel pruning changed the network's output shape")
    channels = {g.name: (g.channels, g.channels - len(chosen.get(g.name, []))) for g in groups}
    return PruneReport(
        criterion,
        check_ratio(ratio) if uniform else ratios,
        params,
        count_params(model),
        macs,
        count_macs(model, example_shape),
        sparsity(model),
        channels,
        scope,
    )


@torch.no_grad()
def _output_shape(model: nn.Module, example_shape: Sequence[int]) -> tuple[int, ...]:
    was_training = model.training
    model.eval()
    try:
        return tuple(model(_example(model, example_shape, "channel_prune")).shape)
    finally:
        model.train(was_training)


def slimming_penalty(strength: float = 1e-4) -> LossTerm:
    """``strength`` x the L1 norm of every batch-norm scale, for ``fit(extra=...)``.

    Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", ICCV
    2017, train with this sparsity term (lambda 1e-4 on CIFAR) so that unimportant channels'
    gammas go to zero before `channel_prune` with ``criterion="bn"`` removes them. They add
    the subgradient to the gammas directly; a loss term gives autograd the same sign(gamma)."""
    if (
        isinstance(strength, bool)
        or not isinstance(strength, numbers.Real)
        or not (0 < strength < math.inf)
    ):
        raise ConfigError(f"slimming strength must be a number > 0, got {strength!r}")

    def term(
        model: nn.Module, images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor:
        gammas = [
            m.weight.abs().sum() for m in model.modules() if isinstance(m, _NORMS) and m.affine
        ]
        if not gammas:
            return logits.new_zeros(())
        return strength * torch.stack(gammas).sum()

    return term


def prune_to_macs(
    model: nn.Module,
    fraction: float,
    example_shape: Sequence[int],
    criterion: str = "l1",
    *,
    scope: str = "layer",
    steps: int = 14,
) -> PruneReport:
    """Channel-prune ``model`` with the smallest uniform ratio that keeps <= ``fraction`` of its
    MACs, found by bisection on copies (``steps`` halvings); ConfigError if even one channel per
    layer keeps more. MACs fall monotonically with the ratio, since every layer (or the global
    ranking) only loses more channels as it grows."""
    fraction = check_ratio(fraction, "MACs fraction to keep")
    _check_criterion(criterion, scope)
    before = count_macs(model, example_shape)

    def kept(ratio: float) -> float:
        trial = copy.deepcopy(model)
        return (
            channel_prune(trial, ratio, example_shape, criterion, scope=scope).macs_after / before
        )

    low, high = 0.0, 1.0 - 1e-6
    least = kept(high)
    if least > fraction:
        raise ConfigError(
            f"cannot prune to {fraction:g} of the MACs: removing all but one channel of every "
            f"prunable layer keeps {least:.3g}; accepted: a fraction above that"
        )
    for _ in range(steps):
        middle = (low + high) / 2
        if kept(middle) <= fraction:
            high = middle
        else:
            low = middle
    return channel_prune(model, high, example_shape, criterion, scope=scope)
