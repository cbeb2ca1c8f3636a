"""The performance-estimation protocol: how good is a candidate?"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from nasforge.core import Candidate, Result


@runtime_checkable
class Estimator(Protocol):
    """Tabular or surrogate benchmark, real training, predictor or proxy: all answer one call.

    ``name`` identifies the estimator in stored runs; ``objective_name`` says what
    ``Result.objective`` measures (e.g. ``"val_acc"``) so reports can label it.
    """

    name: str
    objective_name: str

    def evaluate(self, candidate: Candidate) -> Result: ...
