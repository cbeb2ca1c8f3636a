"""The predictor protocol, its registry and ``make_predictor``.

A predictor is fitted on (architecture, objective) pairs and predicts, for other architectures, a
mean and a standard deviation: the mean ranks candidates, the spread is what an acquisition
function (expected improvement, Thompson sampling) trades off against it. Every predictor is
deterministic for its ``seed``; the models live in ``models.py`` and ``gnn.py`` and register
themselves here by name.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from nasforge.core import Arch
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.estimators.predictors.features import Features
from nasforge.spaces.base import SearchSpace

#: every predictor class by name; filled by ``models.py`` (import it, or use ``make_predictor``)
PREDICTORS: dict[str, type[Predictor]] = {}

_MODEL_MODULES = ("nasforge.estimators.predictors.models",)


def register(name: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator: ``PREDICTORS[name] = cls`` and ``cls.name = name``."""

    def add(cls: type[Predictor]) -> type[Predictor]:
        cls.name = name
        PREDICTORS[name] = cls
        return cls

    return add


class Predictor:
    """Base class: checks the inputs, then calls ``_fit`` / ``_predict`` of a subclass.

    ``encoding``: the ``space.encode`` kind the model sees (None: the model's
    ``default_encoding``); ``scorer``: an arch scorer (``score_all(archs) -> dict`` or
    ``score(archs)``) whose scores become extra standardised feature columns.
    """

    name: ClassVar[str] = "predictor"
    #: the encoding used when none is given; None for models that do not use one (graphs)
    default_encoding: ClassVar[str | None] = "onehot"

    def __init__(
        self,
        space: SearchSpace,
        *,
        encoding: str | None = None,
        scorer: Any = None,
        seed: int = 0,
    ):
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ConfigError(f"predictor seed must be an int, got {seed!r}")
        self.space, self.seed = space, int(seed)
        self.encoding = encoding if encoding is not None else self.default_encoding
        self.features = Features(space, self.encoding, scorer)
        self.fitted = False

    def fit(self, archs: Sequence[Arch], y: np.ndarray) -> Predictor:
        """Fit on ``archs`` and their objectives ``y`` (at least 2, finite)."""
        archs = list(archs)
        y = np.asarray(y, dtype=float).reshape(-1)
        if len(archs) != len(y):
            raise ConfigError(
                f"predictor {self.name!r}: {len(archs)} architectures but {len(y)} targets"
            )
        if len(archs) < 2:
            raise ConfigError(
                f"predictor {self.name!r} needs at least 2 evaluated architectures to fit, "
                f"got {len(archs)}"
            )
        if not np.all(np.isfinite(y)):
            raise ConfigError(f"predictor {self.name!r}: targets must be finite numbers")
        self._fit(archs, y)
        self.fitted = True
        return self

    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) for each of ``archs``, in the units of the fitted targets; std >= 0."""
        if not self.fitted:
            raise ConfigError(
                f"predictor {self.name!r} has no data yet: call fit(archs, y) before predict"
            )
        archs = list(archs)
        if not archs:
            return np.zeros(0), np.zeros(0)
        mean, std = self._predict(archs)
        mean = np.asarray(mean, dtype=float).reshape(-1)
        std = np.nan_to_num(np.asarray(std, dtype=float).reshape(-1), nan=0.0, posinf=0.0)
        return mean, np.maximum(std, 0.0)

    # for subclasses -----------------------------------------------------------------------

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract


class VectorPredictor(Predictor):
    """A predictor on fixed-length feature rows (``Features``): subclasses implement
    ``_fit_matrix(X, y)`` and ``_predict_matrix(X) -> (mean, std)``."""

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        self._fit_matrix(self.features.fit_transform(archs), y)

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        return self._predict_matrix(self.features.transform(archs))

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract


def predictor_class(name: str) -> type[Predictor]:
    """The registered class called ``name``, or an UnknownNameError listing every name."""
    for module in _MODEL_MODULES:
        importlib.import_module(module)
    if name not in PREDICTORS:
        raise UnknownNameError("predictor", name, PREDICTORS)
    return PREDICTORS[name]


def options_of(cls: type[Predictor]) -> set[str]:
    """The model's own keyword options (everything but space, encoding, scorer and seed)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            params = inspect.signature(vars(klass)["__init__"]).parameters
            names |= {p for p, v in params.items() if v.kind is v.KEYWORD_ONLY}
    return names - {"encoding", "scorer", "seed"}


def make_predictor(
    name: str,
    space: SearchSpace,
    *,
    encoding: str | None = None,
    scorer: Any = None,
    seed: int = 0,
    **options: Any,
) -> Predictor:
    """A predictor by name (``PREDICTORS``); unknown names and options are one-line errors."""
    cls = predictor_class(name)
    accepted = options_of(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"predictor {name!r} has no option {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    return cls(space, encoding=encoding, scorer=scorer, seed=seed, **options)
