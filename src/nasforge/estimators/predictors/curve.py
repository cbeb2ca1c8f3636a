"""Learning-curve prediction: the final accuracy of a training from its first epochs.

The model is the one early stopping uses (``early_stopping.CurveExtrapolation``): an ensemble of
parametric curve families fitted by least squares and weighted by BIC, after Domhan,
Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of Deep Neural
Networks by Extrapolation of Learning Curves", IJCAI 2015 (a Laplace approximation replaces
their MCMC; see that class). Here it is exposed as a predictor: a partial curve in, a mean and a
standard deviation of the value at ``final_epoch`` out. Finished curves of the same schedule,
when given (``reference``), calibrate the prediction as they do for early stopping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from nasforge.core import SearchContext
from nasforge.errors import ConfigError
from nasforge.estimators.early_stopping import FAMILIES, CurveExtrapolation, CurvePrediction

#: Gauss-Hermite nodes for the moments of expit(normal) (the mixture lives on the logit scale)
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def mixture_moments(prediction: CurvePrediction) -> tuple[float, float]:
    """Mean and std, in the curve's units, of the prediction's mixture of logit-normals."""
    first, second = 0.0, 0.0
    for model in prediction.models:
        values = prediction.scale * expit(model.logit_mean + model.logit_std * _NODES)
        first += model.weight * float(_WEIGHTS @ values)
        second += model.weight * float(_WEIGHTS @ values**2)
    return first, math.sqrt(max(second - first**2, 0.0))


class CurvePredictor:
    """Predicts a learning curve's value at epoch ``final_epoch`` from its first epochs.

    ``predict(curve) -> (mean, std)``; ``predict_many(curves) -> (means, stds)``. ``options``
    go to ``CurveExtrapolation`` (``families``, ``noise_floor``, ``scale`` (100 for percent,
    1 for fractions), ``ridge``, ``calibrate``, ``calibration_curves``). ``reference``: finished
    curves of ``final_epoch`` epochs of the same schedule, used to calibrate. A curve needs at
    least two more epochs than the smallest family has parameters (4 with the default
    families), and must be shorter than ``final_epoch``.
    """

    def __init__(
        self,
        final_epoch: int,
        *,
        reference: Sequence[Sequence[float]] = (),
        **options: Any,
    ):
        if isinstance(final_epoch, bool) or not isinstance(final_epoch, int) or final_epoch < 2:
            raise ConfigError(f"final_epoch must be a whole number >= 2, got {final_epoch!r}")
        accepted = {"families", "noise_floor", "scale", "ridge", "calibrate", "calibration_curves"}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ConfigError(
                f"curve predictor has no option {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(accepted))}"
            )
        self.final_epoch = final_epoch
        self.model = CurveExtrapolation(**options)
        self.min_epochs = min(FAMILIES[f].params for f in self.model.families) + 2
        curves = tuple(tuple(float(v) for v in c) for c in reference)
        self.context = SearchContext(curves=curves) if curves else None

    def predict(self, curve: Sequence[float]) -> tuple[float, float]:
        """(mean, std) of the value at ``final_epoch`` given the observed ``curve``."""
        values = [float(v) for v in curve]
        if not self.min_epochs <= len(values) < self.final_epoch:
            raise ConfigError(
                f"curve predictor needs between {self.min_epochs} and {self.final_epoch - 1} "
                f"observed epochs to predict epoch {self.final_epoch}, got {len(values)}"
            )
        if not all(math.isfinite(v) for v in values):
            raise ConfigError("curve predictor: the curve has a value that is not finite")
        prediction = self.model.predict(values, self.final_epoch, self.context)
        if not prediction.models:  # no family fitted: the best guess is where the curve is
            return values[-1], abs(values[-1] - values[0]) + self.model.noise_floor
        return mixture_moments(prediction)

    def predict_many(self, curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
        """Means and stds of several curves (each as ``predict``)."""
        pairs = [self.predict(c) for c in curves]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
