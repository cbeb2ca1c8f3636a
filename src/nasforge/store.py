"""The store: every run and every trial, written by the driver alone, before and after each trial.

One SQLite file per project by default. Each trial is written when it starts (state ``running``)
and when it ends (``complete`` or ``failed``, with its result or reason), each write its own
transaction, so a run killed at any moment keeps every finished trial, and a resumed run knows
exactly which trial was in flight. Only the driver writes, so there is no lock contention.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.core import Result
from nasforge.errors import ConfigError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    number INTEGER NOT NULL,
    arch TEXT NOT NULL,
    fidelity REAL,
    state TEXT NOT NULL,
    objective REAL,
    result TEXT,
    error TEXT,
    started REAL NOT NULL,
    finished REAL,
    PRIMARY KEY (run_id, number)
);
"""

RUN_STATES = ("running", "finished", "failed", "interrupted")


@dataclass(frozen=True)
class StoredTrial:
    number: int
    arch: str
    fidelity: float | None
    state: str  # running | complete | failed
    result: Result | None
    error: str | None
    started: float
    finished: float | None


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
        a run whose driver was killed reads as ``interrupted``."""
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


class Store:
    """A SQLite store. ``Store("runs.db")``; the file and its folder are created on first use."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"store {self.path} is a directory; give a file such as runs.db")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise ConfigError(f"store {self.path} is not a nasforge SQLite store ({err})") from None
        self._check_version()

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise ConfigError(
                f"store {self.path} has schema version {row[0]}; this nasforge reads version "
                f"{SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self.db.close()

    # runs -----------------------------------------------------------------------------------

    def create_run(self, name: str, config: dict[str, Any]) -> StoredRun:
        now = time.time()
        try:
            self.db.execute(
                "INSERT INTO runs (name, config, status, created, updated, host, pid) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (name, json.dumps(config), now, now, socket.gethostname(), os.getpid()),
            )
        except sqlite3.IntegrityError:
            raise ConfigError(
                f"run {name!r} already exists in {self.path}; choose another name or resume it"
            ) from None
        return self.get_run(name)

    def find_run(self, name: str) -> StoredRun | None:
        row = self.db.execute(
            "SELECT id, name, config, status, created, updated, host, pid FROM runs WHERE name=?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        return StoredRun(row[0], row[1], json.loads(row[2]), *row[3:])

    def get_run(self, name: str) -> StoredRun:
        run = self.find_run(name)
        if run is None:
            known = self.run_names()
            listing = ", ".join(known) if known else "none"
            raise ConfigError(f"no run named {name!r} in {self.path}; runs there: {listing}")
        return run

    def run_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM runs ORDER BY created")]

    def claim_run(self, run: StoredRun) -> None:
        """Mark a run as running in this process (on resume)."""
        self.db.execute(
            "UPDATE runs SET status='running', updated=?, host=?, pid=? WHERE id=?",
            (time.time(), socket.gethostname(), os.getpid(), run.id),
        )

    def set_status(self, run: StoredRun, status: str) -> None:
        assert status in RUN_STATES, status
        self.db.execute(
            "UPDATE runs SET status=?, updated=? WHERE id=?", (status, time.time(), run.id)
        )

    # trials ---------------------------------------------------------------------------------

    def start_trial(self, run: StoredRun, number: int, arch: str, fidelity: float | None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO trials (run_id, number, arch, fidelity, state, started) "
            "VALUES (?, ?, ?, ?, 'running', ?)",
            (run.id, number, arch, fidelity, time.time()),
        )

    def finish_trial(
        self, run: StoredRun, number: int, result: Result | None, error: str | None = None
    ) -> None:
        state = "complete" if result is not None else "failed"
        self.db.execute(
            "UPDATE trials SET state=?, objective=?, result=?, error=?, finished=? "
            "WHERE run_id=? AND number=?",
            (
                state,
                None if result is None else result.objective,
                None if result is None else json.dumps(result.to_json()),
                error,
                time.time(),
                run.id,
                number,
            ),
        )

    def trials(self, run: StoredRun) -> list[StoredTrial]:
        rows = self.db.execute(
            "SELECT number, arch, fidelity, state, result, error, started, finished "
            "FROM trials WHERE run_id=? ORDER BY number",
            (run.id,),
        ).fetchall()
        return [
            StoredTrial(
                number=r[0],
                arch=r[1],
                fidelity=r[2],
                state=r[3],
                result=None if r[4] is None else Result.from_json(json.loads(r[4])),
                error=r[5],
                started=r[6],
                finished=r[7],
            )
            for r in rows
        ]
