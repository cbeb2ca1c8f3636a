"""Searched compression (compress.search): per-layer pruning ratios (AMC) and bit-widths (HAQ)
as search spaces, their estimators, and budgeted searches.

Checked against facts computed here: copies pruned by `channel_prune` and counted by
`count_macs`, MACs and weight counts of the small CNN by hand, `accuracy` of copies pruned or
fake-quantised in the test. The network is a small CNN fitted for a few seconds on digits; the
validation images are a split of the training set it never trained on."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.compress.finetune import accuracy, fit
from nasforge.compress.prune import channel_prune, prunable_layers
from nasforge.compress.quantize import fake_quantize, quantizable_layers
from nasforge.compress.search import (
    BitWidthSpace,
    CompressionData,
    PrunedAccuracy,
    PruningRatioSpace,
    QuantizedAccuracy,
    recalibrate_batch_norm,
    search_compression,
)
from nasforge.core import Candidate
from nasforge.data.datasets import load_dataset, split_train_val
from nasforge.errors import ConfigError, InvalidArchError
from nasforge.nn.profile import count_macs, count_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (1, 8, 8)


class SmallCNN(nn.Module):
    """conv-BN-ReLU, 2x2 max pool, conv-BN-ReLU, global mean, hidden linear, classifier."""

    def __init__(self, c1: int = 8, c2: int = 16, hidden: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x))).mean((2, 3))
        return self.fc2(F.relu(self.fc1(x)))


def hand_macs(c1: int = 8, c2: int = 16, hidden: int = 32) -> dict[str, int]:
    """Per layer: output values x products per output (8x8 input, pooled to 4x4)."""
    return {
        "conv1": 8 * 8 * c1 * (1 * 9),
        "conv2": 4 * 4 * c2 * (c1 * 9),
        "fc1": hidden * c2,
        "fc2": 10 * hidden,
    }


@pytest.fixture(scope="module")
def data() -> CompressionData:
    digits = load_dataset("digits")
    train, val = split_train_val(len(digits.train_x), 0.25, seed=0)
    return CompressionData(
        digits.train_x[train],
        digits.train_y[train],
        digits.train_x[val],
        digits.train_y[val],
        digits.test_x,
        digits.test_y,
    )


@pytest.fixture(scope="module")
def model(data: CompressionData) -> SmallCNN:
    torch.manual_seed(0)
    net = SmallCNN()
    fit(net, data.train_x, data.train_y, epochs=10, lr=0.05)
    return net.eval()


@pytest.fixture(scope="module")
def ratios(model: SmallCNN) -> PruningRatioSpace:
    return PruningRatioSpace(model, SHAPE)


def pruned_copy(model: nn.Module, layers: tuple[str, ...], arch: tuple[float, ...]) -> nn.Module:
    net = copy.deepcopy(model)
    channel_prune(net, dict(zip(layers, arch, strict=True)), SHAPE)
    return net


def samples(space, count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(count)]


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


# --- the pruning space --------------------------------------------------------------------------


def test_pruning_space_has_one_decision_per_prunable_layer(
    model: SmallCNN, ratios: PruningRatioSpace
) -> None:
    layers = prunable_layers(model, SHAPE)
    assert layers == ["conv1", "conv2", "fc1"]  # the classifier is never pruned
    assert ratios.layers == tuple(layers)
    assert ratios.decisions().choices == (4,) * len(layers)
    assert len(ratios.encode((0.0, 0.5, 0.75))) == 4 * len(layers)


def test_pruning_policies_round_trip(ratios: PruningRatioSpace) -> None:
    decisions = ratios.decisions()
    rng = np.random.default_rng(1)
    for arch in samples(ratios, 40):
        assert ratios.from_string(ratios.to_string(arch)) == arch
        assert decisions.decode(decisions.encode(arch)) == arch
        assert all(r in (0.0, 0.25, 0.5, 0.75) for r in arch)
        child = ratios.mutate(arch, rng)
        assert ratios.canonical(child) != ratios.canonical(arch)
    assert ratios.to_string((0.0, 0.25, 0.75)) == "conv1=0,conv2=0.25,fc1=0.75"


def test_macs_and_params_match_a_copy_pruned_by_channel_prune(
    model: SmallCNN, ratios: PruningRatioSpace
) -> None:
    example = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    for arch in samples(ratios, 6, seed=2):
        pruned = pruned_copy(model, ratios.layers, arch)
        assert ratios.macs(arch) == count_macs(pruned, SHAPE)
        assert ratios.params(arch) == count_params(pruned)
        with torch.no_grad():
            assert torch.equal(ratios.build(arch).eval()(example), pruned.eval()(example))


def test_the_all_zero_policy_costs_what_the_original_costs(
    model: SmallCNN, ratios: PruningRatioSpace
) -> None:
    whole = (0.0,) * len(ratios.layers)
    assert ratios.macs(whole) == count_macs(model, SHAPE) == sum(hand_macs().values())
    assert ratios.params(whole) == count_params(model)


def test_ratios_removing_the_same_channels_are_one_network() -> None:
    """conv1 with 2 channels: floor(2 x 0.25) = 0 removes nothing, as 0 does; 0.5 and 0.75
    both remove 1 (one channel is always kept)."""
    torch.manual_seed(0)
    space = PruningRatioSpace(SmallCNN(c1=2), SHAPE)
    rest = (0.5, 0.25)
    assert space.canonical((0.25, *rest)) == space.canonical((0.0, *rest)) == (0.0, *rest)
    assert space.canonical((0.75, *rest)) == (0.5, *rest)
    assert space.canonical((0.5, *rest)) != space.canonical((0.0, *rest))
    assert space.macs((0.25, *rest)) == space.macs((0.0, *rest))
    assert space.macs((0.75, *rest)) == space.macs((0.5, *rest)) < space.macs((0.0, *rest))


def test_pruning_policy_strings_are_parsed_strictly(ratios: PruningRatioSpace) -> None:
    for text in (
        "conv1=0,conv2=0.25",  # a layer missing
        "conv1=0,conv2=0.25,fc2=0.5",  # a layer that is not prunable
        "conv1=0,conv2=0.3,fc1=0",  # a ratio that is not a choice
        "conv1=0,conv2=x,fc1=0",
    ):
        with pytest.raises(InvalidArchError):
            ratios.from_string(text)
    with pytest.raises(InvalidArchError):
        ratios.check((0.0, 0.3, 0.0))


# --- the bit-width space ------------------------------------------------------------------------


def test_size_bits_is_the_weights_times_their_bits(model: SmallCNN) -> None:
    space = BitWidthSpace(model)
    weights = {
        name: module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    }
    assert weights == {"conv1": 72, "conv2": 1152, "fc1": 512, "fc2": 320}
    assert space.layers == tuple(quantizable_layers(model)) == tuple(weights)
    assert space.decisions().choices == (4,) * 4  # weight bits only: activations at 8
    for arch in samples(space, 10):
        expected = sum(weights[n] * w for n, (w, _) in zip(weights, arch, strict=True))
        assert space.size_bits(arch) == expected
        assert all(a == 8 for _, a in arch)
    assert space.full_size_bits() == 8 * sum(weights.values())


def test_bitops_are_each_layers_macs_times_both_bit_widths(model: SmallCNN) -> None:
    space = BitWidthSpace(model, activation_bits=None, example_shape=SHAPE)
    macs = hand_macs()
    assert space.layer_macs == macs
    assert sum(space.layer_macs.values()) == count_macs(model, SHAPE)
    assert space.decisions().choices == (4,) * 8  # (weight, activation) per layer
    for arch in samples(space, 10):
        expected = sum(macs[n] * w * a for n, (w, a) in zip(macs, arch, strict=True))
        assert space.bitops(arch) == expected


@pytest.mark.parametrize("activation_bits", [8, None])
def test_bit_policies_round_trip(model: SmallCNN, activation_bits: int | None) -> None:
    space = BitWidthSpace(model, activation_bits=activation_bits)
    decisions = space.decisions()
    rng = np.random.default_rng(3)
    for arch in samples(space, 30):
        assert space.from_string(space.to_string(arch)) == arch
        assert decisions.decode(decisions.encode(arch)) == arch
        assert space.mutate(arch, rng) != arch
    assert space.to_string(space.uniform(4)).split(",")[0] == (
        "conv1=w4a8" if activation_bits else "conv1=w4a4"
    )


def test_bit_policies_outside_the_choices_are_refused(model: SmallCNN) -> None:
    space = BitWidthSpace(model, bits=(4, 8))
    with pytest.raises(InvalidArchError):
        space.check(((2, 8),) * 4)  # 2 bits: not a choice here
    with pytest.raises(InvalidArchError):
        space.check(((4, 4),) * 4)  # activations are fixed at 8
    for text in ("conv1=w4a8,conv2=w4a8,fc1=w4a8", "conv1=w4,conv2=w4a8,fc1=w4a8,fc2=w4a8"):
        with pytest.raises(InvalidArchError):
            space.from_string(text)
    assert space.size_bits(((2, 8),) * 4) == 2 * (72 + 1152 + 512 + 320)  # any 2..8 measures


@pytest.mark.parametrize("kind", ["ratios", "weight bits", "weight and activation bits"])
def test_moves_keep_the_promises_strategies_rely_on(kind: str) -> None:
    """`spaces.base.SearchSpace`: neighbours one per canonical class and never the input's,
    mutants a different network, crossover valid, encodings of one length (conv1 has 2
    channels, so ratios have twins)."""
    torch.manual_seed(0)
    space = {
        "ratios": lambda: PruningRatioSpace(SmallCNN(c1=2), SHAPE),
        "weight bits": lambda: BitWidthSpace(SmallCNN()),
        "weight and activation bits": lambda: BitWidthSpace(SmallCNN(), activation_bits=None),
    }[kind]()
    rng = np.random.default_rng(0)
    for _ in range(30):
        a, b = space.sample(rng), space.sample(rng)
        near = [space.canonical(n) for n in space.neighbours(a)]
        assert len(set(near)) == len(near) and space.canonical(a) not in near
        assert space.canonical(space.mutate(a, rng)) != space.canonical(a)
        space.check(space.crossover(a, b, rng))
        assert len(space.encode(a)) == len(space.encode(b))


# --- the estimators -----------------------------------------------------------------------------


def test_pruned_accuracy_is_the_pruned_copys_validation_accuracy(
    model: SmallCNN, ratios: PruningRatioSpace, data: CompressionData
) -> None:
    before = copy.deepcopy(ratios.model.state_dict())
    estimator = PrunedAccuracy(ratios, (data.val_x, data.val_y), test=data.test)
    for arch in samples(ratios, 3, seed=4):
        result = estimator.evaluate(Candidate(arch))
        pruned = pruned_copy(model, ratios.layers, arch)
        assert result.objective == accuracy(pruned, data.val_x, data.val_y)
        assert result.report["test_acc"] == accuracy(pruned, data.test_x, data.test_y)
        assert "test_acc" not in result.for_strategy().report  # never steers the search
        assert result.metrics["macs"] == count_macs(pruned, SHAPE)
    assert all(torch.equal(v, before[k]) for k, v in ratios.model.state_dict().items())


def test_quantized_accuracy_is_the_fake_quantized_copys_validation_accuracy(
    model: SmallCNN, data: CompressionData
) -> None:
    space = BitWidthSpace(model, activation_bits=None, example_shape=SHAPE)
    calibration = data.train_x[:128]
    estimator = QuantizedAccuracy(space, (data.val_x, data.val_y), calibration)
    for arch in samples(space, 3, seed=5):
        result = estimator.evaluate(Candidate(arch))
        policy = dict(zip(space.layers, arch, strict=True))
        quantised = fake_quantize(model, policy, calibration)
        assert result.objective == accuracy(quantised, data.val_x, data.val_y)
        assert result.metrics["size_bits"] == space.size_bits(arch)
        assert result.metrics["bitops"] == space.bitops(arch)
    assert estimator.evaluate(Candidate(space.uniform(8))).objective > 80.0  # near float


def test_fine_tuned_scores_repeat_and_leave_the_model_alone(
    ratios: PruningRatioSpace, data: CompressionData
) -> None:
    before = copy.deepcopy(ratios.model.state_dict())
    estimator = PrunedAccuracy(
        ratios,
        (data.val_x, data.val_y),
        train=(data.train_x, data.train_y),
        finetune_epochs=1,
    )
    arch = (0.5, 0.5, 0.5)
    first, second = (estimator.evaluate(Candidate(arch)).objective for _ in range(2))
    assert first == second
    untuned = PrunedAccuracy(ratios, (data.val_x, data.val_y)).evaluate(Candidate(arch))
    assert untuned.objective < 20.0 < 40.0 < first  # near chance until fine-tuned (~58 %)
    assert all(torch.equal(v, before[k]) for k, v in ratios.model.state_dict().items())


def test_batch_norm_recalibration_sets_the_statistics_of_the_images(
    model: SmallCNN, data: CompressionData
) -> None:
    net = copy.deepcopy(model)
    images = data.train_x[:200]
    recalibrate_batch_norm(net, images, batch_size=len(images))
    with torch.no_grad():
        features = net.conv1(images)
    assert torch.allclose(net.bn1.running_mean, features.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(net.bn1.running_var, features.var((0, 2, 3), unbiased=True), atol=1e-4)
    assert net.bn1.momentum == model.bn1.momentum and not net.training
    assert torch.equal(net.conv1.weight, model.conv1.weight)
    assert not torch.allclose(net.bn1.running_mean, model.bn1.running_mean)


def test_recalibrated_scores_are_of_the_recalibrated_copy(
    model: SmallCNN, ratios: PruningRatioSpace, data: CompressionData
) -> None:
    estimator = PrunedAccuracy(
        ratios, (data.val_x, data.val_y), train=(data.train_x, data.train_y), bn_images=300
    )
    arch = (0.25, 0.5, 0.0)
    pruned = pruned_copy(model, ratios.layers, arch)
    plain = accuracy(pruned, data.val_x, data.val_y)
    recalibrate_batch_norm(pruned, data.train_x[:300])
    recalibrated = accuracy(pruned, data.val_x, data.val_y)
    assert estimator.evaluate(Candidate(arch)).objective == recalibrated != plain


# --- the searches -------------------------------------------------------------------------------


def test_a_pruning_search_stays_within_its_macs_budget_and_repeats(
    model: SmallCNN, data: CompressionData
) -> None:
    before = copy.deepcopy(model.state_dict())
    found = search_compression("prune", model, data, 0.5, trials=10, seed=0)
    limit = 0.5 * count_macs(model, SHAPE)
    assert found.metric == "macs" and found.limit == limit
    layers = tuple(prunable_layers(model, SHAPE))
    trials = found.history.completed
    assert len(trials) == 10
    for trial in trials:
        arch = found.space.from_string(trial.arch)
        assert count_macs(pruned_copy(model, layers, arch), SHAPE) <= limit
    assert found.searched.val_acc == max(t.result.objective for t in trials)
    assert all("test_acc" not in t.result.report for t in trials)  # the search never tests
    best = pruned_copy(model, layers, found.space.from_string(found.searched.policy))
    assert found.searched.test_acc == accuracy(best, data.test_x, data.test_y)
    assert found.searched.cost <= limit and found.baseline.cost <= limit
    fitting = [u for u in found.uniform if u.within_budget]
    assert found.baseline.val_acc == max(u.val_acc for u in fitting)
    assert {"unpruned", "uniform 0.5", "uniform 0.75"} <= {u.label for u in found.uniform}
    again = search_compression("prune", model, data, 0.5, trials=10, seed=0)
    assert [t.arch for t in again.history.completed] == [t.arch for t in trials]
    assert again.searched == found.searched and again.baseline == found.baseline
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_quantisation_search_stays_within_its_size_budget(
    model: SmallCNN, data: CompressionData
) -> None:
    found = search_compression("quantize", model, data, 0.5, trials=10, seed=0)
    weights = {n: m.weight.numel() for n, m in model.named_modules() if hasattr(m, "weight")}
    limit = 0.5 * 8 * sum(weights[n] for n in ("conv1", "conv2", "fc1", "fc2"))
    assert found.metric == "size_bits" and found.limit == limit
    for trial in found.history.completed:
        policy = found.space.policy(found.space.from_string(trial.arch))
        assert sum(weights[n] * w for n, (w, _) in policy.items()) <= limit
    uniform = {u.label: u for u in found.uniform}
    assert uniform["uniform 4-bit"].within_budget and uniform["uniform 4-bit"].cost == limit
    assert not uniform["uniform 8-bit"].within_budget
    assert found.baseline.label in {f"uniform {b}-bit" for b in (2, 3, 4)}
    assert found.searched.test_acc is not None  # reported, never selected on


def test_searching_activation_bits_defaults_to_a_bitops_budget(
    model: SmallCNN, data: CompressionData
) -> None:
    found = search_compression(
        "quantize", model, data, 0.3, trials=6, seed=1, activation_bits=None, strategy="random"
    )
    macs = hand_macs()
    assert found.metric == "bitops" and found.limit == 0.3 * 64 * sum(macs.values())
    for trial in found.history.completed:
        policy = found.space.policy(found.space.from_string(trial.arch))
        assert sum(macs[n] * w * a for n, (w, a) in policy.items()) <= found.limit


@pytest.mark.parametrize("strategy", ["random", "local", "bo", "reinforce", "tpe"])
def test_any_strategy_searches_within_the_budget(
    model: SmallCNN, data: CompressionData, strategy: str
) -> None:
    found = search_compression("prune", model, data, 0.4, strategy=strategy, trials=5, seed=0)
    assert found.strategy == strategy and len(found.history.completed) == 5
    assert all(t.result.metrics["macs"] <= found.limit for t in found.history.completed)


# --- errors -------------------------------------------------------------------------------------

BAD_SEARCHES = {
    "fraction 0": dict(budget_fraction=0),
    "fraction above 1": dict(budget_fraction=1.5),
    "negative fraction": dict(budget_fraction=-0.2),
    "fraction nan": dict(budget_fraction=math.nan),
    "fraction bool": dict(budget_fraction=True),
    "fraction text": dict(budget_fraction="0.5"),
    "unknown kind": dict(kind="sparsify"),
    "ratio 1": dict(ratios=(0.0, 1.0)),
    "negative ratio": dict(ratios=(-0.1, 0.5)),
    "no ratios": dict(ratios=()),
    "repeated ratio": dict(ratios=(0.5, 0.5)),
    "1 bit": dict(kind="quantize", bits=(1, 4)),
    "9 bits": dict(kind="quantize", bits=(4, 9)),
    "fractional bits": dict(kind="quantize", bits=(2.5, 4)),
    "9 activation bits": dict(kind="quantize", activation_bits=9),
    "a latency budget": dict(metric="latency_ms"),
    "macs for bits": dict(kind="quantize", metric="macs"),
    "no trials": dict(trials=0),
    "out of reach": dict(budget_fraction=0.001),
}


@pytest.mark.parametrize("case", list(BAD_SEARCHES))
def test_bad_input_is_a_one_line_config_error(
    model: SmallCNN, data: CompressionData, case: str
) -> None:
    settings = {"kind": "prune", "budget_fraction": 0.5, **BAD_SEARCHES[case]}
    kind, fraction = settings.pop("kind"), settings.pop("budget_fraction")
    with pytest.raises(ConfigError) as err:
        search_compression(kind, model, data, fraction, **settings)
    one_line(err)
    if case == "out of reach":
        assert "accepted: a fraction of at least" in str(err.value)


def test_bad_spaces_and_estimators_are_one_line_config_errors(
    model: SmallCNN, data: CompressionData
) -> None:
    val, train = (data.val_x, data.val_y), (data.train_x, data.train_y)
    for make in (
        lambda: PruningRatioSpace(model, SHAPE, ratios=(0.25, 1.0)),
        lambda: PruningRatioSpace(model, (0, 8, 8)),
        lambda: BitWidthSpace(model, bits=(2, 16)),
        lambda: BitWidthSpace(model, activation_bits=1),
        lambda: BitWidthSpace(nn.Sequential(nn.ReLU())),
        lambda: BitWidthSpace(model).bitops(((8, 8),) * 4),  # no example shape
        lambda: QuantizedAccuracy(
            BitWidthSpace(model), val, data.train_x, train=train, bn_images=9
        ),
        lambda: PrunedAccuracy(PruningRatioSpace(model, SHAPE), val, finetune_epochs=1),  # no train
        lambda: PrunedAccuracy(PruningRatioSpace(model, SHAPE), (data.val_x, data.train_y)),
    ):
        with pytest.raises(ConfigError) as err:
            make()
        one_line(err)
