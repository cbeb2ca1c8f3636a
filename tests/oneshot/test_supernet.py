"""Supernets and mixed ops against a second computation: stand-alone networks of the same
space with the same weights, explicit sums of the op library's modules, the papers' rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasforge.nn.ops import make_op
from nasforge.oneshot.command import METHOD_NAMES
from nasforge.oneshot.methods import FairNas, Gdas, make_method
from nasforge.oneshot.mixed import MixedOp, Path
from nasforge.oneshot.registry import METHODS
from nasforge.oneshot.supernet import NB201Supernet, make_supernet, use_batch_statistics
from nasforge.spaces import darts as darts_space
from nasforge.spaces import nb201
from nasforge.spaces.darts import DartsSpace

torch.set_num_threads(1)


def test_method_names_without_torch_match_the_methods():
    assert tuple(METHODS) == METHOD_NAMES


def test_weighted_mixed_op_is_the_weighted_sum_of_the_op_library_modules():
    torch.manual_seed(0)
    mixed = MixedOp(nb201.OPS, 6, 6, 1)
    use_batch_statistics(mixed)
    weights = torch.softmax(torch.randn(1, len(nb201.OPS)), dim=1)
    x = torch.randn(4, 6, 8, 8)
    expected = sum(weights[0, k] * op(x) for k, op in enumerate(mixed.candidates))
    assert torch.allclose(mixed(x, Path(weights=weights), 0), expected, atol=1e-6)
    # the modules are the op library's own, not look-alikes
    for name, op in zip(nb201.OPS, mixed.candidates, strict=True):
        assert type(op) is type(make_op(name, 6, 6, 1))


def _copy_into_standalone(
    supernet: NB201Supernet, arch: nb201.NB201Arch, C: int
) -> torch.nn.Module:
    """A stand-alone NB201 network of ``arch`` carrying the supernet's weights for that path."""
    net = nb201.build(arch, C=C, N=1)
    state = {}
    for key, value in supernet.state_dict().items():
        parts = key.split(".")
        if parts[0] == "cells" and parts[2] == "edges":
            e, k = int(parts[3]), int(parts[5])
            if nb201.OPS[k] != arch.ops[e] or arch.ops[e] == "none":
                continue
            source, target = nb201.EDGES[e]
            key = ".".join(["cells", parts[1], "edges", f"e{source}_{target}", *parts[6:]])
        state[key] = value
    missing, unexpected = net.load_state_dict(state, strict=False)
    # left out: BN statistics, and the cells' BN scale and shift (1 and 0 at init: the
    # supernet's affine-free BN)
    assert not unexpected
    for key in missing:
        module = net.get_submodule(key.rpartition(".")[0])
        assert isinstance(module, torch.nn.BatchNorm2d), key
    return net


def test_a_single_path_computes_the_standalone_network_of_its_cell():
    torch.manual_seed(1)
    supernet = NB201Supernet(C=4, N=1, num_classes=10)
    rng = np.random.default_rng(0)
    x = torch.randn(6, 3, 8, 8)
    for _ in range(5):
        arch = nb201.NB201Space().sample(rng)
        standalone = _copy_into_standalone(supernet, arch, 4).train()  # batch statistics
        with torch.no_grad():
            ours = supernet(x, supernet.path_of(arch))
            theirs = standalone(x)
        assert torch.allclose(ours, theirs, atol=1e-5), nb201.to_string(arch)


def test_gdas_hard_sample_runs_one_op_with_value_one_and_gives_alpha_a_gradient():
    torch.manual_seed(2)
    supernet = NB201Supernet(C=4, N=1)
    method = make_method("gdas", supernet, {}, epochs=5, seed=0)
    assert isinstance(method, Gdas) and method.temperature() == 10.0
    path = method.search_path()
    x = torch.randn(4, 3, 8, 8)
    hard = supernet(x, path)
    with torch.no_grad():
        alone = supernet(x, Path(index=path.index))
    assert torch.allclose(hard, alone, atol=1e-6)
    hard.sum().backward()
    assert method.alpha.grad is not None and method.alpha.grad.abs().sum() > 0


def test_fairnas_trains_every_op_of_every_edge_once_per_step():
    supernet = NB201Supernet(C=4, N=1)
    method = make_method("fairnas", supernet, {}, epochs=1, seed=0)
    assert isinstance(method, FairNas)
    paths = method.train_paths(np.random.default_rng(3))
    assert len(paths) == len(nb201.OPS)
    for e in range(supernet.num_edges):
        assert sorted(p.index[e] for p in paths) == list(range(len(nb201.OPS)))


def test_partial_channels_keep_the_shape_and_only_a_quarter_goes_through_the_ops():
    torch.manual_seed(4)
    mixed = MixedOp(nb201.OPS, 8, 8, 1, partial=4)
    use_batch_statistics(mixed)
    assert mixed.candidates[3][1].in_channels == 2  # nor_conv_3x3 on 8 / 4 channels
    x = torch.randn(2, 8, 6, 6)
    weights = torch.zeros(1, len(nb201.OPS))
    weights[0, nb201.OPS.index("skip_connect")] = 1.0
    out = mixed(x, Path(weights=weights, edge=torch.ones(1)), 0)
    # skip on the first quarter plus the bypass is the input, channels shuffled in 4 groups
    expected = x.view(2, 4, 2, 6, 6).transpose(1, 2).reshape(2, 8, 6, 6)
    assert torch.equal(out, expected)


def test_darts_supernet_maps_genotypes_both_ways_and_derives_two_inputs_per_node():
    supernet = make_supernet("darts", channels=4, cells=3)
    rng = np.random.default_rng(5)
    space = DartsSpace()
    for _ in range(20):
        arch = space.sample(rng)
        index = supernet.indices_of(arch)
        assert sum(i >= 0 for i in index) == 16  # 8 edges in each cell
        assert space.canonical(supernet.arch_of(index)) == space.canonical(arch)
    weights = torch.softmax(torch.randn(supernet.num_edges, len(darts_space.OPS)), dim=1)
    weights[:, 0] = 10.0  # 'none' strongest everywhere: DARTS's rule still never picks it
    derived = supernet.derive(weights)
    for cell in (derived.normal, derived.reduce):
        assert all(op != "none" for op, _ in cell)
    x = torch.randn(2, 3, 8, 8)
    assert supernet(x, Path(weights=weights)).shape == (2, 10)
    assert supernet(x, supernet.path_of(derived)).shape == (2, 10)


def test_darts_second_order_matches_the_exact_hessian_vector_product():
    """The finite-difference second-order term against autograd's double backward (a small
    step in float64: DARTS's 0.01 crosses ReLU kinks, which the exact product ignores)."""
    torch.manual_seed(6)
    supernet = NB201Supernet(C=2, N=1).double()
    method = make_method("darts", supernet, {"order": 2, "arch_lr": 1.0}, epochs=1, seed=0)
    method.alpha.data = method.alpha.data.double()
    method.arch_optimiser = torch.optim.SGD([method.alpha], lr=1.0)
    method.fd_scale = 1e-6
    x, y = torch.randn(8, 3, 6, 6).double(), torch.randint(0, 10, (8,))
    xv, yv = torch.randn(8, 3, 6, 6).double(), torch.randint(0, 10, (8,))
    xi = 0.05
    weights = [p for p in supernet.parameters() if p.requires_grad]
    before = method.alpha.detach().clone()
    # exact: d/dα L_val(w - ξ ∇w L_train(w, α), α)
    loss = F.cross_entropy(supernet(x, method.search_path()), y)
    g = torch.autograd.grad(loss, weights, create_graph=True)
    virtual = [w - xi * gi for w, gi in zip(weights, g, strict=True)]
    originals = [w.detach().clone() for w in weights]
    from torch.func import functional_call

    names = [n for n, p in supernet.named_parameters() if p.requires_grad]
    out = functional_call(
        supernet, dict(zip(names, virtual, strict=True)), (xv, method.search_path())
    )
    exact = torch.autograd.grad(F.cross_entropy(out, yv), method.alpha)[0]
    method.arch_step((x, y), (xv, yv), xi)
    ours = before - method.alpha.detach()  # one SGD step of lr 1: the gradient itself
    for w, o in zip(weights, originals, strict=True):
        assert torch.equal(w.detach(), o)  # the weights are restored exactly
    assert torch.allclose(ours, exact, rtol=1e-3, atol=1e-7)


def test_unknown_method_and_option_name_what_is_accepted():
    supernet = NB201Supernet(C=2, N=1)
    with pytest.raises(Exception, match="accepted: beta-darts, darts, darts-, drnas"):
        make_method("dartz", supernet, {}, 1, 0)
    with pytest.raises(Exception, match=r"no option tau; accepted: .*tau_max"):
        make_method("gdas", supernet, {"tau": 1}, 1, 0)


def test_pdarts_prunes_ops_by_stage_caps_skips_and_runs_shallower_early():
    torch.manual_seed(7)
    supernet = NB201Supernet(C=4, N=2)
    method = make_method("p-darts", supernet, {}, epochs=3, seed=0)
    assert method.keep == (5, 4, 2)
    with torch.no_grad():
        method.alpha[:, nb201.OPS.index("skip_connect")] = 5.0  # skip strongest on every edge
    x = torch.randn(4, 3, 8, 8)
    path = method.search_path()
    assert path.depth == 1 and path.skip_dropout == 0.0
    with torch.no_grad():  # the second cell of each stage does not run at stage 1
        before = supernet(x, path)
        second = [c for c in supernet.cells if type(c).__name__ == "NB201SearchCell"][1::2]
        for cell in second:
            for p in cell.parameters():
                p.add_(1.0)
        assert torch.equal(supernet(x, path), before)
    for epoch in range(3):
        method.begin_epoch(epoch)
    kept = (method.mixing_weights() > 0).sum(dim=1)
    assert kept.tolist() == [2] * 6 and method.search_path().depth == 2
    arch = method.derive()
    assert sum(op == "skip_connect" for op in arch.ops) <= 2  # the cap, although skip leads
    assert all(op != "none" for op in arch.ops)


def test_an_arch_step_through_a_path_that_skips_alpha_is_a_zero_gradient():
    """GDAS may draw ``none`` on every edge into the output: α is then not in the graph."""
    torch.manual_seed(8)
    supernet = NB201Supernet(C=2, N=1)
    method = make_method("gdas", supernet, {}, epochs=1, seed=0)
    none = nb201.OPS.index("none")
    with torch.no_grad():
        method.alpha[:, none] = 1e4  # every sample is none
    copy = torch.nn.Parameter(method.alpha.detach().clone())
    batch = (torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))
    method.arch_step(batch, batch, 0.025)
    # the same Adam fed a zero gradient (α then moves by its weight decay alone)
    adam = torch.optim.Adam([copy], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    copy.grad = torch.zeros_like(copy)
    adam.step()
    assert torch.equal(method.alpha.detach(), copy.detach())


def test_a_darts_path_with_none_on_every_input_of_a_node_keeps_the_reduced_size():
    supernet = make_supernet("darts", channels=4, cells=3)
    none = darts_space.OPS.index("none")
    index = [none] * supernet.num_edges  # every edge on, every op none (a GDAS-like sample)
    with torch.no_grad():
        out = supernet(torch.randn(2, 3, 8, 8), Path(index=index))
    assert out.shape == (2, 10)


def test_beta_decay_rises_at_the_authors_rate_unless_an_end_value_is_given():
    """λ·mean_e logsumexp(α_e), λ = 0.5 per epoch by default (the authors' NB201 code), or
    rising to ``beta_max`` at the last epoch; checked against scipy's logsumexp."""
    from scipy.special import logsumexp

    supernet = NB201Supernet(C=4, N=1)
    for options, end in (({}, 0.5 * 9), ({"beta_max": "2"}, 2.0)):
        method = make_method("beta-darts", supernet, options, epochs=10, seed=0)
        with torch.no_grad():
            method.alpha.copy_(
                torch.randn(method.alpha.shape, generator=torch.Generator().manual_seed(1))
            )
        expected = float(np.mean(logsumexp(method.alpha.detach().numpy(), axis=1)))
        for epoch, share in ((0, 0.0), (9, 1.0), (3, 3 / 9)):
            method.begin_epoch(epoch)
            value = float(method.regulariser().detach())
            assert value == pytest.approx(end * share * expected, rel=1e-5, abs=1e-12)
