"""Constraints a strategy checks before proposing: hardware-aware search starts here.

A constraint is any callable ``arch -> bool``. These build the common ones from what a space can
compute without training.
"""

from __future__ import annotations

from typing import Any

from nasforge.core import Arch
from nasforge.errors import ConfigError


class MaxParams:
    """Feasible when the network ``space.build(arch, **net)`` has at most ``limit`` parameters.

    Uses ``space.param_count`` (analytic, microseconds) so no network is built.
    """

    def __init__(self, space: Any, limit: float, **net: Any):
        if not hasattr(space, "param_count"):
            raise ConfigError(f"space {space.name!r} cannot count parameters without training")
        if limit <= 0:
            raise ConfigError(f"parameter limit must be > 0, got {limit}")
        self.space, self.limit, self.net = space, limit, net
        self.description = f"params <= {limit:,.0f}"

    def __call__(self, arch: Arch) -> bool:
        return self.space.param_count(arch, **self.net) <= self.limit
