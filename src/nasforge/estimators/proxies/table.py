"""Precomputed proxy scores as an arch scorer: compute once (the benchmark script's
``--table-out``), reuse in every search without building a network.

The file is a CSV: ``#`` comment lines first (``# setup: {json}`` records how the scores were
computed, ``# space: NAME``), then a header ``arch,<proxy>,<proxy>...`` and one row per
architecture, ``arch`` in the space's string form (for NB201 the benchmark's ``|op~0|+...``).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.core import Arch
from nasforge.errors import ConfigError, DataFormatError


def write_proxy_table(
    path: str | os.PathLike[str],
    space: Any,
    archs: Sequence[Arch],
    scores: Mapping[str, np.ndarray],
    setup: Mapping[str, Any],
) -> Path:
    """Write ``scores`` (proxy -> array over ``archs``) with ``setup`` as a comment line."""
    file = Path(path)
    names = list(scores)
    if "arch" in names:
        raise ConfigError("a proxy column may not be called 'arch' (that column holds the cell)")
    for name in names:
        if len(scores[name]) != len(archs):
            raise ConfigError(
                f"scores[{name!r}] has {len(scores[name])} values for {len(archs)} archs"
            )
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", newline="") as handle:
        handle.write(f"# space: {getattr(space, 'name', type(space).__name__)}\n")
        handle.write(f"# setup: {json.dumps(dict(setup), sort_keys=True, default=str)}\n")
        writer = csv.writer(handle)
        writer.writerow(["arch", *names])
        for i, arch in enumerate(archs):
            writer.writerow([space.to_string(arch), *(repr(float(scores[n][i])) for n in names)])
    return file


class ProxyTable:
    """An arch scorer reading ``path``: ``score`` gives ``column``, ``score_all`` every column.

    Architectures are looked up by ``space.to_string(space.canonical(arch))`` (rows are
    canonicalised the same way). Without ``space``, the space named on the file's ``# space:``
    line is built by name (``nasforge.factory.make_space``). An architecture absent from the
    table is a one-line ConfigError.
    """

    def __init__(self, path: str | os.PathLike[str], column: str, *, space: Any = None):
        self.path, self.column, self.space = Path(path), column, space
        self.setup: dict[str, Any] = {}
        self.space_name: str | None = None
        header, rows = self._read()
        if column not in header[1:]:
            raise ConfigError(
                f"{self.path}: no proxy column {column!r}; accepted: {', '.join(header[1:])}"
            )
        self.columns = header[1:]
        self.rows = rows
        self.name = f"proxy-table:{column}"

    def _read(self) -> tuple[list[str], dict[str, np.ndarray]]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            raise ConfigError(
                f"{self.path}: no such proxy table; write one with "
                "write_proxy_table or the benchmark's --table-out"
            ) from None
        body = []
        for line in lines:
            if line.startswith("# space:"):
                self.space_name = line[len("# space:") :].strip()
            if line.startswith("# setup:"):
                self.setup = json.loads(line[len("# setup:") :])
            elif not line.startswith("#"):
                body.append(line)
        if self.space is None:
            self.space = self._named_space()
        reader = csv.reader(body)
        header = next(reader, None)
        if not header or header[0] != "arch":
            raise DataFormatError(f"{self.path}: the header must start with 'arch'")
        rows: dict[str, np.ndarray] = {}
        for number, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise DataFormatError(
                    f"{self.path}: row {number}: {len(cells)} fields; the header has {len(header)}"
                )
            try:
                values = np.array([float(c) for c in cells[1:]])
            except ValueError:
                raise DataFormatError(
                    f"{self.path}: row {number}: a score is not a number"
                ) from None
            rows[self._key_of_text(cells[0])] = values
        return header, rows

    def _named_space(self) -> Any:
        from nasforge.errors import NasforgeError
        from nasforge.factory import make_space

        if not self.space_name:
            raise ConfigError(f"{self.path}: no '# space:' line; pass space= to ProxyTable")
        try:
            return make_space(self.space_name)
        except NasforgeError:
            raise ConfigError(
                f"{self.path}: space {self.space_name!r} cannot be built by name; pass space= "
                "to ProxyTable"
            ) from None

    def _key_of_text(self, text: str) -> str:
        try:
            arch = self.space.from_string(text)
        except ValueError as err:
            raise DataFormatError(f"{self.path}: {text!r} is not an architecture: {err}") from None
        return self.space.to_string(self.space.canonical(arch))

    def _key(self, arch: Arch) -> str:
        return self.space.to_string(self.space.canonical(arch))

    def _row(self, arch: Arch) -> np.ndarray:
        key = self._key(arch)
        if key not in self.rows:
            raise ConfigError(
                f"{self.path}: no scores for architecture {key!r} ({len(self.rows)} rows); "
                "compute them with ZeroCostProxy or write a table covering these architectures"
            )
        return self.rows[key]

    def score_all(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        table = np.array([self._row(a) for a in archs]).reshape(len(archs), len(self.columns))
        return {name: table[:, i] for i, name in enumerate(self.columns)}

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.score_all(archs)[self.column]
