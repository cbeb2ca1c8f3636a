"""ParEGO, Knowles, "ParEGO: A Hybrid Algorithm With On-Line Landscape Approximation for
Expensive Multiobjective Optimization Problems", IEEE TEVC 2006.

Model-based multi-objective search: at each ask a weight vector λ is drawn uniformly from the
simplex lattice {λ : λ_j = l/s, Σ λ_j = 1} (``divisions`` s: 10 for two objectives, 4 for
more, Knowles's 11 and 15 vectors), every told result's objectives are normalised to [0, 1] by
the ranges seen so far, and scalarised by the augmented Tchebycheff function

    f_λ(x) = max_j λ_j f_j(x) + ρ Σ_j λ_j f_j(x),   ρ = 0.05,

which any Pareto-optimal point minimises for some λ (unlike a weighted sum, which misses the
concave parts of a front). A GP on the architecture encodings models f_λ and expected
improvement picks the next candidate: the whole of `bo.BayesianOptimisation` (its grid-fitted
kernel, kriging-believer pending asks, candidate pool), fed the scalarised values.

Departures: the GP is BO's (an exponential kernel on encodings, hyper-parameters on a grid)
rather than DACE with a fitted correlation per dimension, and EI is maximised over BO's pool of
mutations and neighbours of the incumbents (the incumbents under the current λ) rather than by
an evolutionary algorithm; the initial design is ``initial`` uniform samples (Knowles: a Latin
hypercube of 11d − 1 points, which a 100-evaluation NAS budget cannot afford).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint
from nasforge.strategies.bo import BayesianOptimisation
from nasforge.strategies.model_based import check_int
from nasforge.strategies.multiobjective import objectives_or_default


def simplex_lattice(dimensions: int, divisions: int) -> np.ndarray:
    """Every weight vector with entries in {0, 1/s, ..., 1} summing to 1 (one per row)."""
    rows = [
        combo
        for combo in itertools.product(range(divisions + 1), repeat=dimensions)
        if sum(combo) == divisions
    ]
    return np.asarray(rows, dtype=float) / divisions


def augmented_tchebycheff(points: np.ndarray, weights: np.ndarray, rho: float) -> np.ndarray:
    """f_λ of each row of ``points`` (normalised, all-minimised), to be minimised."""
    weighted = points * weights
    return weighted.max(axis=1) + rho * weighted.sum(axis=1)


class ParEGO(BayesianOptimisation):
    name = "parego"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        *,
        objectives: Any = None,
        divisions: int | None = None,
        rho: float = 0.05,
        encoding: str = "onehot",
        initial: int = 10,
        local: int = 5,
        mutations: int = 50,
        random_candidates: int = 100,
        length_scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        noise_ratios: Sequence[float] = (1e-4, 1e-2, 1e-1),
    ):
        super().__init__(
            space,
            seed,
            constraint,
            encoding=encoding,
            initial=initial,
            local=local,
            mutations=mutations,
            random_candidates=random_candidates,
            length_scales=length_scales,
            noise_ratios=noise_ratios,
        )
        self.objectives = objectives_or_default(objectives)
        dims = len(self.objectives)
        if divisions is None:
            divisions = 10 if dims <= 2 else 4
        self.divisions = check_int("divisions", divisions, 1)
        if not rho >= 0:
            raise ConfigError(f"rho must be >= 0, got {rho}")
        self.rho = float(rho)
        self.weights = simplex_lattice(dims, self.divisions)
        self.vectors: list[tuple[float, ...]] = []  # all-minimised, in told order

    def ask(self) -> Candidate:
        if self.vectors:
            self.values = list(-self.scalarised(self.weights[self.rng.integers(len(self.weights))]))
        return super().ask()

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self.vectors.append(self.objectives.minimised(result))

    def scalarised(self, weights: np.ndarray) -> np.ndarray:
        """f_λ of every told result, objectives normalised to [0, 1] by the ranges seen."""
        points = np.asarray(self.vectors, dtype=float)
        low, high = points.min(axis=0), points.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        return augmented_tchebycheff((points - low) / span, weights, self.rho)
