"""A space seen as a fixed sequence of categorical decisions.

Sequential strategies (REINFORCE/PPO controllers, MCTS, TPE) need a space as "decision t has
``choices[t]`` options". A space offers that view through an optional ``decisions()`` method
returning ``Decisions``; spaces whose shape varies (chain spaces of variable length) may not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nasforge.core import Arch
from nasforge.errors import ConfigError


@dataclass(frozen=True)
class Decisions:
    """``choices[t]``: number of options of decision t; ``decode`` turns a full sequence of
    option indices into an architecture, ``encode`` does the reverse."""

    choices: tuple[int, ...]
    decode: Callable[[Sequence[int]], Arch]
    encode: Callable[[Arch], tuple[int, ...]]


def decisions_of(space: object, needed_by: str = "this strategy") -> Decisions:
    """The space's ``decisions()``, or a ConfigError saying which strategy needs it."""
    own = getattr(space, "decisions", None)
    if callable(own):
        return own()
    raise ConfigError(
        f"{needed_by} needs a space that is a sequence of categorical decisions; space "
        f"{getattr(space, 'name', space)!r} has no decisions()"
    )
