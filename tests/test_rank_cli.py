"""``nasforge rank`` through the command line: its one-line errors, and a ranking of the table's
own 12-epoch accuracy checked against the benchmark's files and scipy; the resume cache."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy
from scipy import stats

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)
from conftest import require_data
from nasforge.cli import main
from nasforge.errors import TrainingDiverged
from nasforge.rank import ScoreCache, run_scorer, sample_distinct
from nasforge.spaces.nb201 import NB201Space


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sample", "2", "--estimator", "benchmark"], ["--sample", "at least 3", "got 2"]),
        (["--sample", "6467", "--estimator", "benchmark"], ["--sample 6467", "6466 distinct"]),
        (
            ["--sample", "6000", "--predictor", "ridge", "--train-size", "500"],
            ["--sample 6000 + --train-size 500", "6466 distinct"],
        ),
        (["--sample", "10", "--predictor", "ridge"], ["--predictor needs --train-size"]),
        (["--sample", "10", "--train-size", "5", "--estimator", "benchmark"], ["--train-size"]),
        (["--sample", "10", "--encoding", "path", "--proxy", "naswot"], ["--encoding"]),
        (["--sample", "10", "--estimator", "benchmark", "--device", "cuda"], ["--device cuda"]),
        (["--sample", "10", "--estimator", "benchmark", "--bootstrap", "-1"], ["--bootstrap"]),
        (["--sample", "10"], ["nothing to rank", "--proxy", "--predictor", "--estimator"]),
        (["--sample", "10", "--estimator", "surrogate"], ["surrogate", "benchmark, train"]),
        (
            ["--sample", "10", "--estimator", "benchmark", "--space", "darts"],
            ["'darts'", "no benchmark table", "nb201"],
        ),
        (
            ["--sample", "10", "--estimator", "benchmark", "--truth", "svhn"],
            ["'svhn'", "cifar10, cifar100, imagenet16-120"],
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    args: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # in this process (the same entry point as the command, without a start-up per case)
    with pytest.raises(SystemExit) as exit_:
        main(["rank", *args])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasforge: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]


def test_a_sample_too_small_fails_in_a_real_process() -> None:
    done = nasforge("rank", "--sample", "2", "--proxy", "naswot", timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "nasforge: error: --sample must be at least 3 for a rank correlation, got 2"
    )


def _table_200ep(column: str) -> dict[str, float]:
    """The benchmark file itself, read without nasforge."""
    path = require_data("nb201/nb201_200ep_test.csv")
    with path.open(newline="") as handle:
        return {row["ArchitectureString"]: float(row[column]) for row in csv.DictReader(handle)}


def test_the_tables_own_12_epoch_ranking_agrees_with_the_files_and_scipy(tmp_path: Path) -> None:
    require_data("nb201/nb201_12ep.csv")
    done = nasforge(
        "rank",
        "--sample", "40",
        "--estimator", "benchmark",
        "--truth", "cifar10,ImageNet16-120",
        "--bootstrap", "100",
        "--seed", "3",
        "--json", str(tmp_path / "rank.json"),
        "--out", str(tmp_path / "out"),
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "rank.json").read_text())
    sample = results["sample"]
    assert len(sample) == len(set(sample)) == 40
    space = NB201Space()
    # one per isomorphism class, each in its canonical form
    assert len({space.canonical_key(space.from_string(a)) for a in sample}) == 40
    assert all(space.to_string(space.canonical(space.from_string(a))) == a for a in sample)
    truth10 = _table_200ep("CIFAR10TestAccuracy200Epochs")
    truth_in = _table_200ep("ImageNetTestAccuracy200Epochs")
    assert results["truths"]["cifar10"] == pytest.approx([truth10[a] for a in sample])
    assert results["truths"]["imagenet16-120"] == pytest.approx([truth_in[a] for a in sample])
    with (tmp_path / "out" / "rank.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["arch"] for r in rows] == sample
    scores = np.array([float(r["benchmark:val_acc_12ep"]) for r in rows])
    for truth, column in (("cifar10", "truth cifar10"), ("imagenet16-120", "truth imagenet16-120")):
        y = np.array([float(r[column]) for r in rows])
        entry = next(m for m in results["metrics"] if m["truth"] == truth)
        assert entry["spearman"] == pytest.approx(stats.spearmanr(scores, y).statistic)
        assert entry["kendall"] == pytest.approx(stats.kendalltau(scores, y).statistic)
        assert entry["n"] == 40 and entry["top_k"] == 4
        # the table's short schedule ranks well, as the benchmark's authors found
        assert entry["spearman_ci"][0] > 0.4
        assert f"| benchmark:val_acc_12ep | {truth} | {entry['spearman']:.3f}" in done.stdout
    assert (tmp_path / "out" / "rank.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["setup"]["seed"] == 3
    assert results["versions"]["scipy"] == scipy.__version__


class Counting:
    """A cheap scorer that counts what it was asked (the cache must spare repeats)."""

    name = "count"
    cacheable = True
    chunk = 1

    def __init__(self, tag: str = "a") -> None:
        self.asked: list[str] = []
        self.tag = tag

    def setup(self) -> dict[str, str]:
        return {"scorer": self.name, "tag": self.tag}

    def score(self, archs: list) -> np.ndarray:
        self.asked += [NB201Space().to_string(a) for a in archs]
        return np.array([float(sum(a.indices)) for a in archs])


def test_the_cache_resumes_without_rescoring_and_follows_the_setup(tmp_path: Path) -> None:
    space = NB201Space()
    archs = [space.canonical(space.sample(np.random.default_rng(i))) for i in range(5)]
    path = tmp_path / "cache.jsonl"
    first = Counting()
    scores, _, reused = run_scorer(first, archs[:3], space, ScoreCache(path), None)
    assert reused == 0 and len(first.asked) == 3
    with path.open("a") as handle:
        handle.write('{"key": "cut by a kill", "arch":')  # a half-written last line
    again = Counting()
    lines = []
    scores2, _, reused2 = run_scorer(again, archs, space, ScoreCache(path), lines.append)
    assert reused2 == 3 and again.asked == [space.to_string(a) for a in archs[3:]]
    assert list(scores2[:3]) == list(scores)
    assert list(scores2) == [float(sum(a.indices)) for a in archs]
    assert lines and "ETA" in lines[-1]
    other = Counting(tag="b")  # another setup: nothing is reused
    run_scorer(other, archs, space, ScoreCache(path), None)
    assert len(other.asked) == 5


def test_the_sample_does_not_depend_on_the_predictors_training_set_size() -> None:
    space = NB201Space()
    short = sample_distinct(space, 10, seed=4)
    long = sample_distinct(space, 60, seed=4)
    assert long[:10] == short and len(set(long)) == 60
    assert sample_distinct(space, 10, seed=5) != short


class Diverging(Counting):
    """Training that diverges on one architecture: that one is dropped, the rest scored."""

    def score(self, archs: list) -> np.ndarray:
        if NB201Space().to_string(archs[0]) == self.bad:
            raise TrainingDiverged("loss became nan at epoch 1")
        return super().score(archs)


def test_a_diverged_architecture_is_dropped_not_the_ranking(tmp_path: Path) -> None:
    space = NB201Space()
    archs = [space.canonical(space.sample(np.random.default_rng(i))) for i in range(4)]
    scorer = Diverging()
    scorer.bad = space.to_string(archs[1])
    lines: list[str] = []
    cache = ScoreCache(tmp_path / "cache.jsonl")
    scores, seconds, _ = run_scorer(scorer, archs, space, cache, lines.append)
    assert np.isnan(scores[1]) and np.isfinite(np.delete(scores, 1)).all()
    assert np.isfinite(seconds).all()
    assert any("failed: loss became nan" in line for line in lines)
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == 3  # retried next time
