"""Final training: a tiny real search (NB201 cells on scikit-learn's digits, stored in SQLite),
then its best architectures retrained over seeds; selection rules on synthetic trials; errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge import cli, runconfig
from nasforge.config import RunConfig
from nasforge.core import Result
from nasforge.errors import ConfigError
from nasforge.final import (
    FinalResult,
    make_trainer,
    top_architectures,
    train_final,
)
from nasforge.nn.profile import count_macs
from nasforge.outputs import weights_path
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store, StoredTrial

RUN = "tiny"
NET = {"C": 4, "N": 1, "in_channels": 1, "num_classes": 10}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def search(store: Path, name: str = RUN, budget: int = 3) -> None:
    """A real stored search, made the way a user makes one."""
    code = cli.main(
        [
            "search",
            "--estimator", "train",
            "--search-only",
            "--dataset", "digits",
            "--strategy", "random",
            "--budget", str(budget),
            "--epochs", "1",
            "--subset", "1",
            "--channels", "4",
            "--cells", "1",
            "--executor", "inprocess",
            "--store", str(store),
            "--name", name,
            "--json",
        ]
    )  # fmt: skip
    assert code == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("final") / "runs.db"
    search(path)
    return path


@pytest.fixture(scope="module")
def final(store: Path) -> FinalResult:
    return train_final(store, RUN, top_k=2, seeds=2, epochs=1, progress=False)


def stored_trials(store: Path) -> list[StoredTrial]:
    with Store(store, create=False) as db:
        return db.trials(db.get_run(RUN))


@pytest.mark.slow
def test_mean_and_std_summarise_the_seeds(final: FinalResult) -> None:
    data = final.to_json()
    assert len(data["architectures"]) == 2 and data["seeds"] == [0, 1]
    for row in data["architectures"]:
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        for metric in ("test_acc", "val_acc"):
            values = np.array([r[metric] for r in row["runs"]])
            assert row[f"{metric}_mean"] == pytest.approx(values.mean())
            assert row[f"{metric}_std"] == pytest.approx(values.std(ddof=1))
            assert all(0.0 <= v <= 100.0 for v in values)
        assert all(r["epochs"] == 1 and r["train_seconds"] > 0 for r in row["runs"])


@pytest.mark.slow
def test_size_and_speed_are_those_of_the_trained_network(final: FinalResult) -> None:
    space = NB201Space()
    assert final.build_options == NET
    for row in final.to_json()["architectures"]:
        arch = space.from_string(row["arch"])
        assert row["params"] == space.param_count(arch, **NET)
        assert row["macs"] == count_macs(space.build(arch, **NET), (1, 8, 8)) > 0
        assert 0 < row["latency_ms"] <= row["latency_p90_ms"]


@pytest.mark.slow
def test_retrains_the_searchs_best_distinct_architectures(store: Path, final: FinalResult) -> None:
    trials = [t for t in stored_trials(store) if t.state == "complete"]
    by_objective = sorted(trials, key=lambda t: -t.result.objective)  # type: ignore[union-attr]
    space = NB201Space()
    distinct: list[StoredTrial] = []
    for trial in by_objective:
        key = space.canonical(space.from_string(trial.arch))
        if all(space.canonical(space.from_string(d.arch)) != key for d in distinct):
            distinct.append(trial)
    chosen = [a.arch for a in final.architectures]
    assert chosen == [t.arch for t in distinct[:2]]
    # seed 0, the run's epochs and the whole training set are the search's own recipe, so the
    # retrained network is the searched one: the same validation accuracy
    best = distinct[0]
    assert final.architectures[0].runs[0].val_acc == pytest.approx(best.result.objective)  # type: ignore[union-attr]


@pytest.mark.slow
def test_keeps_the_best_seed_of_the_best_architecture_by_validation(
    store: Path, final: FinalResult
) -> None:
    with Store(store, create=False) as db:
        kept = db.final(db.get_run(RUN))
        weights = weights_path(db, RUN).absolute()
    assert kept == json.loads(json.dumps(final.to_json()))  # the results live in the store
    assert weights == store.parent / "runs.artifacts" / RUN / "final.pt"
    rows = final.to_json()["architectures"]
    best = max(rows, key=lambda r: r["val_acc_mean"])
    seed = max(best["runs"], key=lambda r: r["val_acc"])["seed"]
    assert final.best["arch"] == best["arch"] and final.best["seed"] == seed
    assert final.best["weights"] == str(weights)
    space = NB201Space()
    model = space.build(space.from_string(best["arch"]), **NET)
    model.load_state_dict(torch.load(weights))  # strict: every tensor present


@pytest.mark.slow
def test_export_uses_the_kept_model(store: Path, final: FinalResult, tmp_path: Path) -> None:
    from nasforge.export import export_run

    written = export_run(store, RUN, tmp_path / "model", progress=False)
    assert written["source"] == "final" and written["arch"] == final.best["arch"]
    exported = torch.load(tmp_path / "model" / "weights.pt")
    kept = torch.load(final.best["weights"])
    assert exported.keys() == kept.keys()
    assert all(torch.equal(exported[k], kept[k]) for k in kept)
    assert written["onnx_max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_command_prints_the_table_and_progress(
    store: Path, final: FinalResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.db"  # the command replaces the run's final results: use a copy
    with sqlite3.connect(store) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    args = ["train-final", RUN, "--store", str(copy), "--top-k", "1", "--seeds", "1"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    header = out.splitlines()[0]
    for column in ("arch", "test acc", "params", "MMACs", "latency ms"):
        assert column in header
    assert final.architectures[0].arch in out and " ± " in out
    assert f"{RUN} final [" in err  # progress lines go to stderr
    with Store(copy, create=False) as db:
        assert db.final(db.get_run(RUN))["seeds"] == [0]  # this command's, not the fixture's
    assert (tmp_path / "copy.artifacts" / RUN / "final.pt").is_file()
    assert f"results: kept with run '{RUN}' in {copy}" in out


# selection on synthetic trials --------------------------------------------------------------

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
B = "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
# two isomorphic cells: node 1 is dead, so its op does not matter
DEAD_CONV = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
DEAD_POOL = "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def trial(number: int, arch: str, objective: float | None, fidelity: float | None) -> StoredTrial:
    result = None if objective is None else Result(objective, fidelity=fidelity)
    state = "failed" if result is None else "complete"
    return StoredTrial(number, arch, fidelity, state, result, None, 0.0, 1.0)


def test_an_architecture_is_judged_at_its_highest_fidelity() -> None:
    trials = [
        trial(0, A, 90.0, 1.0),  # lucky at one epoch ...
        trial(1, A, 70.0, 3.0),  # ... but 70 when trained longest
        trial(2, B, 80.0, 3.0),
        trial(3, B, 60.0, 3.0),
        trial(4, DEAD_POOL, None, None),  # failed trials never count
    ]
    chosen = top_architectures(NB201Space(), trials, 3)
    assert [(c["arch"], c["objective"], c["trial"]) for c in chosen] == [
        (B, 80.0, 2),
        (A, 70.0, 1),
    ]


def test_isomorphic_cells_count_once() -> None:
    trials = [
        trial(0, DEAD_CONV, 50.0, 1.0),
        trial(1, DEAD_POOL, 55.0, 1.0),
        trial(2, A, 40.0, 1.0),
    ]
    chosen = top_architectures(NB201Space(), trials, 5)
    assert [c["arch"] for c in chosen] == [DEAD_POOL, A]


# errors -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unknown_run_names_the_runs_there(store: Path) -> None:
    with pytest.raises(ConfigError, match=rf"no run named 'nope' in .*runs there: {RUN}"):
        train_final(store, "nope", progress=False)


@pytest.mark.slow
def test_unknown_run_is_one_line_exit_2(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-final", "nope", "--store", str(store)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("nasforge: error: no run named 'nope'") and err.count("\n") == 1


def make_run(path: Path, name: str, config: dict, trials: list[tuple[str, Result | None]]) -> None:
    with Store(path) as db:
        run = db.create_run(name, config)
        for number, (arch, result) in enumerate(trials):
            db.start_trial(run, number, arch, None)
            db.finish_trial(run, number, result, None if result else "out of memory")
        db.set_status(run, "finished")


def cli_config(**changes: object) -> dict:
    """A run's config as nasforge stored it before `RunConfig` (version 1: a flat dict)."""
    base = {
        "space": "nb201",
        "estimator": "train",
        "dataset": "digits",
        "seed": 0,
        "epochs": 1,
        "subset": 1.0,
        "val_fraction": 0.1,
        "batch_size": 128,
        "lr": 0.1,
        "channels": 4,
        "cells": 1,
    }
    return {"cli": {**base, **changes}}


def test_a_run_without_finished_trials_has_nothing_to_retrain(tmp_path: Path) -> None:
    make_run(tmp_path / "r.db", "broken", cli_config(), [(A, None), (B, None)])
    with pytest.raises(ConfigError, match=r"run 'broken' .* no finished trial \(2 failed"):
        train_final(tmp_path / "r.db", "broken", progress=False)


def test_a_run_not_started_from_the_cli_is_refused(tmp_path: Path) -> None:
    make_run(tmp_path / "r.db", "python", {"space": "nb201"}, [(A, Result(50.0))])
    with pytest.raises(ConfigError, match="was not started from the CLI"):
        train_final(tmp_path / "r.db", "python", progress=False)


def test_a_benchmark_run_without_images_is_refused(tmp_path: Path) -> None:
    config = cli_config(estimator="benchmark", dataset="ImageNet16-120")
    make_run(tmp_path / "r.db", "table", config, [(A, Result(50.0))])
    with pytest.raises(ConfigError, match="has no images to retrain on"):
        train_final(tmp_path / "r.db", "table", progress=False)


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        train_final(tmp_path / "none.db", RUN, progress=False)
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"top_k": 0}, "top_k"), ({"seeds": 0}, "seeds"), ({"subset": 1.5}, "subset")],
)
def test_bad_settings_are_named(tmp_path: Path, kwargs: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        train_final(tmp_path / "r.db", RUN, progress=False, **kwargs)


def test_a_search_that_skipped_the_test_set_is_still_tested_finally() -> None:
    cfg = RunConfig.from_json(cli_config(skip_test=True)["cli"])
    assert runconfig.make_estimator(cfg, runconfig.make_space(cfg), None).score_test is False
    _, trainer = make_trainer(cfg, seed=0, epochs=1, subset=1.0, data_dir=None)
    assert trainer.score_test is True


def test_skip_test_needs_real_training() -> None:
    cfg = RunConfig.from_json(cli_config(skip_test=True, estimator="benchmark")["cli"])
    with pytest.raises(
        ConfigError,
        match="--skip-test applies only to real training, and this estimator is 'benchmark'",
    ):
        runconfig.training_knobs(cfg)
