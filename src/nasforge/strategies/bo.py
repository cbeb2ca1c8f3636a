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
* **Pending asks**: "kriging believer" (Ginsbourger et al. 2010): each pending architecture is
  added to the data at its posterior mean, which leaves the mean unchanged but removes the
  variance there, so the next ask looks elsewhere.

``ModelBasedStrategy`` holds the plumbing that BANANAS and TPE share: the random initial design,
cached encodings, the pending set, the candidate pool and the pick of the first fresh, feasible
one.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import ndtr

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy


def check_int(name: str, value: int, low: int) -> int:
    """``value`` as an int, or a ConfigError naming the option and its lower bound."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return None
    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS limited to one thread while a model is fitted and queried.

    The matrices here are tiny (100 x 100), and a multi-threaded BLAS spends more time waking
    threads than computing: on a shared 2-core machine the triangular solve of a BO ask (100 x
    100, 270 right-hand sides) took 8 to 24 ms with two OpenBLAS threads and 0.2 ms with one.
    """
    controller = _blas_controller()
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


class ModelBasedStrategy(SeededStrategy):
    """Shared plumbing of surrogate-model strategies (BO, BANANAS, TPE).

    ``initial`` asks are uniform samples (the initial design); after that each ask scores the
    pool from ``candidates()`` with ``rank`` and proposes the best fresh, feasible one.
    Subclasses implement ``rank(candidates, X) -> order`` (``X``: the candidates' rows of
    ``encode_one``) and may replace ``candidates`` or ``encode_one``. Only ``result.objective``
    of told results is used; a failed trial is never proposed again and not modelled.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        *,
        encoding: str = "onehot",
        initial: int = 10,
        local: int = 5,
        mutations: int = 50,
        random_candidates: int = 100,
    ):
        super().__init__(space, seed, constraint)
        self.encoding = encoding
        self.initial = check_int("initial", initial, 1)
        self.local = check_int("local", local, 0)
        self.mutations = check_int("mutations", mutations, 0)
        self.random_candidates = check_int("random_candidates", random_candidates, 0)
        if self.local + self.mutations + self.random_candidates == 0:
            raise ConfigError("local, mutations and random_candidates cannot all be 0")
        self.encode_one(space.sample(np.random.default_rng(0)))  # an unknown encoding fails now
        self.archs: list[Arch] = []  # told, in order
        self.values: list[float] = []  # their objectives
        self.pending: dict[Arch, Arch] = {}  # canonical -> asked arch, not told yet
        self._told: set[Arch] = set()
        self._codes: dict[Arch, np.ndarray] = {}
        self._canonical: dict[Arch, Arch] = {}

    # the protocol -----------------------------------------------------------------------

    def ask(self) -> Candidate:
        asked = len(self.archs) + len(self.pending) + len(self.failures)
        if asked < self.initial or not self.archs:
            arch = self.sample_new()
        else:
            pool = self.candidates()
            with one_blas_thread():
                order = self.rank(pool, self.encode_all(pool))
            arch = self._first_fresh(pool[i] for i in order)
            # keep the encodings that the next ask will likely need again: memory stays bounded
            keep = self._told | set(pool)
            self._codes = {a: code for a, code in self._codes.items() if a in keep}
        self.pending[self._canon(arch)] = arch
        return Candidate(arch)

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.pending.pop(self._canon(candidate.arch), None)
        self.archs.append(candidate.arch)
        self.values.append(float(result.objective))
        self._told.add(candidate.arch)

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self.pending.pop(self._canon(candidate.arch), None)
        self._told.add(candidate.arch)

    # for subclasses -----------------------------------------------------------------------

    def rank(self, candidates: Sequence[Arch], X: np.ndarray) -> np.ndarray:
        """Indices of ``candidates`` (encoded as the rows of ``X``), most promising first."""
        raise NotImplementedError  # pragma: no cover - abstract

    def encode_all(self, archs: Iterable[Arch]) -> np.ndarray:
        """The encodings of ``archs`` as rows (cached: pools overlap from one ask to the next)."""
        rows = []
        for arch in archs:
            code = self._codes.get(arch)
            if code is None:
                code = self._codes[arch] = self.encode_one(arch)
            rows.append(code)
        return np.stack(rows)

    def encode_one(self, arch: Arch) -> np.ndarray:
        """The vector the model sees for ``arch`` (``space.encode(arch, self.encoding)``)."""
        return np.asarray(self.space.encode(arch, self.encoding), dtype=float)

    def top(self, k: int) -> list[Arch]:
        """The ``k`` best told architectures, best first (ties: the earlier told)."""
        order = np.argsort(-np.asarray(self.values), kind="stable")[:k]
        return [self.archs[i] for i in order]

    def candidates(self) -> list[Arch]:
        """The pool the acquisition is maximised over, without told archs or exact repeats.

        Every neighbour of the ``local`` best, ``mutations`` children of one or two random edits
        of the ten best, and ``random_candidates`` uniform samples. Isomorphic twins of seen
        architectures are skipped lazily when the ranked pool is walked (``_first_fresh``).
        """
        pool: dict[Arch, None] = {}
        for parent in self.top(self.local):
            pool.update(dict.fromkeys(self.space.neighbours(parent)))
        parents = self.top(10)
        for _ in range(self.mutations):
            child = self.space.mutate(parents[int(self.rng.integers(len(parents)))], self.rng)
            if self.rng.random() < 0.5:
                child = self.space.mutate(child, self.rng)
            pool[child] = None
        for _ in range(self.random_candidates):
            pool[self.space.sample(self.rng)] = None
        fresh = [a for a in pool if a not in self._told and a not in self.pending.values()]
        return fresh or [self.space.sample(self.rng)]

    # internals ----------------------------------------------------------------------------

    def _canon(self, arch: Arch) -> Arch:
        key = self._canonical.get(arch)
        if key is None:
            key = self._canonical[arch] = self.space.canonical(arch)
        return key

    def _first_fresh(self, ranked: Iterable[Arch]) -> Arch:
        """The first feasible architecture of ``ranked`` not proposed before (or a random one)."""
        for arch in ranked:
            if self._canon(arch) not in self.seen.keys and self.feasible(arch):
                return self.propose(lambda arch=arch: arch)
        return self.sample_new()


# --- the Gaussian process -------------------------------------------------------------------


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
    """

    name = "bo"

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
        )
        self.acquisition, self.beta = acquisition, float(beta)
        self.gp = GaussianProcess(length_scales, noise_ratios)

    def rank(self, candidates: Sequence[Arch], X: np.ndarray) -> np.ndarray:
        y = np.asarray(self.values)
        train = self.encode_all(self.archs)
        self.gp.fit(train, y)
        if self.pending:  # kriging believer: pending archs at their posterior mean
            fantasies = self.encode_all(self.pending.values())
            believed, _ = self.gp.predict(fantasies)
            self.gp.refit_same(np.vstack([train, fantasies]), np.concatenate([y, believed]))
        mu, sigma = self.gp.predict(X)
        if self.acquisition == "ucb":
            score = mu + self.beta * sigma
        else:
            score = expected_improvement(mu, sigma, float(y.max()))
        return np.argsort(-score, kind="stable")
