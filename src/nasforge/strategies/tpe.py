"""Tree-structured Parzen estimator: Bergstra, Bardenet, Bengio & Kégl, "Algorithms for
Hyper-Parameter Optimization", NeurIPS 2011.

TPE models p(x | y) instead of p(y | x). The evaluated architectures are split at the
``gamma`` quantile of the objective into a good group and the rest; a density is fitted to each,
l(x) for the good ones and g(x) for the others, and the candidate that maximises l(x) / g(x)
(which orders candidates as expected improvement does) among ``n_candidates`` draws from l is
proposed.

An architecture is seen as a vector of categorical **decisions** (for NB201: the op on each of
the 6 edges). Two density models:

* ``multivariate=True`` (default): a mixture with one component per observation, each a
  product over decisions of an Aitchison-Aitken kernel (keep the observed choice with
  probability ``1 - bandwidth``, else draw uniformly), plus a uniform prior component of weight
  ``prior_weight``: the multivariate KDE of BOHB (Falkner, Klein & Hutter, ICML 2018), which
  keeps the interactions between decisions that the original, independent TPE drops.
* ``multivariate=False``: the 2011 paper's independent per-decision categorical estimators,
  counts smoothed by ``prior_weight`` spread uniformly over the choices.

Pending asks join the bad group ("constant liar", as Optuna does for parallel TPE), so
concurrent asks do not all fall on the same mode of l(x).

Spaces: TPE needs the space as a sequence of categorical decisions, ``space.decisions()``
(``nasforge.spaces.decisions``); a space without it is refused with a ConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nasforge.core import Arch
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.decisions import decisions_of
from nasforge.strategies.base import Constraint
from nasforge.strategies.model_based import ModelBasedStrategy, check_int


class TPE(ModelBasedStrategy):
    """TPE over a space's categorical decisions (see the module docstring)."""

    name = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        *,
        gamma: float = 0.15,
        n_candidates: int = 24,
        initial: int = 10,
        multivariate: bool = True,
        bandwidth: float = 0.3,
        prior_weight: float = 1.0,
        constant_liar: bool = True,
    ):
        if not 0 < gamma < 1:
            raise ConfigError(f"gamma must be in (0, 1), got {gamma}")
        if not 0 < bandwidth <= 1:
            raise ConfigError(f"bandwidth must be in (0, 1], got {bandwidth}")
        if not prior_weight > 0:
            raise ConfigError(f"prior_weight must be > 0, got {prior_weight}")
        self.decisions = decisions_of(space, "strategy 'tpe'")
        self.counts = np.asarray(self.decisions.choices)
        super().__init__(space, seed, constraint, encoding="decisions", initial=initial)
        self.gamma, self.n_candidates = float(gamma), check_int("n_candidates", n_candidates, 1)
        self.multivariate, self.bandwidth = bool(multivariate), float(bandwidth)
        self.prior_weight, self.constant_liar = float(prior_weight), bool(constant_liar)

    def encode_one(self, arch: Arch) -> np.ndarray:
        return np.asarray(self.decisions.encode(arch), dtype=float)

    def candidates(self) -> list[Arch]:
        """``n_candidates`` draws from l(x), the density of the good group."""
        X = self.encode_all(self.archs).astype(int)
        order = np.argsort(-np.asarray(self.values), kind="stable")
        n_good = max(1, math.ceil(self.gamma * len(order)))
        self._good, bad = X[order[:n_good]], X[order[n_good:]]
        if self.constant_liar and self.pending:
            bad = np.vstack([bad, self.encode_all(self.pending.values()).astype(int)])
        self._bad = bad
        draws = self._sample(self._good, self.n_candidates)
        pool = dict.fromkeys(self.decisions.decode(row) for row in draws.tolist())
        return [a for a in pool if a not in self._told] or [self.space.sample(self.rng)]

    def rank(self, candidates: Sequence[Arch], X: np.ndarray) -> np.ndarray:
        X = X.astype(int)
        score = self._log_density(X, self._good) - self._log_density(X, self._bad)
        return np.argsort(-score, kind="stable")

    # densities ----------------------------------------------------------------------------

    def _sample(self, group: np.ndarray, n: int) -> np.ndarray:
        """``n`` draws from the density fitted to ``group`` (rows of decision indices)."""
        uniform = np.floor(self.rng.random((n, len(self.counts))) * self.counts).astype(int)
        if self.multivariate:
            weights = np.append(np.ones(len(group)), self.prior_weight)
            component = self.rng.choice(len(weights), size=n, p=weights / weights.sum())
            keep = self.rng.random(uniform.shape) >= self.bandwidth
            keep &= (component < len(group))[:, None]
            centres = group[np.minimum(component, len(group) - 1)]
            return np.where(keep, centres, uniform)
        draws = np.empty_like(uniform)
        for d, count in enumerate(self.counts):
            probs = self._categorical(group[:, d], count)
            draws[:, d] = self.rng.choice(count, size=n, p=probs)
        return draws

    def _log_density(self, X: np.ndarray, group: np.ndarray) -> np.ndarray:
        if self.multivariate and len(group) == 0:  # nothing but the uniform prior
            return np.full(len(X), -float(np.log(self.counts).sum()))
        if self.multivariate:
            same = np.log1p(-self.bandwidth + self.bandwidth / self.counts)
            other = np.log(self.bandwidth / self.counts)
            match = X[:, None, :] == group[None, :, :]  # (candidates, group, decisions)
            kernels = np.where(match, same, other).sum(axis=2)
            prior = math.log(self.prior_weight) - float(np.log(self.counts).sum())
            top = np.maximum(kernels.max(axis=1), prior)
            mass = np.exp(kernels - top[:, None]).sum(axis=1) + np.exp(prior - top)
            return top + np.log(mass) - math.log(len(group) + self.prior_weight)
        out = np.zeros(len(X))
        for d, count in enumerate(self.counts):
            out += np.log(self._categorical(group[:, d], count)[X[:, d]])
        return out

    def _categorical(self, values: np.ndarray, count: int) -> np.ndarray:
        counts = np.bincount(values, minlength=count) + self.prior_weight / count
        return counts / counts.sum()
