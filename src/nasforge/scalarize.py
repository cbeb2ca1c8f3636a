"""One reward from several objectives, so that any single-objective strategy searches them.

``--scalarize`` with ``--objectives ACC:max,COST:min`` turns each result into one number:

* ``mnasnet:T=5[,w=-0.07]``: MnasNet's soft reward ACC · (COST/T)^w (Tan et al., "MnasNet:
  Platform-Aware Neural Architecture Search for Mobile", CVPR 2019, eq. 2 with α = β = w =
  −0.07): 7 % more latency costs about 0.5 % of reward, on either side of the target T;
* ``mnasnet-hard:T=5``: the paper's hard variant (α = 0, β = −1): no reward change under the
  target, ACC · T/COST over it, so the search is pushed back under T;
* ``weighted:W1,W2,...``: Σ w_i · s_i · v_i with s_i = +1 for a maximised objective and −1
  for a minimised one, in the objectives' own units (so the user's weights set the exchange
  rate, e.g. ``weighted:1,2`` = one accuracy point for half a millisecond).

The MnasNet rewards take exactly two objectives, accuracy first (maximised) and the cost second
(minimised, > 0). `ScalarizedEstimator` wraps any estimator: the reward becomes the objective,
the original objective is kept among the metrics under its own name, and everything else
(cost, fidelity, learning curve, report) passes through, so best-by-objective, final training
and the store all follow the reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.objectives import Objectives

KINDS = ("mnasnet", "mnasnet-hard", "weighted")
MNASNET_W = -0.07


@dataclass(frozen=True)
class Scalarizer:
    """A parsed ``--scalarize`` value (see the module docstring)."""

    kind: str
    target: float | None = None
    exponent: float = MNASNET_W
    weights: tuple[float, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Scalarizer:
        kind, _, rest = str(text).partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            raise ConfigError(
                f"--scalarize {text!r}: unknown kind {kind!r}; accepted: mnasnet:T=TARGET[,w=W], "
                "mnasnet-hard:T=TARGET, weighted:W1,W2,..."
            )
        if kind == "weighted":
            try:
                weights = tuple(float(w) for w in rest.split(",") if w.strip())
            except ValueError:
                weights = ()
            if not weights:
                raise ConfigError(f"--scalarize {text!r}: give one weight per objective, "
                                  "e.g. weighted:1,2")  # fmt: skip
            return cls(kind, weights=weights)
        fields: dict[str, float] = {}
        for part in (p.strip() for p in rest.split(",") if p.strip()):
            key, sep, value = part.partition("=")
            try:
                fields[key.strip()] = float(value) if sep else math.nan
            except ValueError:
                fields[key.strip()] = math.nan
        target = fields.pop("T", math.nan)
        exponent = fields.pop("w", MNASNET_W)
        if fields or not target > 0 or not math.isfinite(exponent):
            raise ConfigError(
                f"--scalarize {text!r}: expected {kind}:T=TARGET with TARGET > 0"
                + (",w=W" if kind == "mnasnet" else "")
            )
        if kind == "mnasnet-hard" and exponent != MNASNET_W:
            raise ConfigError("--scalarize mnasnet-hard takes no w: its exponents are 0 and -1")
        return cls(kind, target=target, exponent=exponent)

    @property
    def name(self) -> str:
        return (
            "weighted_sum" if self.kind == "weighted" else self.kind.replace("-", "_") + "_reward"
        )

    def check(self, objectives: Objectives) -> None:
        if self.kind == "weighted":
            if len(self.weights) != len(objectives):
                raise ConfigError(
                    f"--scalarize weighted has {len(self.weights)} weights for "
                    f"{len(objectives)} objectives ({objectives.describe()})"
                )
            return
        directions = tuple(o.direction for o in objectives.objectives)
        if directions != ("max", "min"):
            raise ConfigError(
                f"--scalarize {self.kind} needs --objectives ACCURACY:max,COST:min, got "
                f"{objectives.describe()}"
            )

    def reward(self, values: tuple[float, ...], objectives: Objectives) -> float:
        if self.kind == "weighted":
            return sum(w * o.sign * v for w, o, v in zip(self.weights, objectives.objectives,
                                                          values, strict=True))  # fmt: skip
        accuracy, cost = values
        if not cost > 0:
            raise ConfigError(f"the MnasNet reward needs a cost > 0, got {cost}")
        ratio = cost / float(self.target)  # type: ignore[arg-type]
        if self.kind == "mnasnet":
            return accuracy * ratio**self.exponent
        return accuracy if ratio <= 1 else accuracy / ratio


class ScalarizedEstimator:
    """Any estimator, its results' objective replaced by the reward (module docstring)."""

    def __init__(self, inner: Any, objectives: Objectives, scalarizer: Scalarizer):
        scalarizer.check(objectives)
        self.inner, self.objectives, self.scalarizer = inner, objectives, scalarizer
        self.name = f"{inner.name}+{scalarizer.kind}"
        self.objective_name = scalarizer.name

    def __getattr__(self, attribute: str) -> Any:  # capabilities, dataset, space, optimum ...
        if attribute == "inner":
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    def evaluate(self, candidate: Candidate, context: Any = None) -> Result:
        if context is None:
            return self.scalarized(self.inner.evaluate(candidate))
        return self.scalarized(self.inner.evaluate(candidate, context))

    def scalarized(self, result: Result) -> Result:
        """The result with the reward as its objective; its learning curve (the objective per
        epoch, which early stopping compares with the incumbent) becomes the reward per epoch,
        the costs held at their final values."""
        metrics = {**result.metrics, self.objectives.primary: result.objective}
        return replace(
            result,
            objective=self._reward(result, result.objective),
            metrics=metrics,
            curve=tuple(self._reward(result, value) for value in result.curve),
        )

    def _reward(self, result: Result, objective: float) -> float:
        values = tuple(
            objective
            if self.objectives.is_primary(o.name) and o.name not in result.metrics
            else self.objectives.value(result, o.name)
            for o in self.objectives.objectives
        )
        return self.scalarizer.reward(values, self.objectives)
