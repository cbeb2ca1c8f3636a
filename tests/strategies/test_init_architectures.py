"""``init``: evolution (and proxy-evolution) start from architectures the user names."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import require_data
from nasforge import cli
from nasforge.core import Result
from nasforge.errors import ConfigError, InvalidArchError
from nasforge.spaces import mobile
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.constraints import MaxParams
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.proxy_evolution import ProxyEvolution
from nasforge.strategies.scoring import ParamsScorer

SPACE = NB201Space()
RESNET_LIKE = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
ALL_CONV = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)


def test_init_architectures_come_first_in_order_and_then_evolution_mutates_them() -> None:
    strategy = RegularizedEvolution(
        SPACE, seed=0, population=4, sample=4, init=f"{RESNET_LIKE}; {ALL_CONV}"
    )
    asked = []
    for _ in range(4):
        candidate = strategy.ask()
        asked.append(SPACE.to_string(candidate.arch))
        # the all-conv cell is by far the best: every tournament of 4 picks it as parent
        best = SPACE.to_string(candidate.arch) == ALL_CONV
        strategy.tell(candidate, Result(objective=100.0 if best else 1.0))
    assert asked[:2] == [RESNET_LIKE, ALL_CONV]
    assert len(set(asked)) == 4
    child = SPACE.to_string(strategy.ask().arch).split("|")
    assert sum(a != b for a, b in zip(child, ALL_CONV.split("|"), strict=True)) == 1


def test_a_repeated_init_architecture_is_proposed_once() -> None:
    strategy = RegularizedEvolution(SPACE, seed=0, population=3, init=[ALL_CONV, ALL_CONV])
    first, second = strategy.ask(), strategy.ask()
    assert SPACE.to_string(first.arch) == ALL_CONV
    assert SPACE.to_string(second.arch) != ALL_CONV


def test_an_init_architecture_the_constraint_excludes_is_refused_by_name() -> None:
    """The limit sits between the two cells' parameter counts (counted by the space itself):
    the small cell is accepted, the all-conv one refused with the constraint named."""
    small = SPACE.param_count(SPACE.from_string(RESNET_LIKE))
    large = SPACE.param_count(SPACE.from_string(ALL_CONV))
    assert small < large
    limit = MaxParams(SPACE, (small + large) / 2)
    RegularizedEvolution(SPACE, constraint=limit, init=RESNET_LIKE)
    with pytest.raises(ConfigError, match=r"init architecture .*nor_conv_3x3.* breaks params <="):
        RegularizedEvolution(SPACE, constraint=limit, init=f"{RESNET_LIKE};{ALL_CONV}")


def test_an_init_string_the_space_cannot_parse_is_refused() -> None:
    with pytest.raises(InvalidArchError):
        RegularizedEvolution(SPACE, init="|nor_conv_3x3~0|+|")


def test_proxy_evolution_proposes_init_before_its_proxy_ranked_warm_up() -> None:
    """MobileNetV2 0.5 as the seed of a mobile-space search: proposed first, then the
    warm-up cells best by parameter count (the proxy), as without ``init``."""
    space = mobile.MobileSpace()
    base = mobile.to_string(mobile.MobileArch(mobile.MOBILENETV2_BASE.stages, 0.5))
    scorer = ParamsScorer(space)
    plain = ProxyEvolution(space, seed=2, population=3, scorer=scorer, warmup=10)
    seeded = ProxyEvolution(space, seed=2, population=3, scorer=scorer, warmup=10, init=base)
    first = space.to_string(seeded.ask().arch)
    assert first == base
    rest = [space.to_string(seeded.ask().arch) for _ in range(2)]
    assert rest == [space.to_string(plain.ask().arch) for _ in range(2)]


def test_cli_init_option_seeds_a_benchmark_search_and_is_stored(tmp_path, capsys) -> None:
    """``--option init=...`` on the NB201 table: the first two trials are the named cells, and
    their stored accuracy is the one the benchmark's own CSV gives them."""
    table = require_data("nb201/nb201_200ep_test.csv")
    db = tmp_path / "runs.db"
    args = [
        "search", "--estimator", "benchmark", "--dataset", "cifar10", "--strategy", "evolution",
        "--option", f"init={RESNET_LIKE};{ALL_CONV}", "--budget", "6", "--seed", "1",
        "--store", str(db), "--name", "seeded", "--data-dir", str(table.parent.parent), "--json",
    ]  # fmt: skip
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 6
    with Store(db) as store:
        run = store.get_run("seeded")
        trials = store.trials(run)
        assert run.config["cli"]["search"]["options"]["init"] == f"{RESNET_LIKE};{ALL_CONV}"
    assert [t.arch for t in trials[:2]] == [RESNET_LIKE, ALL_CONV]
    with table.open() as f:
        test_acc = {
            row["ArchitectureString"]: float(row["CIFAR10TestAccuracy200Epochs"])
            for row in csv.DictReader(f)
        }
    for t in trials[:2]:
        assert t.result.report["test_acc"] == pytest.approx(test_acc[t.arch], abs=1e-6)


def test_cli_init_that_breaks_the_constraint_is_exit_2_before_any_trial(tmp_path, capsys) -> None:
    table = require_data("nb201/nb201_200ep_test.csv")
    db = tmp_path / "runs.db"
    args = [
        "search", "--estimator", "benchmark", "--dataset", "cifar10", "--strategy", "evolution",
        "--option", f"init={ALL_CONV}", "--max-params", "200000", "--budget", "5",
        "--store", str(db), "--name", "refused", "--data-dir", str(table.parent.parent),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "init architecture" in err[0] and "params <=" in err[0]
    if db.exists():
        with Store(db) as store:
            run = store.find_run("refused")
            assert run is None or store.trials(run) == []


def test_an_interrupted_seeded_search_resumes_into_the_same_search(
    tmp_path, monkeypatch, capsys
) -> None:
    """Cut after the two init cells and one more trial; resumed, it proposes what the uncut
    search proposes, and the finished trials are not evaluated again."""
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    table = require_data("nb201/nb201_200ep_test.csv")
    db = tmp_path / "runs.db"
    args = [
        "search", "--estimator", "benchmark", "--dataset", "cifar10", "--strategy", "evolution",
        "--option", f"init={RESNET_LIKE};{ALL_CONV}", "--option", "population=4",
        "--budget", "8", "--seed", "3", "--store", str(db),
        "--data-dir", str(table.parent.parent),
    ]  # fmt: skip
    evaluate, calls = NB201Benchmark.evaluate, []

    def interrupted(self, candidate):
        calls.append(candidate)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return evaluate(self, candidate)

    monkeypatch.setattr(NB201Benchmark, "evaluate", interrupted)
    assert cli.main([*args, "--name", "cut"]) == 130
    monkeypatch.setattr(NB201Benchmark, "evaluate", evaluate)
    with Store(db) as store:
        before = {t.number: t.finished for t in store.trials(store.get_run("cut"))}
    assert cli.main(["resume", "cut", "--store", str(db), "--data-dir", args[-1]]) == 0
    assert cli.main([*args, "--name", "whole"]) == 0
    capsys.readouterr()
    with Store(db) as store:
        cut = store.trials(store.get_run("cut"))
        whole = store.trials(store.get_run("whole"))
    assert [t.arch for t in cut] == [t.arch for t in whole]
    assert [t.arch for t in cut[:2]] == [RESNET_LIKE, ALL_CONV]
    finished = {n: f for n, f in before.items() if f is not None}
    assert len(finished) == 3
    assert all(cut[n].finished == f for n, f in finished.items())
