"""The mobile supernet against second computations: the stand-alone mobile network with the same
weights, MobileNetV2's published size, explicit chains of layers; and the methods on it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from tests.cli_run import nasforge

from nasforge.errors import ConfigError, InvalidArchError
from nasforge.oneshot.methods import make_method
from nasforge.oneshot.mixed import Path
from nasforge.oneshot.mobile_supernet import OPS, MobileSupernet
from nasforge.oneshot.run import oneshot_config
from nasforge.spaces import mobile
from nasforge.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _copy_into_standalone(supernet: MobileSupernet, arch: mobile.MobileArch) -> torch.nn.Module:
    """The stand-alone network of ``arch`` with the supernet's weights of that path, copied
    parameter by parameter (the stand-alone BNs keep running statistics the supernet lacks)."""
    net = mobile.build(arch, num_classes=10, input_size=16, dropout=0.0)
    pairs = [(net.stem, supernet.stem), (net.head, supernet.head)]
    pairs.append((net.classifier, supernet.classifier))
    for s, k in enumerate(supernet.indices_of(arch)):
        stage = supernet.stages[s]
        chain, depth = stage.columns[k]
        assert len(net.stages[s]) == depth
        pairs += list(zip(net.stages[s], stage.chains[chain][:depth], strict=True))
    for theirs, ours in pairs:
        assert type(theirs) is type(ours)
        for p, q in zip(theirs.parameters(), ours.parameters(), strict=True):
            p.data.copy_(q.data)
    return net


def test_a_single_path_computes_the_standalone_mobile_network():
    torch.manual_seed(0)
    supernet = MobileSupernet(width=0.5, num_classes=10, input_size=16, dropout=0.0)
    rng = np.random.default_rng(0)
    x = torch.randn(4, 3, 16, 16)
    for _ in range(4):
        arch = supernet.space.sample(rng)
        standalone = _copy_into_standalone(supernet, arch).train()  # batch statistics
        with torch.no_grad():
            ours = supernet(x, supernet.path_of(arch))
            theirs = standalone(x)
        assert torch.allclose(ours, theirs, atol=1e-5), mobile.to_string(arch)


def test_the_mobilenetv2_path_has_mobilenetv2s_published_parameter_count():
    """torchvision's mobilenet_v2 (1000 classes) has 3,504,872 parameters; the supernet's path
    of MobileNetV2 1.0 uses exactly that many of its weights."""
    supernet = MobileSupernet(width=1.0, num_classes=1000)
    index = supernet.indices_of(mobile.MOBILENETV2_BASE)
    used = [supernet.stem, supernet.head, supernet.classifier]
    for stage, k in zip(supernet.stages, index, strict=True):
        chain, depth = stage.columns[k]
        used += list(stage.chains[chain][:depth])
    assert sum(p.numel() for m in used for p in m.parameters()) == 3_504_872


def test_a_weighted_stage_is_the_weighted_sum_of_its_chains_at_each_depth():
    torch.manual_seed(1)
    supernet = MobileSupernet(width=0.5, input_size=16)
    weights = torch.softmax(torch.randn(supernet.num_edges, len(OPS)), dim=1)
    stage, e = supernet.stages[2], 2  # three layers, grows to four
    x = torch.randn(3, supernet.stages[1].chains[0][-1].project[0].out_channels, 16, 16)
    expected = 0
    for k, name in enumerate(OPS):
        block, kernel, delta = name.split("_")
        chain = stage.chains[stage.keys.index((block, int(kernel[1:])))]
        out = x
        for layer in chain[: max(1, 3 + int(delta[1:]))]:
            out = layer(out)
        expected = expected + weights[e, k] * out
    assert torch.allclose(stage(x, Path(weights=weights), e), expected, atol=1e-5)


def test_paths_map_to_archs_both_ways_and_derive_takes_each_stages_argmax():
    supernet = MobileSupernet(width=0.75)
    rng = np.random.default_rng(2)
    for _ in range(20):
        index = tuple(int(v) for v in rng.integers(0, len(OPS), supernet.num_edges))
        arch = supernet.arch_of(index)
        assert arch.width == 0.75 and supernet.space.check(arch) is arch
        assert supernet.arch_of(supernet.indices_of(arch)) == arch
    weights = torch.zeros(supernet.num_edges, len(OPS))
    weights[:, OPS.index("mbconv3_k5_n-1")] = 1.0
    derived = supernet.derive(weights)
    assert all(s.block == "mbconv3" and s.kernel == 5 and s.delta == -1 for s in derived.stages)
    # an architecture the supernet does not hold (another width, an SE, a skip off on a stage
    # of several layers) is refused; a skip off on a one-layer stage changes nothing
    stages = list(derived.stages)
    stages[0] = mobile.MobileStage("mbconv3", 5, 0.0, False, -1)  # stage 1 has one layer
    assert supernet.indices_of(mobile.MobileArch(tuple(stages), 0.75))
    noskip, se = list(derived.stages), list(derived.stages)
    noskip[2] = mobile.MobileStage("mbconv3", 5, 0.0, False, -1)  # stage 3: two layers
    se[4] = mobile.MobileStage("mbconv3", 5, 0.25, True, -1)
    for outside in (
        mobile.MobileArch(derived.stages, 1.0),
        mobile.MobileArch(tuple(noskip), 0.75),
        mobile.MobileArch(tuple(se), 0.75),
    ):
        with pytest.raises(InvalidArchError, match=r"this supernet holds width 0\.75"):
            supernet.indices_of(outside)


@pytest.mark.parametrize("method", ["darts", "gdas", "snas", "drnas", "beta-darts"])
def test_gradient_methods_step_alpha_on_the_mobile_supernet(method):
    torch.manual_seed(3)
    supernet = MobileSupernet(width=0.5, input_size=8, num_classes=4)
    m = make_method(method, supernet, {}, epochs=2, seed=0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 4, (8,))
    before = m.alpha.detach().clone()
    m.arch_step((x, y), (x, y), lr=0.025)
    assert not torch.equal(before, m.alpha.detach())
    assert supernet.space.check(m.derive()).width == 0.5


def test_fairnas_and_enas_sample_mobile_paths():
    supernet = MobileSupernet(width=0.5, input_size=8)
    paths = make_method("fairnas", supernet, {}, epochs=1, seed=0).train_paths(
        np.random.default_rng(0)
    )
    assert len(paths) == len(OPS)
    for e in range(supernet.num_edges):
        assert sorted(p.index[e] for p in paths) == list(range(len(OPS)))
    enas = make_method("enas", supernet, {}, epochs=1, seed=0)
    for arch in enas.sample_archs(5):
        assert supernet.space.check(arch).width == 0.5


@pytest.mark.parametrize(
    ("method", "knobs", "message"),
    [
        ("pc-darts", {}, "pc-darts needs partial paths, which the 'mobile' supernet"),
        ("p-darts", {}, "p-darts needs depth, param_free, skip_dropout paths"),
        ("darts-", {}, "darts- needs aux_skip paths"),
        ("gdas", {"channels": 8}, "the mobile supernet takes no --channels or --cells"),
        ("gdas", {"width": 0.6}, "--width must be one of the mobile space's 0.5, 0.75"),
    ],
)
def test_what_the_mobile_supernet_cannot_do_is_refused_before_anything_is_built(
    method, knobs, message
):
    with pytest.raises(ConfigError, match=re.escape(message)):
        oneshot_config(
            method, "mobile", "digits", 0, channels=knobs.get("channels"), cells=None,
            resolution=None, subset=1.0, options={}, recipe={"width": knobs.get("width")},
        )  # fmt: skip


def test_width_on_a_cell_space_is_refused_in_one_line(tmp_path):
    store = tmp_path / "runs.db"
    done = nasforge("oneshot", "--method", "gdas", "--space", "nb201", "--width", "0.5",
                    "--dataset", "digits", "--store", str(store))  # fmt: skip
    assert done.returncode == 2 and "--width is the mobile supernet's" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not store.exists()


def test_cli_mobile_run_derives_a_network_that_train_final_retrains(tmp_path):
    store = str(tmp_path / "runs.db")
    done = nasforge("oneshot", "--method", "gdas", "--space", "mobile", "--width", "0.5",
                    "--dataset", "digits", "--epochs", "2", "--subset", "0.2",
                    "--batch-size", "32", "--eval-images", "100", "--store", store,
                    "--name", "m", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    arch = mobile.from_string(out["derived"])
    assert arch.width == 0.5 and all(s.se == 0.0 for s in arch.stages)
    with Store(store) as s:
        record = s.oneshot(s.get_run("m"))
    assert record["supernet"]["class"] == "MobileSupernet" and record["supernet"]["edges"] == 7
    assert record["recipe"]["width"] == 0.5 and len(record["history"][0]["alpha"][0]) == 45
    final = nasforge("train-final", "m", "--store", store, "--epochs", "1", "--subset", "0.2",
                     "--seeds", "1", "--json")  # fmt: skip
    assert final.returncode == 0, final.stderr
    retrained = json.loads(final.stdout)["architectures"][0]
    assert retrained["arch"] == out["derived"]
    # the retrained network is the stand-alone mobile network of that string (8x8 digits)
    assert retrained["params"] == mobile.param_count(arch, in_channels=1, input_size=8)


def test_early_stopping_on_parameter_free_ops_is_refused_where_there_are_none():
    with pytest.raises(ConfigError, match="counts parameter-free ops, and the 'mobile' space"):
        oneshot_config(
            "darts", "mobile", "digits", 0, channels=None, cells=None, resolution=None,
            subset=1.0, options={"stop_param_free": "3"}, recipe={},
        )  # fmt: skip
    with pytest.raises(ConfigError, match="stop_param_free='x' is not a number"):
        oneshot_config(
            "darts", "mobile", "digits", 0, channels=None, cells=None, resolution=None,
            subset=1.0, options={"stop_param_free": "x"}, recipe={},
        )  # fmt: skip


def test_a_mobile_run_records_the_width_it_runs_at_and_a_cell_run_none():
    def recipe(space: str, width: float | None) -> object:
        return oneshot_config(
            "gdas", space, "digits", 0, channels=None, cells=None, resolution=None,
            subset=1.0, options={}, recipe={"width": width},
        )[1]  # fmt: skip

    assert recipe("mobile", None).width == MobileSupernet.default_width == 1.0
    assert recipe("mobile", 0.5).width == 0.5
    assert "width" not in recipe("nb201", None).to_json()  # as runs stored before it existed
