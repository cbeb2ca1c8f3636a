"""The NAS-Bench-201 tabular estimator against the facts in the shared data README."""

from __future__ import annotations

import shutil

import pytest

from nasforge.core import Candidate
from nasforge.errors import DataFormatError, DataNotFoundError, UnknownNameError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark, load_tables
from nasforge.spaces.nb201 import NB201Space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"  # noqa: E501
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
SPACE = NB201Space()


@pytest.mark.parametrize(
    ("dataset", "best", "resnet"),
    [("cifar10", 94.3733, 93.91), ("cifar100", 73.5133, 70.89), ("imagenet16-120", 47.3111, 44.23)],
)
def test_known_cells_match_published_numbers(nb201_dir, dataset, best, resnet):
    bench = NB201Benchmark(dataset, data_dir=nb201_dir.parent)
    top = max(bench.table.values(), key=lambda e: e.test_acc_200ep)
    assert top.test_acc_200ep == pytest.approx(best, abs=1e-3)
    result = bench.evaluate(Candidate(SPACE.from_string(RESNET)))
    assert result.report["test_acc"] == pytest.approx(resnet, abs=0.01)
    assert len(bench.table) == 15_625
    if dataset == "cifar10":
        assert bench.lookup(SPACE.from_string(BEST)).test_acc_200ep == pytest.approx(best, abs=1e-3)


def test_objective_is_12_epoch_validation_and_test_is_report_only(nb201_dir):
    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)
    result = bench.evaluate(Candidate(SPACE.from_string(RESNET)))
    entry = bench.lookup(SPACE.from_string(RESNET))
    assert result.objective == entry.val_acc_12ep
    assert "test_acc" not in result.metrics and "test_acc" in result.report
    assert result.for_strategy().report == {}
    assert result.metrics["params"] == SPACE.param_count(SPACE.from_string(RESNET))


def test_optimum_of_objective(nb201_dir):
    objective, test = NB201Benchmark("cifar10", data_dir=nb201_dir.parent).optimum()
    assert test == pytest.approx(94.37, abs=0.01)
    assert objective > 84


def test_unknown_dataset_lists_accepted(nb201_dir):
    with pytest.raises(UnknownNameError, match="cifar100"):
        NB201Benchmark("svhn", data_dir=nb201_dir.parent)


def test_missing_table_names_path_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("NASFORGE_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match=r"nb201/nb201_200ep_test\.csv.*" + str(tmp_path)):
        NB201Benchmark("cifar10", data_dir=tmp_path)


def copy_tables(nb201_dir, tmp_path):
    folder = tmp_path / "nb201"
    folder.mkdir()
    for name in ("nb201_12ep.csv", "nb201_200ep_test.csv"):
        shutil.copy(nb201_dir / name, folder / name)
    return folder


def test_malformed_value_names_file_line_and_column(nb201_dir, tmp_path):
    folder = copy_tables(nb201_dir, tmp_path)
    path = folder / "nb201_12ep.csv"
    lines = path.read_text().splitlines()
    fields = lines[5].split(",")
    fields[3] = "n/a"  # cifar10-val
    lines[5] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    load_tables.cache_clear()
    with pytest.raises(DataFormatError, match=r"nb201_12ep\.csv: line 6: column cifar10-val"):
        NB201Benchmark("cifar10", data_dir=tmp_path)


def test_truncated_table_and_missing_column(nb201_dir, tmp_path):
    folder = copy_tables(nb201_dir, tmp_path)
    path = folder / "nb201_200ep_test.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:100]) + "\n")
    load_tables.cache_clear()
    with pytest.raises(DataFormatError, match="99 data rows; expected 15625"):
        NB201Benchmark("cifar10", data_dir=tmp_path)
    path.write_text("a,b\n1,2\n")
    load_tables.cache_clear()
    with pytest.raises(DataFormatError, match="missing column"):
        NB201Benchmark("cifar10", data_dir=tmp_path)
