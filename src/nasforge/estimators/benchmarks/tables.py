"""Reading NAS-Bench-201-indexed CSV tables (one row per cell, in the benchmark's index order).

Shared by the accuracy tables and the hardware table so that every one of them reports a bad
file the same way: the file, the line and the column at fault.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from pathlib import Path

from nasforge.errors import DataFormatError

NUM_CELLS = 15_625


def read_cell_rows(path: Path, required: list[str]) -> list[dict[str, str]]:
    """All rows of a (optionally ``.gz``) CSV with the ``required`` columns, one per cell."""
    opener = gzip.open if path.suffix == ".gz" else open
    kind = "gzip-compressed CSV" if path.suffix == ".gz" else "CSV"
    try:
        with opener(path, "rt", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DataFormatError(
                    f"{path}: line 1: missing column(s) {', '.join(missing)}; "
                    f"expected columns {', '.join(required)}"
                )
            rows = list(reader)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: not a readable {kind} table ({err})") from err
    if len(rows) != NUM_CELLS:
        raise DataFormatError(f"{path}: {len(rows)} data rows; expected {NUM_CELLS} (one per cell)")
    return rows
