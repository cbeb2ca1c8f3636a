"""Commands agree with each other: a search-only run is stored where the pipeline stores runs,
train-final's defaults are the pipeline's final plan (as the README states it: the winner, 2
seeds, twice the search's epochs on three times its data), and executor options that the chosen
executor would ignore are refused instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)
from nasforge.final import format_table, train_final

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_search_only_uses_the_default_store_and_train_final_follows_the_plan(
    tmp_path: Path,
) -> None:
    search = ["search", "--dataset", "digits", "--subset", "0.3", "--epochs", "1"]
    search += ["--batch-size", "32", "--budget", "2", "--workers", "1", "--search-only"]
    done = nasforge(*search, "--name", "later", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    store = tmp_path / "runs" / "nasforge.db"  # the README's default store
    assert store.is_file() and "runs/nasforge.db" in done.stdout
    shown = json.loads(nasforge("show", "later", "--store", str(store), "--json").stdout)
    assert shown["trials"]["complete"] == 2

    result = train_final(store, "later", progress=False).to_json()
    assert len(result["architectures"]) == 1  # the winner
    assert result["seeds"] == [0, 1]  # 2 seeds
    assert result["epochs"] == 2  # twice the search's 1 epoch
    assert result["subset"] == pytest.approx(0.9)  # three times its 0.3
    table = format_table(result)
    assert "MMACs" in table and "1 MAC = 2 FLOPs" in table and "MFLOPs (" not in table

    helps = " ".join(nasforge("train-final", "--help").stdout.split())
    assert "default: the run's final plan, else 1" in helps  # --top-k
    assert "default: the run's final plan, else 2" in helps  # --seeds


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--executor", "pool", "--ray-address", "127.0.0.1:1"], "--ray-address needs the ray"),
        (["--executor", "inprocess", "--ray-address", "127.0.0.1:1"], "not --executor inprocess"),
        (["--executor", "ray", "--memory-limit-mb", "500"], "--memory-limit-mb is enforced by"),
    ],
)
def test_options_the_executor_would_ignore_are_refused(
    options: list[str], says: str, nb201_dir: Path, tmp_path: Path
) -> None:
    data = ["--data-dir", str(nb201_dir.parent), "--store", str(tmp_path / "s.db")]
    done = nasforge("search", "--estimator", "benchmark", "--budget", "2", *options, *data)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0], done.stderr
    assert not (tmp_path / "s.db").exists()


def test_on_ray_workers_one_means_one_and_no_workers_means_the_cluster() -> None:
    from nasforge.config import RunConfig

    ray = {"executor": "ray", "ray_address": "127.0.0.1:6379"}
    assert RunConfig.create(executor=ray).executor.workers is None  # every CPU of the cluster
    assert RunConfig.create(executor={**ray, "workers": 1}).executor.workers == 1
    assert RunConfig.create(executor={"ray_address": "127.0.0.1:6379"}).executor.workers is None
    assert RunConfig.create().executor.workers >= 1  # the pool keeps its default
