"""``--objectives`` from the command line: the benchmark's true front and hypervolume fraction
(checked against a front computed here straight from the CSV files), a multi-objective search
shown with its front, and the one-line refusals."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest
from tests.cli_run import assert_search_refused, nasforge
from tests.conftest import require_data

from nasforge.pareto import hypervolume

LATENCY = "latency_ms/pi5/onnx/cifar100"
OBJECTIVES = f"val_acc:max,{LATENCY}:min"


def front_from_the_files() -> set[tuple[float, float]]:
    """(12-epoch CIFAR-10 validation accuracy, Pi 5 ONNX latency) of every non-dominated
    cell, read from the two CSV files with the csv module and a 2-D sweep."""
    with open(require_data("nb201/nb201_12ep.csv"), newline="") as handle:
        accuracy = [float(row["cifar10-val"]) for row in csv.DictReader(handle)]
    with gzip.open(require_data("hardware/nb201_hw_nas_bench_360.csv.gz"), "rt") as handle:
        rows = list(csv.DictReader(handle))
    measured = {int(r["arch_idx"]): float(r["lat_ms_pi5_onnx_cifar100"]) for r in rows}
    latency = [measured[int(r["rep_arch_idx"])] for r in rows]
    front, best = set(), -np.inf
    for lat, acc in sorted(zip(latency, accuracy, strict=True), key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.add((round(acc, 6), round(lat, 6)))
            best = acc
    return front


def test_benchmark_scores_fronts_against_the_true_front(tmp_path) -> None:
    out = tmp_path / "mo.json"
    done = nasforge(
        "benchmark", "--objectives", OBJECTIVES, "--strategies", "nsga2,parego",
        "--seeds", "2", "--budget", "40", "--workers", "1", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hypervolume fraction" in done.stdout
    results = json.loads(out.read_text())
    pareto = results["pareto"]
    true = {(round(a, 6), round(b, 6)) for a, b in pareto["true_front"]}
    assert true == front_from_the_files()
    reference = np.asarray(pareto["reference_point"])
    minimised_front = np.asarray([(-a, b) for a, b in true])
    assert pareto["true_hypervolume"] == pytest.approx(
        hypervolume(minimised_front, [-reference[0], reference[1]])
    )
    assert set(results["strategies"]) == {"random", "nsga2", "parego"}
    for row in results["strategies"].values():
        assert len(row["hypervolume_fractions"]) == 2
        assert 0 < row["hypervolume_fraction_min"] <= row["hypervolume_fraction_max"] <= 1
        assert len(row["hv_anytime_mean"]) == 40
        assert np.all(np.diff(row["hv_anytime_mean"]) >= -1e-12)  # a front only grows
        for acc, lat in row["median_front"]:  # every reported point is a table cell's values
            assert lat > 0 and 0 < acc < 100
    assert (tmp_path / "mo_fronts.png").stat().st_size > 10_000


def test_search_with_objectives_shows_its_front(tmp_path) -> None:
    store = str(tmp_path / "runs.db")
    done = nasforge(
        "search", "--estimator", "benchmark", "--strategy", "pareto-evolution", "--objectives",
        OBJECTIVES, "--budget", "30", "--store", store, "--name", "mo",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plot = str(tmp_path / "f.png")
    shown = nasforge("show", "mo", "--store", store, "--json", "--front-plot", plot)
    assert shown.returncode == 0, shown.stderr
    pareto = json.loads(shown.stdout)["pareto"]
    values = np.asarray(pareto["all_values"])
    assert len(values) == pareto["architectures"] == 30
    front = {(r["values"]["val_acc"], r["values"][LATENCY]) for r in pareto["front"]}
    for acc, lat in values:  # brute force: a front point is dominated by nothing
        on_front = not any((a >= acc and b <= lat) and (a > acc or b < lat) for a, b in values)
        assert on_front == ((acc, lat) in front)
    assert (tmp_path / "f.png").stat().st_size > 10_000
    # the search printed the same front itself, from its history rather than the store
    printed = done.stdout.split("Pareto front over", 1)[1].splitlines()[1:]
    numbers = [int(line.split()[0].lstrip("#")) for line in printed if line.startswith("  #")]
    assert numbers == [r["trial"] for r in pareto["front"]]
    assert f"hypervolume {pareto['hypervolume']:.4g}" in done.stdout


def test_a_search_not_stored_still_prints_its_front() -> None:
    done = nasforge(
        "search", "--estimator", "benchmark", "--strategy", "nsga2", "--objectives", OBJECTIVES,
        "--budget", "40",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stored as run" not in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("  #")]
    points = [(float(r[2]), float(r[4])) for r in rows]  # "#N val_acc A LATENCY L cell"
    assert len(points) >= 3
    for acc, lat in points:  # no printed point dominates another
        assert not any(a >= acc and b <= lat and (a, b) != (acc, lat) for a, b in points)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "evolution", "--objectives", OBJECTIVES],
         "strategy 'evolution' optimises one objective"),
        (["--strategy", "nsga2", "--objectives", "val_acc:max,flops:min"],
         "objective 'flops' is not among the results' values; they carry val_acc_12ep"),
        (["--strategy", "nsga2", "--objectives", "val_acc:most"],
         "direction 'most' is not accepted; use max or min"),
        # the Pixel was measured for latency only (../shared/data/hardware)
        (["--strategy", "nsga2", "--objectives", "val_acc:max,energy_mj/pixel/litert/cifar100:min"],
         "'energy_mj/pixel/litert/cifar100' is not a measured hardware metric; the NB201 "
         "hardware table has: latency_ms/pi5/litert/cifar100"),
        (["--constraint", "latency_ms/pi6/onnx/cifar100<=3"],
         "'latency_ms/pi6/onnx/cifar100' is not a measured hardware metric"),
    ],
)  # fmt: skip
def test_bad_objectives_are_one_line_errors(tmp_path, args, message) -> None:
    assert_search_refused(tmp_path, args, message)
