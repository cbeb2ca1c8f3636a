"""Small estimators for the pool tests. They live in their own module (not the test module) so
that spawned workers import them by module path without importing pytest or the tests.

Each candidate's ``arch`` is a script: ``"ok:N"`` succeeds with objective 2*N, ``"crash"`` exits
the process with code 3, ``"hang"`` sleeps far past any limit, ``"hog:MB"`` holds MB megabytes
for a while, ``"spike:MB[:S]"`` touches MB megabytes and frees them at once (then sleeps S
seconds), ``"leak:MB"`` keeps MB megabytes after it returns, ``"raise"`` raises ValueError,
``"config"`` raises ConfigError, ``"sleep:S"`` sleeps S seconds and succeeds.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError

#: how many times an estimator was unpickled in this process (once per worker is the contract)
LOADS = 0
#: how many times an estimator was pickled in this process (the driver: once per pool)
PICKLES = 0
#: what ``leak:MB`` keeps alive
_LEAKED: list[bytes] = []


def count_load(counter: str) -> int:
    """Add one to a load counter shared by processes (a file that grows a byte per load) and
    return this load's number, counted from 1. O_APPEND makes each write atomic, and the
    offset after it is this writer's own, so two workers loading at once get two numbers."""
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b"x")
        return os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)


def loads_counted(counter: str | Path) -> int:
    return Path(counter).stat().st_size if Path(counter).exists() else 0


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
        if command in ("hog", "spike", "leak"):
            megabytes, _, pause = argument.partition(":")
            block = b"x" * (int(megabytes) * 2**20)  # written, so resident
            if command == "hog":
                time.sleep(30)
            if command == "leak":
                _LEAKED.append(block)
            del block
            time.sleep(float(pause or 0))
            return Result(0.0, metrics={"pid": float(os.getpid())})
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


class FailsToStart(Scripted):
    """`Scripted`, but only the first ``good_loads`` loads (counted over all processes in the
    file ``counter``) succeed; the next ``bad_loads`` (None: all later ones) fail to start the
    way ``how`` says: ``"raise"`` (the estimator cannot be loaded), ``"exit"`` (the process
    dies while loading, code 4) or ``"hang"`` (loading never ends: the start-up timeout must
    catch it)."""

    name = "fails-to-start"

    def __init__(self, counter: str | Path, good_loads: int, how: str = "raise", bad_loads=None):
        self.counter, self.good_loads, self.how = str(counter), good_loads, how
        self.bad_loads = bad_loads

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        number = count_load(self.counter)
        if number <= self.good_loads:
            return
        if self.bad_loads is not None and number > self.good_loads + self.bad_loads:
            return
        if self.how == "exit":
            os._exit(4)
        if self.how == "hang":
            time.sleep(3600)
        raise OSError("no space left to load the estimator")


class ArchTrials(FailsToStart):
    """`FailsToStart` for real spaces' architectures: each trial waits (at most 30 s) until
    ``wait_loads`` loads have happened, so the pool has settled before results come in, then
    scores the architecture string (a fixed function of it). The first trial that finds the
    file ``crash`` removes it and kills its worker (code 3), as a crashing training would."""

    name = "arch-trials"
    objective_name = "score"

    def __init__(self, counter, good_loads, how="exit", wait_loads=0, crash=None, pause=0.0):
        super().__init__(counter, good_loads, how)
        self.wait_loads, self.crash, self.pause = wait_loads, crash and str(crash), pause

    def evaluate(self, candidate: Candidate) -> Result:
        if self.crash is not None:
            try:
                os.remove(self.crash)
            except FileNotFoundError:
                pass
            else:
                os._exit(3)
        deadline = time.monotonic() + 30.0
        while loads_counted(self.counter) < self.wait_loads and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(self.pause)
        text = str(candidate.arch)
        return Result(float(sum(map(ord, text)) % 97), metrics={"pid": float(os.getpid())})


def split_digests(train) -> dict[str, float]:
    """48-bit digests (exact as floats) of what a `Train` trains and scores on: the train and
    validation images and labels of its split, and the test set."""
    data = train.dataset
    parts = {
        "train_x": data.train_x.index_select(0, train.train_idx),
        "train_y": data.train_y.index_select(0, train.train_idx),
        "val_x": data.train_x.index_select(0, train.val_idx),
        "val_y": data.train_y.index_select(0, train.val_idx),
        "test_x": data.test_x,
        "test_y": data.test_y,
    }
    return {
        name: float(int(hashlib.sha256(np.ascontiguousarray(t.numpy())).hexdigest()[:12], 16))
        for name, t in parts.items()
    }


class SplitDigests:
    """Reports the digests of the `Train` it carries, as the worker that unpickled it sees it."""

    name = "split-digests"
    objective_name = "none"

    def __init__(self, train) -> None:
        self.train = train

    def evaluate(self, candidate: Candidate) -> Result:
        return Result(0.0, metrics=split_digests(self.train))
