"""How long a search may go on: a number of evaluations and/or seconds of cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nasforge.errors import ConfigError
from nasforge.history import History


@dataclass(frozen=True)
class Budget:
    """Stop asking after ``evaluations`` trials, or once the summed cost (seconds, real or
    simulated) of finished trials reaches ``seconds``, whichever comes first. Trials already in
    flight then finish and are kept."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.seconds is None:
            raise ConfigError("a budget needs evaluations or seconds")
        if self.evaluations is not None and (
            isinstance(self.evaluations, bool) or int(self.evaluations) != self.evaluations
        ):
            raise ConfigError(f"budget evaluations must be a whole number, got {self.evaluations}")
        if self.evaluations is not None and self.evaluations <= 0:
            raise ConfigError(f"budget must be > 0 evaluations, got {self.evaluations}")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ConfigError(f"budget must be > 0 seconds, got {self.seconds}")

    @classmethod
    def of(cls, value: Budget | int | float) -> Budget:
        """An int means evaluations; a Budget passes through."""
        if isinstance(value, Budget):
            return value
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"budget must be a whole number of evaluations, got {value}")
        return cls(evaluations=int(value))

    def allows_another(self, asked: int, history: History) -> bool:
        if self.evaluations is not None and asked >= self.evaluations:
            return False
        return self.seconds is None or history.total_cost < self.seconds

    def describe(self) -> str:
        parts = []
        if self.evaluations is not None:
            parts.append(f"{self.evaluations} evaluations")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} s of cost")
        return " or ".join(parts)
