"""Resume: replay a stored run's interleaving of asks and tells into a fresh strategy.

Strategies are seeded and deterministic (the same tells give the same asks), so a stored run is
rebuilt by asking again: before each stored ask, exactly the tells that preceded it
(``asked_after``, in ``tell_seq`` order). The strategy must ask for the stored architecture at
every step, which also detects a changed configuration. Finished trials are neither lost nor
evaluated twice; trials that were in flight are queued to run again under their own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasforge.errors import ConfigError
from nasforge.executors.base import Outcome
from nasforge.history import Trial
from nasforge.spaces.base import SearchSpace
from nasforge.store import StoredTrial
from nasforge.strategies.base import Strategy
from nasforge.telling import Teller


@dataclass
class Replayed:
    """Where the replay left the run: ``asked`` trials asked, the finished ``trials`` (for the
    history), and the numbers of trials that were in flight (to ``resubmit``)."""

    asked: int = 0
    trials: list[Trial] = field(default_factory=list)
    resubmit: list[int] = field(default_factory=list)


def replay(
    run: str, stored: list[StoredTrial], space: SearchSpace, strategy: Strategy, teller: Teller
) -> Replayed:
    """Rebuild ``strategy`` (through ``teller``, which it leaves holding the finished but untold
    outcomes in the order the original run would have told them) from the trials of ``run``."""
    told_order = sorted(
        (t for t in stored if t.state != "running" and t.tell_seq is not None),
        key=lambda t: t.tell_seq,  # type: ignore[arg-type, return-value]
    )
    done = Replayed()
    for trial in stored:
        if trial.number != done.asked:
            raise ConfigError(
                f"cannot resume run {run!r}: trial numbers jump from {done.asked} to "
                f"{trial.number} in the store"
            )
        while teller.told < (trial.asked_after or 0):
            _tell_stored(run, teller, told_order[teller.told])
        candidate = strategy.ask()
        arch = space.to_string(candidate.arch)
        if arch != trial.arch or candidate.fidelity != trial.fidelity:
            raise ConfigError(
                f"cannot resume run {run!r}: at trial {trial.number} the strategy asks "
                f"for {arch} but the store holds {trial.arch}; was the configuration "
                "(strategy, seed, space, workers) changed?"
            )
        done.asked += 1
        teller.asked(trial.number, candidate)
        if trial.state == "running":
            done.resubmit.append(trial.number)
            continue
        seconds = trial.seconds or 0.0
        done.trials.append(
            Trial(trial.number, candidate, trial.arch, trial.result, trial.error, seconds)
        )
        teller.arrived(
            Outcome(trial.number, trial.result, trial.error, seconds, trial.worker or "")
        )
    # what is still untold is told later in the order the original run would have told it
    tell_seq = {t.number: t.tell_seq for t in stored}
    teller.reorder(lambda number: tell_seq[number] or 0)
    return done


def _tell_stored(run: str, teller: Teller, trial: StoredTrial) -> None:
    outcome = teller.untold.pop(trial.number, None)
    if outcome is None:
        raise ConfigError(
            f"cannot resume run {run!r}: trial {trial.number} was told before it was "
            "asked; the store is inconsistent"
        )
    teller.tell(outcome)
