"""One-shot runs end to end on real CIFAR-10 (a few hundred images, tiny supernets): stored like
searches, resumed exactly, checked against the NB201 table, refused on bad input."""

from __future__ import annotations

import json

import pytest
from scipy import stats
from tests.cli_run import nasforge
from tests.conftest import require_data

from nasforge.oneshot.run import OneShotDriver, OneShotRun, nb201_truths, oneshot_config
from nasforge.outputs import run_folder
from nasforge.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--subset", "0.004", "--channels", "4", "--cells", "1", "--resolution", "8",
        "--batch-size", "32", "--eval-images", "100"]  # fmt: skip


@pytest.fixture(autouse=True)
def _cifar10() -> None:
    require_data("cifar10/cifar-10-batches-py/data_batch_1")
    require_data("nb201/nb201_200ep_test.csv")


def _run(method: str, epochs: int, options: dict | None = None) -> OneShotRun:
    cfg, recipe = oneshot_config(
        method, "nb201", "cifar10", 0, channels=4, cells=1, resolution=8, subset=0.004,
        options=options or {},
        recipe={"epochs": epochs, "batch_size": 32, "eval_images": 100, "check_sample": 0},
    )  # fmt: skip
    return OneShotRun(cfg, recipe)


def _drive(run: OneShotRun, store: Store, name: str, resuming: bool = False) -> dict:
    driver = OneShotDriver(run, store, name, run_folder(store, name))
    return driver.execute(resuming)


def _trajectory(record: dict) -> list:
    return [{k: v for k, v in e.items() if "seconds" not in k} for e in record["history"]]


def test_a_killed_run_resumes_from_its_last_epoch_with_the_same_result(tmp_path, monkeypatch):
    run = _run("gdas", epochs=3)
    with Store(tmp_path / "s.db") as store:
        whole = _drive(run, store, "whole")
        from nasforge.oneshot import train

        real = train.SupernetTrainer.train_epoch

        def dies_in_epoch_3(self, epoch):
            if epoch == 2:
                raise KeyboardInterrupt
            return real(self, epoch)

        monkeypatch.setattr(train.SupernetTrainer, "train_epoch", dies_in_epoch_3)
        with pytest.raises(KeyboardInterrupt):
            _drive(run, store, "killed")
        assert store.get_run("killed").status == "interrupted"
        assert len(store.oneshot(store.get_run("killed"))["history"]) == 2
        monkeypatch.setattr(train.SupernetTrainer, "train_epoch", real)
        resumed = _drive(run, store, "killed", resuming=True)
    assert _trajectory(resumed) == _trajectory(whole)  # losses, α, temperature, derived cell
    assert resumed["derived"] == whole["derived"]


def test_cli_run_is_shown_checked_against_the_table_and_retrained(tmp_path):
    store = str(tmp_path / "runs.db")
    done = nasforge("oneshot", "--method", "darts", "--epochs", "2", *TINY, "--check-sample", "12",
                    "--store", store, "--name", "d", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "epoch 2/2" in done.stderr and "ETA" in done.stderr
    # the derived cell's table accuracy is the table's, looked up independently
    assert out["derived_nb201"] == pytest.approx(nb201_truths_of(out["derived"]))
    with Store(store) as s:
        record = s.oneshot(s.get_run("d"))
        trials = s.trials(s.get_run("d"))
    assert [t.arch for t in trials] == [out["derived"]]
    assert len(record["history"]) == 2 and len(record["history"][0]["alpha"]) == 6
    check = record["check"]
    truth = [nb201_truths_of(a)["cifar10"] for a in check["archs"]]
    tau = stats.kendalltau(check["scores"], truth).statistic
    assert check["metrics"]["cifar10"]["kendall"] == pytest.approx(tau, abs=1e-3)
    # nasforge rank measures the same supernet on the same seeded sample: the same tau
    ranked = nasforge("rank", "--sample", "12", "--supernet", "d", "--store", store,
                      "--bootstrap", "0", "--json", str(tmp_path / "rank.json"))  # fmt: skip
    assert ranked.returncode == 0, ranked.stderr
    ranking = json.loads((tmp_path / "rank.json").read_text())
    assert ranking["sample"] == check["archs"]
    assert ranking["scores"]["supernet:d"]["scores"] == pytest.approx(check["scores"], abs=1e-3)
    assert ranking["metrics"][0]["kendall"] == pytest.approx(tau, abs=1e-3)
    shown = nasforge("show", "d", "--store", store)
    assert shown.returncode == 0 and "one-shot darts: 2/2 supernet epochs" in shown.stdout
    assert "Kendall tau" in shown.stdout
    final = nasforge("train-final", "d", "--store", store, "--epochs", "1", "--subset", "0.01",
                     "--seeds", "1", "--json")  # fmt: skip
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["architectures"][0]["arch"] == out["derived"]


def nb201_truths_of(text: str) -> dict[str, float]:
    from nasforge.spaces.nb201 import from_string

    return nb201_truths(from_string(text))


def test_spos_searches_the_trained_supernet_with_a_strategy_and_stores_each_trial(tmp_path):
    store = str(tmp_path / "runs.db")
    done = nasforge("oneshot", "--method", "spos", "--epochs", "1", *TINY, "--check-sample",
                    "0", "--option", "search_budget=6", "--store", store, "--name", "s",
                    "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Store(store) as s:
        trials = s.trials(s.get_run("s"))
    assert len(trials) == 6 and all(t.state == "complete" for t in trials)
    best = max(trials, key=lambda t: t.result.objective)
    assert json.loads(done.stdout)["derived"] == best.arch


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "fairnas", "--space", "darts"], "fairnas needs a space whose every edge"),
        (["--method", "dartz"], "unknown one-shot method 'dartz'; accepted: darts, gdas"),
        (["--method", "gdas", "--option", "tau=3"], "no option tau; accepted: "),
        (["--method", "enas", "--space", "chain"], "space 'chain' has no supernet"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    store = tmp_path / "runs.db"
    done = nasforge("oneshot", *args, *TINY, "--store", str(store))
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not store.exists()


def test_a_checkpoint_of_another_configuration_is_refused_and_kept(tmp_path):
    store = str(tmp_path / "runs.db")
    first = nasforge("oneshot", "--method", "gdas", "--epochs", "1", *TINY, "--check-sample", "0",
                     "--store", store, "--name", "a")  # fmt: skip
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "runs.artifacts"
    (folder / "b").mkdir()
    (folder / "b" / "oneshot.pt").write_bytes((folder / "a" / "oneshot.pt").read_bytes())
    before = (folder / "b" / "oneshot.pt").read_bytes()
    other = nasforge("oneshot", "--method", "gdas", "--epochs", "2", *TINY, "--check-sample", "0",
                     "--store", store, "--name", "b")  # fmt: skip
    assert other.returncode == 2 and "belongs to another configuration" in other.stderr
    assert (folder / "b" / "oneshot.pt").read_bytes() == before
    with Store(store) as s:
        assert s.find_run("b") is None
