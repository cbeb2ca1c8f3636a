"""`nasforge.ranking.rank_metrics` against scipy, against pairs counted by hand, and at its
edges (ties, constant scores, NaN)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from nasforge.errors import ConfigError
from nasforge.ranking import rank_metrics


def tau_b_by_hand(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b from its definition: every pair counted once."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            tied_x += 1
            tied_y += 1
        elif dx == 0:
            tied_x += 1
        elif dy == 0:
            tied_y += 1
        elif dx * dy > 0:
            concordant += 1
        else:
            discordant += 1
    pairs = len(x) * (len(x) - 1) // 2
    return (concordant - discordant) / math.sqrt((pairs - tied_x) * (pairs - tied_y))


def spearman_by_hand(x: list[float], y: list[float]) -> float:
    """Pearson's r of the average ranks (ties share the mean of their positions)."""

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        start = 0
        while start < len(order):
            end = start
            while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
                end += 1
            for position in range(start, end + 1):
                out[order[position]] = (start + end) / 2 + 1
            start = end + 1
        return out

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


@pytest.mark.parametrize("n", [7, 40, 150])
def test_point_estimates_agree_with_scipy_and_with_pairs_counted_by_hand(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.integers(0, 6, n).astype(float)  # many ties on both sides
    y = x + rng.integers(0, 4, n)
    m = rank_metrics(x, y, bootstrap=0)
    assert m.spearman == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert m.kendall == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert m.kendall == pytest.approx(tau_b_by_hand(list(x), list(y)), abs=1e-12)
    assert m.spearman == pytest.approx(spearman_by_hand(list(x), list(y)), abs=1e-12)
    assert m.n == n and m.top_k == math.ceil(0.1 * n)
    assert all(math.isnan(v) for v in m.spearman_ci + m.kendall_ci)  # no resamples


@pytest.mark.parametrize("n", [30, 160])  # both the pairwise (small n) and the scipy path
def test_bootstrap_intervals_are_percentiles_of_scipy_on_the_seeded_resamples(n: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    m = rank_metrics(x, y, bootstrap=200, seed=5)
    picks = np.random.default_rng(5).integers(0, n, (200, n))
    rhos = [stats.spearmanr(x[p], y[p]).statistic for p in picks]
    taus = [stats.kendalltau(x[p], y[p]).statistic for p in picks]
    assert m.spearman_ci == pytest.approx(tuple(np.percentile(rhos, [2.5, 97.5])), abs=1e-9)
    assert m.kendall_ci == pytest.approx(tuple(np.percentile(taus, [2.5, 97.5])), abs=1e-9)
    assert m.spearman_ci[0] < m.spearman < m.spearman_ci[1]
    assert rank_metrics(x, y, bootstrap=200, seed=5) == m  # seeded
    assert rank_metrics(x, y, bootstrap=200, seed=6).kendall_ci != m.kendall_ci


def test_top_fraction_keeps_ties_at_the_boundary() -> None:
    # n=10, top 20 %: k=2. By score the 2nd highest is 8, tied by position 2: top = {0, 1, 2}.
    # By truth: {0, 5}. Both: {0}. Precision 1/3, recall 1/2.
    scores = [9, 8, 8, 1, 2, 3, 4, 5, 6, 0]
    truth = [10, 1, 2, 3, 4, 9, 5, 6, 7, 0]
    m = rank_metrics(scores, truth, top=0.2, bootstrap=0)
    assert m.top_k == 2
    assert m.precision == pytest.approx(1 / 3)
    assert m.recall == pytest.approx(1 / 2)


def test_without_ties_precision_equals_recall_equals_the_overlap_of_the_sorted_tops() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.permutation(50).astype(float), rng.permutation(50).astype(float)
    k = 5
    best_x = set(sorted(range(50), key=lambda i: -x[i])[:k])
    best_y = set(sorted(range(50), key=lambda i: -y[i])[:k])
    m = rank_metrics(x, y, bootstrap=0)
    assert m.precision == m.recall == len(best_x & best_y) / k


def test_a_perfect_and_a_reversed_ranking() -> None:
    truth = np.linspace(50, 94, 30)
    perfect = rank_metrics(truth * 2 + 1, truth, bootstrap=100)
    assert (perfect.spearman, perfect.kendall, perfect.precision, perfect.recall) == (1, 1, 1, 1)
    assert perfect.kendall_ci == pytest.approx((1.0, 1.0))
    reversed_ = rank_metrics(-truth, truth, bootstrap=0)
    assert reversed_.spearman == pytest.approx(-1) and reversed_.kendall == pytest.approx(-1)
    assert reversed_.precision == 0 and reversed_.recall == 0


def test_constant_scores_have_no_rank_correlation_and_the_base_rate_as_precision() -> None:
    truth = np.arange(20.0)
    m = rank_metrics(np.full(20, 3.0), truth, bootstrap=50)
    assert math.isnan(m.spearman) and math.isnan(m.kendall)
    assert math.isnan(m.kendall_ci[0])
    # every architecture ties for the top: precision = 2 of 20, recall = all of the top 2
    assert m.precision == pytest.approx(0.1) and m.recall == 1.0
    data = m.to_json()
    assert data["spearman"] is None and data["kendall_ci"] == [None, None]
    json.dumps(data, allow_nan=False)


@pytest.mark.parametrize(
    ("scores", "truth", "words"),
    [
        ([1.0, math.nan, 3.0, 4.0], [1, 2, 3, 4], ["scores", "NaN", "position 1"]),
        ([1.0, 2.0, 3.0, 4.0], [1, 2, math.inf, 4], ["truth", "NaN or infinite"]),
        ([1.0, 2.0, 3.0], [1, 2, 3, 4], ["differ in length", "3 against 4"]),
        ([1.0, 2.0], [1, 2], ["at least 3"]),
    ],
)
def test_bad_input_is_a_one_line_error(scores: list, truth: list, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        rank_metrics(scores, truth)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="top must be a fraction"):
        rank_metrics([1, 2, 3], [1, 2, 3], top=0)
    with pytest.raises(ConfigError, match="bootstrap must be"):
        rank_metrics([1, 2, 3], [1, 2, 3], bootstrap=-1)
