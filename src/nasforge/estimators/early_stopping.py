"""Early-stopping rules: end a training trial whose learning curve will not beat the incumbent.

A rule (a `Stopper`) is asked after every epoch, by the estimator that trains (``Train(...,
early_stopping=rule)``), whether to stop: it sees the trial's own curve so far (the objective,
e.g. validation accuracy in percent, after each epoch), the epochs planned for this trial, and a
`SearchContext` (the best full-fidelity objective so far and the curves of finished trials).
Rules are small frozen dataclasses: picklable, so they travel to worker processes with the
estimator, and deterministic given their inputs, so a seeded search stays reproducible.

Two rules from the literature:

* `MedianStopping`: the median stopping rule of Google Vizier (Golovin et al., KDD 2017).
* `CurveExtrapolation`: learning-curve extrapolation with an ensemble of parametric curve
  families, after Domhan, Springenberg & Hutter (IJCAI 2015), with a cheap Laplace-style
  approximation in place of their MCMC (see the class docstring).

The median rule compares curves epoch by epoch, so it assumes the finished trials trained with
the same schedule as the running one; under multi-fidelity schedulers that mix epoch budgets
(a short cosine run is ahead at the same epoch) prefer `CurveExtrapolation`, which compares
with the incumbent and calibrates only on finished curves of the running trial's length.
"""

from __future__ import annotations

import functools
import math
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from nasforge.core import SearchContext
from nasforge.errors import ConfigError, UnknownNameError


@runtime_checkable
class Stopper(Protocol):
    """Decides, after each epoch, whether a trial should stop training now."""

    name: str

    def should_stop(
        self, curve: Sequence[float], planned_epochs: int, context: SearchContext
    ) -> bool: ...


def _check_int(label: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{label} must be a whole number >= {minimum}, got {value!r}")


def _check_unit(label: str, value: object, *, open_low: bool = True) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (0.0 < value < 1.0 if open_low else 0.0 <= value < 1.0)
    )
    if not ok:
        raise ConfigError(f"{label} must be a number in (0, 1), got {value!r}")


def _check_positive(label: str, value: object) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
    if not ok:
        raise ConfigError(f"{label} must be a finite number > 0, got {value!r}")


def _finite(curve: Sequence[float]) -> bool:
    return len(curve) > 0 and all(math.isfinite(v) for v in curve)


# -- the median rule ------------------------------------------------------------------------


@dataclass(frozen=True)
class MedianStopping:
    """Stop at epoch ``t`` when the trial's best value so far is strictly worse than the median,
    over finished curves that reached ``t``, of their running average up to ``t``.

    This is Vizier's rule: the running average rewards curves that were good all along, not
    only at ``t``, which makes the bar robust to a noisy epoch. It waits until ``min_epochs``
    epochs are done and at least ``min_curves`` finished curves reached ``t``; a trial on its
    last planned epoch is never stopped (stopping would save nothing).
    """

    min_epochs: int = 1
    min_curves: int = 3
    name: ClassVar[str] = "median"

    def __post_init__(self) -> None:
        _check_int("median stopping min_epochs", self.min_epochs, 1)
        _check_int("median stopping min_curves", self.min_curves, 1)

    def should_stop(
        self, curve: Sequence[float], planned_epochs: int, context: SearchContext
    ) -> bool:
        t = len(curve)
        if t < self.min_epochs or t >= planned_epochs or not _finite(curve):
            return False
        averages = [sum(c[:t]) / t for c in context.curves if len(c) >= t and _finite(c[:t])]
        if len(averages) < self.min_curves:
            return False
        return max(curve) < statistics.median(averages)


# -- learning-curve extrapolation -----------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    """A parametric curve family: ``f(x, *theta)`` with bounds and a data-driven first guess."""

    function: Callable[..., np.ndarray]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    guess: Callable[[np.ndarray, np.ndarray], list[float]]

    @property
    def params(self) -> int:
        return len(self.lower)


# The families of Domhan et al. (Table 1) that fit a rising accuracy in [0, 1] (x = epoch >= 1).
# Bounds keep each one increasing and its asymptote at most 1; guesses start from the data.


def _pow3(x: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c - a * x ** (-alpha)


def _log_power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a / (1.0 + (x / np.exp(b)) ** c)


def _vapor_pressure(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return np.exp(a + b / x + c * np.log(x))


def _exp3(x: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return c - np.exp(-a * x + b)


def _janoschek(x: np.ndarray, alpha: float, beta: float, kappa: float, delta: float) -> np.ndarray:
    return alpha - (alpha - beta) * np.exp(-kappa * x**delta)


def _mmf(x: np.ndarray, alpha: float, beta: float, kappa: float, delta: float) -> np.ndarray:
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def _weibull(x: np.ndarray, alpha: float, beta: float, kappa: float, delta: float) -> np.ndarray:
    return alpha - (alpha - beta) * np.exp(-((kappa * x) ** delta))


def _ilog2(x: np.ndarray, c: float, a: float) -> np.ndarray:
    return c - a / np.log(x + 1.0)


def _log_linear(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.log(x) + b


def _top(y: np.ndarray) -> float:
    return float(min(1.0, max(y[-1], y.max()) + 0.05))


FAMILIES: dict[str, _Family] = {
    "pow3": _Family(
        _pow3, (0.0, 0.0, 0.01), (1.0, 2.0, 5.0), lambda x, y: [_top(y), _top(y) - y[0], 0.7]
    ),
    "log_power": _Family(
        _log_power,
        (0.0, -5.0, -10.0),
        (1.0, 10.0, 0.0),
        lambda x, y: [_top(y), 0.0, -1.0],
    ),
    "vapor_pressure": _Family(
        _vapor_pressure,
        (-10.0, -10.0, -1.0),
        (0.0, 0.0, 1.0),
        lambda x, y: [math.log(_top(y)), math.log(max(y[0], 1e-3) / _top(y)), 0.0],
    ),
    "exp3": _Family(
        _exp3,
        (0.0, 0.0, -10.0),
        (1.0, 10.0, 5.0),
        lambda x, y: [_top(y), 0.5, math.log(max(_top(y) - y[0], 1e-3)) + 0.5],
    ),
    "janoschek": _Family(
        _janoschek,
        (0.0, 0.0, 0.0, 0.1),
        (1.0, 1.0, 10.0, 5.0),
        lambda x, y: [_top(y), max(0.0, 2 * y[0] - y[min(1, len(y) - 1)]), 0.5, 1.0],
    ),
    "mmf": _Family(
        _mmf,
        (0.0, 0.0, 0.0, 0.1),
        (1.0, 1.0, 10.0, 5.0),
        lambda x, y: [_top(y), max(0.0, 2 * y[0] - y[min(1, len(y) - 1)]), 1.0, 1.0],
    ),
    "weibull": _Family(
        _weibull,
        (0.0, 0.0, 0.0, 0.1),
        (1.0, 1.0, 10.0, 5.0),
        lambda x, y: [_top(y), max(0.0, 2 * y[0] - y[min(1, len(y) - 1)]), 0.5, 1.0],
    ),
    "ilog2": _Family(_ilog2, (0.0, 0.0), (1.0, 5.0), lambda x, y: [_top(y), 0.1]),
    "log_linear": _Family(_log_linear, (0.0, -1.0), (1.0, 2.0), lambda x, y: [0.05, y[0]]),
}


#: Accuracies are clipped to [EPS, 1 - EPS] of the scale before taking logits.
EPS = 1e-3


def _logit(p: float) -> float:
    p = min(max(p, EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


def _expit(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass(frozen=True)
class ModelFit:
    """One family's fit: its posterior weight and its normal prediction at the horizon on the
    logit scale (where an accuracy near its ceiling keeps a sensible, unbounded spread)."""

    family: str
    weight: float
    logit_mean: float
    logit_std: float


@dataclass(frozen=True)
class CurvePrediction:
    """The ensemble's predictive distribution of the final value: a mixture of one normal per
    fitted family on the logit scale of ``value / scale``; ``mean`` (the mixture's mean value,
    in the curve's own units) is for reading, the decision uses `probability_above`."""

    mean: float
    models: tuple[ModelFit, ...]
    scale: float
    bias: float = 0.0  # added on the logit scale by calibration (0: not calibrated)
    calibrated_on: int = 0  # finished curves the calibration measured

    def probability_above(self, value: float) -> float:
        """P(final > value) under the mixture."""
        if not self.models:
            return 1.0
        z = _logit(value / self.scale)
        return sum(
            m.weight * _phi((m.logit_mean - z) / max(m.logit_std, 1e-9)) for m in self.models
        )


def _mixture(models: tuple[ModelFit, ...], scale: float, **extra: Any) -> CurvePrediction:
    mean = sum(m.weight * _expit(m.logit_mean) for m in models) * scale
    return CurvePrediction(mean, models, scale, **extra)


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@dataclass(frozen=True)
class CurveExtrapolation:
    """Stop when the extrapolated curve is unlikely to beat the incumbent:
    P(value at ``planned_epochs`` > incumbent) < ``threshold``.

    How the prediction is made (a cheap stand-in for Domhan et al.'s MCMC over a weighted
    combination of families):

    1. Every family with at least two more observed epochs than parameters is fitted to the
       partial curve (scaled to [0, 1] by ``scale``) by bounded least squares (scipy's
       ``least_squares``, the engine of ``curve_fit``). A fit that fails, or that breaks the
       paper's prior (ends above a perfect score, or below its own last fitted value), is
       dropped.
    2. Each fit gives a Laplace approximation: noise ``sigma`` from its residuals (never below
       ``noise_floor``), parameter covariance ``sigma^2 (J^T J + ridge I)^-1`` (the ridge is a
       weak Gaussian prior keeping unidentified directions finite but wide) and, by the delta
       method, a normal predictive at the horizon, moved onto the logit scale so that an
       accuracy near 100% keeps a sensible spread. Families are weighted by ``exp(-BIC / 2)``.
    3. Calibration (``calibrate``, on by default; not in the paper): the same ensemble is
       run on the first ``t`` epochs of up to ``calibration_curves`` finished full-length
       curves of this search, and the mean and spread of its errors (logit scale) shift and
       widen the prediction. This is what lets it cope with schedules the families do not
       model, e.g. cosine annealing, which lifts accuracy late; with fewer than two such
       curves the raw prediction is used.

    It then stops when the mixture gives P(final > incumbent) < ``threshold``. With no
    incumbent it never stops, and it waits ``min_epochs`` epochs. One call takes ~10-50 ms
    (fits are memoised per process, so calibration curves are fitted once per epoch count).
    """

    min_epochs: int = 2
    threshold: float = 0.05
    families: tuple[str, ...] = tuple(FAMILIES)
    noise_floor: float = 1.0
    scale: float = 100.0
    ridge: float = 1e-2
    calibrate: bool = True
    calibration_curves: int = 10
    name: ClassVar[str] = "curve"

    def __post_init__(self) -> None:
        _check_int("curve extrapolation min_epochs", self.min_epochs, 1)
        _check_unit("curve extrapolation threshold", self.threshold)
        _check_positive("curve extrapolation noise_floor", self.noise_floor)
        _check_positive("curve extrapolation scale", self.scale)
        _check_positive("curve extrapolation ridge", self.ridge)
        _check_int("curve extrapolation calibration_curves", self.calibration_curves, 2)
        if not isinstance(self.calibrate, bool):
            raise ConfigError(
                f"curve extrapolation calibrate must be true or false, got {self.calibrate!r}"
            )
        families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown or not families:
            raise ConfigError(
                f"curve extrapolation families {list(families)!r}: need at least one of "
                f"{', '.join(FAMILIES)}"
            )
        object.__setattr__(self, "families", families)

    def should_stop(
        self, curve: Sequence[float], planned_epochs: int, context: SearchContext
    ) -> bool:
        t = len(curve)
        if context.incumbent is None or t < self.min_epochs or t >= planned_epochs:
            return False
        if not _finite(curve) or not math.isfinite(context.incumbent):
            return False
        if max(curve) >= context.incumbent:
            return False  # already level with the incumbent: no fit needed to keep it
        prediction = self.predict(curve, planned_epochs, context)
        if not prediction.models:
            return False  # nothing fitted: no evidence to stop on
        return prediction.probability_above(context.incumbent) < self.threshold

    def predict(
        self, curve: Sequence[float], planned_epochs: int, context: SearchContext | None = None
    ) -> CurvePrediction:
        """The predictive distribution of the curve's value at epoch ``planned_epochs``,
        calibrated on the context's finished curves when ``calibrate`` is on."""
        settings = (self.families, self.noise_floor, self.scale, self.ridge)
        curve = tuple(float(v) for v in curve)
        raw = _ensemble(settings, curve, int(planned_epochs))
        if not (self.calibrate and context and raw.models):
            return raw
        t = len(curve)
        complete = [c for c in context.curves if len(c) == planned_epochs and _finite(c)]
        errors = []
        for c in complete[-self.calibration_curves :]:
            seen = _ensemble(settings, tuple(float(v) for v in c[:t]), int(planned_epochs))
            if seen.models:
                centre = sum(m.weight * m.logit_mean for m in seen.models)
                errors.append(_logit(c[-1] / self.scale) - centre)
        if len(errors) < 2:
            return raw
        bias = statistics.fmean(errors)
        # spread of the errors plus the uncertainty of their mean (few curves: stay humble)
        extra = statistics.variance(errors) * (1.0 + 1.0 / len(errors))
        models = tuple(
            ModelFit(m.family, m.weight, m.logit_mean + bias, math.sqrt(m.logit_std**2 + extra))
            for m in raw.models
        )
        return _mixture(models, self.scale, bias=bias, calibrated_on=len(errors))


@functools.lru_cache(maxsize=8192)
def _ensemble(
    settings: tuple[tuple[str, ...], float, float, float], curve: tuple[float, ...], horizon: int
) -> CurvePrediction:
    """The uncalibrated ensemble prediction; memoised because the same finished curves are
    refitted (for calibration) at every epoch of every later trial in a process."""
    families, noise_floor, scale, ridge = settings
    y = np.clip(np.asarray(curve, dtype=float) / scale, 0.0, 1.0)
    x = np.arange(1, len(y) + 1, dtype=float)
    fits: list[tuple[str, float, float, float]] = []  # family, log weight, mean, var
    for name in families:
        family = FAMILIES[name]
        if len(y) < family.params + 2:  # too few residuals to say anything of its own error
            continue
        fit = _fit(family, x, y, float(horizon), noise_floor / scale, ridge)
        if fit is not None:
            fits.append((name, *fit))
    if not fits:
        return CurvePrediction(math.nan, (), scale)
    log_w = np.array([f[1] for f in fits])
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    models = []
    for (name, _, mean, var), wi in zip(fits, w, strict=True):
        p = min(max(mean, EPS), 1.0 - EPS)  # delta method onto the logit scale
        models.append(ModelFit(name, float(wi), _logit(p), math.sqrt(var) / (p * (1.0 - p))))
    return _mixture(tuple(models), scale)


def _fit(
    family: _Family, x: np.ndarray, y: np.ndarray, horizon: float, floor: float, ridge: float
) -> tuple[float, float, float] | None:
    """(log weight, mean, variance) at ``horizon`` of a least-squares fit, or None if it fails."""
    from scipy.optimize import least_squares

    lower, upper = np.array(family.lower), np.array(family.upper)
    start = np.clip(np.array(family.guess(x, y), dtype=float), lower + 1e-6, upper - 1e-6)
    n, k = len(y), family.params

    def residuals(theta: np.ndarray) -> np.ndarray:
        return family.function(x, *theta) - y

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            # curve_fit's own engine; dogbox converges in a few evaluations on these tiny,
            # box-bounded problems, about 3x faster than the default trust-region reflective
            fit = least_squares(
                residuals, start, bounds=(lower, upper), method="dogbox", max_nfev=200
            )
        except (RuntimeError, ValueError, FloatingPointError, np.linalg.LinAlgError):
            return None
        theta = fit.x
        fitted = family.function(x, *theta)
        mean = float(family.function(np.array([horizon]), *theta)[0])
        if not (np.all(np.isfinite(fitted)) and math.isfinite(mean)):
            return None
        # Domhan et al.'s prior: a learning curve does not end above a perfect score nor fall
        # below where it was fitted to be at the last epoch seen; such fits are dropped
        if mean > 1.0 + 2 * floor or mean < fitted[-1] - 2 * floor:
            return None
        jac, grad = _jacobian(family.function, x, horizon, theta, lower, upper)
    if jac is None:
        return None
    sse = float(np.sum((fitted - y) ** 2))
    sigma2 = max(sse / (n - k) if n > k else 0.0, floor**2)
    try:
        cov = sigma2 * np.linalg.inv(jac.T @ jac + ridge * np.eye(k))
    except np.linalg.LinAlgError:
        return None
    var = sigma2 + float(grad @ cov @ grad)
    if not math.isfinite(var):
        return None
    # BIC with the floored noise: a perfect fit of few points earns no unbounded likelihood
    bic = n * math.log(max(sse / n, floor**2)) + k * math.log(n)
    return -0.5 * bic, mean, var


def _jacobian(
    function: Callable[..., np.ndarray],
    x: np.ndarray,
    horizon: float,
    theta: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Forward-difference derivatives of the fit at ``x`` and at the horizon, by parameter."""
    points = np.append(x, horizon)
    base = function(points, *theta)
    columns = []
    for i in range(len(theta)):
        step = 1e-6 * max(1.0, abs(theta[i]))
        if theta[i] + step > upper[i]:
            step = -step  # stay inside the bounds, where the function is defined
        shifted = theta.copy()
        shifted[i] += step
        columns.append((function(points, *shifted) - base) / step)
    d = np.stack(columns, axis=1)
    if not np.all(np.isfinite(d)):
        return None, d[-1]
    return d[:-1], d[-1]


# -- by name --------------------------------------------------------------------------------

STOPPERS: dict[str, type] = {"median": MedianStopping, "curve": CurveExtrapolation}


def make_stopper(name: str, **options: Any) -> Stopper | None:
    """The rule registered as ``name`` with ``options``; ``"none"`` means no early stopping."""
    if name == "none":
        if options:
            raise ConfigError(f"early-stopping rule 'none' takes no options, got {sorted(options)}")
        return None
    if name not in STOPPERS:
        raise UnknownNameError("early-stopping rule", name, (*STOPPERS, "none"))
    cls = STOPPERS[name]
    accepted = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"early-stopping rule {name!r} has no option {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"early-stopping rule {name!r}: {err}") from None
