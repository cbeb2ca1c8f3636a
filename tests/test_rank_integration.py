"""``nasforge rank`` with zero-cost proxies and predictors (the interfaces of issue #13's
`nasforge.estimators.proxies` and `nasforge.estimators.predictors`): real scores, checked
against scipy on the per-architecture CSV and against the benchmark's files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)
from conftest import require_data
from nasforge.cli import main


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _agrees_with_scipy(results: dict, rows: list[dict[str, str]], scorer: str) -> None:
    x = np.array([float(r[scorer]) for r in rows])
    for entry in (m for m in results["metrics"] if m["scorer"] == scorer):
        y = np.array([float(r[f"truth {entry['truth']}"]) for r in rows])
        assert entry["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
        assert entry["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic)
        assert entry["n"] == len(rows)


def test_proxies_rank_a_sample_and_a_rerun_reuses_their_scores(tmp_path: Path) -> None:
    require_data("cifar10/cifar-10-batches-py/data_batch_1")
    require_data("nb201/nb201_12ep.csv")
    args = [
        "rank", "--sample", "8", "--proxy", "synflow,params", "--truth", "cifar10,cifar100",
        "--bootstrap", "50", "--threads", "1", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    done = nasforge(*args, "--json", str(tmp_path / "a.json"), timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "a.json").read_text())
    rows = _csv(tmp_path / "out" / "rank.csv")
    for scorer in ("proxy:synflow", "proxy:params"):
        _agrees_with_scipy(results, rows, scorer)
        assert results["setup"]["scorers"][scorer]["proxy"] == scorer.split(":")[1]
    assert {(m["scorer"], m["truth"]) for m in results["metrics"]} == {
        (s, t) for s in ("proxy:synflow", "proxy:params") for t in ("cifar10", "cifar100")
    }
    # more parameters, on NB201, go with higher accuracy (the baseline every paper shows)
    params = next(m for m in results["metrics"] if m["scorer"] == "proxy:params")
    assert params["spearman"] > 0
    again = nasforge(*args, "--json", str(tmp_path / "b.json"), timeout=300)
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "b.json").read_text())
    for scorer in ("proxy:synflow", "proxy:params"):
        assert second["scores"][scorer]["reused"] == 8
        assert second["scores"][scorer]["scores"] == results["scores"][scorer]["scores"]


def test_predictors_are_fitted_on_other_cells_and_rank_the_sample(tmp_path: Path) -> None:
    table12 = require_data("nb201/nb201_12ep.csv")
    done = nasforge(
        "rank", "--sample", "30", "--predictor", "ridge,rf", "--train-size", "40",
        "--bootstrap", "50", "--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "out"),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    rows = _csv(tmp_path / "out" / "rank.csv")
    for scorer in ("predictor:ridge", "predictor:rf"):
        setup = results["setup"]["scorers"][scorer]
        assert setup["train_size"] == 40
        train = set(setup["train_archs"])
        assert len(train) == 40 and not train & set(results["sample"])  # OTHER cells
        _agrees_with_scipy(results, rows, scorer)
    # the targets exist in the benchmark's 12-epoch file (what a search would have seen)
    known = {r["cellstr"] for r in _csv(table12)}
    assert set(results["setup"]["scorers"]["predictor:ridge"]["train_archs"]) <= known
    ridge = next(m for m in results["metrics"] if m["scorer"] == "predictor:ridge")
    assert ridge["spearman"] > 0


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        (["--proxy", "synflw"], ["synflow", "naswot", "snip"]),
        (["--predictor", "ridg", "--train-size", "10"], ["ridge", "lgbm", "gnn"]),
    ],
)
def test_unknown_names_list_the_accepted(
    args: list[str], accepted: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["rank", "--sample", "10", *args])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("nasforge: error: unknown ")
    for name in accepted:
        assert name in line
