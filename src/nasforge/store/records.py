"""What the store hands back: a run and its trials, as plain frozen values."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from nasforge.core import Result

RUN_STATES = ("running", "finished", "failed", "interrupted")
TRIAL_STATES = ("running", "complete", "failed")


@dataclass(frozen=True)
class StoredTrial:
    """One trial. ``asked_after`` (tells the strategy had received when this trial was asked)
    and ``tell_seq`` (its place in the order results and failures were told; ``None`` until
    told) let a resumed run replay the exact interleaving of asks and tells of an asynchronous
    run. ``worker`` ran it, in ``seconds`` of wall time."""

    number: int
    arch: str
    fidelity: float | None
    state: str  # running | complete | failed
    result: Result | None
    error: str | None
    started: float
    finished: float | None
    worker: str | None = None
    seconds: float | None = None
    asked_after: int | None = None
    tell_seq: int | None = None


@dataclass(frozen=True)
class StoredRun:
    id: int
    name: str
    config: dict[str, Any]
    status: str
    created: float
    updated: float
    host: str
    pid: int

    @property
    def effective_status(self) -> str:
        """``running`` only if the process that owns the run is still alive on this host;
        a run whose driver was killed reads as ``interrupted``. (A run owned by another host
        cannot be checked and reads as ``running``.)"""
        if self.status != "running":
            return self.status
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return "interrupted"
        return self.status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
