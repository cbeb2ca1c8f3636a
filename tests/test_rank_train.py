"""``nasforge rank --estimator train``: a tiny real training on CIFAR-10 (4 cells, C=4 N=1,
1 epoch on 0.5 % of the data), its JSON, CSV and PNG agreeing with scipy and the table's files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)
from conftest import require_data


def test_a_tiny_real_training_ranked_against_the_table(tmp_path: Path) -> None:
    require_data("cifar10/cifar-10-batches-py/data_batch_1")
    table = require_data("nb201/nb201_200ep_test.csv")
    done = nasforge(
        "rank",
        "--sample", "4",
        "--estimator", "train",
        "--channels", "4", "--cells", "1",
        "--epochs", "1", "--subset", "0.005", "--val-fraction", "0.01", "--batch-size", "32",
        "--bootstrap", "50", "--threads", "1",
        "--json", str(tmp_path / "rank.json"),
        "--out", str(tmp_path / "out"),
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "rank.json").read_text())
    setup = results["setup"]["scorers"]["train:val_acc"]
    # the recipe asked for, as `nasforge search` resolves it, with the trial's data recorded
    assert setup["epochs"] == 1 and setup["net"] == {"C": 4, "N": 1}
    assert setup["dataset"] == "cifar10" and setup["subset"] == 0.005
    assert setup["val_images"] == 500 and setup["train_images"] == round(49500 * 0.005)
    assert setup["score_test"] is False  # the truth comes from the table
    with (tmp_path / "out" / "rank.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["arch"] for r in rows] == results["sample"]
    x = np.array([float(r["train:val_acc"]) for r in rows])
    y = np.array([float(r["truth cifar10"]) for r in rows])
    assert np.all((x >= 0) & (x <= 100)) and len(set(x)) > 1  # real, differing accuracies
    with table.open(newline="") as handle:
        truth = {
            r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"])
            for r in csv.DictReader(handle)
        }
    assert list(y) == pytest.approx([truth[r["arch"]] for r in rows])
    (entry,) = results["metrics"]
    assert entry["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert entry["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic)
    seconds = [float(r["train:val_acc seconds"]) for r in rows]
    assert entry["seconds_per_arch"] == pytest.approx(np.mean(seconds)) and min(seconds) > 0
    assert (tmp_path / "out" / "rank.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cached = (tmp_path / "out" / "cache.jsonl").read_text().splitlines()
    assert len(cached) == 4
    assert done.stderr.count("ETA") == 4 and "[4/4]" in done.stderr
