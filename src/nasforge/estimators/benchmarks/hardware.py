"""Measured on-device cost of every NAS-Bench-201 cell (HW-NAS-Bench style tables).

``NASFORGE_DATA/hardware/nb201_hw_nas_bench_360.csv.gz`` holds, for each of the 15,625 cells in
the benchmark's index order, the median inference latency (ms) and the energy (mJ) of the cell's
network measured on a Raspberry Pi 5 (LiteRT, ONNX Runtime, PyTorch Mobile) and a Pixel phone
(LiteRT, latency only), each with three task heads (CIFAR-100, NinaPro, Darcy flow), as in
NAS-Bench-360 / HW-NAS-Bench. Only one cell per isomorphism class was measured; ``rep_arch_idx``
names it, and every cell gets its representative's numbers.

Metric names, stable and documented because runs store them (``Result.metrics``)::

    latency_ms/<device>/<runtime>/<head>   device: pi5 | pixel
    energy_mj/<device>/<runtime>/<head>    runtime: litert | onnx | torchmobile (pi5 only)
                                            head: cifar100 | ninapro | darcy

e.g. ``latency_ms/pi5/onnx/cifar100``. Energy exists for the Pi 5 only (12 latency + 9 energy
metrics). The file's ``acc_*`` columns are accuracies, not hardware costs, and are not exposed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from nasforge.data.paths import find_data
from nasforge.errors import DataFormatError, UnknownNameError
from nasforge.estimators.benchmarks.tables import NUM_CELLS, read_cell_rows

HARDWARE_FILE = "hardware/nb201_hw_nas_bench_360.csv.gz"
ALL = "all"

HEADS = ("cifar100", "ninapro", "darcy")
#: (quantity prefix in metric names, prefix in the CSV) -> device -> runtimes measured there
_MEASURED: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("latency_ms", "lat_ms"): {
        "pi5": ("litert", "onnx", "torchmobile"),
        "pixel": ("litert",),
    },
    ("energy_mj", "energy_mj"): {"pi5": ("litert", "onnx", "torchmobile")},
}

#: metric name -> CSV column, in a fixed order
METRIC_COLUMNS: dict[str, str] = {
    f"{quantity}/{device}/{runtime}/{head}": f"{prefix}_{device}_{runtime}_{head}"
    for (quantity, prefix), devices in _MEASURED.items()
    for device, runtimes in devices.items()
    for runtime in runtimes
    for head in HEADS
}
METRIC_NAMES: tuple[str, ...] = tuple(METRIC_COLUMNS)


def resolve_metrics(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """Validate requested hardware metric names; ``"all"`` means every one, None/empty none."""
    if names is None:
        return ()
    requested = [names] if isinstance(names, str) else list(names)
    if ALL in requested:
        return METRIC_NAMES
    resolved: list[str] = []
    for name in requested:
        if name not in METRIC_COLUMNS:
            raise UnknownNameError("hardware metric", name, (*METRIC_NAMES, ALL))
        if name not in resolved:
            resolved.append(name)
    return tuple(resolved)


def find_hardware_file(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Locate the table (DataNotFoundError naming the places searched if absent)."""
    return find_data(HARDWARE_FILE, data_dir, what="NAS-Bench-201 hardware table")


def _value(path: Path, line: int, column: str, text: str | None) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DataFormatError(
            f"{path}: line {line}: column {column}: {text!r} is not a positive finite number"
        )
    return value


def _index(path: Path, line: int, column: str, text: str | None) -> int:
    try:
        index = int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < NUM_CELLS:
        raise DataFormatError(
            f"{path}: line {line}: column {column}: {text!r} is not a cell index "
            f"in 0..{NUM_CELLS - 1}"
        )
    return index


@lru_cache(maxsize=4)
def load_hardware(path: str) -> dict[str, tuple[float, ...]]:
    """``{metric name: values by cell index}``, each cell given its representative's numbers.

    Cached per file for the process, like ``nb201.load_tables``: estimators built repeatedly
    (one per trial or worker) parse the 1 MB file once.
    """
    file = Path(path)
    required = ["arch_idx", "rep_arch_idx", *METRIC_COLUMNS.values()]
    rows = read_cell_rows(file, required)
    reps: list[int] = []
    raw: dict[str, list[float]] = {name: [] for name in METRIC_COLUMNS}
    for position, row in enumerate(rows):
        line = position + 2  # 1-based, after the header
        if _index(file, line, "arch_idx", row["arch_idx"]) != position:
            raise DataFormatError(
                f"{file}: line {line}: column arch_idx: {row['arch_idx']!r}; expected "
                f"{position} (rows must follow the benchmark's index order)"
            )
        reps.append(_index(file, line, "rep_arch_idx", row["rep_arch_idx"]))
        for name, column in METRIC_COLUMNS.items():
            raw[name].append(_value(file, line, column, row[column]))
    return {name: tuple(values[rep] for rep in reps) for name, values in raw.items()}


def hardware_metrics(
    index: int, names: Sequence[str], data_dir: str | os.PathLike[str] | None = None
) -> dict[str, float]:
    """The named metrics (see ``resolve_metrics``) of the cell with benchmark index ``index``."""
    table = load_hardware(str(find_hardware_file(data_dir)))
    return {name: table[name][index] for name in names}
