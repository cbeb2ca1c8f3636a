"""The store: every run and every trial, written by the driver before and after each trial.

Each trial is written when it starts (state ``running``, with ``asked_after``) and when it ends
(``complete`` or ``failed``, with its result or reason, worker, seconds and ``tell_seq``). Every
write is its own committed transaction, so a run killed at any moment keeps every finished trial
and a resumed run knows exactly which trials were in flight. Only the driver writes; any number
of readers (``nasforge show``, another Store object) may read meanwhile.

The statements below are the only SQL; `dialects` holds what differs between SQLite and
PostgreSQL. A store of an older schema version that `_MIGRATIONS` knows is upgraded in place
when opened (one transaction); any other version is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from nasforge.core import Result
from nasforge.errors import ConfigError
from nasforge.names import check_run_name
from nasforge.store.dialects import Dialect, dialect_for, one_line
from nasforge.store.records import RUN_STATES, TRIAL_STATES, StoredRun, StoredTrial
from nasforge.store.urls import ACCEPTED, StoreURL

#: Version 2 added trials.worker, seconds, asked_after and tell_seq (asynchronous resume);
#: version 3 the ``finals`` table (a run's final-training results live in its store), version 4 the
#: ``oneshot`` table (a one-shot run's α trajectory, derived cell and weight-sharing check).
SCHEMA_VERSION = 4

_TABLES = ("meta", "runs", "trials", "finals", "oneshot")
#: tables every version has; the others may be added by a migration
_BASE_TABLES = ("meta", "runs", "trials")


def _finals_table(d: Dialect) -> str:
    return f"""CREATE TABLE finals (
            run_id {d.id_type} PRIMARY KEY REFERENCES runs(id),
            result TEXT NOT NULL,
            updated {d.float_type} NOT NULL
        )"""


#: ``version -> statements that upgrade a store of that version to the next``
def _oneshot_table(d: Dialect) -> str:
    """A one-shot run's record: its method, the α trajectory per epoch, the derived cell and
    the weight-sharing check (one JSON object, rewritten after every epoch)."""
    return f"""CREATE TABLE oneshot (
            run_id {d.id_type} PRIMARY KEY REFERENCES runs(id),
            record TEXT NOT NULL,
            updated {d.float_type} NOT NULL
        )"""


_MIGRATIONS: dict[int, Callable[[Dialect], list[str]]] = {
    2: lambda d: [_finals_table(d)],
    3: lambda d: [_oneshot_table(d)],
}


def _schema(d: Dialect) -> list[str]:
    real = d.float_type
    return [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE runs (
            id {d.id_column},
            name TEXT NOT NULL UNIQUE,
            config TEXT NOT NULL,
            status TEXT NOT NULL,
            created {real} NOT NULL,
            updated {real} NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL
        )""",
        f"""CREATE TABLE trials (
            run_id {d.id_type} NOT NULL REFERENCES runs(id),
            number INTEGER NOT NULL,
            arch TEXT NOT NULL,
            fidelity {real},
            state TEXT NOT NULL,
            objective {real},
            result TEXT,
            error TEXT,
            worker TEXT,
            seconds {real},
            asked_after INTEGER,
            tell_seq INTEGER,
            started {real} NOT NULL,
            finished {real},
            PRIMARY KEY (run_id, number)
        )""",
        _finals_table(d),
        _oneshot_table(d),
    ]


_RUN_COLUMNS = "id, name, config, status, created, updated, host, pid"
_TRIAL_COLUMNS = (
    "number, arch, fidelity, state, result, error, started, finished, "
    "worker, seconds, asked_after, tell_seq"
)
#: the columns a page of trials can be sorted by (the dashboard's table), name -> SQL column
PAGE_SORTS = {
    "number": "number",
    "objective": "objective",
    "state": "state",
    "fidelity": "fidelity",
    "seconds": "seconds",
    "arch": "arch",
    "finished": "finished",
}
_STATEMENTS = {
    "version": "SELECT value FROM meta WHERE key = 'schema_version'",
    "set_version": "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
    "create_run": (
        "INSERT INTO runs (name, config, status, created, updated, host, pid) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?)"
    ),
    "find_run": f"SELECT {_RUN_COLUMNS} FROM runs WHERE name = ?",
    "run_names": "SELECT name FROM runs ORDER BY created, id",
    # Claim only if nobody claimed the run since it was read: two resumes cannot both win.
    "claim_run": (
        "UPDATE runs SET status = 'running', updated = ?, host = ?, pid = ? "
        "WHERE id = ? AND status = ? AND host = ? AND pid = ?"
    ),
    "set_status": "UPDATE runs SET status = ?, updated = ? WHERE id = ?",
    # Starting a trial again (the one in flight when a run stopped) replaces it.
    "start_trial": (
        "INSERT INTO trials (run_id, number, arch, fidelity, state, started, asked_after) "
        "VALUES (?, ?, ?, ?, 'running', ?, ?) "
        "ON CONFLICT (run_id, number) DO UPDATE SET arch = excluded.arch, "
        "fidelity = excluded.fidelity, state = 'running', objective = NULL, result = NULL, "
        "error = NULL, worker = NULL, seconds = NULL, asked_after = excluded.asked_after, "
        "tell_seq = NULL, started = excluded.started, finished = NULL"
    ),
    "finish_trial": (
        "UPDATE trials SET state = ?, objective = ?, result = ?, error = ?, worker = ?, "
        "seconds = COALESCE(?, ? - started), tell_seq = ?, finished = ? "
        "WHERE run_id = ? AND number = ?"
    ),
    "trials": f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE run_id = ? ORDER BY number",
    # light reads for reports and the dashboard: no result JSON parsed for a count or a curve
    "trial_counts": "SELECT state, COUNT(*) FROM trials WHERE run_id = ? GROUP BY state",
    "trial_series": (
        "SELECT number, objective, fidelity, seconds, finished FROM trials "
        "WHERE run_id = ? AND state = 'complete' ORDER BY number"
    ),
    "failures": (
        "SELECT number, arch, error FROM trials WHERE run_id = ? AND state = 'failed' "
        "ORDER BY number DESC LIMIT ?"
    ),
    "activity": "SELECT MAX(started), MAX(finished) FROM trials WHERE run_id = ?",
    "save_final": (
        "INSERT INTO finals (run_id, result, updated) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id) DO UPDATE SET result = excluded.result, updated = excluded.updated"
    ),
    "final": "SELECT result FROM finals WHERE run_id = ?",
    "save_oneshot": (
        "INSERT INTO oneshot (run_id, record, updated) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id) DO UPDATE SET record = excluded.record, updated = excluded.updated"
    ),
    "oneshot": "SELECT record FROM oneshot WHERE run_id = ?",
    "update_version": "UPDATE meta SET value = ? WHERE key = 'schema_version'",
}


class Store:
    """Runs and trials in SQLite (default) or PostgreSQL, chosen by ``url``.

    ``Store("runs.db")``, ``Store("sqlite:///runs.db")``: one SQLite file (WAL), created with its
    folder on first use. ``Store("postgresql://user@host:5432/nasforge")``: tables in an existing
    PostgreSQL database, created on first use; errors name the URL with its password masked.
    With ``create=False`` (``nasforge show``, ``resume``) a missing store is an error rather than
    a new empty one. ``location`` is the store's name for messages; ``path`` is the SQLite file
    (``None`` for PostgreSQL and ``:memory:``). Safe to share between threads.
    """

    def __init__(self, url: str | os.PathLike[str], *, create: bool = True):
        if isinstance(url, os.PathLike):
            url = os.fspath(url)
        self.url = StoreURL.parse(url)
        self.location = self.url.location
        self.path = self.url.path
        self.backend = self.url.backend
        self._dialect = dialect_for(self.url)
        self._sql = {key: self._dialect.sql(text) for key, text in _STATEMENTS.items()}
        self._lock = threading.RLock()
        self._prepare_file(create)
        try:
            self.db = self._dialect.connect()
        except self._dialect.errors as err:
            raise ConfigError(self._cannot_open(err)) from None
        try:
            self._open_schema(create)
        except self._dialect.errors as err:
            self.db.close()
            raise ConfigError(self._cannot_open(err)) from None
        except BaseException:
            self.db.close()
            raise

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # runs -----------------------------------------------------------------------------------

    def create_run(self, name: str, config: dict[str, Any]) -> StoredRun:
        check_run_name(name)  # a name becomes part of file paths (log, artifacts)
        now = time.time()
        params = (name, json.dumps(config), now, now, socket.gethostname(), os.getpid())
        try:
            self._write("create_run", params)
        except self._dialect.integrity_errors:
            raise ConfigError(
                f"run {name!r} already exists in {self.location}; choose another name or resume it"
            ) from None
        return self.get_run(name)

    def find_run(self, name: str) -> StoredRun | None:
        row = self._read("find_run", (name,), one=True)
        if row is None:
            return None
        return StoredRun(row[0], row[1], json.loads(row[2]), *row[3:])

    def get_run(self, name: str) -> StoredRun:
        run = self.find_run(name)
        if run is None:
            known = self.run_names()
            listing = ", ".join(known) if known else "none"
            raise ConfigError(f"no run named {name!r} in {self.location}; runs there: {listing}")
        return run

    def run_names(self) -> list[str]:
        return [row[0] for row in self._read("run_names", ())]

    def claim_run(self, run: StoredRun) -> None:
        """Mark a run as running in this process (on resume). Refused if another process
        claimed it after ``run`` was read."""
        count = self._write(
            "claim_run",
            (time.time(), socket.gethostname(), os.getpid(), run.id, run.status, run.host, run.pid),
        )
        if count == 0:
            now = self.find_run(run.name)
            owner = "" if now is None else f" (pid {now.pid} on {now.host})"
            raise ConfigError(
                f"run {run.name!r} in {self.location} was claimed by another process{owner} "
                "while this one was resuming it"
            )

    def set_status(self, run: StoredRun, status: str) -> None:
        if status not in RUN_STATES:
            raise ValueError(f"run status {status!r} is not one of {', '.join(RUN_STATES)}")
        self._write("set_status", (status, time.time(), run.id))

    # trials ---------------------------------------------------------------------------------

    def start_trial(
        self,
        run: StoredRun,
        number: int,
        arch: str,
        fidelity: float | None,
        asked_after: int | None = None,
    ) -> None:
        """Record a trial as running (replacing a stored trial with that number)."""
        self._write("start_trial", (run.id, number, arch, fidelity, time.time(), asked_after))

    def finish_trial(
        self,
        run: StoredRun,
        number: int,
        result: Result | None,
        error: str | None = None,
        worker: str | None = None,
        seconds: float | None = None,
        tell_seq: int | None = None,
    ) -> None:
        """Record a started trial's end: ``complete`` with ``result``, else ``failed`` with
        ``error``. Without ``seconds``, the time since `start_trial` is stored."""
        now = time.time()
        state = "complete" if result is not None else "failed"
        objective = None if result is None else float(result.objective)
        payload = None if result is None else json.dumps(result.to_json(), default=_plain)
        count = self._write(
            "finish_trial",
            (state, objective, payload, error, worker, seconds, now, tell_seq, now, run.id, number),
        )
        if count == 0:
            raise LookupError(
                f"trial {number} of run {run.name!r} was never started in {self.location}"
            )

    def trials(self, run: StoredRun) -> list[StoredTrial]:
        return [_trial(r) for r in self._read("trials", (run.id,))]

    def trial_counts(self, run: StoredRun) -> dict[str, int]:
        """How many trials are in each state (``running``, ``complete``, ``failed``)."""
        counts = dict.fromkeys(TRIAL_STATES, 0)
        counts.update({state: int(n) for state, n in self._read("trial_counts", (run.id,))})
        return counts

    def trial_series(self, run: StoredRun) -> list[tuple[int, float, float | None, float, float]]:
        """(number, objective, fidelity, seconds, finished) of the complete trials in order:
        enough for an anytime curve without reading every result (a 100,000-trial run)."""
        return [tuple(row) for row in self._read("trial_series", (run.id,))]  # type: ignore[misc]

    def failures(self, run: StoredRun, limit: int = 20) -> list[tuple[int, str, str | None]]:
        """(number, arch, error) of the latest failed trials, newest first."""
        return [tuple(row) for row in self._read("failures", (run.id, limit))]  # type: ignore[misc]

    def last_activity(self, run: StoredRun) -> float:
        """When the run last did something: its status change or a trial starting or ending."""
        started, finished = self._read("activity", (run.id,), one=True)
        return max(v for v in (run.updated, started, finished) if v is not None)

    def trial_page(
        self,
        run: StoredRun,
        *,
        offset: int = 0,
        limit: int = 50,
        sort: str = "number",
        descending: bool = False,
        state: str | None = None,
        contains: str | None = None,
    ) -> tuple[int, list[StoredTrial]]:
        """One page of a run's trials, sorted by ``sort`` (one of `PAGE_SORTS`; unknown values
        give ``number``) and filtered by state and an architecture substring, with the number of
        trials that pass the filter. Missing values sort last either way."""
        column = PAGE_SORTS.get(sort, "number")
        where, params = ["run_id = ?"], [run.id]
        if state:
            where.append("state = ?")
            params.append(state)
        if contains:
            escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("arch LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        condition = " AND ".join(where)
        direction = "DESC" if descending else "ASC"
        # number is never missing and is the key: the index gives the order; other columns
        # are sorted on (number, column) pairs alone, then only the page's rows are read whole
        order = (
            f"number {direction}"
            if column == "number"
            else f"({column} IS NULL), {column} {direction}, number"
        )
        with self._lock:
            total = self.db.execute(
                self._dialect.sql(f"SELECT COUNT(*) FROM trials WHERE {condition}"), params
            ).fetchone()[0]
            numbers = [
                r[0]
                for r in self.db.execute(
                    self._dialect.sql(
                        f"SELECT number FROM trials WHERE {condition} ORDER BY {order} "
                        "LIMIT ? OFFSET ?"
                    ),
                    [*params, int(limit), int(offset)],
                ).fetchall()
            ]
            rows = []
            if numbers:
                marks = ", ".join("?" * len(numbers))
                rows = self.db.execute(
                    self._dialect.sql(
                        f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE run_id = ? "
                        f"AND number IN ({marks})"
                    ),
                    [run.id, *numbers],
                ).fetchall()
        place = {n: i for i, n in enumerate(numbers)}
        rows.sort(key=lambda r: place[r[0]])
        return int(total), [_trial(r) for r in rows]

    # final training ---------------------------------------------------------------------------

    def save_final(self, run: StoredRun, result: dict[str, Any]) -> None:
        """Keep a run's final-training results (a JSON object), replacing earlier ones."""
        self._write("save_final", (run.id, json.dumps(result, default=_plain), time.time()))

    def final(self, run: StoredRun) -> dict[str, Any] | None:
        """The run's final-training results, None if it has none in this store."""
        row = self._read("final", (run.id,), one=True)
        return None if row is None else json.loads(row[0])

    # one-shot runs ----------------------------------------------------------------------------

    def save_oneshot(self, run: StoredRun, record: dict[str, Any]) -> None:
        """Keep a one-shot run's record (a JSON object), replacing the earlier one."""
        self._write("save_oneshot", (run.id, json.dumps(record, default=_plain), time.time()))

    def oneshot(self, run: StoredRun) -> dict[str, Any] | None:
        """The one-shot record of ``run``; None for a run that is not one-shot."""
        row = self._read("oneshot", (run.id,), one=True)
        return None if row is None else json.loads(row[0])

    # internals ------------------------------------------------------------------------------

    def _write(self, key: str, params: tuple[Any, ...]) -> int:
        """One statement, committed on return (autocommit); the number of rows it changed."""
        with self._lock:
            return self.db.execute(self._sql[key], params).rowcount

    def _read(self, key: str, params: tuple[Any, ...], one: bool = False) -> Any:
        with self._lock:
            cursor = self.db.execute(self._sql[key], params)
            return cursor.fetchone() if one else cursor.fetchall()

    def _prepare_file(self, create: bool) -> None:
        path = self.path
        if path is None:
            return
        if path.is_dir():
            raise ConfigError(f"store {self.location} is a directory; give a file such as runs.db")
        if path.exists():
            return
        if not create:
            raise ConfigError(
                f"store {self.location} does not exist; give the store a search wrote (--store)"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create store {self.location}: {one_line(err)}") from None

    def _open_schema(self, create: bool) -> None:
        """Check (or create) the tables and the schema version; nothing is written to a store
        of another version, or to a database that holds tables of something else."""
        tables = self._dialect.existing_tables(self.db, _TABLES)
        if not tables:
            if not create:
                raise ConfigError(
                    f"store {self.location} holds no nasforge runs; give the store a search "
                    "wrote (--store)"
                )
            with self._dialect.schema_lock(self.db):
                tables = self._dialect.existing_tables(self.db, _TABLES)  # another process?
                if not tables:
                    for statement in _schema(self._dialect):
                        self.db.execute(statement)
                    self.db.execute(self._sql["set_version"], (str(SCHEMA_VERSION),))
                    tables = set(_TABLES)
        version = self._check_version(tables)
        if version < SCHEMA_VERSION:
            self._upgrade()
            tables = self._dialect.existing_tables(self.db, _TABLES)
            self._check_version(tables)
        self._dialect.after_open(self.db)

    def _upgrade(self) -> None:
        """Bring an older store to `SCHEMA_VERSION` in place, in one transaction; another
        process upgrading at the same moment is waited for, and then nothing is left to do."""
        with self._dialect.schema_lock(self.db):
            version = int(self.db.execute(self._sql["version"]).fetchone()[0])
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version](self._dialect):
                    self.db.execute(statement)
                version += 1
                self.db.execute(self._sql["update_version"], (str(version),))

    def _check_version(self, tables: set[str]) -> int:
        """The store's schema version, if this nasforge reads it (as it is or upgraded)."""
        row = None if "meta" not in tables else self.db.execute(self._sql["version"]).fetchone()
        if row is None:
            raise ConfigError(
                f"store {self.location} is not a nasforge store: it has tables "
                f"{', '.join(sorted(tables))} but no nasforge schema version; give another "
                "file or database"
            )
        if row[0].isdigit() and int(row[0]) in _MIGRATIONS:
            missing = set(_BASE_TABLES) - tables
            if missing:
                raise ConfigError(
                    f"store {self.location} is damaged: table {', '.join(sorted(missing))} is "
                    "missing"
                )
            return int(row[0])
        if row[0] != str(SCHEMA_VERSION):
            raise ConfigError(
                f"store {self.location} has schema version {row[0]}; this nasforge reads version "
                f"{SCHEMA_VERSION} (and upgrades {', '.join(map(str, _MIGRATIONS))}): give a new "
                "store, or use the nasforge that wrote it"
            )
        missing = set(_TABLES) - tables
        if missing:
            raise ConfigError(
                f"store {self.location} is damaged: table {', '.join(sorted(missing))} is missing"
            )
        return SCHEMA_VERSION

    def _cannot_open(self, err: Exception) -> str:
        if self.backend == "sqlite":
            if type(err).__name__ == "DatabaseError":  # sqlite3's "file is not a database"
                return f"store {self.location} is not a nasforge SQLite store ({one_line(err)})"
            return f"cannot open store {self.location}: {one_line(err)}"
        return (
            f"cannot open store {self.location}: {one_line(err, self._password())} "
            f"(stores accepted: {ACCEPTED})"
        )

    def _password(self) -> str | None:
        from psycopg.conninfo import conninfo_to_dict

        try:
            return conninfo_to_dict(self.url.conninfo or "").get("password")
        except Exception:  # a malformed URL: mask() already hid what it could
            return None


def _trial(r: Any) -> StoredTrial:
    """A trial from a row of `_TRIAL_COLUMNS`."""
    return StoredTrial(
        number=r[0],
        arch=r[1],
        fidelity=r[2],
        state=r[3],
        result=None if r[4] is None else Result.from_json(json.loads(r[4])),
        error=r[5],
        started=r[6],
        finished=r[7],
        worker=r[8],
        seconds=r[9],
        asked_after=r[10],
        tell_seq=r[11],
    )


def _plain(value: Any) -> Any:
    """JSON for numpy scalars in metrics (``np.float32`` is not a float)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} in a result is not JSON serialisable")
