"""Successive halving (Jamieson & Talwalkar, AISTATS 2016) and Hyperband (Li et al., JMLR 2018).

Both spend little on many architectures and much on few: a *bracket* evaluates ``n_0`` new
architectures at a low fidelity (``Candidate.fidelity``: e.g. epochs of training), keeps the top
``1/eta`` by objective and evaluates those at ``eta`` times the fidelity, and so on until the
survivors reach the maximum fidelity. Successive halving repeats its most aggressive bracket;
Hyperband cycles through brackets from most to least aggressive, hedging against low fidelities
that rank architectures badly.

The schedule follows Li et al. (Algorithm 1, Table 1) in units of the minimum fidelity:
``R = max/min``, ``s_max = floor(log_eta R)``; bracket ``s`` starts ``n = ceil((s_max+1)/(s+1) *
eta**s)`` architectures and rung ``i`` of it holds ``floor(n * eta**-i)`` of them at fidelity
``max * eta**(i-s)``. Fidelities are anchored at the maximum, so the last rung is always full
fidelity (where ``max/min`` is not a power of ``eta`` the lowest rung is above ``min``).

Both are *synchronous*: a rung is promoted only when all its results are in, so with several
workers ``ask`` raises ``NoCandidateYet`` while a rung waits (ASHA, ``asha.py``, never waits).
A failed trial counts as the worst result of its rung and is never promoted, so it cannot stall
a rung. Multi-fidelity search pays off under a budget of cost seconds (``Budget(seconds=...)``):
counted in evaluations, a 1-epoch trial costs as much budget as a full one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nasforge.capabilities import capabilities_of, label_of
from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, NoCandidateYet, SeededStrategy

_EPS = 1e-9  # float slack for logs and powers of eta


@dataclass(frozen=True)
class Rung:
    """One step of a bracket: how many architectures are evaluated, at which fidelity."""

    size: int
    fidelity: float


def fidelity_range_of(estimator: Any) -> tuple[float, float]:
    """The estimator's declared ``fidelity_range`` as ``(low, high)``, for building a
    multi-fidelity strategy."""
    value = capabilities_of(estimator).fidelity_range
    if value is None:
        raise ConfigError(
            f"estimator {label_of(estimator)} declares no fidelity_range; "
            "give min_fidelity and max_fidelity explicitly"
        )
    return value


def check_fidelity_args(
    min_fidelity: float, max_fidelity: float, eta: float, integer_fidelity: bool
) -> None:
    """Raise ConfigError unless ``0 < min <= max`` (whole numbers if integer) and ``eta > 1``."""
    for label, value in (("min_fidelity", min_fidelity), ("max_fidelity", max_fidelity)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise ConfigError(f"{label} must be a number > 0, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{label} must be finite, got {value!r}")
        if integer_fidelity and value != int(value):
            raise ConfigError(
                f"{label} must be a whole number with integer_fidelity=True, got {value!r}"
            )
    if min_fidelity > max_fidelity:
        raise ConfigError(
            f"min_fidelity ({min_fidelity}) must not exceed max_fidelity ({max_fidelity})"
        )
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not eta > 1:
        raise ConfigError(f"eta must be a number > 1, got {eta!r}")


def max_bracket(min_fidelity: float, max_fidelity: float, eta: float) -> int:
    """``s_max = floor(log_eta(max/min))``: how many times the fidelity can be cut by ``eta``."""
    return math.floor(math.log(max_fidelity / min_fidelity) / math.log(eta) + _EPS)


def fidelity_ladder(
    min_fidelity: float, max_fidelity: float, eta: float = 3, integer_fidelity: bool = True
) -> list[float]:
    """The rung fidelities ``max * eta**-k`` for ``k = s_max .. 0``, lowest first.

    With ``integer_fidelity`` each is rounded to a whole number (epochs); rungs that rounding
    would merge are refused, since a promotion must add fidelity.
    """
    check_fidelity_args(min_fidelity, max_fidelity, eta, integer_fidelity)
    s_max = max_bracket(min_fidelity, max_fidelity, eta)
    ladder = [float(max_fidelity * eta ** -(s_max - i)) for i in range(s_max + 1)]
    if integer_fidelity:
        ladder = [float(min(max(round(f), min_fidelity), max_fidelity)) for f in ladder]
        if len(set(ladder)) != len(ladder):
            raise ConfigError(
                f"eta={eta} is too small for whole-number fidelities in "
                f"[{min_fidelity:g}, {max_fidelity:g}]: rungs {ladder} repeat; raise eta"
            )
    else:
        ladder[0] = max(ladder[0], min_fidelity)  # undo float round-off below min
    return ladder


def successive_halving_rungs(n: int, fidelities: list[float], eta: float) -> list[Rung]:
    """A bracket of ``n`` architectures over ``fidelities``: rung ``i`` keeps
    ``floor(n * eta**-i)`` of them (at least one)."""
    return [
        Rung(max(1, math.floor(n / eta**i + _EPS)), fidelity)
        for i, fidelity in enumerate(fidelities)
    ]


def hyperband_brackets(
    min_fidelity: float, max_fidelity: float, eta: float = 3, integer_fidelity: bool = True
) -> list[list[Rung]]:
    """Hyperband's brackets ``s = s_max .. 0`` (Li et al. 2018, Algorithm 1)."""
    ladder = fidelity_ladder(min_fidelity, max_fidelity, eta, integer_fidelity)
    s_max = len(ladder) - 1
    brackets = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta**s - _EPS)
        brackets.append(successive_halving_rungs(n, ladder[s_max - s :], eta))
    return brackets


@dataclass
class _Entry:
    """One evaluation in a rung: ``objective`` is None while pending, -inf if it failed."""

    arch: Arch
    order: int
    objective: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.objective is not None and math.isfinite(self.objective)


@dataclass
class _BracketState:
    number: int
    rungs: list[Rung]
    level: int = 0
    promoted: list[Arch] = field(default_factory=list)  # to evaluate at ``level`` (> 0)
    issued: list[_Entry] = field(default_factory=list)  # evaluations asked at ``level``

    @property
    def rung(self) -> Rung:
        return self.rungs[self.level]

    @property
    def to_issue(self) -> int:
        wanted = self.rung.size if self.level == 0 else len(self.promoted)
        return wanted - len(self.issued)

    @property
    def pending(self) -> int:
        return sum(e.objective is None for e in self.issued)


class SuccessiveHalving(SeededStrategy):
    """Synchronous successive halving, its most aggressive bracket repeated with new
    architectures: ``n_initial`` (default ``eta**s_max``) at the lowest rung, down to one at
    ``max_fidelity``."""

    name = "sh"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        min_fidelity: float | None = None,
        max_fidelity: float | None = None,
        eta: float = 3,
        integer_fidelity: bool = True,
        n_initial: int | None = None,
    ):
        if min_fidelity is None or max_fidelity is None:
            raise ConfigError(
                f"{self.name} needs min_fidelity and max_fidelity (the estimator's "
                "fidelity_range, e.g. 1 and the number of epochs)"
            )
        super().__init__(space, seed, constraint)
        self.min_fidelity, self.max_fidelity = float(min_fidelity), float(max_fidelity)
        self.eta, self.integer_fidelity = eta, integer_fidelity
        ladder = fidelity_ladder(min_fidelity, max_fidelity, eta, integer_fidelity)
        if n_initial is None:
            n_initial = round(eta ** (len(ladder) - 1))
        if isinstance(n_initial, bool) or not isinstance(n_initial, int) or n_initial < 1:
            raise ConfigError(f"n_initial must be a whole number >= 1, got {n_initial!r}")
        self.brackets = self._make_brackets(ladder, n_initial)
        self._order = 0  # issue counter: ties in objective go to the earlier evaluation
        self._pending: dict[Candidate, list[_Entry]] = {}
        self.bracket = _BracketState(0, self.brackets[0])

    def _make_brackets(self, ladder: list[float], n_initial: int) -> list[list[Rung]]:
        return [successive_halving_rungs(n_initial, ladder, self.eta)]

    # the protocol -----------------------------------------------------------------------

    def ask(self) -> Candidate:
        while True:
            bracket = self.bracket
            if bracket.to_issue > 0:
                return self._issue(bracket)
            if bracket.pending:
                raise NoCandidateYet(
                    f"rung {bracket.level} of bracket {bracket.number} waits for "
                    f"{bracket.pending} result(s)"
                )
            if not self._promote(bracket):
                number = bracket.number + 1
                self.bracket = _BracketState(number, self.brackets[number % len(self.brackets)])

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self._settle(candidate, float(result.objective))

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self._settle(candidate, -math.inf)

    # hooks ----------------------------------------------------------------------------------

    def new_arch(self, fidelity: float) -> Arch:
        """A new architecture for the lowest rung of a bracket (BOHB overrides this)."""
        return self.sample_new()

    # internals ------------------------------------------------------------------------------

    def _issue(self, bracket: _BracketState) -> Candidate:
        if bracket.level == 0:
            arch = self.new_arch(bracket.rung.fidelity)
        else:
            arch = bracket.promoted[len(bracket.issued)]
        entry = _Entry(arch, self._order)
        self._order += 1
        bracket.issued.append(entry)
        candidate = Candidate(arch, bracket.rung.fidelity)
        self._pending.setdefault(candidate, []).append(entry)
        return candidate

    def _settle(self, candidate: Candidate, objective: float) -> None:
        entries = self._pending.get(candidate)
        if not entries:
            return  # not asked by this strategy (or told twice): nothing to settle
        entries.pop(0).objective = objective
        if not entries:
            del self._pending[candidate]

    def _promote(self, bracket: _BracketState) -> bool:
        """Move a finished rung's top ``size`` successes up; False when the bracket is over."""
        if bracket.level + 1 >= len(bracket.rungs):
            return False
        survivors = sorted(
            (e for e in bracket.issued if e.succeeded),
            key=lambda e: (-e.objective, e.order),  # type: ignore[operator]
        )
        keep = survivors[: bracket.rungs[bracket.level + 1].size]
        if not keep:
            return False  # every trial of the rung failed: nothing to promote
        bracket.level += 1
        bracket.promoted = [e.arch for e in keep]
        bracket.issued = []
        return True


class Hyperband(SuccessiveHalving):
    """Hyperband: successive-halving brackets ``s = s_max .. 0`` in turn, then again."""

    name = "hyperband"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        min_fidelity: float | None = None,
        max_fidelity: float | None = None,
        eta: float = 3,
        integer_fidelity: bool = True,
    ):
        super().__init__(space, seed, constraint, min_fidelity, max_fidelity, eta, integer_fidelity)

    def _make_brackets(self, ladder: list[float], n_initial: int) -> list[list[Rung]]:
        return hyperband_brackets(
            self.min_fidelity, self.max_fidelity, self.eta, self.integer_fidelity
        )
