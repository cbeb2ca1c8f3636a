"""Checks of the keywords a space's ``build`` takes (channels, depth, dropout, ...).

Every space validates its network options before building, so a bad ``--channels`` fails with
one line naming the option and what is accepted, not with a shape error deep inside torch. The
rules are the same in every space (an int is never a bool, a numpy scalar counts as a number),
so they are written once here; each returns the value as a plain Python scalar.
"""

from __future__ import annotations

import math

import numpy as np

from nasforge.errors import ConfigError


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def int_option(what: str, value: object, low: int = 1) -> int:
    """``value`` as an int >= ``low``; ``what`` names it in the error ("NB201 network C")."""
    if not _is_int(value) or value < low:  # type: ignore[operator]
        raise ConfigError(f"{what} must be an int >= {low}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def optional_int_option(what: str, value: object, low: int = 1) -> int | None:
    """``None``, or an int >= ``low``."""
    if value is None:
        return None
    if not _is_int(value) or value < low:  # type: ignore[operator]
        raise ConfigError(f"{what} must be None or an int >= {low}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def fraction_option(what: str, value: object) -> float:
    """A probability-like number in [0, 1) (dropout, drop-path)."""
    if not _is_number(value) or not 0.0 <= value < 1.0:  # type: ignore[operator]
        raise ConfigError(f"{what} must be in [0, 1), got {value!r}")
    return float(value)  # type: ignore[arg-type]


def positive_option(what: str, value: object) -> float:
    """A finite number > 0 (a width multiplier)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type,operator]
        raise ConfigError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def bool_option(what: str, value: object) -> bool:
    """True or False (numpy booleans included); 0/1 and strings are refused."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{what} must be True or False, got {value!r}")
    return bool(value)
