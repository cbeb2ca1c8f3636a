"""Where nasforge looks for data: ``--data-dir``, then ``NASFORGE_DATA`` (colon-separated).

The project never downloads anything. A missing file is a DataNotFoundError that names every
place searched and the file expected, so the user knows exactly what to put where.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from nasforge.errors import DataNotFoundError

ENV_VAR = "NASFORGE_DATA"


RootArg = str | os.PathLike[str] | tuple[str | os.PathLike[str], ...] | None


def data_roots(data_dir: RootArg = None) -> list[Path]:
    """The directories searched, in order: ``data_dir`` first (one root, or a tuple of roots),
    then each entry of NASFORGE_DATA."""
    roots: list[Path] = []
    if isinstance(data_dir, tuple):
        roots.extend(Path(root).expanduser() for root in data_dir)
    elif data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry.strip():
            roots.append(Path(entry.strip()).expanduser())
    return roots


def find_data(
    relative: str | Sequence[str],
    data_dir: RootArg = None,
    extra_roots: Sequence[str | os.PathLike[str]] = (),
    what: str = "data",
) -> Path:
    """Return the first existing ``root/relative`` over the search roots.

    ``relative`` may be a list of alternatives (e.g. a file or its gzipped form); the first
    root holding any of them wins. ``extra_roots`` are appended after the environment (e.g. the
    Debian package's /usr/share/datasets/fashion-mnist).
    """
    names = [relative] if isinstance(relative, str) else list(relative)
    roots = data_roots(data_dir) + [Path(r) for r in extra_roots]
    for root in roots:
        for name in names:
            candidate = root / name
            if candidate.exists():
                return candidate
    searched = ", ".join(str(r) for r in roots) or f"(none: {ENV_VAR} is not set)"
    raise DataNotFoundError(
        f"{what} not found: expected {' or '.join(names)} under one of: {searched}; "
        f"set {ENV_VAR} or pass --data-dir"
    )
