"""A store written by the nasforge of commit af1f55a (schema v2, the run configuration as a flat
``config["cli"]`` dict, final results in ``final/RUN.json`` beside the store) still shows,
resumes, retrains and exports. The fixture was made by that code (tests/fixtures/store_v2)."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge import cli

FIXTURE = Path(__file__).parent / "fixtures" / "store_v2"
FINAL = json.loads((FIXTURE / "final" / "done.json").read_text())

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def load_dump(db: Path) -> None:
    """The fixture's SQL dump as a SQLite file; run ``cut`` (killed mid-search) is made to
    belong to a dead process on this host, as it did where it was killed."""
    with sqlite3.connect(db) as conn:
        conn.executescript((FIXTURE / "store_v2.sql").read_text())
        conn.execute(
            "UPDATE runs SET host = ?, pid = ? WHERE name = 'cut'",
            (socket.gethostname(), dead_pid()),
        )
    conn.close()


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    db = tmp_path / "fixture.db"
    load_dump(db)
    shutil.copytree(FIXTURE / "final", tmp_path / "final")  # where that code kept the results
    return db


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        found = conn.execute(sql, params).fetchall()
    conn.close()
    return found


def stored_cli(db: Path, run: str) -> dict:
    return json.loads(rows(db, "SELECT config FROM runs WHERE name = ?", run)[0][0])["cli"]


def trials(db: Path, run: str) -> list[tuple]:
    return rows(
        db,
        "SELECT number, arch, state, objective, finished FROM trials t JOIN runs r "
        "ON r.id = t.run_id WHERE r.name = ? ORDER BY number",
        run,
    )


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert cli.main(list(args)) == 0
    return capsys.readouterr().out


def test_show_reads_every_old_run_and_upgrades_the_store(old_store: Path, capsys) -> None:
    old = stored_cli(old_store, "done")
    assert "version" not in old and old["epochs"] == 1  # the old, flat format
    assert rows(old_store, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]

    done = json.loads(run_cli(capsys, "show", "done", "--store", str(old_store), "--json"))
    # upgraded through every migration: version 3 added finals, version 4 the oneshot table
    assert rows(old_store, "SELECT value FROM meta WHERE key = 'schema_version'") == [("4",)]
    assert rows(old_store, "SELECT count(*) FROM oneshot") == [(0,)]
    assert done["status"] == "finished" and done["trials"]["complete"] == 3
    cfg = done["config"]["cli"]  # read back through the migration
    assert cfg["version"] == 2
    for key in ("space", "strategy", "dataset", "budget", "seed", "options"):
        assert cfg["search"][key] == old[key]
    for key in ("epochs", "subset", "channels", "cells", "batch_size", "lr"):
        assert cfg["train"][key] == old[key]
    assert cfg["executor"]["workers"] == old["workers"] and cfg["final"] == old["final"]
    # keys the old runs lack took the values that code ran with
    assert cfg["train"]["augment"] == "none" and cfg["train"]["skip_test"] is False
    chosen = FINAL["architectures"][0]
    assert done["final"]["arch"] == chosen["arch"] == FINAL["best"]["arch"]
    assert done["final"]["test_acc_mean"] == chosen["test_acc_mean"]
    assert done["final"]["weights"] == str(old_store.parent / "final" / "done.pt")

    text = run_cli(capsys, "show", "done", "--store", str(old_store))
    assert f"final training: {chosen['arch']} test {chosen['test_acc_mean']:.2f}" in text

    cut = json.loads(run_cli(capsys, "show", "cut", "--store", str(old_store), "--json"))
    assert cut["status"] == "interrupted" and cut["trials"] == {
        "complete": 2,
        "failed": 0,
        "running": 1,
    }
    bench = json.loads(run_cli(capsys, "show", "bench", "--store", str(old_store), "--json"))
    assert bench["config"]["cli"]["search"]["estimator"] == "benchmark"
    assert bench["trials"]["complete"] == 8 and bench["config"]["cli"]["final"] is None
    listed = json.loads(run_cli(capsys, "show", "--store", str(old_store), "--json"))
    assert [r["run"] for r in listed] == ["done", "bench", "cut"]


@pytest.mark.slow
def test_resume_finishes_an_interrupted_old_run_without_repeating_trials(
    old_store: Path, capsys
) -> None:
    before = trials(old_store, "cut")
    assert [t[2] for t in before] == ["complete", "complete", "running"]
    budget = stored_cli(old_store, "cut")["budget"]

    done = json.loads(run_cli(capsys, "resume", "cut", "--store", str(old_store), "--json"))
    after = trials(old_store, "cut")
    assert [t[0] for t in after] == list(range(budget)) and done["trials"] == budget
    assert all(t[2] == "complete" for t in after)
    assert after[:2] == before[:2]  # same result, same finish time: not evaluated again
    assert after[2][1] == before[2][1]  # the trial in flight ran again as itself
    # the stored plan (1 seed, 1 epoch, 30% of the data) was carried out, kept in the store
    assert done["final_reused"] is False
    assert (done["final"]["epochs"], done["final"]["subset"], done["final"]["seeds"]) == (
        1,
        0.3,
        [0],
    )
    kept = rows(
        old_store, "SELECT f.result FROM finals f JOIN runs r ON r.id = f.run_id WHERE name='cut'"
    )
    assert json.loads(kept[0][0])["best"] == done["final"]["best"]
    artifacts = old_store.parent / "fixture.artifacts" / "cut"
    assert Path(done["final"]["best"]["weights"]) == artifacts / "final.pt"
    assert Path(done["export"]["out_dir"]) == artifacts / "export"
    assert all(Path(p).is_file() for p in done["export"]["files"].values())
    assert not (old_store.parent / "final" / "cut.json").exists()


@pytest.mark.slow
def test_export_and_train_final_of_an_old_run(old_store: Path, capsys) -> None:
    # export uses the model the old train-final kept beside the store
    written = json.loads(run_cli(capsys, "export", "done", "--store", str(old_store), "--json"))
    assert written["source"] == "final" and written["arch"] == FINAL["best"]["arch"]
    assert written["onnx_max_abs_diff"] < 1e-4
    assert Path(written["out_dir"]) == old_store.parent / "fixture.artifacts" / "done" / "export"
    arch = json.loads((Path(written["out_dir"]) / "arch.json").read_text())
    assert arch["final_training"]["results"] == str(old_store.parent / "final" / "done.json")

    # retrained with the recipe of the old final training: the same network, the same numbers
    out = run_cli(
        capsys, "train-final", "done", "--store", str(old_store),
        "--top-k", "1", "--seeds", "1", "--epochs", "1", "--subset", "0.3", "--json",
    )  # fmt: skip
    again = json.loads(out)
    assert again["best"]["arch"] == FINAL["best"]["arch"]
    assert again["architectures"][0]["params"] == FINAL["architectures"][0]["params"]
    assert again["best"]["val_acc"] == pytest.approx(FINAL["best"]["val_acc"])
    shown = json.loads(run_cli(capsys, "show", "done", "--store", str(old_store), "--json"))
    assert shown["final"]["source"] == "store"  # the new results win over the old file
    assert shown["final"]["weights"] == again["best"]["weights"]


@pytest.mark.slow
def test_two_stores_in_one_folder_keep_their_own_final_results(tmp_path: Path, capsys) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    load_dump(first)
    load_dump(second)  # the same run names in both
    out = run_cli(
        capsys, "train-final", "done", "--store", str(first),
        "--top-k", "1", "--seeds", "1", "--epochs", "1", "--subset", "0.3", "--json",
    )  # fmt: skip
    weights = Path(json.loads(out)["best"]["weights"])
    assert weights == tmp_path / "a.artifacts" / "done" / "final.pt" and weights.is_file()
    seen = json.loads(run_cli(capsys, "show", "done", "--store", str(first), "--json"))
    other = json.loads(run_cli(capsys, "show", "done", "--store", str(second), "--json"))
    assert seen["final"]["weights"] == str(weights)
    assert "final" not in other and other["artifacts"] == str(tmp_path / "b.artifacts" / "done")
