"""A user's own tabular benchmark: a CSV of already-evaluated architectures as an estimator.

Tabular benchmarks (NAS-Bench-101/201, HW-NAS-Bench) made NAS experiments cheap and repeatable
by training every architecture of a space once and storing the numbers (Ying et al. 2019; Dong
& Yang 2020). ``TabularBenchmark`` does the same for any table a user has: one row per
architecture, one column per choice of a ``Custom`` space (or an ``arch`` column holding the
space's string form, for any other space), plus metric columns:

```
# comment lines start with '#'
depth,block,kernel,val_acc,test_acc,train_seconds
2,conv,3,91.2,90.8,41.0
2,separable,,88.1,87.9,30.5      <- kernel is inactive for separable blocks: left empty
```

The table is the whole truth: a configuration that is not in it has no value. By default
(``missing="error"``) looking one up is a ``DataFormatError`` naming the configuration and the
file, which stops an experiment; with ``missing="fail"`` it is a failed trial
(``MissingConfigError``, not an input error), so a strategy exploring a space larger than the
table carries on and never proposes it again.

Every problem in the file is a ``DataFormatError`` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.core import Arch, Candidate, Result
from nasforge.errors import ConfigError, DataFormatError, InvalidArchError, UnknownNameError
from nasforge.estimators.base import EstimatorBase, EstimatorCapabilities
from nasforge.spaces.custom import Config, Custom

MISSING = ("error", "fail")
#: the report-only column ``report=None`` takes when the table has it
DEFAULT_REPORT = "test_acc"
#: the column holding the space's string form, for spaces that are not ``Custom``
ARCH_COLUMN = "arch"


class MissingConfigError(LookupError):
    """A configuration absent from the table, with ``missing="fail"``: a failed trial, not an
    input error, so the search goes on (executors treat only ``NasforgeError`` as fatal)."""


@dataclass(frozen=True)
class Row:
    """One architecture's numbers, and where they came from (for messages)."""

    line: int
    values: Mapping[str, float]


def _lines(handle: Any, where: list[int]) -> Iterator[str]:
    """The file's lines without comment lines (``#`` first); ``where`` follows the physical
    line numbers of the last line handed out and of the last line read, so messages name
    the real line."""
    for number, line in enumerate(handle, start=1):
        where[1] = number
        if line.lstrip().startswith("#"):
            continue
        where[0] = number
        yield line


def _read(path: Path) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
    """(header, its line, [(line, cells)]) of a CSV, optionally gzip-compressed."""
    opener = gzip.open if path.suffix == ".gz" else open
    where = [0, 0]
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            reader = csv.reader(_lines(handle, where))
            header = next(reader, None)
            header_line = where[0]
            rows = [(where[0], cells) for cells in reader if any(c.strip() for c in cells)]
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file; give the path of a CSV table") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(
            f"{path}: line {where[1] + 1}: not a readable CSV table ({err})"
        ) from err
    if header is None:
        raise DataFormatError(f"{path}: empty file; expected a header line of column names")
    return [name.strip() for name in header], header_line, rows


class TabularBenchmark(EstimatorBase):
    """Look architectures up in a table instead of training them (microseconds per query).

    Build it with ``from_csv``. ``objective`` is the column strategies maximise (negate a loss
    in the file); ``report`` columns go to ``Result.report`` (never seen by strategies: put
    test accuracy there); ``metrics`` columns to ``Result.metrics`` (may steer a search:
    params, latency); ``cost``, when given, is the column of simulated seconds (training
    time), which lets a budget be given in seconds. With no ``report`` column, the objective
    is copied into the report so that reports have a metric to show.
    """

    def __init__(
        self,
        space: Any,
        rows: Mapping[Arch, Row],
        *,
        source: str,
        objective: str,
        report: Sequence[str],
        metrics: Sequence[str],
        cost: str | None,
        missing: str = "error",
        name: str | None = None,
    ):
        if missing not in MISSING:
            raise UnknownNameError("missing-row behaviour", missing, MISSING)
        if not rows:
            raise DataFormatError(f"{source}: the table has no rows; expected one per config")
        self.space, self.rows, self.source = space, dict(rows), source
        self.objective_name = objective
        self.report_columns, self.metric_columns = tuple(report), tuple(metrics)
        self.cost_column, self.missing = cost, missing
        self.name = name or f"table:{Path(source).stem}"

    @property
    def capabilities(self) -> EstimatorCapabilities:
        """A cost only with a cost column (then a budget may be in seconds); the report metric
        comparisons show is the first report column (the objective without one)."""
        report = self.report_columns[0] if self.report_columns else self.objective_name
        return EstimatorCapabilities(has_cost=self.cost_column is not None, report_metric=report)

    # -- reading a file ------------------------------------------------------------------------

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        space: Any,
        objective: str = "val_acc",
        report: Sequence[str] | None = ("test_acc",),
        cost: str | None = None,
        metrics: Sequence[str] = (),
        *,
        missing: str = "error",
        name: str | None = None,
    ) -> TabularBenchmark:
        """Read ``path`` (``.csv`` or ``.csv.gz``): choice columns (or ``arch``) + metric
        columns; other columns are ignored. Rows are keyed by ``space.canonical``."""
        if missing not in MISSING:
            raise UnknownNameError("missing-row behaviour", missing, MISSING)
        file = Path(path)
        if report is None:  # the usual report column when the table has one, else none
            report = (DEFAULT_REPORT,) if DEFAULT_REPORT in _read(file)[0] else ()
        report, metrics = _names("report", report), _names("metrics", metrics)
        wanted = [objective, *report, *metrics, *([cost] if cost is not None else [])]
        repeated = sorted({c for c in wanted if wanted.count(c) > 1})
        if repeated:
            raise ConfigError(
                f"column(s) {', '.join(repeated)} named twice among objective, report, metrics "
                "and cost; each column has one role"
            )
        header, header_line, lines = _read(file)
        keys = list(space.names) if isinstance(space, Custom) else [ARCH_COLUMN]
        overlap = sorted(set(keys) & set(wanted))
        if overlap:
            raise ConfigError(f"column(s) {', '.join(overlap)} are choices, not metrics")
        doubled = sorted({c for c in header if header.count(c) > 1})
        if doubled:
            raise DataFormatError(
                f"{file}: line {header_line}: column(s) {', '.join(doubled)} appear twice"
            )
        absent = [c for c in (*keys, *wanted) if c not in header]
        if absent:
            raise DataFormatError(
                f"{file}: line {header_line}: missing column(s) {', '.join(absent)}; expected "
                f"columns {', '.join((*keys, *wanted))} (others are ignored)"
            )
        at = {c: header.index(c) for c in (*keys, *wanted)}
        rows: dict[Arch, Row] = {}
        for line, cells in lines:
            if len(cells) != len(header):
                raise DataFormatError(
                    f"{file}: line {line}: {len(cells)} fields; the header has {len(header)}"
                )
            cell = {c: cells[i].strip() for c, i in at.items()}
            if isinstance(space, Custom):
                arch = _config(file, line, space, cell)
            else:
                arch = _parsed(file, line, space, cell[ARCH_COLUMN])
            key = space.canonical(arch)
            if key in rows:
                twin = "" if key == arch else " (its canonical form: the space declares them twins)"
                raise DataFormatError(
                    f"{file}: line {line}: configuration {space.to_string(key)!r} is already "
                    f"on line {rows[key].line}{twin}; each configuration needs exactly one row"
                )
            values = {c: _number(file, line, c, cell[c]) for c in wanted}
            for column, what in ((objective, "the objective"), (cost, "the cost")):
                if column is not None and not math.isfinite(values[column]):
                    raise DataFormatError(
                        f"{file}: line {line}: column {column}: {cell[column]!r}; {what} must "
                        "be a finite number"
                    )
            if cost is not None and values[cost] < 0:
                raise DataFormatError(
                    f"{file}: line {line}: column {cost}: {cell[cost]!r}; the cost (seconds) "
                    "must be >= 0"
                )
            rows[key] = Row(line, values)
        return cls(
            space,
            rows,
            source=str(file),
            objective=objective,
            report=report,
            metrics=metrics,
            cost=cost,
            missing=missing,
            name=name,
        )

    # -- the estimator -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, arch: Arch) -> bool:
        try:
            return self.space.canonical(arch) in self.rows
        except InvalidArchError:
            return False

    def lookup(self, arch: Arch) -> Mapping[str, float]:
        """The row of ``arch`` (column -> number); a missing one per ``missing``."""
        key = self.space.canonical(arch)
        row = self.rows.get(key)
        if row is None:
            text = self.space.to_string(key)
            if self.missing == "fail":
                raise MissingConfigError(f"configuration {text!r} is not in {self.source}")
            raise DataFormatError(
                f"configuration {text!r} is not in {self.source} ({len(self.rows)} rows); "
                "the table is the whole truth: add the row, or make such configurations failed "
                "trials (--table-missing fail; missing='fail' in Python)"
            )
        return row.values

    def evaluate(self, candidate: Candidate) -> Result:
        """The table's numbers for the candidate (its fidelity, if any, is ignored)."""
        values = self.lookup(candidate.arch)
        report = {c: values[c] for c in self.report_columns} or {
            self.objective_name: values[self.objective_name]
        }
        return Result(
            objective=values[self.objective_name],
            metrics={c: values[c] for c in self.metric_columns},
            report=report,
            cost=values[self.cost_column] if self.cost_column is not None else 0.0,
        )

    def optimum(self) -> tuple[float, float]:
        """(best objective in the table, the report metric of that row): a search's target."""
        best = max(self.rows.values(), key=lambda row: row.values[self.objective_name])
        return best.values[self.objective_name], best.values[self.capabilities.report_metric]


def _names(label: str, columns: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(columns, str):
        columns = (columns,)
    if any(not isinstance(c, str) or not c for c in columns):
        raise ConfigError(f"{label} must be column names (non-empty str), got {columns!r}")
    return tuple(columns)


def _number(file: Path, line: int, column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataFormatError(
            f"{file}: line {line}: column {column}: {text!r} is not a number"
        ) from None


def _config(file: Path, line: int, space: Custom, cell: Mapping[str, str]) -> Config:
    """The row's configuration: every active choice given and allowed, inactive ones empty."""
    assigned: dict[str, Any] = {}
    for spec in space.specs:
        text = cell[spec.name]
        if not space.active(spec.name, assigned):
            if text:
                raise DataFormatError(
                    f"{file}: line {line}: column {spec.name}: {text!r} given, but {spec.name} "
                    f"is inactive in this row (it exists only when {spec.describe_when()}); "
                    "leave it empty"
                )
            continue
        if not text:
            raise DataFormatError(
                f"{file}: line {line}: column {spec.name}: empty, but {spec.name} is active in "
                f"this row; accepted: {spec.accepted()}"
            )
        value = spec.parse(text)
        if value is None:
            raise DataFormatError(
                f"{file}: line {line}: column {spec.name}: {text!r} is not a value of this "
                f"choice; accepted: {spec.accepted()}"
            )
        assigned[spec.name] = value
    return Config(assigned)


def _parsed(file: Path, line: int, space: Any, text: str) -> Arch:
    try:
        return space.from_string(text)
    except InvalidArchError as err:
        raise DataFormatError(f"{file}: line {line}: column {ARCH_COLUMN}: {err}") from None
