"""The run configuration: built once with its defaults resolved, frozen, stored with a version
and read back through migrations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from nasforge import cli
from nasforge.config import (
    CONFIG_VERSION,
    DEFAULT_TRAIN_SEARCH,
    FinalPlan,
    RunConfig,
    migrate,
    stored_config,
)
from nasforge.errors import ConfigError

FIXTURE_SQL = Path(__file__).parent / "fixtures" / "store_v2" / "store_v2.sql"


def parsed(*args: str) -> RunConfig:
    return RunConfig.from_args(cli.build_parser().parse_args(["search", *args]))


def test_the_command_line_and_python_build_the_same_configuration() -> None:
    from_cli = parsed("--dataset", "digits", "--budget", "6", "--epochs", "1", "--workers", "1")
    from_python = RunConfig.create(
        {"dataset": "digits", "budget": 6}, {"epochs": 1}, {"workers": 1}
    )
    assert from_cli == from_python
    # the default real-training search's options, with a population for a 6-trial budget
    assert from_cli.search.options == {**DEFAULT_TRAIN_SEARCH[1], "population": 3, "sample": 3}
    assert from_cli.final == FinalPlan()


def test_it_is_frozen_and_a_change_is_a_copy() -> None:
    cfg = parsed("--estimator", "benchmark")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.search.seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.search.options["population"] = 3  # type: ignore[index]
    changed = cfg.with_search(seed=3).with_executor(ray_address="head:6379")
    assert (cfg.search.seed, cfg.executor.ray_address) == (0, None)
    assert (changed.search.seed, changed.executor.ray_address) == (3, "head:6379")


def test_json_round_trip_carries_the_version() -> None:
    cfg = parsed("--augment", "standard", "--final-top-k", "2", "--option", "sample=2")
    data = json.loads(json.dumps(cfg.to_json()))
    assert data["version"] == CONFIG_VERSION
    assert RunConfig.from_json(data) == cfg
    assert stored_config({"cli": data}) == cfg and stored_config({"space": "nb201"}) is None


def _version_1_configs() -> list[dict]:
    """The flat dicts commit af1f55a stored (read from the fixture's SQL dump)."""
    found = []
    for line in FIXTURE_SQL.read_text().splitlines():
        if line.startswith("INSERT INTO runs "):
            start = line.index("'{") + 1
            end = line.rindex("}'") + 1
            found.append(json.loads(line[start:end].replace("''", "'"))["cli"])
    return found


def test_version_1_keeps_every_value_it_stored() -> None:
    olds = _version_1_configs()
    assert len(olds) == 3
    for old in olds:
        cfg = RunConfig.from_json(old)
        values = {
            **cfg.search.to_json(),
            **cfg.train.to_json(),
            **cfg.executor.to_json(),
            "final": None if cfg.final is None else cfg.final.to_json(),
        }
        for key, value in old.items():
            assert values[key] == value, key


def test_version_1_from_before_later_options_gets_what_those_runs_ran_with() -> None:
    oldest = {"space": "nb201", "strategy": "random", "estimator": "train", "seed": 1,
              "dataset": "digits", "epochs": 1, "subset": 1.0}  # fmt: skip
    cfg = RunConfig.from_json(oldest)
    assert cfg.search.budget == 100 and cfg.search.budget_seconds is None
    assert (cfg.train.augment, cfg.train.early_stopping, cfg.train.resolution) == (
        "none",
        "none",
        None,
    )
    assert cfg.executor.window is None and cfg.final is None
    assert migrate(oldest)["version"] == CONFIG_VERSION


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"version": 99, "search": {}}, "version 99; this nasforge reads versions 1 to"),
        ({"version": 2, "search": {"colour": 1}, "train": {}, "executor": {}}, "colour"),
        ({"space": "nb201", "estimator": "oracle"}, "unknown estimator 'oracle'"),
    ],
)
def test_a_configuration_it_cannot_read_is_one_clear_error(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        RunConfig.from_json(data)


def test_a_search_that_names_no_strategy_gets_the_default_of_its_estimator(monkeypatch) -> None:
    """Real training: `config.DEFAULT_TRAIN_SEARCH` (strategy and options, the user's
    --option laid over them); a benchmark: `config.DEFAULT_STRATEGY`; a named strategy: only
    the user's options. ``--help`` says which default applies."""
    from nasforge import config

    default = ("proxy-evolution", {"proxy": "naswot", "warmup": 50})
    monkeypatch.setattr(config, "DEFAULT_TRAIN_SEARCH", default)
    cfg = parsed("--dataset", "digits", "--option", "warmup=30", "--budget", "12")
    assert cfg.search.strategy == "proxy-evolution"
    # the short-budget population rule applies to it as to evolution
    assert cfg.search.options == {"proxy": "naswot", "warmup": 30, "population": 6, "sample": 3}
    assert RunConfig.create({"dataset": "digits"}).search.strategy == "proxy-evolution"
    named = parsed("--dataset", "digits", "--strategy", "random")
    assert (named.search.strategy, dict(named.search.options)) == ("random", {})
    bench = parsed("--estimator", "benchmark")
    assert (bench.search.strategy, dict(bench.search.options)) == (config.DEFAULT_STRATEGY, {})
    assert "--strategy proxy-evolution --option proxy=naswot --option warmup=50" in (
        config.describe_default_train_search()
    )
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["search"].format_help()
    assert "--strategy proxy-evolution --option proxy=naswot" in " ".join(help_text.split())
