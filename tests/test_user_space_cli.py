"""The README's user-defined space and the CSV benchmark, searched end to end by the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nasforge.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_readme_custom_space_is_searched_with_real_training(tmp_path):
    store = tmp_path / "runs.db"
    result = run_cli(
        "search",
        "--space",
        f"{EXAMPLES / 'custom_space.py'}:space",
        "--estimator",
        "train",
        "--search-only",
        "--dataset",
        "digits",
        "--budget",
        "3",
        "--epochs",
        "1",
        "--subset",
        "1",
        "--batch-size",
        "32",
        "--store",
        str(store),
        "--name",
        "mine",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["space"] == "small-cnn" and summary["trials"] == 3 and summary["failed"] == 0
    assert summary["best"]["objective"] > 30.0  # one epoch on digits, chance is 10 %
    assert summary["best"]["metrics"]["params"] > 0

    shown = run_cli("show", "mine", "--store", str(store), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["best"][0]["arch"] == summary["best"]["arch"]  # top first


def test_csv_table_is_a_benchmark_on_the_command_line():
    table = EXAMPLES / "tabular_benchmark.csv"
    with open(table) as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    best_row = max(rows, key=lambda r: float(r["val_acc"]))
    result = run_cli(
        "search",
        "--space",
        f"{EXAMPLES / 'tabular_space.py'}:space",
        "--table",
        str(table),
        "--strategy",
        "grid",
        "--budget",
        str(len(rows)),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)["best"]
    assert best["objective"] == float(best_row["val_acc"])  # grid over the whole table
    assert best["report"]["test_acc"] == float(best_row["test_acc"])


def test_table_needs_the_benchmark_estimator():
    result = run_cli(
        "search",
        "--space",
        f"{EXAMPLES / 'tabular_space.py'}:space",
        "--table",
        str(EXAMPLES / "tabular_benchmark.csv"),
        "--estimator",
        "train",
    )
    assert result.returncode == 2
    assert "--table" in result.stderr and "--estimator benchmark" in result.stderr


def test_readme_shows_the_example_file_verbatim_in_under_40_lines():
    example = (EXAMPLES / "custom_space.py").read_text().rstrip("\n")
    readme = (EXAMPLES.parent / "README.md").read_text()
    assert f"```python\n{example}\n```" in readme
    assert len(example.splitlines()) < 40
