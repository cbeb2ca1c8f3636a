"""The performance-estimation protocol: how good is a candidate?

Every estimator answers ``evaluate``. What else it can do is declared in its ``capabilities``
member, an `EstimatorCapabilities` (``nasforge.capabilities``, re-exported here), read once by
`capabilities_of` when an experiment or a strategy is built. `EstimatorBase` gives the defaults.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from nasforge.capabilities import EstimatorCapabilities, capabilities_of
from nasforge.core import Candidate, Result

__all__ = ["Estimator", "EstimatorBase", "EstimatorCapabilities", "capabilities_of"]


@runtime_checkable
class Estimator(Protocol):
    """Tabular or surrogate benchmark, real training, predictor or proxy: all answer one call.

    ``name`` identifies the estimator in stored runs; ``objective_name`` says what
    ``Result.objective`` measures (e.g. ``"val_acc"``) so reports can label it. The optional
    ``capabilities`` member (an `EstimatorCapabilities`; `EstimatorBase` gives the defaults) is
    read through `capabilities_of`, which also accepts an estimator without one.
    """

    name: str
    objective_name: str

    def evaluate(self, candidate: Candidate) -> Result: ...


class EstimatorBase:
    """A base for estimators: the default `EstimatorCapabilities`. Override ``capabilities``
    with a class attribute (fixed facts, e.g. a benchmark table) or a property (facts that
    follow the estimator's settings, e.g. the epochs of real training)."""

    name: str
    objective_name: str
    capabilities: EstimatorCapabilities = EstimatorCapabilities()

    def evaluate(self, candidate: Candidate) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError
