"""Several named objectives, each maximised or minimised, read from an estimator's results.

A search with one objective is unchanged: strategies maximise ``Result.objective``. With
``--objectives val_acc:max,latency_ms/pi5/onnx/cifar100:min`` a run names what it trades off.
Each name is either the estimator's own objective (its ``objective_name``, or the aliases
``objective`` and, for a validation accuracy, ``val_acc``) or one of ``Result.metrics``
(parameters, MACs, measured latency, energy ...). Report-only metrics (test accuracy) are never
objectives: a strategy must not steer by them.

`Objectives` is the reader a multi-objective strategy and the Pareto utilities share: it turns a
result into the vector of named values, and into the all-minimised form the Pareto and
hypervolume code works in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nasforge.core import Result
from nasforge.errors import ConfigError

DIRECTIONS = ("max", "min")
#: names that always mean the estimator's own objective
PRIMARY_ALIASES = ("objective",)


class MissingObjective(ConfigError):
    """A result does not carry a value for a named objective."""


@dataclass(frozen=True)
class Objective:
    """One named quantity and whether larger (``max``) or smaller (``min``) is better."""

    name: str
    direction: str = "max"

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("an objective needs a name, e.g. val_acc:max")
        if self.direction not in DIRECTIONS:
            raise ConfigError(
                f"objective {self.name!r}: direction {self.direction!r} is not accepted; "
                f"use {' or '.join(DIRECTIONS)}"
            )

    @property
    def sign(self) -> float:
        """+1 for a maximised objective, -1 for a minimised one (value * sign is maximised)."""
        return 1.0 if self.direction == "max" else -1.0

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


def parse_objectives(text: str | Sequence[str] | None) -> tuple[Objective, ...]:
    """``"val_acc:max,latency_ms/pi5/onnx/cifar100:min"`` -> objectives. A name without
    ``:max``/``:min`` is maximised. Names must be distinct."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else list(text)
    objectives: list[Objective] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        name, sep, direction = part.rpartition(":")
        if not sep:
            name, direction = part, "max"
        objective = Objective(name.strip(), direction.strip())
        if any(o.name == objective.name for o in objectives):
            raise ConfigError(f"objective {objective.name!r} is named twice in {text!r}")
        objectives.append(objective)
    if not objectives:
        raise ConfigError(
            f"--objectives {text!r} names no objective; e.g. "
            "val_acc:max,latency_ms/pi5/onnx/cifar100:min"
        )
    return tuple(objectives)


@dataclass(frozen=True)
class Objectives:
    """The objectives of a run, bound to its estimator's objective name (``primary``).

    ``values`` reads them from a result; ``minimised`` gives the vector in which every entry
    is to be minimised (maximised values negated), the convention of `nasforge.pareto`.
    """

    objectives: tuple[Objective, ...]
    primary: str = "objective"

    def __post_init__(self) -> None:
        if not self.objectives:
            raise ConfigError("a multi-objective search needs at least one objective")

    @classmethod
    def of(cls, objectives: Any, primary: str = "objective") -> Objectives:
        """From an `Objectives`, objectives, or their text form."""
        if isinstance(objectives, Objectives):
            return objectives
        if isinstance(objectives, str) or (
            isinstance(objectives, Sequence) and all(isinstance(o, str) for o in objectives)
        ):
            return cls(parse_objectives(objectives), primary)
        return cls(tuple(objectives), primary)

    def __len__(self) -> int:
        return len(self.objectives)

    def __iter__(self) -> Iterable[Objective]:  # type: ignore[override]
        return iter(self.objectives)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objectives)

    @property
    def signs(self) -> tuple[float, ...]:
        return tuple(o.sign for o in self.objectives)

    def is_primary(self, name: str) -> bool:
        """Whether ``name`` means the estimator's own objective."""
        if name == self.primary or name in PRIMARY_ALIASES:
            return True
        return name == "val_acc" and self.primary.startswith("val_acc")

    def value(self, result: Result, name: str) -> float:
        if name in result.metrics:
            return float(result.metrics[name])
        if self.is_primary(name):
            return float(result.objective)
        raise MissingObjective(
            f"objective {name!r} is not among the results' values; they carry "
            f"{', '.join([self.primary, *sorted(result.metrics)])}"
        )

    def values(self, result: Result) -> tuple[float, ...]:
        return tuple(self.value(result, o.name) for o in self.objectives)

    def minimised(self, result: Result) -> tuple[float, ...]:
        """The values with every maximised one negated: smaller is better everywhere."""
        return tuple(-s * v for s, v in zip(self.signs, self.values(result), strict=True))

    def check(self, result: Result) -> None:
        """Raise `MissingObjective` (naming what the result does carry) unless every
        objective can be read from ``result``."""
        self.values(result)

    def describe(self) -> str:
        return ",".join(str(o) for o in self.objectives)

    def to_json(self) -> list[dict[str, str]]:
        return [{"name": o.name, "direction": o.direction} for o in self.objectives]
