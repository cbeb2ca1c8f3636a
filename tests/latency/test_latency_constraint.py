"""``--constraint latency_ms<=MS --latency-table FILE`` in a real search: every trial's latency,
summed here from the file's own entries, is within the limit, and a table built for one width
keeps the search to that width (saying so once) instead of failing at the first other width."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli import main
from nasforge.latency.ops import MobileOps
from nasforge.latency.table import LatencyTable
from nasforge.spaces import mobile
from nasforge.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: sklearn's digits: 8x8 grey images of 10 classes, what the trained networks take
DIGITS = {"input_size": 8, "num_classes": 10, "in_channels": 1}


@pytest.fixture(scope="module")
def half_width_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every op of the mobile space at width 0.5 on digits-shaped input, measured briefly."""
    ops = MobileOps((0.5,), **DIGITS)
    table = LatencyTable.build(ops, "eager", fit_networks=0, warmup=1, repeats=2)
    return table.save(tmp_path_factory.mktemp("table") / "w0.5.json")


def _from_file(path: Path, arch: mobile.MobileArch) -> float:
    """A network's latency from the file: scale x the sum of its ops' entries + constant."""
    data = json.loads(path.read_text())
    ops = MobileOps((0.5,), **DIGITS).ops(arch)
    return data["scale"] * sum(data["entries"][op.key]["ms"] for op in ops) + data["constant_ms"]


def test_a_table_of_one_width_keeps_a_search_to_it_within_the_limit(
    half_width_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    halves = [mobile.MobileArch(mobile.MobileSpace().sample(rng).stages, 0.5) for _ in range(40)]
    limit = float(np.median([_from_file(half_width_table, a) for a in halves]))
    store = tmp_path / "s.db"
    argv = ["search", "--space", "mobile", "--dataset", "digits", "--epochs", "1"]
    argv += ["--subset", "0.2", "--batch-size", "64", "--budget", "6", "--search-only"]
    argv += ["--executor", "inprocess", "--skip-test", "--store", str(store), "--name", "lat"]
    argv += ["--constraint", f"latency_ms<={limit:.6f}", "--latency-table", str(half_width_table)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("covers width 0.5 of the mobile space only") == 1, err
    with Store(store) as opened:
        trials = opened.trials(opened.get_run("lat"))
    assert len(trials) == 6 and all(t.state == "complete" for t in trials)
    for trial in trials:
        arch = mobile.from_string(trial.arch)
        assert arch.width == 0.5, trial.arch
        assert _from_file(half_width_table, arch) <= limit + 1e-9, trial.arch


def test_an_unreachable_limit_with_a_table_of_one_width_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], half_width_table: Path
) -> None:
    store = tmp_path / "s.db"
    argv = ["search", "--space", "mobile", "--dataset", "digits", "--budget", "2"]
    argv += ["--store", str(store), "--latency-table", str(half_width_table)]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--constraint", "latency_ms<=0.000001"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no architecture meets the constraints" in err and "covers width 0.5 only" in err
    assert not store.exists()
