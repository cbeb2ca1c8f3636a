"""A throw-away PostgreSQL server on loopback, for the store tests and the overhead benchmark.

The store's PostgreSQL backend is tested against a real server rather than a mock, because what
matters (types, upserts, transactions, concurrent readers, connection errors) is the server's
behaviour. `PostgresServer` runs ``initdb`` in a temporary folder, starts ``postgres`` on
127.0.0.1 with a free port and its unix socket in that folder, and on exit stops it
(``pg_ctl stop -m immediate``) and removes the folder. PostgreSQL refuses to run as root, so
when we are root every server command runs as the ``postgres`` system user (``runuser``).

Authentication is ``trust`` for everyone except one role, `PASSWORD_ROLE`, that must give its
password (scram-sha-256), so tests can check what happens with wrong credentials.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

#: A role that needs a password (the others are trusted), and that password.
PASSWORD_ROLE = "nasforge_pw"
PASSWORD = "s3cret-pw"

_SERVER_USER = "postgres"


class ServerUnavailable(RuntimeError):
    """PostgreSQL is not installed here, or could not be started (the reason says which)."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        folder = Path(on_path).resolve().parent
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise ServerUnavailable(
            "PostgreSQL is not installed (no pg_ctl on PATH or in /usr/lib/postgresql/*/bin); "
            "install it with scripts/ci_postgres.sh or apt-get install postgresql"
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``with PostgresServer() as server: server.url`` (database ``nasforge``, user postgres).

    ``settings`` are extra ``postgres -c`` options; tests pass ``fsync=off`` for speed, the
    benchmark keeps the defaults so that its numbers mean what a real server costs.
    """

    def __init__(self, settings: Sequence[str] = (), database: str = "nasforge"):
        self.settings, self.database = list(settings), database
        self.bindir = find_bindir()
        self.root: Path | None = None
        self.port = 0
        self._started = False
        self._as_other_user = os.geteuid() == 0
        if self._as_other_user:
            try:
                self._owner = pwd.getpwnam(_SERVER_USER)
            except KeyError:
                raise ServerUnavailable(
                    f"running as root and there is no {_SERVER_USER!r} system user to run "
                    "PostgreSQL as"
                ) from None

    # lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nasforge-pg-"))
        if self._as_other_user:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        data = self.root / "data"
        self._server_cmd(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        hba = data / "pg_hba.conf"
        self._write_as_owner(
            hba,
            f"local all {PASSWORD_ROLE} scram-sha-256\n"
            f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n",
        )
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=50",
            *(f"-c {s}" for s in self.settings),
        ]
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            try:
                self._server_cmd(
                    "pg_ctl", "start", "-D", str(data), "-w", "-t", "30",
                    "-l", str(self.root / "server.log"),
                    "-o", " ".join([f"-p {self.port}", *options]),
                )  # fmt: skip
                break
            except ServerUnavailable:
                if attempt == 2:
                    raise
        self._started = True
        self._sql(
            f"CREATE DATABASE {self.database}",
            f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'",
            f"ALTER DATABASE {self.database} OWNER TO {PASSWORD_ROLE}",
        )

    def stop(self) -> None:
        if self.root is None:
            return
        if self._started:
            with contextlib.suppress(ServerUnavailable):  # already gone: remove the folder anyway
                self._server_cmd("pg_ctl", "stop", "-D", str(self.root / "data"), "-m", "immediate")
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    # what tests use -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL (user postgres, no password)."""
        self._sql(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url_for(name)

    def log_tail(self, lines: int = 20) -> str:
        log = None if self.root is None else self.root / "server.log"
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    # internals ----------------------------------------------------------------------------

    def _sql(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as db:
            for statement in statements:
                db.execute(statement)

    def _server_cmd(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_other_user:
            command = ["runuser", "-u", _SERVER_USER, "--", *command]
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise ServerUnavailable(
                f"{program} failed ({done.returncode}): {' / '.join(output)} {self.log_tail(5)}"
            )

    def _write_as_owner(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self._as_other_user:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
