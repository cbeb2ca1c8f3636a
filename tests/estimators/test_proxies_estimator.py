"""ZeroCostProxy as an estimator and an arch scorer, ProxyTable, and the minibatch rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.data.datasets import from_arrays, load_dataset, split_train_val
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.estimators import ProxyTable, ZeroCostProxy
from nasforge.estimators.proxies import PROXIES, write_proxy_table
from nasforge.estimators.proxies.batch import draw_batch
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.random import RandomSearch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPACE = NB201Space()
TINY = {"C": 4, "N": 1}
CELLS = [
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|",
]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")  # real images (8x8, scikit-learn's), no files needed


def archs():
    return [SPACE.from_string(c) for c in CELLS]


def test_every_proxy_is_deterministic_for_a_seed_and_another_seed_draws_another_batch(digits):
    names = [n for n in PROXIES if not PROXIES[n].relative]
    data_driven = ["grad_norm", "snip", "naswot", "jacob_cov", "meco", "params"]
    first = ZeroCostProxy(SPACE, digits, names, seed=0, build_options=TINY, batch_size=6)
    again = ZeroCostProxy(SPACE, digits, names, seed=0, build_options=TINY, batch_size=6)
    other = ZeroCostProxy(SPACE, digits, data_driven, seed=1, build_options=TINY, batch_size=6)
    cells = archs()[:2]
    a, b, c = (e.score_all(cells) for e in (first, again, other))
    for name in names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not torch.equal(first.batch.x, other.batch.x)
    # isomorphic twins score alike, in any order, and the caller's torch RNG is left alone
    rng = np.random.default_rng(1)
    twin = next(x for x in (SPACE.sample(rng) for _ in range(1000)) if SPACE.canonical(x) != x)
    state = torch.get_rng_state()
    one = ZeroCostProxy(SPACE, digits, ("naswot",), build_options=TINY).score([twin])
    two = ZeroCostProxy(SPACE, digits, ("naswot",), build_options=TINY).score(
        [SPACE.canonical(twin)]
    )
    np.testing.assert_array_equal(one, two)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(not np.array_equal(a[n], c[n]) for n in data_driven[:-1])
    # params and flops do not depend on the data, and match the space's own count
    np.testing.assert_array_equal(a["params"], c["params"])
    expected = [SPACE.param_count(x, in_channels=1, num_classes=10, **TINY) for x in cells]
    np.testing.assert_array_equal(a["params"], expected)


def test_the_minibatch_comes_from_the_training_part_of_the_split():
    n = 40
    pixels = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1).repeat(4, 2).repeat(4, 3)
    labels = np.arange(n) % 3
    data = from_arrays("ramp", (pixels, labels), (pixels[:3], labels[:3]), 3, scale=1.0)
    batch = draw_batch(data, 10, seed=5)
    train_idx, val_idx = split_train_val(n, 0.1, 5)
    # each image is identified by its (normalised) pixel value
    values = data.train_x[:, 0, 0, 0]
    drawn = {int(torch.nonzero(values == v)[0]) for v in batch.x[:, 0, 0, 0]}
    assert len(drawn) == 10 and drawn <= set(train_idx.tolist())
    assert not drawn & set(val_idx.tolist())
    with pytest.raises(ConfigError, match="exceeds the 36 training images"):
        draw_batch(data, 37, seed=5)


def test_zero_cost_proxy_drives_a_random_search(digits):
    estimator = ZeroCostProxy(SPACE, digits, ("synflow", "naswot"), build_options=TINY)
    assert estimator.name == "proxy:synflow,naswot"
    setup = estimator.capabilities.setup
    assert setup["passes"]["activation"]["images"] == PROXIES["naswot"].batch_size
    assert (
        "training split" in setup["minibatch"] and "float64" in setup["passes"]["synflow"]["mode"]
    )
    history = Experiment(SPACE, RandomSearch(SPACE, seed=0), estimator, 5, progress=False).run()
    assert len(history.completed) == 5
    fresh = ZeroCostProxy(SPACE, digits, ("synflow", "naswot"), build_options=TINY)
    for trial in history.completed:
        arch = SPACE.from_string(trial.arch) if isinstance(trial.arch, str) else trial.arch
        scores = fresh.score_all([arch])
        assert trial.result.objective == scores["synflow"][0]
        assert trial.result.metrics["naswot"] == scores["naswot"][0]
        assert trial.result.metrics["params"] > 0 and trial.result.cost > 0
    best = max(history.completed, key=lambda t: t.result.objective)
    assert history.best.result.objective == best.result.objective


def test_az_nas_ranks_within_the_scored_set_and_is_refused_for_one_candidate(digits):
    estimator = ZeroCostProxy(SPACE, digits, ("az_nas", "jacob_cov"), build_options=TINY)
    scores = estimator.score_all(archs())
    parts = ZeroCostProxy(
        SPACE,
        digits,
        ("az_expressivity", "az_progressivity", "jacob_cov", "flops"),
        build_options=TINY,
    ).score_all(archs())
    from scipy.stats import rankdata

    expected = sum(np.log(rankdata(parts[p]) / 3) for p in parts)
    np.testing.assert_allclose(scores["az_nas"], expected)
    from nasforge.core import Candidate

    with pytest.raises(ConfigError, match="ranks a population"):
        estimator.evaluate(Candidate(archs()[0]))


def test_bad_names_options_and_not_logits_are_one_line_errors(digits):
    with pytest.raises(UnknownNameError, match="unknown zero-cost proxy 'nope'"):
        ZeroCostProxy(SPACE, digits, ("nope",))
    with pytest.raises(ConfigError, match="must not set num_classes"):
        ZeroCostProxy(SPACE, digits, build_options={"num_classes": 3})

    class FeatureSpace:  # a space whose network returns feature maps, not logits
        def build(self, arch, *, in_channels, num_classes):
            return nn.Sequential(nn.Conv2d(in_channels, num_classes, 3), nn.ReLU())

        def canonical(self, arch):
            return arch

        def to_string(self, arch):
            return str(arch)

    estimator = ZeroCostProxy(FeatureSpace(), digits, ("naswot",))
    with pytest.raises(ConfigError, match=r"logits of shape \(batch, classes\)") as err:
        estimator.score(["x"])
    assert "\n" not in str(err.value)


def test_proxy_table_round_trip_and_a_missing_arch(digits, tmp_path):
    estimator = ZeroCostProxy(SPACE, digits, ("naswot", "synflow"), build_options=TINY)
    scores = estimator.score_all(archs())
    path = write_proxy_table(tmp_path / "t.csv", SPACE, archs(), scores, estimator.describe())
    table = ProxyTable(path, "synflow", space=SPACE)
    assert table.name == "proxy-table:synflow" and table.setup["proxies"] == ["naswot", "synflow"]
    back = table.score_all(archs())
    for name in ("naswot", "synflow"):
        np.testing.assert_array_equal(back[name], scores[name])
    np.testing.assert_array_equal(table.score(archs()[::-1]), scores["synflow"][::-1])
    # the space named in the file serves without space=, and a twin finds its canonical row
    rng = np.random.default_rng(0)
    twin = next(a for a in (SPACE.sample(rng) for _ in range(1000)) if SPACE.canonical(a) != a)
    canonical = SPACE.canonical(twin)
    path = write_proxy_table(
        tmp_path / "t2.csv", SPACE, [canonical], estimator.score_all([canonical]), {}
    )
    by_name = ProxyTable(path, "naswot")
    np.testing.assert_array_equal(by_name.score([twin]), estimator.score([canonical]))
    missing = SPACE.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    with pytest.raises(ConfigError, match="no scores for architecture") as err:
        table.score([missing])
    assert "\n" not in str(err.value) and "t.csv" in str(err.value)
    with pytest.raises(ConfigError, match="no proxy column 'zen'"):
        ProxyTable(path, "zen", space=SPACE)
    with pytest.raises(ConfigError, match="no such proxy table"):
        ProxyTable(tmp_path / "absent.csv", "naswot")


def test_a_cell_without_an_input_output_path_scores_without_error(digits):
    """A cell whose edges into the output are all ``none`` gives logits that do not depend on
    the image (its Jacobian is zero): the input-sensitivity proxies must rank it last (-inf),
    the others must still answer, instead of the whole cell failing."""
    space = NB201Space()
    cut = space.from_string("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    names = [name for name, spec in PROXIES.items() if not spec.relative]
    proxy = ZeroCostProxy(space, digits, names, build_options={"C": 4, "N": 1})
    scores = proxy.score_all([cut])
    assert scores["jacob_cov"][0] == -np.inf and scores["naswot"][0] == -np.inf
    # with the image cut off, no weight inside the cell sees a gradient through it
    assert scores["grad_norm"][0] == pytest.approx(0.0) and scores["snip"][0] == pytest.approx(0.0)
    assert all(not np.isnan(values[0]) for values in scores.values())
