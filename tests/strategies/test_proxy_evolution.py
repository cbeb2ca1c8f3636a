"""Proxy-assisted regularized evolution (`ProxyEvolution`): the warm start is the proxy's top
cells, each proposal is the best-scored fresh mutation of a tournament parent, the search is
deterministic and replay-safe, and the CLI builds its scorer from ``--option proxy=...``.

The proxy is the real parameter count of NB201's benchmark network (`ParamsScorer`, checked
here against the parameters of the built PyTorch network); the estimator is the real NB201
CIFAR-10 table.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import require_data
from nasforge import cli, factory
from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.proxy_evolution import ProxyEvolution
from nasforge.strategies.scoring import ParamsScorer

SPACE = NB201Space()


class Logged:
    """A scorer that records every batch it was asked to score."""

    def __init__(self, inner):
        self.inner, self.name, self.batches = inner, inner.name, []

    def score(self, archs):
        self.batches.append(list(archs))
        return self.inner.score(archs)


def params(arch) -> int:
    return SPACE.param_count(arch)  # the benchmark's network, C=16 N=5, 10 classes


@pytest.fixture(scope="module")
def bench():
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    return NB201Benchmark("cifar10", data_dir=require_data("nb201/nb201_200ep_test.csv").parent)


@pytest.fixture(scope="module")
def params_table(tmp_path_factory) -> Path:
    """A proxy table of all 15,625 cells: the `arch` column and the parameter count of the
    cell's canonical form (a table is read by canonical form: twins share one score)."""
    path = tmp_path_factory.mktemp("proxy") / "params.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "params"])
        for arch in SPACE.enumerate():
            writer.writerow([SPACE.to_string(arch), params(SPACE.canonical(arch))])
    return path


def test_the_params_scorer_counts_the_parameters_of_the_built_network():
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(4)]
    scores = ParamsScorer(SPACE, C=4, N=1).score(archs)
    built = [sum(p.numel() for p in SPACE.build(a, C=4, N=1).parameters()) for a in archs]
    assert scores.tolist() == built


def test_without_a_scorer_or_with_a_bad_option_it_is_a_clear_error():
    with pytest.raises(ConfigError, match="proxy-evolution needs an arch scorer"):
        ProxyEvolution(SPACE)
    with pytest.raises(ConfigError, match=r"needs an arch scorer.*--option proxy="):
        factory.make_strategy("proxy-evolution", SPACE, 0)
    with pytest.raises(ConfigError, match="score"):
        ProxyEvolution(SPACE, scorer=object())
    with pytest.raises(ConfigError, match="warmup must be a whole number >= 10"):
        ProxyEvolution(SPACE, scorer=ParamsScorer(SPACE), warmup=5)
    with pytest.raises(ConfigError, match="children"):
        ProxyEvolution(SPACE, scorer=ParamsScorer(SPACE), children=0)


def test_the_warm_start_population_is_the_proxys_top_warmup_cells():
    scorer = Logged(ParamsScorer(SPACE))
    strategy = ProxyEvolution(SPACE, seed=3, population=10, warmup=60, scorer=scorer)
    asked = [strategy.ask().arch for _ in range(10)]  # no tells yet: the warm start only
    assert len(scorer.batches) == 1
    warm = scorer.batches[0]
    assert len(warm) == 60 and len({SPACE.canonical(a) for a in warm}) == 60
    by_hand = sorted((params(a) for a in warm), reverse=True)
    assert [params(a) for a in asked] == by_hand[:10]  # the top ten, best first
    assert all(a in warm for a in asked)
    # not a property of any ten cells: the warm start beats the warm-up pool's median
    assert min(params(a) for a in asked) > np.median(by_hand)


def test_each_proposal_is_the_best_scored_fresh_mutation_of_a_population_member(bench):
    scorer = Logged(ParamsScorer(SPACE))
    strategy = ProxyEvolution(SPACE, seed=5, population=10, warmup=30, children=6, scorer=scorer)
    asked = []
    for _ in range(40):
        members = [c.arch for c, _ in strategy.population]
        before = len(scorer.batches)
        candidate = strategy.ask()
        if len(asked) >= 10:  # the evolution phase: one scored batch of children per ask
            assert len(scorer.batches) == before + 1
            kids = scorer.batches[-1]
            assert 1 <= len(kids) <= 6
            assert len({SPACE.canonical(k) for k in kids}) == len(kids)
            seen = {SPACE.canonical(a) for a in asked}
            assert all(SPACE.canonical(k) not in seen for k in kids)  # fresh
            assert all(  # each a one-edge mutation of some population member
                any(
                    sum(x != y for x, y in zip(k.indices, m.indices, strict=True)) == 1
                    for m in members
                )
                for k in kids
            )
            assert candidate.arch in kids
            assert params(candidate.arch) == max(params(k) for k in kids)
        asked.append(candidate.arch)
        strategy.tell(candidate, bench.evaluate(candidate).for_strategy())
    assert len({SPACE.canonical(a) for a in asked}) == 40


def test_same_seed_and_tells_give_the_same_asks_and_another_seed_others():
    def run(seed: int) -> list[str]:
        strategy = ProxyEvolution(
            SPACE, seed=seed, population=5, warmup=20, scorer=ParamsScorer(SPACE)
        )
        asked, waiting = [], []
        for step in range(30):
            candidate = strategy.ask()
            asked.append(SPACE.to_string(candidate.arch))
            waiting.append(candidate)
            if step % 3 == 2:  # three in flight, told newest first
                for c in reversed(waiting):
                    strategy.tell(c, Result(objective=float(sum(c.arch.indices))))
                waiting.clear()
        return asked

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_on_the_nb201_table_the_params_proxy_steers_evolution_to_larger_cells(bench):
    """A real search: 40 evaluations of the CIFAR-10 table, nothing proposed twice, and the
    trials' networks are larger than plain regularized evolution's (the proxy's pull)."""
    proxy, plain = [], []
    for seed in range(3):
        strategy = ProxyEvolution(SPACE, seed=seed, scorer=ParamsScorer(SPACE))
        history = Experiment(SPACE, strategy, bench, 40, progress=False).run()
        archs = [t.candidate.arch for t in history.trials]
        assert len(archs) == 40 and len({SPACE.canonical(a) for a in archs}) == 40
        proxy.append(np.mean([params(a) for a in archs]))
        baseline = Experiment(SPACE, RegularizedEvolution(SPACE, seed=seed), bench, 40).run()
        plain.append(np.mean([params(t.candidate.arch) for t in baseline.trials]))
    assert np.mean(proxy) > np.mean(plain)


class _StopAt:
    """The real benchmark, interrupted (KeyboardInterrupt) at one evaluation."""

    def __init__(self, bench, at=None):
        self.bench, self.at, self.calls = bench, at, 0
        self.name, self.objective_name = bench.name, bench.objective_name
        self.capabilities = bench.capabilities

    def evaluate(self, candidate: Candidate) -> Result:
        self.calls += 1
        if self.calls - 1 == self.at:
            raise KeyboardInterrupt
        return self.bench.evaluate(candidate)


def test_an_interrupted_run_resumes_without_repeating_a_trial(bench, tmp_path):
    def experiment(estimator, store, resume=False):
        strategy = ProxyEvolution(SPACE, seed=2, population=6, scorer=ParamsScorer(SPACE))
        return Experiment(
            SPACE, strategy, estimator, 20, store=store, name="pe", resume=resume, progress=False
        )

    reference = Experiment(
        SPACE, ProxyEvolution(SPACE, seed=2, population=6, scorer=ParamsScorer(SPACE)), bench, 20
    ).run()
    with Store(tmp_path / "runs.db") as store:
        with pytest.raises(KeyboardInterrupt):
            experiment(_StopAt(bench, at=11), store).run()
        rest = _StopAt(bench)
        experiment(rest, store, resume=True).run()
        trials = store.trials(store.get_run("pe"))
    assert rest.calls == 9  # the trial in flight again, then the rest: nothing twice
    assert [t.arch for t in trials] == [t.arch for t in reference.trials]


# the command line --------------------------------------------------------------------------


def test_cli_refuses_a_proxy_for_a_strategy_without_a_scorer_and_proxy_evolution_without_one(
    capsys,
):
    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as stop:
            cli.main(["search", "--estimator", "benchmark", *args])
        assert stop.value.code == 2
        return capsys.readouterr().err

    told = error("--option", "proxy=params")
    assert "strategy 'evolution' takes no proxy" in told and "proxy-evolution" in told
    assert "needs an arch scorer" in error("--strategy", "proxy-evolution")
    told = error("--strategy", "proxy-evolution", "--option", "proxy=naswot")
    assert "proxy_table=FILE.csv" in told


def test_cli_option_proxy_table_runs_proxy_evolution_and_resume_rebuilds_the_scorer(
    params_table, bench, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("nasforge.estimators.proxies")
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    db = tmp_path / "runs.db"
    args = [
        "search", "--estimator", "benchmark", "--dataset", "cifar10",
        "--strategy", "proxy-evolution", "--option", "proxy=params",
        "--option", f"proxy_table={params_table}", "--option", "warmup=40",
        "--budget", "25", "--seed", "4", "--store", str(db),
    ]  # fmt: skip
    data_dir = ["--data-dir", str(require_data("nb201/nb201_200ep_test.csv").parent.parent)]
    evaluate, calls = NB201Benchmark.evaluate, []

    def interrupted(self, candidate):
        calls.append(candidate)
        if len(calls) == 13:
            raise KeyboardInterrupt
        return evaluate(self, candidate)

    monkeypatch.setattr(NB201Benchmark, "evaluate", interrupted)
    assert cli.main([*args, *data_dir, "--name", "cut"]) == 130
    monkeypatch.setattr(NB201Benchmark, "evaluate", evaluate)
    with Store(db) as store:
        before = {t.number: t.finished for t in store.trials(store.get_run("cut"))}
        options = store.get_run("cut").config["cli"]["search"]["options"]
    assert options["proxy"] == "params" and options["proxy_table"] == str(params_table)
    capsys.readouterr()
    assert cli.main(["resume", "cut", "--store", str(db), *data_dir, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 25
    assert cli.main([*args, *data_dir, "--name", "whole", "--json"]) == 0
    with Store(db) as store:
        cut = store.trials(store.get_run("cut"))
        whole = store.trials(store.get_run("whole"))
    assert [t.arch for t in cut] == [t.arch for t in whole]  # the same search, uncut
    assert len({SPACE.canonical(SPACE.from_string(t.arch)) for t in cut}) == 25
    finished = {n: f for n, f in before.items() if f is not None}
    assert len(finished) == 12
    assert all(cut[n].finished == f for n, f in finished.items())  # not evaluated again
    # the first ten trials are the table's top-ten cells of the warm-up pool, best first
    first = [params(SPACE.canonical(SPACE.from_string(t.arch))) for t in whole[:10]]
    assert first == sorted(first, reverse=True)


@pytest.mark.parametrize(("size", "net"), [("full", {}), ("search", {"C": 4, "N": 1})])
def test_option_proxy_with_real_training_scores_the_network_proxy_size_names(size, net):
    """``--option proxy=params`` with the `Train` estimator: a `ZeroCostProxy` on its dataset;
    ``proxy_size=full`` scores the benchmark's network (C=16 N=5), ``search`` the trained one
    (C=4 N=1 here), as the analytic parameter count of each says."""
    pytest.importorskip("nasforge.estimators.proxies")
    from nasforge.data.datasets import load_dataset
    from nasforge.estimators.train import Train

    digits = load_dataset("digits")
    train = Train(SPACE, digits, epochs=1, subset=1.0, batch_size=16, net={"C": 4, "N": 1})
    options = {"proxy": "params", "proxy_size": size, "warmup": 10, "population": 4}
    strategy = factory.make_strategy("proxy-evolution", SPACE, 0, options, train)
    rng = np.random.default_rng(1)
    archs = [SPACE.sample(rng) for _ in range(3)]
    expected = [  # a proxy scores an architecture's canonical form (twins share a score)
        SPACE.param_count(
            SPACE.canonical(a), in_channels=digits.channels, num_classes=digits.classes, **net
        )
        for a in archs
    ]
    assert strategy.scorer.score(archs).tolist() == expected


def test_benchmark_compares_proxy_evolution_with_its_options_as_search_runs_it(
    params_table, capsys
):
    """`nasforge benchmark --option STRATEGY:KEY=VALUE` gives that strategy its options; each
    seed's result is the one `nasforge search` finds with the same strategy, options and seed."""
    data_dir = ["--data-dir", str(require_data("nb201/nb201_200ep_test.csv").parent.parent)]
    options = ["proxy=params", f"proxy_table={params_table}", "warmup=40"]
    assert cli.main([
        "benchmark", "--strategies", "proxy-evolution", "--seeds", "3", "--budget", "25",
        "--workers", "1", *(x for o in options for x in ("--option", f"proxy-evolution:{o}")),
        *data_dir, "--json",
    ]) == 0  # fmt: skip
    results = json.loads(capsys.readouterr().out)
    assert results["config"]["options"]["proxy-evolution"]["proxy"] == "params"
    finals = results["strategies"]["proxy-evolution"]["finals"]
    for seed in range(3):
        assert cli.main([
            "search", "--estimator", "benchmark", "--dataset", "cifar10",
            "--strategy", "proxy-evolution", *(x for o in options for x in ("--option", o)),
            "--budget", "25", "--seed", str(seed), *data_dir, "--json",
        ]) == 0  # fmt: skip
        assert json.loads(capsys.readouterr().out)["best"]["report"]["test_acc"] == pytest.approx(
            finals[seed]
        )


def test_benchmark_option_for_a_strategy_not_compared_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["benchmark", "--strategies", "evolution", "--option", "bo:predictor=gp"])
    told = capsys.readouterr().err
    assert stop.value.code == 2 and len(told.strip().splitlines()) == 1
    assert "expected STRATEGY:KEY=VALUE with STRATEGY one of the compared strategies" in told
