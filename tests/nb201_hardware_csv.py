"""The NB201 hardware table's rows by cell string, read from the benchmark's own files (not
from nasforge), for tests that check nasforge's lookups and strategies against them."""

from __future__ import annotations

import csv
import functools
import gzip

from tests.conftest import require_data


@functools.cache
def hardware_rows_by_cell() -> dict[str, dict[str, str]]:
    """Cell string (``nb201_12ep.csv``'s ``cellstr``) -> its row of the hardware CSV (same
    order: ``arch_idx``), with ``rep_arch_idx``, the benchmark's isomorphism class."""
    with open(require_data("nb201/nb201_12ep.csv"), newline="") as handle:
        cells = [row["cellstr"] for row in csv.DictReader(handle)]
    with gzip.open(require_data("hardware/nb201_hw_nas_bench_360.csv.gz"), "rt") as handle:
        rows = list(csv.DictReader(handle))
    return dict(zip(cells, rows, strict=True))


def pi5_latency_by_cell() -> dict[str, float]:
    """Cell string -> Pi 5 ONNX latency (CIFAR-100 input), as its class representative was
    measured."""
    rows = hardware_rows_by_cell()
    by_index = {int(r["arch_idx"]): float(r["lat_ms_pi5_onnx_cifar100"]) for r in rows.values()}
    return {cell: by_index[int(r["rep_arch_idx"])] for cell, r in rows.items()}


def class_by_cell() -> dict[str, int]:
    """Cell string -> the benchmark's isomorphism class (``rep_arch_idx``)."""
    return {cell: int(r["rep_arch_idx"]) for cell, r in hardware_rows_by_cell().items()}
