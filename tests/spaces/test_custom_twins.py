"""A user's space declares twins with ``canonical=``; every place that asks "the same
architecture?" then agrees: the space's moves, the strategies' de-duplication, a table's rows.
The expected counts come from brute force over the configurations, not from the space."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import ConfigError, DataFormatError
from nasforge.estimators.tabular import TabularBenchmark
from nasforge.experiment import Experiment
from nasforge.spaces.custom import Custom
from nasforge.strategies.random import RandomSearch

OPS = ["conv3", "conv5", "identity"]


def identities_last(cfg):
    layers = sorted((cfg["l1"], cfg["l2"], cfg["l3"]), key=lambda op: op == "identity")
    return {**cfg, "l1": layers[0], "l2": layers[1], "l3": layers[2]}


def _space(canonical=identities_last) -> Custom:
    return Custom({"l1": OPS, "l2": OPS, "l3": OPS, "w": [8, 16]}, canonical=canonical)


def _networks() -> set[tuple]:
    """The distinct networks by hand: the conv layers in order, the identities dropped."""
    nets = set()
    for ops in itertools.product(OPS, repeat=3):
        for w in (8, 16):
            nets.add((tuple(op for op in ops if op != "identity"), w))
    return nets


def test_twins_share_one_canonical_form_and_classes_match_brute_force() -> None:
    space = _space()
    a = space.from_string("l1=identity,l2=conv3,l3=conv5,w=8")
    b = space.from_string("l1=conv3,l2=identity,l3=conv5,w=8")
    c = space.from_string("l1=conv5,l2=conv3,l3=identity,w=8")
    assert space.canonical(a) == space.canonical(b) != space.canonical(c)
    classes = {space.canonical(cfg) for cfg in space.enumerate()}
    assert len(classes) == len(_networks()) == 2 * (1 + 2 + 4 + 8)


def test_mutate_and_neighbours_never_return_a_twin() -> None:
    space, rng = _space(), np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        own = space.canonical(arch)
        assert space.canonical(space.mutate(arch, rng)) != own
        keys = [space.canonical(n) for n in space.neighbours(arch)]
        assert own not in keys and len(keys) == len(set(keys))


def test_a_search_of_the_whole_budget_visits_each_network_once() -> None:
    space = _space()
    budget = len(_networks())
    history = Experiment(space, RandomSearch(space, seed=0), _Count(), budget, progress=False).run()
    seen = [space.canonical(t.candidate.arch) for t in history.trials]
    assert len(seen) == len(set(seen)) == budget


def test_a_table_listing_two_twins_is_refused_naming_both_lines(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "l1,l2,l3,w,val_acc,test_acc\nidentity,conv3,conv3,8,50,49\nconv3,identity,conv3,8,51,50\n"
    )
    with pytest.raises(DataFormatError, match=r"line 3: .*already on line 2 \(its canonical"):
        TabularBenchmark.from_csv(table, _space())
    # without the hook they are two architectures
    assert len(TabularBenchmark.from_csv(table, _space(canonical=None)).rows) == 2


def test_a_wrong_hook_is_a_clear_error() -> None:
    not_fixed = _space(canonical=lambda cfg: {**cfg, "w": 24 - cfg["w"]})  # swaps 8 and 16
    arch = not_fixed.from_string("l1=conv3,l2=conv3,l3=conv3,w=8")
    with pytest.raises(ConfigError, match="not a fixed point"):
        not_fixed.canonical(arch)
    invalid = _space(canonical=lambda cfg: {**cfg, "w": 32})
    with pytest.raises(ConfigError, match="canonical= returned"):
        invalid.canonical(arch)
    with pytest.raises(ConfigError, match="canonical must be a function"):
        Custom({"a": [1, 2]}, canonical="sorted")


class _Count:
    """An estimator whose objective is the network's conv count (any number would do)."""

    name = "count"
    objective_name = "convs"

    def evaluate(self, candidate):
        from nasforge.core import Result

        arch = candidate.arch
        convs = sum(arch[k] != "identity" for k in ("l1", "l2", "l3"))
        return Result(objective=float(convs), metrics={}, cost=0.0)
