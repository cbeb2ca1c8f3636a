"""Where a store lives: a SQLite file or a PostgreSQL database, named by one string.

Accepted forms (`ACCEPTED`): a plain path (``runs.db``), ``sqlite:///relative/path.db`` or
``sqlite:////absolute/path.db`` (SQLAlchemy's and Optuna's convention: three slashes, then the
path), ``sqlite:///:memory:``, and ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME`` (also
``postgres://`` and ``postgresql+psycopg://``; libpq query parameters such as
``?sslmode=require`` pass through). A password is never shown: `mask` replaces it, and PGPASSWORD
or ~/.pgpass (read by libpq) keep it out of the URL altogether.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nasforge.errors import ConfigError

ACCEPTED = (
    "a SQLite file (runs.db, sqlite:///runs.db, sqlite:////abs/path.db) or "
    "postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
# The password runs to the next "@", even over characters a URL should have percent-encoded.
_USERINFO_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^@/?#:\s\"']*):[^@\s\"']*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#\s\"']*", re.IGNORECASE)


def mask(text: str) -> str:
    """``text`` with the password of every URL in it (``user:PASSWORD@``, ``?password=``)
    replaced by ``***``; also used on drivers' messages, which may quote the URL."""
    masked = _USERINFO_PASSWORD.sub(r"\1:***@", text)
    return _QUERY_PASSWORD.sub(r"\1***", masked)


@dataclass(frozen=True)
class StoreURL:
    """A parsed store location. ``backend`` is ``sqlite`` or ``postgresql``; ``path`` is the
    SQLite file (``None`` for PostgreSQL or an in-memory database); ``conninfo`` is the libpq URL
    for PostgreSQL; ``location`` is what messages show (password masked)."""

    backend: str
    location: str
    path: Path | None = None
    conninfo: str | None = field(default=None, repr=False)  # holds the password

    @classmethod
    def parse(cls, value: str | Path) -> StoreURL:
        if isinstance(value, Path):
            return cls("sqlite", str(value), path=value)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"store {value!r} is empty; give {ACCEPTED}")
        match = _SCHEME.match(value)
        if match is None:
            if value == ":memory:":
                return cls("sqlite", value)
            return cls("sqlite", value, path=Path(value))
        scheme = match.group(1).lower()
        if scheme == "sqlite":
            return cls._sqlite(value, value[match.end() :])
        if scheme in _POSTGRES_SCHEMES:
            return cls._postgres(value, "postgresql://" + value[match.end() :])
        raise ConfigError(
            f"store URL scheme {scheme!r} in {mask(value)} is not supported; give {ACCEPTED}"
        )

    @classmethod
    def _sqlite(cls, value: str, rest: str) -> StoreURL:
        host, _, path = rest.partition("/")
        if host or "?" in path or "#" in path:
            raise ConfigError(
                f"store URL {mask(value)} is not a SQLite URL nasforge reads: write sqlite:///PATH "
                "(three slashes, no host, no query); give "
                f"{ACCEPTED}"
            )
        path = unquote(path)
        if path in ("", ":memory:"):
            return cls("sqlite", value)
        return cls("sqlite", path, path=Path(path))

    @classmethod
    def _postgres(cls, value: str, conninfo: str) -> StoreURL:
        location = mask(value)
        try:
            parts = urlsplit(conninfo)
            port = None if "," in parts.netloc else parts.port  # libpq allows host1,host2
        except ValueError as err:
            raise ConfigError(
                f"store URL {location} is malformed ({err}); give {ACCEPTED}"
            ) from None
        if port == 0:
            raise ConfigError(f"store URL {location} has port 0; give {ACCEPTED}")
        return cls("postgresql", location, conninfo=conninfo)
