"""`nasforge search` with real training goes on to final training and export (#6's main job),
with defaults that fit a laptop, and a run interrupted after its search finishes on resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nasforge import cli
from nasforge.config import RunConfig
from nasforge.errors import ConfigError
from nasforge.pipeline import DEFAULT_STORE, FinalPlan

TINY = [
    "search", "--dataset", "digits", "--budget", "3", "--epochs", "1", "--subset", "1",
    "--channels", "4", "--cells", "1", "--batch-size", "32", "--executor", "inprocess",
    "--final-epochs", "1", "--name", "pipe",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config_of(*args: str) -> RunConfig:
    return cli.search_config(cli.build_parser().parse_args(["search", *args]))


def test_defaults_are_a_short_real_training_search_that_ends_in_a_model() -> None:
    cfg = config_of()
    assert cfg.search.estimator == "train" and cfg.search.space == "nb201"
    assert cfg.search.dataset == "fashion-mnist"  # resolved when built, not when first used
    assert (cfg.train.epochs, cfg.train.subset, cfg.search.budget) == (2, 0.1, 12)
    assert (cfg.train.channels, cfg.train.cells) == (8, 1)  # NB201's proxy network
    assert cfg.executor.workers == min(2, os.cpu_count() or 1)
    assert cfg.final == FinalPlan(top_k=1, seeds=2, epochs=None, subset=None)
    # the default real-training search (README): regularized evolution steered by MeCo
    assert cfg.search.strategy == "proxy-evolution"
    meco = {"proxy": "meco"}
    assert cfg.search.options == {**meco, "population": 6, "sample": 3}  # 12 trials still evolve


def test_a_short_evolution_gets_a_smaller_population_unless_one_is_given() -> None:
    meco = {"proxy": "meco"}  # the default search's own options
    assert config_of("--budget", "5").search.options == {**meco, "population": 2, "sample": 2}
    assert config_of("--budget", "40").search.options == meco  # the paper's 10 and 3
    assert config_of("--population", "4").search.options == {**meco, "population": 4}
    evolution = ("--strategy", "evolution")
    assert config_of(*evolution, "--budget", "5").search.options == {"population": 2, "sample": 2}
    assert config_of(*evolution, "--budget", "40").search.options == {}
    assert config_of("--strategy", "random").search.options == {}


def test_explicit_choices_override_the_defaults() -> None:
    cfg = config_of("--channels", "16", "--workers", "1", "--budget", "5", "--final-seeds", "3")
    assert (cfg.train.channels, cfg.train.cells) == (16, None)
    assert (cfg.executor.workers, cfg.search.budget) == (1, 5)
    assert cfg.final is not None and cfg.final.seeds == 3
    assert config_of("--search-only").final is None
    assert config_of("--budget-seconds", "60").search.budget is None  # time alone bounds it


@pytest.mark.parametrize(
    "args", [["--estimator", "benchmark"], ["--table", "x.csv"], ["--hardware", "latency_ms/x"]]
)
def test_benchmark_searches_keep_their_own_defaults(args: list[str]) -> None:
    cfg = config_of(*args)
    assert cfg.search.estimator == "benchmark" and cfg.final is None
    assert cfg.search.dataset == "cifar10"
    assert (cfg.search.budget, cfg.executor.workers, cfg.train.channels) == (100, 1, None)


def test_final_fidelity_is_above_the_search_by_default() -> None:
    assert FinalPlan().resolved(2, 0.1) == (4, pytest.approx(0.3))
    assert FinalPlan().resolved(5, 0.5) == (10, 1.0)
    assert FinalPlan(epochs=3, subset=0.2).resolved(5, 0.5) == (3, 0.2)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"top_k": 0}, "top_k"), ({"seeds": 1.5}, "seeds"), ({"subset": 2.0}, "subset")],
)
def test_bad_plans_are_named(kwargs: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        FinalPlan(**kwargs)


@pytest.mark.slow
def test_search_trains_the_winner_exports_it_and_resume_finishes_an_interrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no --store: the default store is made here

    def crash(*args, **kwargs):
        raise RuntimeError("power cut after the search")

    monkeypatch.setattr(cli, "finish", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        cli.main(TINY)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    store = tmp_path / DEFAULT_STORE
    assert store.is_file() and not (store.parent / "nasforge.artifacts").exists()
    capsys.readouterr()
    assert cli.main(["show", "pipe", "--store", str(store)]) == 0
    assert "final training and export not done yet: nasforge resume pipe" in capsys.readouterr().out

    assert cli.main(["resume", "pipe", "--store", str(store), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["trials"] == 3  # the search was not run again
    assert done["final_reused"] is False
    final = done["final"]
    assert (final["epochs"], final["subset"], final["seeds"]) == (1, 1.0, [0, 1])
    assert len(final["architectures"]) == 1  # the winner only
    assert final["architectures"][0]["arch"] == done["best"]["arch"]
    files = {name: Path(path) for name, path in done["export"]["files"].items()}
    assert all(path.is_file() for path in files.values())
    assert done["export"]["source"] == "final" and done["export"]["onnx_max_abs_diff"] < 1e-4

    assert cli.main(["resume", "pipe", "--store", str(store)]) == 0
    printed = capsys.readouterr().out
    assert "final training already done" in printed  # not trained twice
    assert str(files["model.onnx"]) in printed and "test acc" in printed

    assert cli.main(["show", "pipe", "--store", str(store)]) == 0
    shown = capsys.readouterr().out
    mean = final["architectures"][0]["test_acc_mean"]
    assert f"final training: {final['architectures'][0]['arch']} test {mean:.2f}" in shown
    assert f"exported model: {done['export']['out_dir']}/" in shown and "not done yet" not in shown
