"""Small estimators for the pool tests. They live in their own module (not the test module) so
that spawned workers import them by module path without importing pytest or the tests.

Each candidate's ``arch`` is a script: ``"ok:N"`` succeeds with objective 2*N, ``"crash"`` exits
the process with code 3, ``"hang"`` sleeps far past any limit, ``"hog:MB"`` holds MB megabytes
for a while, ``"spike:MB"`` touches MB megabytes and frees them at once, ``"raise"`` raises
ValueError, ``"config"`` raises ConfigError, ``"sleep:S"`` sleeps S seconds and succeeds.
"""

from __future__ import annotations

import os
import time

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError

#: how many times an estimator was unpickled in this process (once per worker is the contract)
LOADS = 0
#: how many times an estimator was pickled in this process (the driver: once per pool)
PICKLES = 0


class Scripted:
    name = "scripted"
    objective_name = "double"

    def __getstate__(self) -> dict:
        global PICKLES
        PICKLES += 1
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        global LOADS
        LOADS += 1
        self.__dict__.update(state)

    def evaluate(self, candidate: Candidate) -> Result:
        command, _, argument = str(candidate.arch).partition(":")
        if command == "crash":
            os._exit(3)
        if command == "hang":
            time.sleep(3600)
        if command == "raise":
            raise ValueError("boom")
        if command == "config":
            raise ConfigError("bad setting for this candidate")
        if command in ("hog", "spike"):
            block = b"x" * (int(argument) * 2**20)  # written, so resident
            if command == "hog":
                time.sleep(30)
            del block
            return Result(0.0)
        if command == "sleep":
            time.sleep(float(argument))
            argument = "1"
        return Result(
            2.0 * float(argument),
            metrics={"pid": float(os.getpid()), "loads": float(LOADS)},
        )


class ThreadsProbe:
    """Imports torch only when evaluating (as a lazily-importing estimator would) and reports
    the intra-op thread count the worker gave it."""

    name = "threads-probe"
    objective_name = "threads"

    def evaluate(self, candidate: Candidate) -> Result:
        import torch

        return Result(float(torch.get_num_threads()), metrics={"pid": float(os.getpid())})


class Unloadable:
    """Pickles fine but fails to load in a worker (as a class defined interactively would)."""

    name = "unloadable"
    objective_name = "none"

    def __init__(self) -> None:
        self.state = "something to restore"  # an empty state would skip __setstate__

    def __setstate__(self, state: dict) -> None:
        raise ImportError("cannot rebuild this estimator here")

    def evaluate(self, candidate: Candidate) -> Result:  # pragma: no cover - never loaded
        return Result(0.0)
