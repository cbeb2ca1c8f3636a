"""Performance predictors on the real NAS-Bench-201 table: every model ranks held-out cells, its
uncertainty is usable, it is deterministic for a seed, proxy scores become features, and bad
input is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from conftest import require_data
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.estimators.predictors import PREDICTORS, make_predictor
from nasforge.estimators.predictors.gnn import nb101_graph as nb101_graph_of
from nasforge.estimators.predictors.gnn import nb201_graph
from nasforge.spaces.nb201 import NB201Arch, NB201Space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPACE = NB201Space()
NAMES = ("ridge", "rf", "lgbm", "gp", "bananas", "gnn")


@pytest.fixture(scope="module")
def cells():
    """300 distinct canonical cells with their 12-epoch validation accuracy (the search's
    objective): the first 100 train, the other 200 are held out."""
    folder = require_data("nb201/nb201_200ep_test.csv").parent
    bench = NB201Benchmark(data_dir=folder.parent)
    rng = np.random.default_rng(13)
    chosen: dict[str, NB201Arch] = {}
    while len(chosen) < 300:
        arch = SPACE.canonical(SPACE.sample(rng))
        chosen.setdefault(SPACE.canonical_key(arch), arch)
    archs = list(chosen.values())
    y = np.array([bench.lookup(a).val_acc_12ep for a in archs])
    return archs, y


@pytest.fixture(scope="module")
def fitted(cells):
    archs, y = cells
    # the graph network at half its default epochs: the file stays fast on CI's 2 cores
    options = {"gnn": {"epochs": 150, "lr": 0.01}}
    return {
        name: make_predictor(name, SPACE, seed=0, **options.get(name, {})).fit(archs[:100], y[:100])
        for name in NAMES
    }


def test_registry_has_every_predictor_the_issue_names():
    assert set(NAMES) <= set(PREDICTORS)


@pytest.mark.parametrize("name", NAMES)
def test_ranks_held_out_cells_and_std_is_finite(name, fitted, cells):
    archs, y = cells
    mean, std = fitted[name].predict(archs[100:])
    assert mean.shape == std.shape == (200,)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std >= 0)
    # the table's own accuracies: 100 cells are enough for every model to rank clearly
    tau = kendalltau(mean, y[100:])[0]
    assert tau > 0.3, f"{name}: Kendall tau {tau:.3f}"
    # predictions are in the target's units, inside the range the table spans
    assert y.min() - 10 < np.median(mean) < y.max() + 10
    assert std.max() > 0  # an uncertainty, not a constant zero


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_predictions_other_seed_differs(name, cells):
    archs, y = cells
    options = {"epochs": 40} if name == "gnn" else {}

    def run(seed):
        model = make_predictor(name, SPACE, seed=seed, **options).fit(archs[:40], y[:40])
        return model.predict(archs[250:])

    first = run(1)
    np.testing.assert_array_equal(first[0], run(1)[0])
    np.testing.assert_array_equal(first[1], run(1)[1])
    if name not in ("ridge", "gp"):  # those two have no randomness
        assert not np.array_equal(first[0], run(2)[0])


class ParamsScorer:
    """An arch scorer: the benchmark network's parameter count (a baseline proxy)."""

    name = "params"

    def score(self, archs):
        return np.array([SPACE.param_count(a) for a in archs], dtype=float)


class TwoScores(ParamsScorer):
    def score_all(self, archs):
        params = self.score(archs)
        return {"params": params, "log_params": np.log(params)}


@pytest.mark.parametrize("scorer", [ParamsScorer(), TwoScores()])
def test_proxy_scores_become_standardised_feature_columns(scorer, cells):
    archs, y = cells
    plain = make_predictor("ridge", SPACE)
    with_proxy = make_predictor("ridge", SPACE, scorer=scorer)
    X_plain = plain.features.fit_transform(archs[:100])
    X = with_proxy.features.fit_transform(archs[:100])
    extra = X.shape[1] - X_plain.shape[1]
    names = with_proxy.features.names[-extra:]
    assert extra == (2 if isinstance(scorer, TwoScores) else 1)
    assert names[0] == "proxy:params"
    np.testing.assert_array_equal(X[:, : X_plain.shape[1]], X_plain)
    # the column is the parameter count standardised on the training cells
    params = np.array([SPACE.param_count(a) for a in archs[:100]], dtype=float)
    np.testing.assert_allclose(X[:, X_plain.shape[1]], (params - params.mean()) / params.std())
    # and it changes what the model predicts
    plain.fit(archs[:100], y[:100])
    with_proxy.fit(archs[:100], y[:100])
    assert not np.allclose(plain.predict(archs[100:])[0], with_proxy.predict(archs[100:])[0])


def test_gnn_takes_proxy_features_too(cells):
    archs, y = cells
    model = make_predictor("gnn", SPACE, scorer=ParamsScorer(), epochs=20).fit(archs[:30], y[:30])
    assert model.features.names == ["proxy:params"]
    assert np.all(np.isfinite(model.predict(archs[250:])[0]))


def test_nb201_graph_follows_the_cell():
    # the ResNet-like cell: conv3 0->1, none 0->2, conv3 1->2, skip 0->3, none 1->3, skip 2->3
    arch = NB201Arch(
        ("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "skip_connect")
    )
    X, A = nb201_graph(arch)
    assert X.shape == (8, 7) and np.all(X.sum(axis=1) == 1)
    edges = {(int(i), int(j)) for i, j in zip(*np.nonzero(A), strict=True)}
    # input -> e0 (0->1) and e3 (0->3); e0 -> e2 (1->2); e2 -> e5 (2->3); e3, e5 -> output
    assert edges == {(0, 1), (0, 4), (1, 3), (3, 6), (4, 7), (6, 7)}


def test_errors_are_one_line_config_errors(cells):
    archs, y = cells
    with pytest.raises(ConfigError, match="call fit"):
        make_predictor("rf", SPACE).predict(archs[:3])
    with pytest.raises(ConfigError, match="at least 2"):
        make_predictor("gp", SPACE).fit(archs[:1], y[:1])
    with pytest.raises(ConfigError, match="2 architectures but 3 targets"):
        make_predictor("gp", SPACE).fit(archs[:2], y[:3])
    with pytest.raises(UnknownNameError, match=r"accepted: .*gnn.*lgbm"):
        make_predictor("xgboost", SPACE)
    with pytest.raises(ConfigError, match="no option depth; accepted: min_samples_leaf, trees"):
        make_predictor("rf", SPACE, depth=3)
    with pytest.raises(UnknownNameError, match="encoding"):
        make_predictor("ridge", SPACE, encoding="adjacency")
    with pytest.raises(ConfigError, match="is not an arch scorer"):
        make_predictor("ridge", SPACE, scorer=object())


def test_gnn_refuses_a_space_without_a_cell_graph():
    from nasforge.spaces.chain import ChainSpace

    with pytest.raises(ConfigError, match=r"needs a cell graph.*nb201"):
        make_predictor("gnn", ChainSpace())


def test_path_encoding_is_accepted_and_the_default_of_bananas(cells):
    archs, y = cells
    assert make_predictor("bananas", SPACE).encoding == "path"
    model = make_predictor("rf", SPACE, encoding="path").fit(archs[:100], y[:100])
    assert model.features.encoding_width == 180
    assert kendalltau(model.predict(archs[100:])[0], y[100:])[0] > 0.3


def test_gnn_reads_nb101_cells_as_their_own_graph():
    from nasforge.spaces.nb101 import OPS as NB101_OPS
    from nasforge.spaces.nb101 import NB101Space, prune

    space = NB101Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(160)]
    X, A = nb101_graph_of(archs[0])
    cell = prune(archs[0])
    n = len(cell.ops)
    np.testing.assert_array_equal(A[:n, :n], np.asarray(cell.matrix))
    assert X[:n].sum() == n and X[n:].sum() == 0 and A[n:].sum() == 0

    def convs(arch):  # a fact of the cell: its 3x3 convolutions after pruning
        return float(sum(op == NB101_OPS[0] for op in prune(arch).ops))

    y = np.array([convs(a) for a in archs])
    model = make_predictor("gnn", space, epochs=150, lr=0.01).fit(archs[:100], y[:100])
    assert kendalltau(model.predict(archs[100:])[0], y[100:])[0] > 0.5
