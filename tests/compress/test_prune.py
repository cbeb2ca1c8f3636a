"""Pruning: checked against facts computed here, independently of the code under test (numpy
quantiles and L1 norms, parameter and MAC counts by hand, the function of a network whose
pruned channels were silent)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import require_data
from nasforge.compress.finetune import accuracy, fit
from nasforge.compress.prune import (
    PRUNE_METHODS,
    channel_prune,
    check_ratio,
    hold_zeros,
    magnitude_prune,
    prunable_layers,
    prune_to_macs,
    slimming_penalty,
)
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError
from nasforge.nn.profile import count_macs, count_params
from nasforge.spaces import mobile
from nasforge.spaces.nb201 import NB201Arch
from nasforge.spaces.nb201 import build as build_nb201

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (1, 8, 8)
MOBILE_SHAPE = (1, 16, 16)
SE_ARCH = (
    "w0.5|mbconv1_k3_se0.25_skip_n+0|mbconv6_k5_se0.25_noskip_n-1|mbconv3_k3_se0.25_skip_n+0|"
    "dwsep_k3_se0.25_skip_n+0|conv_k3_se0.25_skip_n+0|mbconv6_k7_se0.25_skip_n-1|"
    "mbconv1_k3_se0.25_skip_n+0"
)


class SmallCNN(nn.Module):
    """conv-BN-ReLU, 2x2 max pool, conv-BN-ReLU, global mean, hidden linear, classifier."""

    def __init__(self, c1: int = 8, c2: int = 16, hidden: int = 12, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x))).mean((2, 3))
        return self.fc2(F.relu(self.fc1(x)))


def small_cnn(seed: int = 0, **sizes: int) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(**sizes)


def one_line(err: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def l1_of_filters(conv: nn.Conv2d) -> np.ndarray:
    return np.abs(conv.weight.detach().numpy()).reshape(conv.out_channels, -1).sum(1)


# --- ratios and errors --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, 0.0, 1.0, "a", True, None, math.nan])
def test_a_ratio_outside_the_open_unit_interval_is_a_one_line_error(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        check_ratio(bad)
    message = one_line(err)
    assert "pruning ratio" in message and "(0, 1)" in message and repr(bad) in message
    model = small_cnn()
    before = [p.clone() for p in model.parameters()]
    for call in (
        lambda: channel_prune(model, bad, SHAPE),  # type: ignore[arg-type]
        lambda: magnitude_prune(model, bad, SHAPE),  # type: ignore[arg-type]
        lambda: prune_to_macs(model, bad, SHAPE),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigError) as err:
            call()
        assert repr(bad) in one_line(err)
    # nothing was touched before the error
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_ratios_inside_the_interval_are_accepted_as_floats() -> None:
    assert check_ratio(0.5) == 0.5
    assert check_ratio(np.float32(0.25)) == 0.25
    assert check_ratio(0.0, allow_zero=True) == 0.0


def test_per_layer_ratios_name_known_layers_with_shares_below_one() -> None:
    model = small_cnn()
    with pytest.raises(ConfigError) as err:
        channel_prune(model, {"conv1": 0.5, "conv9": 0.5}, SHAPE)
    message = one_line(err)
    assert "'conv9'" in message and "conv1, conv2, fc1" in message
    with pytest.raises(ConfigError) as err:
        channel_prune(model, {"conv1": 1.0}, SHAPE)
    assert "conv1" in one_line(err) and "[0, 1)" in one_line(err)
    with pytest.raises(ConfigError) as err:
        channel_prune(model, {"fc2": 0.5}, SHAPE)  # the classifier is tied to the output
    assert "'fc2'" in one_line(err)
    with pytest.raises(ConfigError):
        channel_prune(model, {}, SHAPE)
    assert model.conv1.out_channels == 8 and model.fc1.out_features == 12


def test_unknown_criterion_scope_and_strength_are_one_line_errors() -> None:
    model = small_cnn()
    with pytest.raises(ConfigError) as err:
        channel_prune(model, 0.5, SHAPE, criterion="taylor")
    assert "'taylor'" in one_line(err) and "l1, bn" in one_line(err)
    with pytest.raises(ConfigError) as err:
        channel_prune(model, 0.5, SHAPE, scope="everywhere")
    assert "layer, global" in one_line(err)
    with pytest.raises(ConfigError) as err:  # L1 norms are not comparable across layers
        channel_prune(model, 0.5, SHAPE, criterion="l1", scope="global")
    assert "'bn'" in one_line(err)
    for bad in (0, -1e-4, math.inf, "x"):
        with pytest.raises(ConfigError) as err:
            slimming_penalty(bad)  # type: ignore[arg-type]
        assert repr(bad) in one_line(err)
    assert PRUNE_METHODS == ("magnitude", "l1", "slimming")


# --- unstructured magnitude pruning -------------------------------------------------------------


def test_magnitude_pruning_zeros_exactly_the_smallest_weights_network_wide() -> None:
    model = small_cnn(seed=3)
    layers = [model.conv1, model.conv2, model.fc1, model.fc2]
    original = [layer.weight.detach().clone() for layer in layers]
    biases = [layer.bias.detach().clone() for layer in (model.fc1, model.fc2)]
    flat = np.concatenate([np.abs(w.numpy()).ravel() for w in original])
    ratio = 0.6
    report = magnitude_prune(model, ratio, SHAPE)
    after = np.concatenate([layer.weight.detach().numpy().ravel() for layer in layers])
    pruned = round(ratio * flat.size)
    assert int((after == 0).sum()) == pruned
    assert report.sparsity == pytest.approx(pruned / flat.size)
    # survivors: the largest |w| of the whole network, unchanged, all above numpy's quantile
    kept = np.sort(np.argsort(flat, kind="stable")[pruned:])
    assert np.array_equal(np.flatnonzero(after), kept)
    signed = np.concatenate([w.numpy().ravel() for w in original])
    assert np.array_equal(after[kept], signed[kept])
    assert np.abs(after[kept]).min() >= np.quantile(flat, ratio)
    # one global threshold: layers end with different sparsities
    per_layer = [float((layer.weight == 0).float().mean()) for layer in layers]
    assert max(per_layer) - min(per_layer) > 0.05
    assert all(
        torch.equal(b, layer.bias) for b, layer in zip(biases, (model.fc1, model.fc2), strict=True)
    )
    # zeros only: shapes, parameter and MAC counts stay; the weights are plain parameters again
    assert report.params_after == report.params_before == count_params(model)
    assert report.macs_after == report.macs_before
    assert report.channels == {} and report.method == "magnitude"
    assert not any("weight_orig" in name for name, _ in model.named_parameters())


def test_hold_zeros_keeps_magnitude_sparsity_through_fine_tuning() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(64, *SHAPE, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    zeros = {}
    for hold in (False, True):
        model = small_cnn(seed=1)
        magnitude_prune(model, 0.5, SHAPE)
        mask = [(m.weight == 0).clone() for m in (model.conv1, model.conv2, model.fc1)]
        handles = hold_zeros(model) if hold else []
        fit(model, images, labels, epochs=2, lr=0.05, batch_size=16)
        for handle in handles:
            handle.remove()
        weights = (model.conv1.weight, model.conv2.weight, model.fc1.weight)
        zeros[hold] = all(bool((w[m] == 0).all()) for w, m in zip(weights, mask, strict=True))
    assert zeros == {False: False, True: True}


# --- L1-norm filter pruning ---------------------------------------------------------------------


def test_l1_keeps_the_filters_with_the_largest_norms_and_slices_every_dependent_tensor() -> None:
    model = small_cnn(seed=5)
    model.bn1.running_mean.uniform_(-1, 1)  # distinct values, so slicing errors show
    model.bn1.weight.data.uniform_(0.5, 1.5)
    conv1, bn1 = copy.deepcopy(model.conv1), copy.deepcopy(model.bn1)
    conv2_weight = model.conv2.weight.detach().clone()
    norms = l1_of_filters(conv1)
    keep = np.sort(np.argsort(-norms)[:5])  # 8 channels, ratio 0.45 removes floor(3.6) = 3
    report = channel_prune(model, {"conv1": 0.45}, SHAPE)
    assert report.channels == {"conv1": (8, 5), "conv2": (16, 16), "fc1": (12, 12)}
    index = torch.as_tensor(keep)
    assert torch.equal(model.conv1.weight, conv1.weight[index])
    assert model.conv1.out_channels == 5 and model.bn1.num_features == 5
    for name in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(model.bn1, name), getattr(bn1, name)[index])
    assert torch.equal(model.conv2.weight, conv2_weight[:, index])
    assert model.conv2.in_channels == 5 and model.conv2.out_channels == 16


def test_params_and_macs_after_pruning_match_a_count_by_hand() -> None:
    model = small_cnn()
    report = channel_prune(model, 0.5, SHAPE)
    # 8 -> 4, 16 -> 8, 12 -> 6 channels; the classifier keeps its 10 outputs
    params = (
        4 * 1 * 3 * 3  # conv1 (no bias)
        + 2 * 4  # bn1
        + 8 * 4 * 3 * 3  # conv2
        + 2 * 8  # bn2
        + 8 * 6
        + 6  # fc1
        + 6 * 10
        + 10  # fc2
    )
    macs = 8 * 8 * 4 * 9 + 4 * 4 * 8 * 4 * 9 + 8 * 6 + 6 * 10  # 8x8 input, 4x4 after the pool
    assert (report.params_after, report.macs_after) == (params, macs) == (472, 7020)
    assert report.params_before == count_params(small_cnn()) == 1606
    assert report.macs_before == count_macs(small_cnn(), SHAPE)
    assert report.channels == {"conv1": (8, 4), "conv2": (16, 8), "fc1": (12, 6)}
    assert model(torch.zeros(3, *SHAPE)).shape == (3, 10)


def silence_cnn_channels(model: SmallCNN, channels: list[int]) -> None:
    """Zero conv1's filters and BN shift/mean for ``channels``: they output exactly 0."""
    with torch.no_grad():
        model.conv1.weight[channels] = 0
        model.bn1.bias[channels] = 0
        model.bn1.running_mean[channels] = 0


def test_removing_silent_channels_does_not_change_the_function() -> None:
    model = small_cnn(seed=2)
    with torch.no_grad():  # trained-looking statistics, so a wrong slice would show
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2)
        model.bn1.bias.uniform_(-0.5, 0.5)
    silence_cnn_channels(model, [1, 4, 6, 7])
    x = torch.randn(5, *SHAPE)
    expected = model.eval()(x)
    channel_prune(model, {"conv1": 0.5}, SHAPE)
    assert model.conv1.out_channels == 4
    assert torch.allclose(model.eval()(x), expected, atol=1e-6)


def test_removing_silent_channels_of_an_se_inverted_residual_keeps_the_function() -> None:
    torch.manual_seed(0)
    net = mobile.build(mobile.from_string(SE_ARCH), in_channels=1, num_classes=10, input_size=16)
    block = net.stages[1][0]  # mbconv6 with SE: expand -> depthwise -> SE -> project
    hidden = block.expand[0].out_channels
    silent = list(range(0, hidden, 2))
    with torch.no_grad():
        for conv in (block.expand[0], block.depthwise[0], block.se.expand):
            conv.weight[silent] = 0
        for bn in (block.expand[1], block.depthwise[1]):
            bn.bias[silent] = 0
            bn.running_mean[silent] = 0
    x = torch.randn(2, *MOBILE_SHAPE)
    expected = net.eval()(x)
    report = channel_prune(net, {"stages.1.0.expand.0": 0.5}, MOBILE_SHAPE)
    assert report.channels["stages.1.0.expand.0"] == (hidden, hidden // 2)
    assert block.depthwise[0].out_channels == block.se.expand.out_channels == hidden // 2
    assert block.project[0].in_channels == block.se.reduce.in_channels == hidden // 2
    assert torch.allclose(net.eval()(x), expected, atol=1e-5)
    assert report.params_after < report.params_before and report.macs_after < report.macs_before


# --- the search spaces' networks ----------------------------------------------------------------


def mobile_net(arch: mobile.MobileArch) -> nn.Module:
    torch.manual_seed(0)
    return mobile.build(arch, in_channels=1, num_classes=10, input_size=16)


NETWORKS = {
    "mobilenetv2-0.5": lambda: mobile_net(mobile.MobileArch(mobile.MOBILENETV2_BASE.stages, 0.5)),
    "mobile-se": lambda: mobile_net(mobile.from_string(SE_ARCH)),
    "mobile-random-0": lambda: mobile_net(mobile.MobileSpace().sample(np.random.default_rng(0))),
    "mobile-random-3": lambda: mobile_net(mobile.MobileSpace().sample(np.random.default_rng(3))),
    # node 2 is read by no edge (a dead branch), node 1 is avg-pooled input
    "nb201-dead-node": lambda: build_nb201(
        NB201Arch(
            ("avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "skip_connect", "none")
        ),
        C=8,
        N=1,
        in_channels=1,
    ),
    # node 1 has only a 'none' edge: torch.zeros_like(x), whose channels follow x
    "nb201-zero-node": lambda: build_nb201(
        NB201Arch(("none", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "none", "skip_connect")),
        C=8,
        N=1,
        in_channels=1,
    ),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_pruned_networks_of_the_spaces_still_train_and_are_smaller(name: str) -> None:
    net = NETWORKS[name]()
    layers = prunable_layers(net, MOBILE_SHAPE)
    assert "classifier" not in layers and layers[0] == "stem.0"
    convs = {n for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    assert set(layers) <= convs
    before = {n: p.numel() for n, p in net.named_parameters()}
    report = channel_prune(net, 0.5, MOBILE_SHAPE)
    assert list(report.channels) == layers
    assert all(
        after == before - math.floor(before * 0.5) for before, after in report.channels.values()
    )
    assert report.params_after == count_params(net) < report.params_before
    assert report.macs_after == count_macs(net, MOBILE_SHAPE) < report.macs_before
    shrunk = [n for n, p in net.named_parameters() if p.numel() < before[n]]
    assert len(shrunk) > len(layers)  # the tensors really shrank, not only zeros
    # still a trainable 10-class network
    net.train()
    x, y = torch.randn(4, *MOBILE_SHAPE), torch.tensor([0, 1, 2, 3])
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    assert torch.isfinite(loss) and net.eval()(x).shape == (4, 10)


def test_a_residual_stage_is_one_decision_and_per_layer_ratios_touch_only_their_layer() -> None:
    net = NETWORKS["mobilenetv2-0.5"]()
    layers = prunable_layers(net, MOBILE_SHAPE)
    # stage 3 (three mbconv6, 16 channels, skips): its projections are coupled by the adds
    projections = [f"stages.2.{i}.project.0" for i in range(3)]
    assert projections[0] in layers and not set(projections[1:]) & set(layers)
    assert layers[-1] == "head.0" and len(layers) == len(set(layers))
    report = channel_prune(net, {"stages.2.0.project.0": 0.5, "head.0": 0.25}, MOBILE_SHAPE)
    changed = {n: pair for n, pair in report.channels.items() if pair[0] != pair[1]}
    assert changed == {"stages.2.0.project.0": (16, 8), "head.0": (1280, 960)}
    assert all(net.get_submodule(p).out_channels == 8 for p in projections)
    assert net.stages[3][0].expand[0].in_channels == 8
    assert net.classifier.in_features == 960


def test_layers_with_grouped_convs_are_left_alone() -> None:
    """torch-pruning slices a grouped (not depthwise) conv's input wrongly: such groups are
    never offered, and the rest still prunes."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 10),
    )
    assert prunable_layers(net, SHAPE) == ["4"]
    report = channel_prune(net, 0.5, SHAPE)
    assert report.channels == {"4": (12, 6)} and net(torch.zeros(2, *SHAPE)).shape == (2, 10)


# --- network slimming ---------------------------------------------------------------------------


def test_bn_criterion_with_a_global_threshold_removes_the_smallest_gammas_network_wide() -> None:
    model = small_cnn()
    rng = np.random.default_rng(0)
    gammas1 = rng.uniform(0.01, 0.1, 8)  # conv1's channels matter least ...
    gammas2 = rng.uniform(0.2, 1.0, 16)
    with torch.no_grad():
        model.bn1.weight.copy_(torch.as_tensor(-gammas1))  # ... ranked by |gamma|
        model.bn2.weight.copy_(torch.as_tensor(gammas2))
    report = channel_prune(model, 0.5, SHAPE, criterion="bn", scope="global")
    # 12 of the 24 channels go: the smallest |gamma| overall, but conv1 keeps its largest one
    keep1 = [int(np.argmax(gammas1))]
    pool = sorted([(g, 1, i) for i, g in enumerate(gammas1) if i not in keep1])
    pool += [(g, 2, i) for i, g in enumerate(gammas2)]
    removed = sorted(pool)[:12]
    keep2 = sorted(set(range(16)) - {i for _, layer, i in removed if layer == 2})
    assert sum(layer == 1 for _, layer, _ in removed) == 7
    assert torch.allclose(model.bn1.weight.abs(), torch.as_tensor(gammas1[keep1]).float())
    assert torch.allclose(model.bn2.weight, torch.as_tensor(gammas2[keep2]).float())
    # fc1 has no batch norm: nothing to rank it by, so it stays whole
    assert report.channels == {"conv1": (8, 1), "conv2": (16, len(keep2)), "fc1": (12, 12)}
    with pytest.raises(ConfigError) as err:
        channel_prune(model, {"fc1": 0.5}, SHAPE, criterion="bn")
    assert "'fc1'" in one_line(err) and "batch norm" in one_line(err)


def test_bn_criterion_per_layer_keeps_the_largest_gammas() -> None:
    model = small_cnn(seed=4)
    with torch.no_grad():
        model.bn2.weight.uniform_(-1, 1)
    gammas = model.bn2.weight.detach().abs().numpy().copy()
    channel_prune(model, {"conv2": 0.75}, SHAPE, criterion="bn")
    keep = np.sort(np.argsort(-gammas)[:4])
    assert torch.equal(model.bn2.weight.abs(), torch.as_tensor(gammas[keep]))


def test_the_slimming_penalty_is_strength_times_the_l1_norm_of_bn_scales() -> None:
    model = small_cnn()
    with torch.no_grad():
        model.bn1.weight.uniform_(-1, 1)
    expected = 0.01 * (model.bn1.weight.abs().sum() + model.bn2.weight.abs().sum())
    term = slimming_penalty(0.01)(model, torch.zeros(1), torch.zeros(1), torch.zeros(1, 10))
    assert torch.isclose(term, expected)
    term.backward()
    assert torch.allclose(model.bn1.weight.grad, 0.01 * model.bn1.weight.detach().sign())


@pytest.fixture(scope="module")
def fashion() -> tuple[torch.Tensor, ...]:
    folder = require_data("fashion-mnist/train-images-idx3-ubyte.gz").parent
    data = load_dataset("fashion-mnist", data_dir=folder.parent)
    order = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(0))
    train = order[:2000]
    return data.train_x[train], data.train_y[train], data.test_x[:1000], data.test_y[:1000]


def bn_l1(model: SmallCNN) -> float:
    return float(model.bn1.weight.detach().abs().sum() + model.bn2.weight.detach().abs().sum())


def test_slimming_training_shrinks_the_bn_scales(fashion: tuple[torch.Tensor, ...]) -> None:
    images, labels = fashion[0][:320], fashion[1][:320]
    norms = {}
    for name, extra in (("plain", None), ("slimming", slimming_penalty(1e-2))):
        model = small_cnn()
        fit(model, images, labels, epochs=2, lr=0.05, batch_size=16, extra=extra)  # 40 steps
        norms[name] = bn_l1(model)
    assert norms["slimming"] < 0.97 * norms["plain"]


def test_fine_tuning_recovers_accuracy_after_halving_the_channels(
    fashion: tuple[torch.Tensor, ...],
) -> None:
    train_x, train_y, test_x, test_y = fashion
    model = small_cnn(c1=16, c2=32, hidden=32)
    fit(model, train_x, train_y, epochs=3, lr=0.05, batch_size=32)
    trained = accuracy(model, test_x, test_y)
    report = channel_prune(model, 0.5, (1, 28, 28))
    pruned = accuracy(model, test_x, test_y)
    fit(model, train_x, train_y, epochs=1, lr=0.02, batch_size=32)
    tuned = accuracy(model, test_x, test_y)
    assert report.params_after < 0.4 * report.params_before
    assert trained > 50 and pruned < trained - 10  # halving the channels hurt ...
    assert tuned > pruned + 20  # ... and a single epoch of fine-tuning wins most of it back


# --- a MACs budget ------------------------------------------------------------------------------


def test_prune_to_macs_finds_the_smallest_uniform_ratio_under_the_budget() -> None:
    net = NETWORKS["mobile-se"]()
    reference = copy.deepcopy(net)
    report = prune_to_macs(net, 0.5, MOBILE_SHAPE)
    assert report.macs_after == count_macs(net, MOBILE_SHAPE) <= 0.5 * report.macs_before
    assert isinstance(report.ratio, float) and 0 < report.ratio < 1
    # a slightly smaller ratio misses the budget, so the one found is (nearly) the least
    looser = channel_prune(copy.deepcopy(reference), report.ratio - 0.01, MOBILE_SHAPE)
    assert looser.macs_after > 0.5 * looser.macs_before
    again = channel_prune(reference, report.ratio, MOBILE_SHAPE)
    assert again.macs_after == report.macs_after


def test_an_unreachable_macs_budget_is_a_one_line_error() -> None:
    model = small_cnn()
    with pytest.raises(ConfigError) as err:
        prune_to_macs(model, 0.001, SHAPE)
    assert "0.001" in one_line(err)
    assert model.conv1.out_channels == 8  # left whole


def test_the_report_is_json() -> None:
    report = channel_prune(small_cnn(), {"conv2": 0.5}, SHAPE)
    data = json.loads(json.dumps(report.to_json()))
    assert data["method"] == "l1" and data["ratio"] == {"conv2": 0.5}
    assert data["channels"]["conv2"] == [16, 8] and data["params_after"] == report.params_after
