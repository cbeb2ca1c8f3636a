"""Each zero-cost proxy against a second way of computing it, on tiny networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.estimators.proxies.activation import (
    activation_scores,
    jacob_cov_score,
    meco_score,
    swap_regulariser,
)
from nasforge.estimators.proxies.baselines import baseline_scores
from nasforge.estimators.proxies.combined import rank_combination
from nasforge.estimators.proxies.gradient import gradient_scores, synflow_score

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mlp(seed: int = 0, bias: bool = True, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(6, 5, bias=bias),
        nn.ReLU(),
        nn.Linear(5, 4, bias=bias),
        nn.ReLU(),
        nn.Linear(4, 3, bias=bias),
    )
    return net.to(dtype)


def data(n: int = 8, seed: int = 1, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, 6), generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


def linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def test_params_flops_and_l2_norm_by_hand() -> None:
    net = mlp()
    scores = baseline_scores(net, (6,))
    assert scores["params"] == (6 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3)
    assert scores["flops"] == 6 * 5 + 5 * 4 + 4 * 3  # one sample's multiply-accumulates
    by_hand = sum(math.sqrt(float((m.weight.detach().numpy() ** 2).sum())) for m in linears(net))
    assert scores["l2_norm"] == pytest.approx(by_hand, rel=1e-6)


def test_synflow_of_a_bias_free_linear_chain_in_closed_form() -> None:
    # R = 1^T |W3| |W2| |W1| 1 and, for every layer, sum |W * dR/dW| = R: synflow = 3 R
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Linear(6, 5, bias=False), nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False)
    )
    w = [np.abs(m.weight.detach().double().numpy()) for m in linears(net)]
    r = float(np.ones(3) @ w[2] @ w[1] @ w[0] @ np.ones(6))
    assert synflow_score(net, (6,)) == pytest.approx(3 * r, rel=1e-9)


def test_grad_norm_snip_fisher_zico_against_autograd() -> None:
    net = mlp()
    x, y = data()
    scores = gradient_scores(net, x, y, classes=3, splits=2)
    weights = [m.weight for m in linears(net)]
    # without batch norm the mean of the two halves' gradients is the full batch's
    full = torch.autograd.grad(F.cross_entropy(net(x), y), weights)
    assert scores["grad_norm"] == pytest.approx(sum(float(g.norm()) for g in full), rel=1e-5)
    snip = sum(float((g * w.detach()).abs().sum()) for g, w in zip(full, weights, strict=True))
    assert scores["snip"] == pytest.approx(snip, rel=1e-5)
    halves = [(x[:4], y[:4]), (x[4:], y[4:])]
    per_half = [torch.autograd.grad(F.cross_entropy(net(hx), hy), weights) for hx, hy in halves]
    zico = 0.0
    for layer in range(len(weights)):
        g = np.stack([per_half[h][layer].numpy().ravel() for h in range(2)]).astype(float)
        std = g.std(0, ddof=1)
        keep = std > 0
        zico += math.log(float((np.abs(g).mean(0)[keep] / std[keep]).sum()))
    assert scores["zico"] == pytest.approx(zico, rel=1e-5)
    # fisher: activations (outputs of each linear layer) and their gradients, explicitly
    fisher = 0.0
    for hx, hy in halves:
        a1 = net[0](hx)
        a2 = net[2](net[1](a1))
        out = net[4](net[3](a2))
        grads = torch.autograd.grad(F.cross_entropy(out, hy), [a1, a2, out])
        for act, grad in zip([a1, a2, out], grads, strict=True):
            fisher += 0.5 * float((act.detach() * grad).pow(2).mean(0).sum()) * 0.5
    assert scores["fisher"] == pytest.approx(fisher, rel=1e-5)


def test_grasp_against_a_finite_difference_hessian_vector_product() -> None:
    net = mlp(dtype=torch.float64)
    x, y = data(dtype=torch.float64)
    weights = [m.weight for m in linears(net)]

    def grad_at(shift: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad():
            for w, s in zip(weights, shift, strict=True):
                w.add_(s)
        out = torch.autograd.grad(F.cross_entropy(net(x[:4]), y[:4]), weights)
        with torch.no_grad():
            for w, s in zip(weights, shift, strict=True):
                w.sub_(s)
        return out

    g = grad_at([torch.zeros_like(w) for w in weights])
    eps = 1e-5
    plus = grad_at([eps * gi for gi in g])
    minus = grad_at([-eps * gi for gi in g])
    hg = [(p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]
    expected = sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg, strict=True))
    # GraSP uses the first of the two parts
    grasp = gradient_scores(net, x, y, classes=3, splits=2, grasp=True)["grasp"]
    assert grasp == pytest.approx(expected, rel=1e-4, abs=1e-9)


def relu_codes(net: nn.Sequential, x: torch.Tensor) -> list[np.ndarray]:
    codes, h = [], x
    for layer in net:
        h = layer(h)
        if isinstance(layer, nn.ReLU):
            codes.append((h > 0).numpy().reshape(len(x), -1))
    return codes


def test_naswot_kernel_is_units_minus_hamming_distance_and_swap_counts_patterns() -> None:
    net = mlp(seed=4)
    x, _ = data(n=6, seed=5)
    scores = activation_scores(net, x, classes=3, params=1000)
    with torch.no_grad():
        codes = np.concatenate(relu_codes(net, x), axis=1)
    n = len(x)
    kernel = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            kernel[i, j] = codes.shape[1] - int(np.sum(codes[i] != codes[j]))
    assert scores["naswot"] == pytest.approx(np.linalg.slogdet(kernel)[1], rel=1e-9)
    patterns = {tuple(codes[:, unit]) for unit in range(codes.shape[1])}
    assert scores["swap"] == pytest.approx(len(patterns) * swap_regulariser(1000))
    assert swap_regulariser(3000, mu=1.0, sigma=2.0) == pytest.approx(math.exp(-2.0))


def test_meco_against_numpy_correlations() -> None:
    torch.manual_seed(6)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 3),
    )
    x = torch.randn((1, 2, 5, 5), generator=torch.Generator().manual_seed(7))
    score = meco_score(net, x, classes=3)
    with torch.no_grad():
        f1 = net[0](x)
        f2 = net[2](net[1](f1))
    expected = 0.0
    for f in (f1, f2):
        feature = f[0].numpy().reshape(f.shape[1], -1).astype(float)
        corr = np.nan_to_num(np.corrcoef(feature))
        expected += f.shape[1] * float(np.linalg.eigvalsh(corr)[0])
    assert score == pytest.approx(expected, rel=1e-6)


def test_meco_of_a_net_whose_batch_norm_sees_a_1x1_map_scores_its_convolutions() -> None:
    """One image pooled to 1x1 before a batch norm: torch refuses train mode there (what an
    8x8 digit through a mobile network hit). The score is the one computed by hand with
    train-mode batch statistics where there are several values per channel, and the net is
    left in train mode."""
    torch.manual_seed(8)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(4, 5, 1),
        nn.BatchNorm2d(5),
        nn.Flatten(),
        nn.Linear(5, 3),
    )
    x = torch.randn((1, 2, 4, 4), generator=torch.Generator().manual_seed(9))
    score = meco_score(net, x, classes=3)
    assert all(m.training for m in net.modules())
    with torch.no_grad():
        f1 = net[0](x)
        mean, var = f1.mean((0, 2, 3), keepdim=True), f1.var((0, 2, 3), unbiased=False)
        normed = (f1 - mean) / torch.sqrt(var.reshape(1, -1, 1, 1) + 1e-5)
        f2 = net[4](torch.relu(normed).mean((2, 3), keepdim=True))
    feature = f1[0].numpy().reshape(4, -1).astype(float)
    expected = 4 * float(np.linalg.eigvalsh(np.nan_to_num(np.corrcoef(feature)))[0])
    assert f2.shape[-1] == 1  # a 1x1 map: no correlation, so it adds 0
    assert score == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_against_numpy_eigenvalues_of_per_sample_jacobians() -> None:
    net = mlp(seed=10, dtype=torch.float64)  # a seed whose Jacobian rows all vary
    x, _ = data(n=5, seed=11, dtype=torch.float64)
    rows = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        rows.append(torch.autograd.grad(net(xi).sum(), xi)[0].numpy().ravel())
    v = np.linalg.eigvals(np.corrcoef(np.array(rows))).real
    expected = -float(np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5)))
    assert jacob_cov_score(net, x, classes=3) == pytest.approx(expected, rel=1e-6)


def test_rank_combination_is_sum_of_log_rank_fractions() -> None:
    scores = {"a": np.array([1.0, 3.0, 2.0]), "b": np.array([0.5, -np.inf, 0.7])}
    # ranks a: 1, 3, 2; b: 2, 1, 3 (of 3)
    expected = np.log(np.array([1, 3, 2]) / 3) + np.log(np.array([2, 1, 3]) / 3)
    np.testing.assert_allclose(rank_combination(scores, ["a", "b"]), expected)


def test_a_network_without_logits_is_a_one_line_config_error() -> None:
    from nasforge.errors import ConfigError

    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU())  # 5 outputs, but 3 classes asked
    x, y = data()
    for call in (
        lambda: gradient_scores(net, x, y, classes=3),
        lambda: activation_scores(net, x, classes=3, params=1),
        lambda: jacob_cov_score(net, x, classes=3),
    ):
        with pytest.raises(
            ConfigError, match=r"logits of shape \(batch, classes\) = \(\d+, 3\)"
        ) as err:
            call()
        assert "\n" not in str(err.value)
