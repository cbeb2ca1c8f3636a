"""Hardware metrics (latency, energy) of the NAS-Bench-201 estimator, on the real table."""

from __future__ import annotations

import csv
import gzip
import math

import pytest

from conftest import require_data
from nasforge.core import Candidate
from nasforge.errors import DataFormatError, DataNotFoundError, UnknownNameError
from nasforge.estimators.benchmarks import hardware as hw
from nasforge.estimators.benchmarks import tables
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.spaces.nb201 import NB201Space

SPACE = NB201Space()
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"  # noqa: E501
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"  # noqa: E501


@pytest.fixture
def hw_bench(nb201_dir, monkeypatch) -> NB201Benchmark:
    hw_root = require_data(hw.HARDWARE_FILE).parent.parent
    monkeypatch.setenv("NASFORGE_DATA", f"{nb201_dir.parent}:{hw_root}")
    return NB201Benchmark("cifar10", hardware="all")


def _metrics(bench: NB201Benchmark, arch_string: str) -> dict[str, float]:
    return bench.evaluate(Candidate(SPACE.from_string(arch_string))).metrics


def test_values_are_finite_positive_and_steer_the_search(hw_bench):
    for arch in (CONV, SKIP):
        metrics = _metrics(hw_bench, arch)
        assert set(hw.METRIC_NAMES) <= set(metrics)
        assert all(math.isfinite(metrics[n]) and metrics[n] > 0 for n in hw.METRIC_NAMES)
    result = hw_bench.evaluate(Candidate(SPACE.from_string(CONV)))
    assert "latency_ms/pi5/onnx/cifar100" in result.for_strategy().metrics


def test_isomorphic_cells_get_the_representative_measurements(hw_bench):
    table = hw.load_hardware(str(hw.find_hardware_file()))
    by_index = {entry.index: key for key, entry in hw_bench.table.items()}
    reps = _rep_indices()
    members = [i for i, rep in enumerate(reps) if rep != i][:3]
    assert members, "the table lists no isomorphic duplicates"
    for index in members:
        cell, rep_cell = by_index[index], by_index[reps[index]]
        assert SPACE.canonical_key(SPACE.from_string(cell)) == SPACE.canonical_key(
            SPACE.from_string(rep_cell)
        )
        mine, theirs = _metrics(hw_bench, cell), _metrics(hw_bench, rep_cell)
        assert {n: mine[n] for n in hw.METRIC_NAMES} == {n: theirs[n] for n in hw.METRIC_NAMES}
        name = "energy_mj/pi5/litert/cifar100"
        assert mine[name] == table[name][index]


def _rep_indices() -> list[int]:
    with gzip.open(hw.find_hardware_file(), "rt", newline="") as handle:
        return [int(row["rep_arch_idx"]) for row in csv.DictReader(handle)]


def test_all_conv_cell_is_slower_than_empty_cells(hw_bench):
    conv = _metrics(hw_bench, CONV)
    for cheap in (NONE, SKIP):
        small = _metrics(hw_bench, cheap)
        latency = [n for n in hw.METRIC_NAMES if n.startswith("latency_ms/")]
        assert any(conv[n] > small[n] for n in latency)
        assert conv["latency_ms/pi5/litert/cifar100"] > small["latency_ms/pi5/litert/cifar100"]


def test_selected_names_only(hw_bench, nb201_dir):
    bench = NB201Benchmark("cifar10", hardware=["latency_ms/pixel/litert/darcy"])
    metrics = _metrics(bench, CONV)
    assert set(metrics) == {"params", "latency_ms/pixel/litert/darcy"}
    assert (
        metrics["latency_ms/pixel/litert/darcy"]
        == _metrics(hw_bench, CONV)["latency_ms/pixel/litert/darcy"]
    )
    assert set(_metrics(NB201Benchmark("cifar10"), CONV)) == {"params"}


def test_unknown_metric_lists_accepted(nb201_dir):
    accepted = r"accepted: all, .*latency_ms/pixel/litert/cifar100"
    with pytest.raises(UnknownNameError, match=accepted):
        NB201Benchmark("cifar10", data_dir=nb201_dir.parent, hardware="latency_ms/pixel/onnx/x")


def test_missing_file_only_fails_when_requested(nb201_dir, tmp_path, monkeypatch):
    (tmp_path / "nb201").symlink_to(nb201_dir, target_is_directory=True)
    monkeypatch.setenv("NASFORGE_DATA", str(tmp_path))
    assert NB201Benchmark("cifar10").hardware_metrics == ()
    with pytest.raises(DataNotFoundError, match=r"hardware/nb201_hw_nas_bench_360\.csv\.gz"):
        NB201Benchmark("cifar10", hardware="all")


def _write(path, text: str) -> str:
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    return str(path)


def test_malformed_files_name_file_line_and_column(tmp_path, monkeypatch):
    header = ",".join(["arch_idx", "rep_arch_idx", *hw.METRIC_COLUMNS.values()])
    missing = _write(tmp_path / "missing.csv.gz", "arch_idx,rep_arch_idx\n0,0\n")
    with pytest.raises(DataFormatError, match=r"missing\.csv\.gz: line 1: missing column"):
        hw.load_hardware(missing)
    short = _write(tmp_path / "short.csv.gz", header + "\n")
    with pytest.raises(DataFormatError, match=r"short\.csv\.gz: 0 data rows; expected 15625"):
        hw.load_hardware(short)
    notgz = tmp_path / "plain.csv.gz"
    notgz.write_text(header + "\n")
    with pytest.raises(DataFormatError, match=r"plain\.csv\.gz: not a readable gzip"):
        hw.load_hardware(str(notgz))
    monkeypatch.setattr(hw, "NUM_CELLS", 2)
    monkeypatch.setattr(tables, "NUM_CELLS", 2)
    values = ["1.5"] * len(hw.METRIC_COLUMNS)
    bad_values = [*values[:-1], "-3"]
    rows = [",".join(["0", "0", *values]), ",".join(["1", "0", *bad_values])]
    bad = _write(tmp_path / "bad.csv.gz", "\n".join([header, *rows]) + "\n")
    last_column = list(hw.METRIC_COLUMNS.values())[-1]
    with pytest.raises(DataFormatError, match=rf"bad\.csv\.gz: line 3: column {last_column}"):
        hw.load_hardware(bad)
