"""User tabular benchmarks: lookups equal the file, every file problem is located, and a search
over a custom space runs against one through the experiment."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from nasforge import factory
from nasforge.capabilities import capabilities_of
from nasforge.core import Candidate
from nasforge.errors import ConfigError, DataFormatError, NasforgeError, UnknownNameError
from nasforge.estimators.tabular import MissingConfigError, TabularBenchmark
from nasforge.executors.base import Job, run_job
from nasforge.experiment import Budget, Experiment
from nasforge.spaces.custom import Choice, Config, Custom
from nasforge.spaces.nb201 import NB201Arch, NB201Space

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tabular_benchmark.csv"
HEADER = "block,kernel,depth,shortcut"


def chain_space(depths=(1, 2, 3)) -> Custom:
    """The space of ``examples/tabular_benchmark.csv`` (docs/custom_spaces.md)."""
    return Custom(
        {
            "block": ["conv", "pool"],
            "kernel": Choice([1, 3], when={"block": "conv"}),
            "depth": list(depths),
            "shortcut": ["none", "skip", "conv1x1"],
        },
        name="nb201-chain",
    )


def nb201_cell(cfg: Config) -> NB201Arch:
    """The NB201 cell each configuration of the example table stands for (docs)."""
    op = f"nor_conv_{cfg['kernel']}x{cfg['kernel']}" if cfg["block"] == "conv" else "avg_pool_3x3"
    edges = dict.fromkeys([(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)], "none")
    chain = {1: [(0, 1)], 2: [(0, 1), (1, 3)], 3: [(0, 1), (1, 2), (2, 3)]}[cfg["depth"]]
    for edge in chain:
        edges[edge] = op
    if cfg["depth"] == 1:
        edges[(1, 3)] = "skip_connect"
    edges[(0, 3)] = {"none": "none", "skip": "skip_connect", "conv1x1": "nor_conv_1x1"}[
        cfg["shortcut"]
    ]
    return NB201Arch(tuple(edges.values()))


@pytest.fixture(scope="module")
def space() -> Custom:
    return chain_space()


@pytest.fixture(scope="module")
def bench(space: Custom) -> TabularBenchmark:
    return TabularBenchmark.from_csv(EXAMPLE, space, metrics=("params",))


def example_rows() -> list[dict[str, str]]:
    with open(EXAMPLE, newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- lookups -----------------------------------------------------------------------------------


def test_every_row_is_looked_up_with_the_files_numbers(space: Custom, bench) -> None:
    rows = example_rows()
    assert len(bench) == len(rows) == space.size() == 27
    for row in rows:
        text = ",".join(f"{n}={row[n]}" for n in space.names if row[n])
        result = bench.evaluate(Candidate(space.from_string(text)))
        assert result.objective == float(row["val_acc"])
        assert dict(result.report) == {"test_acc": float(row["test_acc"])}
        assert dict(result.metrics) == {"params": float(row["params"])}
        assert result.cost == 0.0
    assert bench.name == "table:tabular_benchmark" and bench.objective_name == "val_acc"
    assert capabilities_of(bench).report_metric == "test_acc"
    assert not capabilities_of(bench).has_cost  # no cost column: budgets count evaluations
    best = max(rows, key=lambda r: float(r["val_acc"]))
    assert bench.optimum() == (float(best["val_acc"]), float(best["test_acc"]))


def test_the_example_table_is_nb201s_numbers(space: Custom, bench, nb201_dir: Path) -> None:
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    nb201 = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)
    cells = set()
    for row in example_rows():
        text = ",".join(f"{n}={row[n]}" for n in space.names if row[n])
        cell = nb201_cell(space.from_string(text))
        assert NB201Space().to_string(cell) == row["nb201_cell"]
        entry = nb201.lookup(cell)
        assert entry.val_acc_12ep == float(row["val_acc"])
        assert entry.test_acc_200ep == float(row["test_acc"])
        assert NB201Space().param_count(cell) == int(row["params"])
        cells.add(row["nb201_cell"])
    assert len(cells) == 27  # one distinct cell per configuration


def test_lookup_is_by_canonical_config(space: Custom, bench) -> None:
    pool = Config({"block": "pool", "depth": 2, "shortcut": "skip"})
    assert pool in bench and {"block": "pool", "depth": 2, "shortcut": "skip"} in bench
    with_inactive = Config({**pool, "kernel": 3})  # an inactive choice does not change the arch
    assert bench.evaluate(Candidate(with_inactive)) == bench.evaluate(Candidate(pool))
    assert "not a config" not in bench


def test_missing_config_is_an_error_or_a_failed_trial(tmp_path: Path) -> None:
    bigger = chain_space(depths=(1, 2, 3, 4))  # depth 4 is in the space, not in the table
    deep = Config({"block": "pool", "depth": 4, "shortcut": "none"})
    strict = TabularBenchmark.from_csv(EXAMPLE, bigger)
    with pytest.raises(DataFormatError) as err:
        strict.evaluate(Candidate(deep))
    assert "block=pool,depth=4,shortcut=none" in str(err.value)
    assert str(EXAMPLE) in str(err.value) and "missing='fail'" in str(err.value)
    assert run_job(strict, Job(0, Candidate(deep))).fatal  # stops an experiment
    lenient = TabularBenchmark.from_csv(EXAMPLE, bigger, missing="fail")
    with pytest.raises(MissingConfigError, match="depth=4"):
        lenient.evaluate(Candidate(deep))
    assert not issubclass(MissingConfigError, NasforgeError)
    outcome = run_job(lenient, Job(0, Candidate(deep)))
    assert outcome.result is None and not outcome.fatal and "depth=4" in outcome.error
    with pytest.raises(UnknownNameError, match="'skip'; accepted: error, fail"):
        TabularBenchmark.from_csv(EXAMPLE, bigger, missing="skip")


def test_cost_column_comments_gzip_and_partial_tables(tmp_path: Path) -> None:
    space = Custom({"width": [8, 16, 32], "act": ["relu", "gelu"]}, name="w")
    text = (
        "# my sweep, 2024\n"
        "width,act,acc,test,seconds,params,notes\n"
        "8,relu,80.5,79.0,12.5,100,first\n"
        "\n"
        "# a comment between rows\n"
        "16.0, gelu ,85,84.5,30,400,\n"  # numbers by value, spaces trimmed
    )
    for path in (write(tmp_path, text), tmp_path / "t.csv.gz"):
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(text.encode()))
        bench = TabularBenchmark.from_csv(
            path, space, objective="acc", report=("test",), cost="seconds", metrics=("params",)
        )
        assert capabilities_of(bench).has_cost and len(bench) == 2
        result = bench.evaluate(Candidate(Config({"width": 16, "act": "gelu"})))
        assert (result.objective, result.cost) == (85.0, 30.0)
        assert dict(result.report) == {"test": 84.5} and dict(result.metrics) == {"params": 400}
    no_report = TabularBenchmark.from_csv(write(tmp_path, text), space, objective="acc", report=())
    result = no_report.evaluate(Candidate(Config({"width": 8, "act": "relu"})))
    assert dict(result.report) == {"acc": 80.5}
    assert capabilities_of(no_report).report_metric == "acc"


def test_any_space_through_an_arch_column(tmp_path: Path) -> None:
    nb201 = NB201Space()
    cell = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    path = write(tmp_path, f"arch,val_acc,test_acc\n{cell},90.0,93.9\n")
    bench = TabularBenchmark.from_csv(path, nb201)
    assert bench.evaluate(Candidate(nb201.from_string(cell))).report["test_acc"] == 93.9
    bad = write(tmp_path, "arch,val_acc,test_acc\n|nope~0|,90.0,93.9\n", "bad.csv")
    with pytest.raises(DataFormatError, match=r"bad.csv: line 2: column arch: invalid NB201"):
        TabularBenchmark.from_csv(bad, nb201)


# --- file problems: file, line and column ------------------------------------------------------

GOOD_ROW = "conv,3,2,skip,83.4,93.7\n"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        # missing columns: the header line
        ("block,kernel,depth,val_acc,test_acc\n", ["line 2", "missing column(s) shortcut"]),
        (f"{HEADER},val_acc\n", ["line 2", "missing column(s) test_acc"]),
        (f"{HEADER},val_acc,test_acc,val_acc\n", ["line 2", "column(s) val_acc appear twice"]),
        # values
        (f"{HEADER},val_acc,test_acc\nconv,3,2,skip,high,93.7\n", ["line 3", "column val_acc"]),
        (f"{HEADER},val_acc,test_acc\nconv,3,2,skip,83.4,\n", ["line 3", "column test_acc"]),
        (f"{HEADER},val_acc,test_acc\nconv,3,2,skip,nan,93.7\n", ["line 3", "column val_acc"]),
        (
            f"{HEADER},val_acc,test_acc\n{GOOD_ROW}conv,3,4,skip,83.4,93.7\n",
            ["line 4", "column depth", "'4'", "accepted: 1, 2, 3"],
        ),
        (
            f"{HEADER},val_acc,test_acc\nconv,7,2,skip,83.4,93.7\n",
            ["line 3", "column kernel", "'7'", "accepted: 1, 3"],
        ),
        (
            f"{HEADER},val_acc,test_acc\nconv,,2,skip,83.4,93.7\n",
            ["line 3", "column kernel", "empty, but kernel is active", "accepted: 1, 3"],
        ),
        (
            f"{HEADER},val_acc,test_acc\npool,3,2,skip,83.4,93.7\n",
            ["line 3", "column kernel", "inactive", "block=conv", "leave it empty"],
        ),
        (
            f"{HEADER},val_acc,test_acc\n{GOOD_ROW}# note\nconv,3,2.0,skip,80,90\n",
            ["line 5", "block=conv,kernel=3,depth=2,shortcut=skip", "already on line 3"],
        ),
        (f"{HEADER},val_acc,test_acc\nconv,3,2,skip,83.4\n", ["line 3", "5 fields", "has 6"]),
        (f"{HEADER},val_acc,test_acc\n", ["no rows"]),
        ("# only a comment\n", ["empty file"]),
    ],
)
def test_file_problems_name_file_line_and_column(tmp_path: Path, space: Custom, body, words):
    path = write(tmp_path, "# provenance comment\n" + body)
    with pytest.raises(DataFormatError) as err:
        TabularBenchmark.from_csv(path, space)
    message = str(err.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, message


def test_cost_must_be_a_finite_non_negative_number(tmp_path: Path, space: Custom) -> None:
    body = f"{HEADER},val_acc,test_acc,sec\nconv,3,2,skip,83.4,93.7,-1\n"
    with pytest.raises(DataFormatError, match=r"line 2: column sec: '-1'.*>= 0"):
        TabularBenchmark.from_csv(write(tmp_path, body), space, cost="sec")
    with pytest.raises(DataFormatError, match=r"line 2: column sec: 'inf'"):
        TabularBenchmark.from_csv(write(tmp_path, body.replace("-1", "inf")), space, cost="sec")


def test_unreadable_files_and_bad_options(tmp_path: Path, space: Custom) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        TabularBenchmark.from_csv(tmp_path / "absent.csv", space)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataFormatError, match=r"binary\.csv: line 1: not a readable CSV"):
        TabularBenchmark.from_csv(binary, space)
    fake_gz = write(tmp_path, "not gzip", "t.csv.gz")
    with pytest.raises(DataFormatError, match=r"t\.csv\.gz"):
        TabularBenchmark.from_csv(fake_gz, space)
    with pytest.raises(ConfigError, match="val_acc named twice"):
        TabularBenchmark.from_csv(EXAMPLE, space, report=("val_acc",))
    with pytest.raises(ConfigError, match="depth are choices"):
        TabularBenchmark.from_csv(EXAMPLE, space, metrics=("depth",))


# --- composing with strategies and the experiment ----------------------------------------------

#: strategies that need only the space protocol (multi-fidelity ones need an estimator with
#: fidelities; PNAS needs a space whose cells grow)
SINGLE_FIDELITY = [
    "random",
    "grid",
    "evolution",
    "tournament",
    "genetic",
    "local",
    "reinforce",
    "ppo",
    "mcts",
    "bo",
    "bananas",
    "tpe",
]


@pytest.mark.parametrize("strategy", SINGLE_FIDELITY)
def test_every_strategy_searches_the_custom_space_against_the_table(
    strategy: str, space: Custom, bench: TabularBenchmark
) -> None:
    options = {"encoding": "onehot"} if strategy == "bananas" else {}
    chosen = factory.make_strategy(strategy, space, seed=0, options=options)
    history = Experiment(space, chosen, bench, budget=12, progress=False).run()
    assert len(history.completed) == 12 and not history.failed
    for trial in history.trials:
        assert trial.arch == space.to_string(trial.candidate.arch)
        assert trial.result.objective == bench.lookup(trial.candidate.arch)["val_acc"]
    # the best is the searched config with the file's highest val_acc (read with csv)
    val_acc = {}
    for row in example_rows():
        config = space.from_string(",".join(f"{n}={row[n]}" for n in space.names if row[n]))
        val_acc[space.to_string(space.canonical(config))] = float(row["val_acc"])
    searched = [space.to_string(space.canonical(t.candidate.arch)) for t in history.trials]
    assert history.best.result.objective == max(val_acc[key] for key in searched)


def test_grid_search_over_the_table_finds_its_optimum(space, bench, tmp_path: Path) -> None:
    grid = factory.make_strategy("grid", space, seed=1)
    store = tmp_path / "runs.db"
    history = Experiment(
        space, grid, bench, budget=27, store=store, name="grid", progress=False
    ).run()
    assert len({t.arch for t in history.trials}) == 27
    assert history.best.result.objective == bench.optimum()[0]
    assert history.best.result.report["test_acc"] == bench.optimum()[1]


def test_search_goes_on_past_configs_missing_from_a_lenient_table(tmp_path: Path) -> None:
    bigger = chain_space(depths=(1, 2, 3, 4))
    bench = TabularBenchmark.from_csv(EXAMPLE, bigger, missing="fail")
    strategy = factory.make_strategy("evolution", bigger, seed=0)
    history = Experiment(bigger, strategy, bench, budget=30, progress=False).run()
    assert len(history.trials) == 30
    assert history.failed and all("depth=4" in t.arch for t in history.failed)
    assert all(t.candidate.arch["depth"] != 4 for t in history.completed)


def test_seconds_budget_with_a_cost_column(tmp_path: Path) -> None:
    space = Custom({"width": list(range(8, 72, 8))}, name="w")
    rows = "".join(f"{w},{w / 10},{w * 2}\n" for w in range(8, 72, 8))
    path = write(tmp_path, "width,val_acc,seconds\n" + rows)
    bench = TabularBenchmark.from_csv(path, space, report=(), cost="seconds")
    strategy = factory.make_strategy("random", space, seed=0)
    budget = Budget(seconds=200.0)
    history = Experiment(space, strategy, bench, budget=budget, progress=False).run()
    costs = [t.result.cost for t in history.trials]
    assert sum(costs[:-1]) < 200.0 <= sum(costs)
    assert np.isclose(costs, [t.candidate.arch["width"] * 2 for t in history.trials]).all()
