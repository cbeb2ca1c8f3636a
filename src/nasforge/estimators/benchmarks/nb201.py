"""NAS-Bench-201 as a tabular estimator: a table lookup instead of training.

Two tables from ``NASFORGE_DATA/nb201`` (see the shared data README):

* ``nb201_12ep.csv``: every cell after the benchmark's short 12-epoch schedule, validation and
  test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120. The 12-epoch *validation* accuracy is
  the search objective, as in the benchmark's own protocol for cheap search.
* ``nb201_200ep_test.csv``: the 200-epoch test accuracy, mean over seeds. It is the number papers
  report, so it goes into ``Result.report`` and is never shown to a strategy.

The tables carry no training time, so results have ``cost`` 0 and the capabilities say
``has_cost=False``: budgets for this estimator count evaluations, not seconds. The fidelity is
fixed (12 epochs), so there is no ``fidelity_range`` for multi-fidelity strategies.

Optionally (``hardware=``), measured on-device latency and energy from ``hardware/`` are added to
``Result.metrics`` (see ``hardware.py`` for the names); they describe the deployed network, not
held-out accuracy, so a search may use them as objectives or constraints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nasforge.core import Candidate, Result
from nasforge.data.paths import find_data
from nasforge.errors import DataFormatError, UnknownNameError
from nasforge.estimators.base import EstimatorBase, EstimatorCapabilities
from nasforge.estimators.benchmarks import hardware as hw
from nasforge.estimators.benchmarks.tables import read_cell_rows
from nasforge.spaces.nb201 import NB201Space

TABLE_12EP = "nb201_12ep.csv"
TABLE_200EP = "nb201_200ep_test.csv"

#: dataset name -> (12-epoch val column, 12-epoch test column, 200-epoch test column)
DATASET_COLUMNS: dict[str, tuple[str, str, str]] = {
    "cifar10": ("cifar10-val", "cifar10-test", "CIFAR10TestAccuracy200Epochs"),
    "cifar100": ("cifar100-val", "cifar100-test", "CIFAR100TestAccuracy200Epochs"),
    "imagenet16-120": ("imagenet-val", "imagenet-test", "ImageNetTestAccuracy200Epochs"),
}
DATASET_ALIASES = {"imagenet": "imagenet16-120", "imagenet16": "imagenet16-120"}


@dataclass(frozen=True)
class NB201Entry:
    """One row of the joined tables for one dataset."""

    index: int
    val_acc_12ep: float
    test_acc_12ep: float
    test_acc_200ep: float


def resolve_dataset(name: str) -> str:
    key = DATASET_ALIASES.get(name.lower(), name.lower())
    if key not in DATASET_COLUMNS:
        raise UnknownNameError("NAS-Bench-201 dataset", name, DATASET_COLUMNS)
    return key


def _number(path: Path, line: int, column: str, text: str | None) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataFormatError(
            f"{path}: line {line}: column {column}: {text!r} is not a number"
        ) from None


@lru_cache(maxsize=8)
def load_tables(folder: str, dataset: str) -> dict[str, NB201Entry]:
    """Join both tables for one dataset into ``{arch string: entry}``; cached per folder."""
    val_col, test12_col, test200_col = DATASET_COLUMNS[dataset]
    path12, path200 = Path(folder) / TABLE_12EP, Path(folder) / TABLE_200EP
    rows12 = read_cell_rows(path12, ["arch", "cellstr", val_col, test12_col])
    rows200 = read_cell_rows(path200, ["ArchitectureString", test200_col])
    space = NB201Space()
    table: dict[str, NB201Entry] = {}
    for index, (row12, row200) in enumerate(zip(rows12, rows200, strict=True)):
        line = index + 2  # 1-based, after the header
        cell = row12["cellstr"]
        if cell != row200["ArchitectureString"]:
            raise DataFormatError(
                f"{path12}: line {line}: cell {cell!r} differs from {path200} line {line} "
                f"({row200['ArchitectureString']!r}); both tables must list cells in the "
                "benchmark's index order"
            )
        try:
            key = space.to_string(space.from_string(cell))
        except ValueError as err:
            raise DataFormatError(f"{path12}: line {line}: {err}") from None
        table[key] = NB201Entry(
            index=index,
            val_acc_12ep=_number(path12, line, val_col, row12[val_col]),
            test_acc_12ep=_number(path12, line, test12_col, row12[test12_col]),
            test_acc_200ep=_number(path200, line, test200_col, row200[test200_col]),
        )
    return table


class NB201Benchmark(EstimatorBase):
    """Tabular NAS-Bench-201 estimator (microseconds per query).

    ``objective``: 12-epoch validation accuracy (percent). ``report``: ``test_acc`` (200-epoch
    test accuracy, what papers compare) and ``test_acc_12ep``. ``metrics``: ``params`` of the
    benchmark's network (C=16, N=5) for the dataset's number of classes, plus the hardware
    metrics named in ``hardware`` (names from ``hardware.METRIC_NAMES``, or ``"all"``). The
    hardware file is read only when some are requested.
    """

    name = "nb201-benchmark"
    objective_name = "val_acc_12ep"
    capabilities = EstimatorCapabilities(has_cost=False, report_metric="test_acc")

    def __init__(
        self,
        dataset: str = "cifar10",
        data_dir: str | os.PathLike[str] | None = None,
        space: NB201Space | None = None,
        hardware: str | Sequence[str] | None = None,
    ):
        self.dataset = resolve_dataset(dataset)
        self.space = space or NB201Space()
        table_path = find_data(f"nb201/{TABLE_200EP}", data_dir, what="NAS-Bench-201 table")
        find_data(f"nb201/{TABLE_12EP}", data_dir, what="NAS-Bench-201 12-epoch table")
        self.folder = table_path.parent
        self.table = load_tables(str(self.folder), self.dataset)
        self.num_classes = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}[self.dataset]
        self.hardware_metrics = hw.resolve_metrics(hardware)
        self.hardware_table: dict[str, tuple[float, ...]] = {}
        if self.hardware_metrics:
            self.hardware_table = hw.load_hardware(str(hw.find_hardware_file(data_dir)))

    def lookup(self, arch: object) -> NB201Entry:
        return self.table[self.space.to_string(arch)]

    def evaluate(self, candidate: Candidate) -> Result:
        entry = self.lookup(candidate.arch)
        params = self.space.param_count(candidate.arch, num_classes=self.num_classes)
        metrics = {"params": float(params)}
        for name in self.hardware_metrics:
            metrics[name] = self.hardware_table[name][entry.index]
        return Result(
            objective=entry.val_acc_12ep,
            metrics=metrics,
            report={"test_acc": entry.test_acc_200ep, "test_acc_12ep": entry.test_acc_12ep},
            cost=0.0,
            fidelity=12.0,
        )

    def optimum(self) -> tuple[float, float]:
        """(best objective, report test accuracy of that cell): the target a search aims at."""
        best = max(self.table.values(), key=lambda e: e.val_acc_12ep)
        return best.val_acc_12ep, best.test_acc_200ep
