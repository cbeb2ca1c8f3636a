"""The command line as a user meets it: results, stored runs, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nasforge.cli import main


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_search_json_reports_best_and_stores_the_run(nb201_dir, tmp_path, capsys):
    store = tmp_path / "runs.db"
    code = main(
        [
            "search",
            "--estimator",
            "benchmark",
            "--budget",
            "30",
            "--seed",
            "1",
            "--data-dir",
            str(nb201_dir.parent),
            "--store",
            str(store),
            "--name",
            "cli",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 30 and out["run"] == "cli" and out["failed"] == 0
    assert out["best"]["arch"].startswith("|") and out["best"]["report"]["test_acc"] > 80

    code = main(["show", "cli", "--store", str(store), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and shown["status"] == "finished"
    assert shown["trials"]["complete"] == 30
    assert shown["best"][0]["arch"] == out["best"]["arch"]


def test_search_is_reproducible_by_seed(nb201_dir, capsys):
    args = [
        "search",
        "--estimator",
        "benchmark",
        "--budget",
        "20",
        "--data-dir",
        str(nb201_dir.parent),
        "--json",
    ]
    main([*args, "--seed", "7"])
    first = json.loads(capsys.readouterr().out)["best"]
    main([*args, "--seed", "7"])
    again = json.loads(capsys.readouterr().out)["best"]
    assert first == again


def test_benchmark_writes_summary_json_and_plot(nb201_dir, tmp_path, capsys):
    out = tmp_path / "bench" / "results.json"
    code = main(
        [
            "benchmark",
            "--strategies",
            "evolution",
            "--seeds",
            "4",
            "--budget",
            "30",
            "--workers",
            "1",
            "--data-dir",
            str(nb201_dir.parent),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "| random |" in table and "| evolution |" in table
    results = json.loads(out.read_text())
    assert set(results["strategies"]) == {"random", "evolution"}
    row = results["strategies"]["evolution"]
    assert len(row["finals"]) == 4 and len(row["anytime_mean"]) == 30
    assert row["mean"] == pytest.approx(sum(row["finals"]) / 4)
    assert results["versions"]["torch"] and results["config"]["budget_evaluations"] == 30
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert "| evolution |" in out.with_suffix(".md").read_text()
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert rows[0].startswith("strategy,evaluations") and len(rows) == 1 + 2 * 30


def test_benchmark_refuses_multi_fidelity_strategies_on_a_table(nb201_dir):
    result = run_cli("benchmark", "--strategies", "hyperband", "--data-dir", str(nb201_dir.parent))
    assert result.returncode == 2 and "chooses a fidelity" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["search", "--estimator", "benchmark", "--strategy", "annealing"],
            "unknown strategy 'annealing'; accepted: asha, bananas, bo, bohb, evolution",
        ),
        (
            ["search", "--estimator", "benchmark", "--space", "nb999"],
            "unknown search space 'nb999'; accepted: FILE.py:NAME",
        ),
        (
            ["search", "--estimator", "benchmark", "--dataset", "svhn"],
            "accepted: cifar10, cifar100, imagenet16-120",
        ),
        (
            ["search", "--estimator", "oracle"],
            "unknown estimator 'oracle'; accepted: benchmark, train",
        ),
        (
            ["search", "--estimator", "train", "--dataset", "svhn"],
            "accepted: cifar10, cifar100, digits",
        ),
        (["search", "--estimator", "benchmark", "--budget", "0"], "--budget: must be > 0"),
        (["search", "--estimator", "benchmark", "--budget", "-3"], "--budget: must be > 0"),
        (["show", "nope", "--store", "/nonexistent/runs.db"], "does not exist"),
    ],
)
def test_errors_are_one_line_exit_2_no_traceback(nb201_dir, args, expected):
    data = ["--data-dir", str(nb201_dir.parent)] if args[0] == "search" else []
    result = run_cli(*args, *data)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("nasforge: error:"), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_data_is_one_line_naming_the_file(tmp_path):
    result = run_cli(
        "search", "--estimator", "benchmark", "--data-dir", str(tmp_path), env={"NASFORGE_DATA": ""}
    )
    assert result.returncode == 2
    assert "nb201/nb201_200ep_test.csv" in result.stderr and str(tmp_path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_show_lists_runs_and_unknown_run_names_them(nb201_dir, tmp_path, capsys):
    store = str(tmp_path / "runs.db")
    main(
        [
            "search",
            "--estimator",
            "benchmark",
            "--budget",
            "3",
            "--data-dir",
            str(nb201_dir.parent),
            "--store",
            store,
            "--name",
            "first",
        ]
    )
    capsys.readouterr()
    main(["show", "--store", store])
    assert "first" in capsys.readouterr().out
    result = run_cli("show", "second", "--store", store)
    assert result.returncode == 2 and "runs there: first" in result.stderr


def test_help_explains_the_parts():
    result = run_cli("search", "--help")
    assert result.returncode == 0
    for word in ("--strategy", "--estimator", "--budget", "NASFORGE_DATA", "examples"):
        assert word in result.stdout


RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_evaluate_looks_up_one_cell(nb201_dir, capsys):
    code = main(["evaluate", RESNET, "--data-dir", str(nb201_dir.parent), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["arch"] == RESNET
    assert out["report"]["test_acc"] == pytest.approx(93.91, abs=0.01)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        (RESNET.replace("nor_conv_3x3~0|+|none", "conv_7x7~0|+|none"), "unknown op 'conv_7x7'"),
        ("|nor_conv_3x3~0|+|none~0|", "not 3"),
        (RESNET.replace("none~1", "none~5"), "invalid NB201 cell"),
    ],
)
def test_bad_arch_string_is_one_line_naming_the_accepted_form(nb201_dir, arch, expected):
    result = run_cli("evaluate", arch, "--data-dir", str(nb201_dir.parent))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert "none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3" in lines[0]


def test_unreachable_ray_address_is_one_line_and_writes_nothing(nb201_dir, tmp_path):
    store = tmp_path / "runs.db"
    result = run_cli(
        "search",
        "--estimator",
        "benchmark",
        "--data-dir",
        str(nb201_dir.parent),
        "--ray-address",
        "127.0.0.1:1",
        "--store",
        str(store),
        "--name",
        "r",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Ray cluster at 127.0.0.1:1" in lines[0]
    assert not store.exists()


def test_unreachable_database_url_is_one_line(nb201_dir):
    result = run_cli(
        "search",
        "--estimator",
        "benchmark",
        "--data-dir",
        str(nb201_dir.parent),
        "--store",
        "postgresql://nasforge:secret@127.0.0.1:1/runs",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open store" in lines[0]
    assert "secret" not in lines[0]


def test_unknown_strategy_option_lists_accepted(nb201_dir):
    result = run_cli(
        "search",
        "--estimator",
        "benchmark",
        "--data-dir",
        str(nb201_dir.parent),
        "--strategy",
        "evolution",
        "--option",
        "populaton=20",
    )
    assert result.returncode == 2
    assert "no option populaton; accepted:" in result.stderr and "population" in result.stderr


def test_hardware_metrics_reach_the_result_and_bad_names_are_listed(nb201_dir, capsys):
    metric = "latency_ms/pi5/litert/cifar100"
    code = main(
        ["evaluate", RESNET, "--data-dir", str(nb201_dir.parent), "--hardware", metric, "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["metrics"][metric] > 0
    result = run_cli(
        "search",
        "--estimator",
        "benchmark",
        "--data-dir",
        str(nb201_dir.parent),
        "--hardware",
        "latency_ms/x",
    )
    assert result.returncode == 2 and metric in result.stderr
    result = run_cli("search", "--estimator", "train", "--dataset", "digits", "--hardware", metric)
    assert result.returncode == 2 and "needs --estimator benchmark" in result.stderr
