"""Where a run's products live.

Final-training results (a JSON object) are kept in the store itself (``Store.save_final``), so
every reader of the store sees them: two SQLite stores in one folder never share them, and a
team on one PostgreSQL store sees each other's. Files (the kept weights, the exported model) go
to an artifacts folder keyed by the store and the run, ``ARTIFACTS/RUN/``:

- ``--artifacts DIR``: ``DIR/RUN/``;
- a SQLite store ``path/to/runs.db``: ``path/to/runs.artifacts/RUN/`` (beside it, named after it);
- a PostgreSQL store: ``nasforge-artifacts/HOST-PORT-DBNAME/RUN/`` in the working directory.

``RUN/final.pt`` holds the weights train-final kept, ``RUN/export/`` the exported model.

Runs finished before this layout kept their results in ``final/RUN.json`` and ``final/RUN.pt``
beside a SQLite store (in the working directory for PostgreSQL) and their export in
``export/RUN/``; `find_final` and `find_export` still read them there. Kept apart from `final`
and `export` so that ``nasforge show`` can point at them without importing torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: folder (in the working directory) of PostgreSQL stores' artifacts, one subfolder per database
SERVER_ARTIFACTS = "nasforge-artifacts"
WEIGHTS_FILE = "final.pt"
EXPORT_FOLDER = "export"
#: the layout before artifacts folders, still read
LEGACY_FINAL = "final"
LEGACY_EXPORT = "export"


def artifacts_root(store: Any, artifacts: str | Path | None = None) -> Path:
    """The folder holding one subfolder per run of ``store`` (see the module docstring)."""
    if artifacts is not None:
        return Path(artifacts)
    if store.path is not None:
        return store.path.parent / f"{store.path.stem}.artifacts"
    if getattr(store, "backend", "sqlite") == "postgresql":
        return Path(SERVER_ARTIFACTS) / server_key(store.url.conninfo or "")
    return Path(SERVER_ARTIFACTS) / "memory"  # an in-memory SQLite store


def server_key(conninfo: str) -> str:
    """``HOST-PORT-DBNAME`` of a PostgreSQL URL (never its user or password), as a folder name."""
    parts = urlsplit(conninfo)
    host = parts.netloc.rpartition("@")[2] or "localhost"
    dbname = parts.path.lstrip("/") or "postgres"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{host}-{dbname}").strip("-")


def server_note(store: Any, run_name: str, artifacts: str | Path | None = None) -> str | None:
    """The line that says where a PostgreSQL store's files go by default (a server keeps no
    files, so they land in this working directory); None when that default does not apply."""
    if artifacts is not None or getattr(store, "backend", "sqlite") != "postgresql":
        return None
    return (
        f"files of run {run_name!r} go to {run_folder(store, run_name).absolute()}/ in the working "
        "directory (a PostgreSQL store holds the results but no files; choose with --artifacts)"
    )


def run_folder(store: Any, run_name: str, artifacts: str | Path | None = None) -> Path:
    """``ARTIFACTS/RUN/``: the files of one run."""
    return artifacts_root(store, artifacts) / run_name


def weights_path(store: Any, run_name: str, artifacts: str | Path | None = None) -> Path:
    """Where train-final keeps the best model's weights."""
    return run_folder(store, run_name, artifacts) / WEIGHTS_FILE


def default_out_dir(store: Any, run_name: str, artifacts: str | Path | None = None) -> Path:
    """Where ``nasforge export`` writes without ``--out``."""
    return run_folder(store, run_name, artifacts) / EXPORT_FOLDER


def _legacy_base(store: Any) -> Path:
    return store.path.parent if store.path is not None else Path()


@dataclass(frozen=True)
class FoundFinal:
    """A run's final-training results and where its kept weights are (``weights`` None: the
    results name no weights file, or it is gone)."""

    result: dict[str, Any]
    weights: Path | None
    source: str  # "store", or the legacy JSON file it was read from


def find_final(store: Any, run: Any, artifacts: str | Path | None = None) -> FoundFinal | None:
    """The run's final training: from the store, else (a run finished before results lived in
    the store) from ``final/RUN.json`` beside it. None if it has none. The weights are looked
    for where the results name them, then in this machine's artifacts folder of the run (a
    PostgreSQL store's results may have been written on another machine)."""
    result = store.final(run)
    if result is not None:
        named = (result.get("best") or {}).get("weights")
        candidates = [Path(named)] if named else []
        candidates.append(weights_path(store, run.name, artifacts))
        weights = next((c for c in candidates if c.is_file()), None)
        return FoundFinal(result, weights, "store")
    legacy = _legacy_base(store) / LEGACY_FINAL / f"{run.name}.json"
    if not legacy.is_file():
        return None
    result = json.loads(legacy.read_text())
    weights = legacy.with_suffix(".pt")
    # the old file named its paths relative to the directory it was written from
    result = {**result, "path": str(legacy)}
    result["best"] = {**result["best"], "weights": str(weights) if weights.is_file() else None}
    return FoundFinal(result, weights if weights.is_file() else None, str(legacy))


def find_export(store: Any, run_name: str, artifacts: str | Path | None = None) -> Path | None:
    """The run's export folder (the artifacts one, else the legacy ``export/RUN/``), if a model
    was exported there."""
    for folder in (
        default_out_dir(store, run_name, artifacts),
        _legacy_base(store) / LEGACY_EXPORT / run_name,
    ):
        if (folder / "arch.json").is_file():
            return folder
    return None
