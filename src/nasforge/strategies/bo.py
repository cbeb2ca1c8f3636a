"""Bayesian optimisation with a Gaussian process over architecture encodings.

The NAS-BO recipe (Kandasamy et al., "Neural Architecture Search with Bayesian Optimisation and
Optimal Transport" (NASBOT), NeurIPS 2018; White et al., "BANANAS", AAAI 2021): a
surrogate fitted to the architectures evaluated so far scores a pool of candidates, and the one
with the best acquisition value is proposed. NASBOT's optimal-transport distance is replaced by
the distance between fixed-length encodings (``space.encode``), so any space works; on one-hot
vectors the squared Euclidean distance is twice the Hamming distance, which makes the RBF kernel
an exponential kernel on the number of differing decisions.

* **Kernel hyperparameters**: by type-II maximum likelihood over a small grid of length scales
  and noise ratios, with the signal variance profiled out in closed form. A grid is
  deterministic, never fails to converge, and costs a few 100x100 Cholesky factorisations.
* **Acquisition**: expected improvement (Jones et al. 1998) by default, or UCB.
* **Candidates** (``ModelBasedStrategy.candidates``): every neighbour of the best few
  architectures, random mutations of the top ten, and uniform samples. Searching the
  acquisition by local moves around the incumbents is what BANANAS found best on NAS benchmarks.
* **Other surrogates**: ``predictor=NAME`` replaces the GP by any predictor of
  ``nasforge.estimators.predictors`` (ridge, rf, lgbm, gnn ...), and ``scorer=`` adds a
  zero-cost proxy's scores to its features (the GP itself when no predictor is named); the
  acquisition is computed from the predictor's (mean, std). Pending asks are then only kept
  out of the pool (no kriging believer: a predictor cannot be refitted on fantasies cheaply).
* **Pending asks**: "kriging believer" (Ginsbourger et al. 2010): each pending architecture is
  added to the data at its posterior mean, which leaves the mean unchanged but removes the
  variance there, so the next ask looks elsewhere.

``strategies/model_based.py`` holds the plumbing that BO, BANANAS and TPE share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import ndtr

from nasforge.core import Arch
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint
from nasforge.strategies.model_based import ModelBasedStrategy


class GaussianProcess:
    """GP regression on encodings; kernel hyperparameters by type-II maximum likelihood on a grid.

    The kernel is ``s2 * exp(-d2 / (2 l^2 m))`` plus noise ``s2 * r`` on the diagonal: ``d2`` is
    the squared distance between encodings and ``m`` their mean squared norm, so length scales
    do not depend on how many bits an encoding sets. Targets are standardised, and the signal
    variance ``s2`` has a closed-form maximum once ``l`` and ``r`` are fixed (it is profiled
    out), so only those two are searched.
    """

    def __init__(
        self,
        length_scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        noise_ratios: Sequence[float] = (1e-4, 1e-2, 1e-1),
    ):
        self.length_scales = tuple(float(v) for v in length_scales)
        self.noise_ratios = tuple(float(v) for v in noise_ratios)

    def fit(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        self.X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.mean, self.scale = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mean) / self.scale
        self.norm = float(np.mean(np.einsum("ij,ij->i", self.X, self.X))) or 1.0
        d2 = self._sqdist(self.X, self.X)
        n, eye, best = len(z), np.eye(len(z)), -math.inf
        for length in self.length_scales:
            K = np.exp(-d2 / (2 * length**2 * self.norm))
            for ratio in self.noise_ratios:
                try:
                    chol = cho_factor(K + (ratio + 1e-8) * eye, lower=True)
                except np.linalg.LinAlgError:
                    continue
                alpha = cho_solve(chol, z)
                s2 = max(float(z @ alpha) / n, 1e-12)
                loglik = -0.5 * n * math.log(s2) - float(np.log(np.diag(chol[0])).sum())
                if loglik > best:
                    best, self.length, self.ratio, self.s2 = loglik, length, ratio, s2
                    self._chol, self._alpha = chol, alpha
        if best == -math.inf:
            raise np.linalg.LinAlgError("no kernel setting gave a positive-definite matrix")
        return self

    def refit_same(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        """Refit on new data keeping the hyperparameters and target scaling (for fantasies)."""
        self.X = np.asarray(X, dtype=float)
        z = (np.asarray(y, dtype=float) - self.mean) / self.scale
        K = self._kernel(self.X, self.X) + (self.ratio + 1e-8) * np.eye(len(z))
        self._chol = cho_factor(K, lower=True)
        self._alpha = cho_solve(self._chol, z)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function, in target units."""
        Ks = self._kernel(np.asarray(X, dtype=float), self.X)
        mu = Ks @ self._alpha
        v = solve_triangular(self._chol[0], Ks.T, lower=True)
        var = np.maximum(1.0 - np.einsum("ij,ij->j", v, v), 1e-12) * self.s2
        return self.mean + self.scale * mu, self.scale * np.sqrt(var)

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return np.exp(-self._sqdist(A, B) / (2 * self.length**2 * self.norm))

    @staticmethod
    def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        sq = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :]
        return np.maximum(sq - 2 * A @ B.T, 0.0)


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    """EI of a maximisation (Jones, Schonlau & Welch 1998)."""
    z = (mu - best) / sigma
    return (mu - best) * ndtr(z) + sigma * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


ACQUISITIONS = ("ei", "ucb")


class BayesianOptimisation(ModelBasedStrategy):
    """GP-based BO over ``space.encode(arch, encoding)`` vectors (see the module docstring).

    ``acquisition``: ``"ei"`` (default) or ``"ucb"`` (mean + ``beta`` * std, Srinivas et al.
    2010). ``initial``: random architectures before the first model (10, as in BANANAS).
    ``predictor`` / ``scorer``: another surrogate and proxy features (see the module docstring).
    """

    name = "bo"
    default_predictor = "gp"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        *,
        encoding: str = "onehot",
        acquisition: str = "ei",
        beta: float = 2.0,
        initial: int = 10,
        local: int = 5,
        mutations: int = 50,
        random_candidates: int = 100,
        length_scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        noise_ratios: Sequence[float] = (1e-4, 1e-2, 1e-1),
        predictor: str | None = None,
        scorer: Any = None,
    ):
        if acquisition not in ACQUISITIONS:
            raise UnknownNameError("acquisition", acquisition, ACQUISITIONS)
        if not beta >= 0:
            raise ConfigError(f"beta must be >= 0, got {beta}")
        if not length_scales or not noise_ratios or min((*length_scales, *noise_ratios)) <= 0:
            raise ConfigError("length_scales and noise_ratios must be non-empty and > 0")
        super().__init__(
            space,
            seed,
            constraint,
            encoding=encoding,
            initial=initial,
            local=local,
            mutations=mutations,
            random_candidates=random_candidates,
            predictor=predictor,
            scorer=scorer,
        )
        self.acquisition, self.beta = acquisition, float(beta)
        self.gp = GaussianProcess(length_scales, noise_ratios)

    def rank(self, candidates: Sequence[Arch], X: np.ndarray) -> np.ndarray:
        y = np.asarray(self.values)
        if self.surrogate is not None:
            predicted = self.predict_pool(candidates)
            if predicted is None:  # too few results to fit: any order
                return self.rng.permutation(len(candidates))
            mu, sigma = predicted
            return self._acquire(mu, np.maximum(sigma, 1e-9), float(y.max()))
        train = self.encode_all(self.archs)
        self.gp.fit(train, y)
        if self.pending:  # kriging believer: pending archs at their posterior mean
            fantasies = self.encode_all(self.pending.values())
            believed, _ = self.gp.predict(fantasies)
            self.gp.refit_same(np.vstack([train, fantasies]), np.concatenate([y, believed]))
        mu, sigma = self.gp.predict(X)
        return self._acquire(mu, sigma, float(y.max()))

    def _acquire(self, mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
        if self.acquisition == "ucb":
            score = mu + self.beta * sigma
        else:
            score = expected_improvement(mu, sigma, best)
        return np.argsort(-score, kind="stable")
