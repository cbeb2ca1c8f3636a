"""Arch scorers: cheap, training-free scores a strategy may consult before it proposes.

An arch scorer is any object with a ``name`` and ``score(archs) -> np.ndarray`` (one float per
architecture, higher = better). Zero-cost proxies (`nasforge.estimators.proxies.ZeroCostProxy`,
computed on real minibatches, and `ProxyTable`, read from a CSV of precomputed scores) are the
ones the CLI builds (``--option proxy=NAME``); `ParamsScorer` is the simplest real one: the
parameter count, a baseline every zero-cost-proxy paper compares against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nasforge.core import Arch
from nasforge.errors import ConfigError


@runtime_checkable
class ArchScorer(Protocol):
    name: str

    def score(self, archs: Sequence[Arch]) -> np.ndarray: ...


def check_scorer(owner: str, scorer: object) -> ArchScorer:
    """``scorer`` if it is an arch scorer, else a one-line ConfigError naming ``owner``."""
    if scorer is None:
        raise ConfigError(
            f"{owner} needs an arch scorer (scorer=...): from the command line "
            "--option proxy=NAME (real training) or --option proxy_table=FILE --option "
            "proxy=COLUMN (a benchmark); from Python e.g. ZeroCostProxy, ProxyTable or "
            "ParamsScorer"
        )
    if not callable(getattr(scorer, "score", None)) or not isinstance(
        getattr(scorer, "name", None), str
    ):
        raise ConfigError(
            f"{owner}: scorer must have a name and a score(archs) -> array method, "
            f"got {type(scorer).__name__}"
        )
    return scorer  # type: ignore[return-value]


def scores_of(scorer: ArchScorer, archs: Sequence[Arch]) -> np.ndarray:
    """``scorer.score(archs)`` as a float vector of ``len(archs)``; NaN (a proxy that could
    not be computed) becomes -inf, so such an architecture is ranked last, never first."""
    values = np.asarray(scorer.score(list(archs)), dtype=float).reshape(-1)
    if len(values) != len(archs):
        raise ConfigError(
            f"scorer {scorer.name!r} returned {len(values)} scores for {len(archs)} architectures"
        )
    return np.where(np.isnan(values), -np.inf, values)


class ParamsScorer:
    """Score = trainable parameters of ``space.build(arch, **net)`` (more = better), counted
    analytically by ``space.param_count`` (no network is built)."""

    def __init__(self, space: Any, **net: Any):
        if not callable(getattr(space, "param_count", None)):
            raise ConfigError(f"space {space.name!r} cannot count parameters without training")
        self.space, self.net = space, net
        self.name = "params"

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([float(self.space.param_count(a, **self.net)) for a in archs])
