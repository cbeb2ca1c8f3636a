"""Combinations of proxies by rank: AZ-NAS-style assembly.

Lee & Ham (2024), "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search"
(CVPR), score each architecture with several proxies (expressivity, progressivity,
trainability, complexity) and combine them by non-linear rank aggregation: sum over proxies of
log(rank / M), the rank of the architecture among the M scored (M = best), so one bad component
costs more than a good one gains.

A rank combination is **relative to the population it is computed over**: the same cell gets
another score among other cells, and a single cell has no score of its own. It is therefore
computed by ``score``/``score_all`` over the architectures given (or a `ProxyTable`), never by
``evaluate`` of one candidate.

Departures: the components are ours (`AZ_COMPONENTS`): expressivity and progressivity as in
``activation.py``; trainability is replaced by jacob_cov (AZ-NAS's trainability needs Jacobian
spectral norms between blocks, several more backward passes); complexity is the MAC count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

AZ_COMPONENTS = ("az_expressivity", "az_progressivity", "jacob_cov", "flops")


def rank_combination(scores: Mapping[str, np.ndarray], components: Sequence[str]) -> np.ndarray:
    """sum over ``components`` of log(rank / M), ranks ascending (the best gets M), ties
    averaged; a -inf score ranks lowest."""
    columns = [np.asarray(scores[name], dtype=float) for name in components]
    size = len(columns[0]) if columns else 0
    total = np.zeros(size)
    for column in columns:
        clean = np.where(np.isnan(column), -np.inf, column)
        total += np.log(rankdata(clean, method="average") / size)
    return total


def az_nas(scores: Mapping[str, np.ndarray]) -> np.ndarray:
    return rank_combination(scores, AZ_COMPONENTS)
