"""ASHA: asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020, Algorithm 2).

Successive halving without waiting: rung ``k`` evaluates at fidelity ``max * eta**-(K-k)`` (the
ladder of ``hyperband.fidelity_ladder``, top rung = full fidelity). On each ``ask``, from the
top rung down, the best not-yet-promoted architecture among the top ``floor(n_k / eta)`` of the
``n_k`` results in rung ``k`` goes up to rung ``k+1``; if none qualifies, a new architecture
starts at the bottom rung. So a free worker always gets work: ``ask`` never raises
``NoCandidateYet``. A few promotions are "mistakes" that synchronous SH would not make (a rung's
top third early on is judged on fewer results); the paper shows the throughput gained outweighs
them. ``early_stopping_rate`` ``s`` skips the ``s`` lowest rungs (the paper's ``s``).

A failed trial counts toward ``n_k`` as the worst result and is never promoted. As for
Hyperband, the gain over full-fidelity search shows under a budget in cost seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Constraint, SeededStrategy
from nasforge.strategies.hyperband import fidelity_ladder

_EPS = 1e-9


@dataclass
class _Done:
    """A finished evaluation in a rung; ``objective`` is -inf when it failed."""

    arch: Arch
    objective: float
    order: int
    promoted: bool = False


class ASHA(SeededStrategy):
    name = "asha"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        min_fidelity: float | None = None,
        max_fidelity: float | None = None,
        eta: float = 3,
        integer_fidelity: bool = True,
        early_stopping_rate: int = 0,
    ):
        if min_fidelity is None or max_fidelity is None:
            raise ConfigError(
                "asha needs min_fidelity and max_fidelity (the estimator's fidelity_range, "
                "e.g. 1 and the number of epochs)"
            )
        super().__init__(space, seed, constraint)
        ladder = fidelity_ladder(min_fidelity, max_fidelity, eta, integer_fidelity)
        if isinstance(early_stopping_rate, bool) or not (
            isinstance(early_stopping_rate, int) and 0 <= early_stopping_rate < len(ladder)
        ):
            raise ConfigError(
                f"early_stopping_rate must be a whole number in [0, {len(ladder) - 1}] for "
                f"fidelities {ladder}, got {early_stopping_rate!r}"
            )
        self.min_fidelity, self.max_fidelity = float(min_fidelity), float(max_fidelity)
        self.eta, self.integer_fidelity = eta, integer_fidelity
        self.fidelities = ladder[early_stopping_rate:]
        self._rung_of = {f: k for k, f in enumerate(self.fidelities)}
        self.rungs: list[list[_Done]] = [[] for _ in self.fidelities]
        self._order = 0  # arrival counter: ties in objective go to the earlier result

    def ask(self) -> Candidate:
        for k in range(len(self.rungs) - 2, -1, -1):
            done = self.rungs[k]
            quota = math.floor(len(done) / self.eta + _EPS)
            if quota == 0:
                continue
            top = sorted(done, key=lambda d: (-d.objective, d.order))[:quota]
            for entry in top:
                if not entry.promoted and math.isfinite(entry.objective):
                    entry.promoted = True
                    return Candidate(entry.arch, self.fidelities[k + 1])
        return Candidate(self.sample_new(), self.fidelities[0])

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        self._record(candidate, float(result.objective))

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        self._record(candidate, -math.inf)

    def _record(self, candidate: Candidate, objective: float) -> None:
        k = self._rung_of.get(candidate.fidelity)  # type: ignore[arg-type]
        if k is None:
            return  # a fidelity this strategy never asks for: not part of any rung
        self.rungs[k].append(_Done(candidate.arch, objective, self._order))
        self._order += 1
