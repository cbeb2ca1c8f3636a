"""Where a run's products live: final-training results and exported model files sit beside a
SQLite store's file (``final/RUN.json``, ``final/RUN.pt``, ``export/RUN/``), or in the working
directory for a server store. Kept apart from `final` and `export` so that ``nasforge show``
can point at them without importing torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FINAL_FOLDER = "final"
EXPORT_FOLDER = "export"


def output_folder(store: Any) -> Path:
    """``final/`` beside a SQLite store's file; in the working directory for a server store."""
    return Path(store.path).parent / FINAL_FOLDER if store.path else Path(FINAL_FOLDER)


def final_paths(store: Any, run_name: str) -> tuple[Path, Path]:
    """(results JSON, kept weights) of a run's final training."""
    folder = output_folder(store)
    return folder / f"{run_name}.json", folder / f"{run_name}.pt"


def default_out_dir(store: Any, run_name: str) -> Path:
    """``export/<run>/`` beside a SQLite store's file (in the working directory otherwise)."""
    return output_folder(store).parent / EXPORT_FOLDER / run_name
