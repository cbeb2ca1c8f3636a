"""Run names are safe: a name becomes part of file paths (the run's log, its artifacts), so a
name with a path in it is refused where a run is created, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)
from nasforge.errors import ConfigError
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.random import RandomSearch

BAD = ["../../x", "/tmp/abs", ".hidden", "a/b", "a b", "<script>", "", "x" * 101, "-lead"]
GOOD = ["fmnist", "run-20261202-014502", "A.b_c-9", "x" * 100]


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs-run", ".hidden"])
def test_the_cli_refuses_an_unsafe_name_in_one_line_and_writes_nothing(
    name: str, tmp_path: Path
) -> None:
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    done = nasforge(
        "search",
        "--estimator",
        "benchmark",
        "--budget",
        "2",
        "--store",
        "s.db",
        "--name",
        name,
        cwd=work,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasforge: error: argument --name:")
    assert "[A-Za-z0-9][A-Za-z0-9._-]{0,99}" in lines[0]
    assert list(tmp_path.rglob("*")) == [tmp_path / "deep", work]  # no store, no log, no file


@pytest.mark.parametrize("name", BAD)
def test_store_and_experiment_refuse_unsafe_names(name: str, tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store, pytest.raises(ConfigError, match="run name"):
        store.create_run(name, {})
    space = NB201Space()
    with pytest.raises(ConfigError, match="run name"):
        Experiment(
            space,
            RandomSearch(space, seed=0),
            _NoEstimator(),
            1,
            store=tmp_path / "e.db",
            name=name,
        )
    assert not (tmp_path / "e.db").exists()


@pytest.mark.parametrize("name", GOOD)
def test_safe_names_are_accepted(name: str, tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.create_run(name, {}).name == name


def test_debug_shows_the_traceback_of_a_user_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('bad space file')\n")
    args = ["search", "--estimator", "benchmark", "--space", f"{broken}:space"]
    plain, debug = nasforge(*args, cwd=tmp_path), nasforge(*args, "--debug", cwd=tmp_path)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


class _NoEstimator:
    name = "none"
    objective_name = "x"

    def evaluate(self, candidate):  # pragma: no cover - never reached: the name is refused
        raise AssertionError("not evaluated")
