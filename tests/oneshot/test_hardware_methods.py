"""ProxylessNAS and FBNet on the mobile supernet, with a latency table measured here (tiny:
8x8 inputs, width 0.5, few repeats). Checked against the table's own whole-network prediction,
closed-form gradients and hand-computed losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasforge.errors import ConfigError
from nasforge.latency.ops import MobileOps
from nasforge.latency.table import LatencyTable
from nasforge.oneshot.hardware_methods import FBNet, ProxylessNAS
from nasforge.oneshot.latency_model import mobile_latency_model
from nasforge.oneshot.mixed import Path
from nasforge.oneshot.mobile_supernet import MobileSupernet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> str:
    ops = MobileOps(widths=(0.5,), input_size=8, num_classes=10, in_channels=3)
    # six networks: a scale is fitted as well as the constant, and the model must carry both
    table = LatencyTable.build(ops, "eager", warmup=1, repeats=3, fit_networks=6)
    return str(table.save(tmp_path_factory.mktemp("lat") / "table.json"))


@pytest.fixture(scope="module")
def net() -> MobileSupernet:
    torch.manual_seed(0)
    return MobileSupernet(width=0.5, input_size=8, num_classes=10)


def test_the_latency_model_sums_to_the_tables_prediction(net, table_file) -> None:
    model = mobile_latency_model(net, table_file)
    table = LatencyTable.load(table_file, runtime="eager")
    assert table.scale != 1.0  # the scaled path is the one under test
    rng = np.random.default_rng(0)
    for _ in range(20):
        index = net.sample_index(rng)
        arch = net.arch_of(index)
        # the model sums float32 entries: its rounding is relative to the terms, not to their
        # sum, which a fitted constant near minus the sum (a busy machine's fit) makes tiny
        terms = table.scale * sum(ms for _, ms in table.breakdown(arch)) + abs(table.constant_ms)
        assert model.of(index) == pytest.approx(table.predict(arch), rel=1e-5, abs=1e-6 * terms)


def test_expected_latency_gradient_in_closed_form(net, table_file) -> None:
    model = mobile_latency_model(net, table_file)
    alpha = torch.randn(net.num_edges, len(net.ops), requires_grad=True)
    probs = F.softmax(alpha, dim=-1)
    model.expected(probs).backward()
    L = model.matrix
    mean = (probs * L).sum(dim=1, keepdim=True)
    assert torch.allclose(alpha.grad, (probs * (L - mean)).detach(), atol=1e-6)


def test_binary_gates_run_the_chosen_path_and_reach_only_the_sampled_pair(net, table_file) -> None:
    method = ProxylessNAS(net, {"latency_table": table_file, "target_ms": 1.0}, 4, seed=0)
    torch.manual_seed(1)
    path = method.search_path()
    assert all(len(set(pair)) == 2 for pair in path.active)
    on = [int(np.flatnonzero(row.detach().numpy() == 1.0)[0]) for row in path.weights]
    x = torch.randn(6, 3, 8, 8)
    net.eval()  # no dropout: the two passes must see the same network (BN: batch statistics)
    try:
        gated = net(x, path)
        single = net(x, Path(index=on))
    finally:
        net.train()
    assert torch.allclose(gated, single, atol=1e-5)
    loss = F.cross_entropy(gated, torch.arange(6) % 10)
    (grad,) = torch.autograd.grad(loss, method.alpha)
    for e, pair in enumerate(path.active):
        others = [k for k in range(len(net.ops)) if k not in pair]
        assert torch.all(grad[e, others] == 0)
        assert torch.any(grad[e, list(pair)] != 0)


def test_proxylessnas_pulls_latency_down_and_refuses_bad_options(net, table_file) -> None:
    method = ProxylessNAS(
        net, {"latency_table": table_file, "target_ms": 0.5, "reg_lambda": 50.0,
              "arch_every": 1, "warmup": 0.0, "arch_lr": 0.05}, 4, seed=0,
    )  # fmt: skip
    before = method.expected_latency()
    x, y = torch.randn(8, 3, 8, 8), torch.arange(8) % 10
    torch.manual_seed(0)
    for _ in range(10):
        method.arch_step((x, y), (x, y), 0.01)
    assert method.expected_latency() < before
    with pytest.raises(ConfigError, match="needs the latency it aims at"):
        ProxylessNAS(net, {"latency_table": table_file}, 4, seed=0)
    with pytest.raises(ConfigError, match="needs a latency table of this machine"):
        ProxylessNAS(net, {"target_ms": 3.0}, 4, seed=0)
    with pytest.raises(ConfigError, match="latency_loss='x' is not accepted"):
        ProxylessNAS(net, {"latency_table": table_file, "target_ms": 3.0, "latency_loss": "x"},
                     4, seed=0)  # fmt: skip


def test_fbnet_loss_by_hand(net, table_file) -> None:
    method = FBNet(net, {"latency_table": table_file}, 4, seed=0)
    assert method.temperature() == 5.0
    method.begin_epoch(2)
    assert method.temperature() == pytest.approx(5.0 * 0.956**2)
    x, y = torch.randn(4, 3, 8, 8), torch.arange(4)
    torch.manual_seed(3)
    loss = method.arch_loss((x, y))
    torch.manual_seed(3)
    path = method.search_path()
    ce = F.cross_entropy(net(x, path), y)
    micro = 1000 * method.latency.expected(path.weights)
    assert loss.item() == pytest.approx((ce * 0.2 * torch.log(micro) ** 0.6).item(), rel=1e-5)
