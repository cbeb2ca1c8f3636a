"""A user's own table through the CLI: its column roles are explicit (defaults said in --help,
a table with a single accuracy column, the missing-row policy), and ``nasforge benchmark``
compares strategies on it exactly as on NB201. Expected values are read from the CSV with the
csv module, not from nasforge."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[1]
SPACE = f"{ROOT / 'examples' / 'tabular_space.py'}:space"
TABLE = ROOT / "examples" / "tabular_benchmark.csv"


def _rows(path: Path = TABLE) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _write(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_benchmark_compares_strategies_on_a_users_table(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = nasforge(
        "benchmark",
        "--space",
        SPACE,
        "--table",
        str(TABLE),
        "--strategies",
        "evolution,local",
        "--seeds",
        "12",
        "--budget",
        "12",
        "--workers",
        "1",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    rows = _rows()
    best_row = max(rows, key=lambda r: float(r["val_acc"]))
    assert results["optimum"]["test_acc"] == float(best_row["test_acc"])
    assert results["optimum"]["objective"] == float(best_row["val_acc"])
    tests = {float(r["test_acc"]) for r in rows}
    assert list(results["strategies"]) == ["random", "evolution", "local"]  # random added
    for summary in results["strategies"].values():
        assert summary["runs"] == 12 and set(summary["finals"]) <= tests
        assert summary["std"] > 0 and len(summary["anytime_mean"]) == 12
    assert results["config"]["table"]["path"] == str(TABLE)
    assert (tmp_path / "results.png").stat().st_size > 10_000
    table = done.stdout
    assert f"table {TABLE}" in table and "| random |" in table and "| local |" in table


def test_search_help_states_the_table_column_defaults() -> None:
    text = " ".join(nasforge("search", "--help").stdout.split())
    assert "--table column the search maximises (default val_acc)" in text
    assert "default test_acc when the table has it, else none" in text
    assert "--table-missing {error,fail}" in text


def test_a_table_with_a_single_accuracy_column(tmp_path: Path) -> None:
    rows = [{**r, "acc": r["val_acc"]} for r in _rows()]
    one = _write(tmp_path / "one.csv", rows, ["block", "kernel", "depth", "shortcut", "acc"])
    done = nasforge(
        "search", "--space", SPACE, "--table", str(one), "--table-objective", "acc", "--budget", "5"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(no report-only column: the objective is what comparisons report)" in done.stdout
    assert "report only" not in done.stdout
    compared = nasforge(
        "benchmark",
        "--space",
        SPACE,
        "--table",
        str(one),
        "--table-objective",
        "acc",
        "--table-report",
        "",
        "--seeds",
        "3",
        "--budget",
        "5",
        "--json",
    )
    assert compared.returncode == 0, compared.stderr[-2000:]
    best = max(float(r["acc"]) for r in rows)
    assert json.loads(compared.stdout)["optimum"]["acc"] == best


def test_missing_rows_stop_the_run_or_fail_the_trial_as_asked(tmp_path: Path) -> None:
    rows = _rows()
    half = _write(tmp_path / "half.csv", rows[: len(rows) // 2], list(rows[0]))
    args = ["search", "--space", SPACE, "--table", str(half), "--strategy", "random"]
    args += ["--budget", "20", "--json"]
    stopped = nasforge(*args)
    assert stopped.returncode == 2
    assert stopped.stderr.strip().splitlines()[-1].startswith("nasforge: error: ")
    assert "--table-missing fail" in stopped.stderr  # the option the message recommends
    going = nasforge(*args, "--table-missing", "fail")
    assert going.returncode == 0, going.stderr[-2000:]
    summary = json.loads(going.stdout)
    assert summary["trials"] == 20 and 0 < summary["failed"] < 20, summary
