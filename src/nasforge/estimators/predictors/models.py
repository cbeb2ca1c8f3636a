"""The vector predictors: ridge, random forest, LightGBM, a GP and the BANANAS MLP ensemble.

Importing this module registers them (and the graph network of ``gnn.py``) in ``PREDICTORS``.
Each states where its uncertainty comes from; all run single-threaded and are deterministic
for their ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.estimators.predictors.base import PREDICTORS, VectorPredictor, register
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.model_based import check_int, one_blas_thread

__all__ = ["PREDICTORS"]


@register("ridge")
class RidgePredictor(VectorPredictor):
    """Bayesian linear regression (scikit-learn's ``BayesianRidge``: MacKay, "Bayesian
    Interpolation", 1992; Tipping, "Sparse Bayesian Learning", JMLR 2001): ridge regression whose
    penalty and noise are fitted by evidence maximisation, so the posterior predictive std
    (noise plus weight uncertainty) is a stated uncertainty rather than a guess."""

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import BayesianRidge

        with one_blas_thread():
            self.model = BayesianRidge().fit(X, y)

    def _predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            mean, std = self.model.predict(X, return_std=True)
        return mean, std


@register("rf")
class ForestPredictor(VectorPredictor):
    """Random forest (Breiman, "Random Forests", Machine Learning 2001; scikit-learn's
    ``RandomForestRegressor``). Uncertainty: the std of the trees' predictions, as SMAC does
    (Hutter et al., "Sequential Model-Based Optimization for General Algorithm
    Configuration", LION 2011)."""

    def __init__(
        self, space: SearchSpace, *, trees: int = 100, min_samples_leaf: int = 1, **base: Any
    ):
        super().__init__(space, **base)
        self.trees = check_int("trees", trees, 2)
        self.min_samples_leaf = check_int("min_samples_leaf", min_samples_leaf, 1)

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.model = RandomForestRegressor(
            n_estimators=self.trees,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.seed,
            n_jobs=1,
        ).fit(X, y)

    def _predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float32)  # the trees' own dtype: no per-tree conversion
        per_tree = np.stack([t.predict(X, check_input=False) for t in self.model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)


@register("lgbm")
class LightGBMPredictor(VectorPredictor):
    """Gradient-boosted trees (Ke et al., "LightGBM: A Highly Efficient Gradient Boosting
    Decision Tree", NeurIPS 2017). Boosting gives no uncertainty of its own: ``members``
    boosters with different seeds, each on a bagged 80 % of rows and 90 % of features per
    tree, and their spread is the std (a small bootstrap-style ensemble). Leaves may hold as
    few as 3 points, so 20 training cells still give splits (LightGBM's default of 20 would
    give none)."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        members: int = 5,
        trees: int = 200,
        learning_rate: float = 0.05,
        leaves: int = 15,
        **base: Any,
    ):
        super().__init__(space, **base)
        self.members = check_int("members", members, 2)
        self.trees = check_int("trees", trees, 1)
        self.leaves = check_int("leaves", leaves, 2)
        if not learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray) -> None:
        import lightgbm

        self.models = []
        for member in range(self.members):
            params = {
                "objective": "regression",
                "learning_rate": self.learning_rate,
                "num_leaves": self.leaves,
                "min_data_in_leaf": 3,
                "min_data_in_bin": 1,
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "feature_fraction": 0.9,
                "seed": self.seed * 1000 + member,
                "deterministic": True,
                "force_col_wise": True,
                "num_threads": 1,
                "verbose": -1,
            }
            data = lightgbm.Dataset(X, y, params={"verbose": -1, "min_data_in_bin": 1})
            self.models.append(lightgbm.train(params, data, num_boost_round=self.trees))

    def _predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([m.predict(X, num_threads=1) for m in self.models])
        return preds.mean(axis=0), preds.std(axis=0)


@register("gp")
class GPPredictor(VectorPredictor):
    """Gaussian-process regression, the surrogate of ``strategies.bo`` (``GaussianProcess``:
    RBF kernel on encodings, length scale and noise by type-II maximum likelihood on a grid;
    Rasmussen & Williams, "Gaussian Processes for Machine Learning", 2006). Std: the posterior
    std of the latent function."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        length_scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        noise_ratios: Sequence[float] = (1e-4, 1e-2, 1e-1),
        **base: Any,
    ):
        from nasforge.strategies.bo import GaussianProcess

        super().__init__(space, **base)
        if not length_scales or not noise_ratios or min((*length_scales, *noise_ratios)) <= 0:
            raise ConfigError("length_scales and noise_ratios must be non-empty and > 0")
        self.model = GaussianProcess(length_scales, noise_ratios)

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray) -> None:
        with one_blas_thread():
            self.model.fit(X, y)

    def _predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            return self.model.predict(X)


@register("bananas")
class BananasPredictor(VectorPredictor):
    """The BANANAS predictor (White, Neiswanger & Savani, AAAI 2021): ``strategies.bananas``'
    ``MLPEnsemble`` of ``members`` feed-forward networks trained on the mean absolute error, on
    the path encoding by default (onehot where the space has no path encoding). Std: the
    members' spread. Every fit starts from a fresh initialisation drawn from ``seed`` (the
    strategy's warm restarts are a search-time economy, not part of the predictor)."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        members: int = 5,
        layers: int = 3,
        width: int = 20,
        epochs: int = 200,
        lr: float = 0.01,
        **base: Any,
    ):
        from nasforge.strategies.bananas import MLPEnsemble, default_encoding

        if base.get("encoding") is None:
            base["encoding"] = default_encoding(space)
        super().__init__(space, **base)
        self.options = (members, layers, width, epochs, lr)
        self._make = MLPEnsemble
        MLPEnsemble(*self.options)  # bad options fail now

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray) -> None:
        self.model = self._make(*self.options)
        with one_blas_thread():
            self.model.fit(X, y, np.random.default_rng(self.seed))

    def _predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with one_blas_thread():
            preds = self.model.predict(X)
        return preds.mean(axis=0), preds.std(axis=0)


from nasforge.estimators.predictors import gnn as _gnn  # noqa: E402,F401  (registers "gnn")
