"""How well one list of scores ranks architectures against their ground truth.

`rank_metrics` is the yardstick `nasforge rank` and the benchmark scripts share: Spearman's rho
and Kendall's tau (tau-b, which corrects for ties, as `scipy.stats.kendalltau` computes it), and
the precision and recall of the top fraction (10 % by default), each with a seeded 95 %
percentile bootstrap interval over the architectures (Efron & Tibshirani 1993, "An Introduction
to the Bootstrap": resample the n architectures with replacement, recompute, take the 2.5th and
97.5th percentiles).

Top-fraction rule, with ties: ``k = ceil(top * n)`` (at least 1); the top set by score holds
every architecture whose score is at least the k-th highest score, and the same for the truth.
So ties at the boundary are all kept, and the two sets may be larger than k: precision is
``|both| / |top by score|`` and recall ``|both| / |top by truth|``. Without ties both sets have
k members and precision equals recall; a scorer that gives many architectures the same score
(``params`` on NB201, a constant proxy) pays for it in precision.

Undefined values are NaN (``None`` in JSON), never an error: the rank correlations of constant
scores (or a constant truth), and bootstrap intervals when no resample had two distinct values.
Scores or truths that are NaN or infinite are refused (`ConfigError`): dropping them silently
would change the sample being judged; `nasforge.rank` drops failed architectures itself and
reports how many.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from nasforge.errors import ConfigError

__all__ = ["RankMetrics", "rank_metrics", "top_set"]

#: two-sided 95 % percentile interval
_LOW, _HIGH = 2.5, 97.5


@dataclass(frozen=True)
class RankMetrics:
    """The rank agreement of scores with truth on ``n`` architectures (see the module doc).

    Each ``*_ci`` is the (low, high) 95 % bootstrap interval of that statistic."""

    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    precision: float
    precision_ci: tuple[float, float]
    recall: float
    recall_ci: tuple[float, float]
    #: the fraction judged as "top", and k = ceil(top * n)
    top: float
    top_k: int
    bootstrap: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values; NaN becomes None (JSON has no NaN)."""
        return {key: _json_value(value) for key, value in asdict(self).items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _checked(values: Any, label: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ConfigError(f"{label} must be one number per architecture, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        where = ", ".join(str(i) for i in bad[:5]) + (" ..." if bad.size > 5 else "")
        raise ConfigError(
            f"{label} has {bad.size} NaN or infinite value(s) (at position {where}); "
            "rank_metrics needs a finite number per architecture: drop those architectures"
        )
    return array


def top_set(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the top ``k`` values, every value tied with the k-th highest included."""
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    return values >= threshold


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Spearman rho, Kendall tau-b); NaN where either side is constant (undefined)."""
    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan, math.nan
    return (
        float(stats.spearmanr(x, y).statistic),
        float(stats.kendalltau(x, y).statistic),
    )


def _precision_recall(x: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    by_score, by_truth = top_set(x, k), top_set(y, k)
    both = int(np.sum(by_score & by_truth))
    return both / int(by_score.sum()), both / int(by_truth.sum())


def _row_spearman(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair at once (Pearson's r of the average ranks, as scipy
    defines it); NaN for a row where either side is constant."""
    rx, ry = stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / denominator
    return np.where(denominator > 0, rho, np.nan)


#: up to this many architectures, tau-b of all resamples is computed from pair signs at once
_PAIRWISE_MAX = 128


def _row_kendall(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair: ``(concordant - discordant) / sqrt(pairs untied in x *
    pairs untied in y)``, scipy's definition; NaN where either side is constant. Small rows
    from the signs of all pairs (chunks of rows, bounded memory), large ones by scipy."""
    rows, n = xs.shape
    out = np.full(rows, np.nan)
    if n > _PAIRWISE_MAX:
        for i in range(rows):
            if np.ptp(xs[i]) > 0 and np.ptp(ys[i]) > 0:
                out[i] = stats.kendalltau(xs[i], ys[i]).statistic
        return out
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    chunk = max(1, 4_000_000 // (n * n))
    for start in range(0, rows, chunk):
        bx, by = xs[start : start + chunk], ys[start : start + chunk]
        sx = np.sign(bx[:, :, None] - bx[:, None, :])[:, upper]
        sy = np.sign(by[:, :, None] - by[:, None, :])[:, upper]
        denominator = np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = (sx * sy).sum(axis=1) / denominator
        out[start : start + chunk] = np.where(denominator > 0, tau, np.nan)
    return out


def _interval(values: list[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [_LOW, _HIGH])
    return float(low), float(high)


def rank_metrics(
    scores: Any,
    truth: Any,
    *,
    top: float = 0.1,
    bootstrap: int = 1000,
    seed: int = 0,
) -> RankMetrics:
    """Rank agreement of ``scores`` (higher = better) with ``truth`` (higher = better), one
    value each per architecture, in the same order. ``bootstrap`` resamples (0: no intervals,
    NaN) drawn with ``numpy.random.default_rng(seed)``, so the intervals are reproducible."""
    x, y = _checked(scores, "scores"), _checked(truth, "truth")
    if len(x) != len(y):
        raise ConfigError(
            f"scores and truth differ in length ({len(x)} against {len(y)}); give one of each "
            "per architecture"
        )
    n = len(x)
    if n < 3:
        raise ConfigError(f"a rank correlation needs at least 3 architectures, got {n}")
    if not 0 < top <= 1:
        raise ConfigError(f"top must be a fraction in (0, 1], got {top!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise ConfigError(f"bootstrap must be a whole number >= 0, got {bootstrap!r}")
    k = max(1, math.ceil(top * n - 1e-9))
    rho, tau = _correlations(x, y)
    precision, recall = _precision_recall(x, y, k)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, (bootstrap, n))
    boot_rho = _row_spearman(x[picks], y[picks]) if bootstrap else np.empty(0)
    boot_tau = _row_kendall(x[picks], y[picks]) if bootstrap else np.empty(0)
    boot: dict[str, list[float]] = {"p": [], "r": []}
    for pick in picks:
        b_p, b_r = _precision_recall(x[pick], y[pick], k)
        boot["p"].append(b_p)
        boot["r"].append(b_r)
    return RankMetrics(
        n=n,
        spearman=rho,
        spearman_ci=_interval(list(boot_rho)),
        kendall=tau,
        kendall_ci=_interval(list(boot_tau)),
        precision=precision,
        precision_ci=_interval(boot["p"]),
        recall=recall,
        recall_ci=_interval(boot["r"]),
        top=float(top),
        top_k=k,
        bootstrap=bootstrap,
        seed=seed,
    )
