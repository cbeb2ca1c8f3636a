"""Errors a user can cause and fix.

Every error here carries a one-line message that names what was wrong and what is accepted.
The CLI prints that line and exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class NasforgeError(ValueError):
    """Base class for errors caused by input (arguments, files, data) rather than by a bug."""

    #: raised in a trial, retrying other architectures cannot fix it: the search stops
    fatal_to_search = True


class InvalidArchError(NasforgeError):
    """An architecture string or value that the search space does not accept."""


class UnknownNameError(NasforgeError):
    """A name (space, strategy, dataset, estimator, op ...) that is not registered."""

    def __init__(self, kind: str, name: str, accepted: Iterable[str]):
        self.kind, self.name, self.accepted = kind, name, sorted(accepted)
        super().__init__(f"unknown {kind} {name!r}; accepted: {', '.join(self.accepted)}")


class DataNotFoundError(NasforgeError):
    """A dataset or benchmark table that is not where nasforge looked for it."""


class DataFormatError(NasforgeError):
    """A data file that exists but is not in the format expected (names file and place)."""


class ConfigError(NasforgeError):
    """A bad setting: a budget <= 0, a negative population, a missing run ..."""


class TrainingDiverged(NasforgeError):
    """A training whose loss became NaN or infinite. Caused by the recipe (learning rate, batch
    size), so it is a user's error with advice; in a search it fails that one trial only (the
    next architecture may train fine), in final training it ends the command."""

    #: a search goes on after a diverged trial (see `executors.base.run_job`)
    fatal_to_search = False


class NasforgeWarning(UserWarning):
    """Advice about a setting that works but is likely not what the user wants; the CLI prints
    it as one ``nasforge: warning: ...`` line."""


class FewStepsWarning(NasforgeWarning):
    """A training recipe with too few optimisation steps to tell architectures apart."""
