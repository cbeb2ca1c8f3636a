"""Where a user's space comes from, and a fingerprint of it. A stored run names its space as
``FILE.py:NAME``; ``resume``, ``train-final`` and ``export`` import that file again, so the run
records the file's SHA-256 at creation and refuses a file that changed since (a changed space
would also break the exact replay of the search). Torch-free: the CLI imports it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nasforge.errors import ConfigError


def space_file(spec: str) -> Path | None:
    """The file of a ``FILE.py:NAME`` space spec; None for built-in names and modules."""
    if ":" not in spec:
        return None
    where = spec.rpartition(":")[0]
    if where.endswith(".py") or "/" in where or "\\" in where:
        return Path(where)
    return None


def source_sha256(path: str | Path) -> str:
    """SHA-256 of a space file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint(spec: str) -> str | None:
    """The SHA-256 to record for a space spec (None when it is not a file, or not there: the
    loader then says the file is missing)."""
    path = space_file(spec)
    return source_sha256(path) if path is not None and path.is_file() else None


def check_unchanged(spec: str, recorded: str | None, run: str = "the run") -> None:
    """Refuse a space file whose bytes differ from those ``run`` was created with."""
    path = space_file(spec)
    if recorded is None or path is None or not path.is_file():
        return
    now = source_sha256(path)
    if now != recorded:
        raise ConfigError(
            f"space file {path} has changed since {run} was created (SHA-256 {recorded[:12]}... "
            f"then, {now[:12]}... now): a changed space cannot replay or rebuild the run; "
            "restore the file as it was, or start a new run"
        )
