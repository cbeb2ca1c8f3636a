"""User-declared spaces: declaration checks, strings, conditional consistency, loading, training."""

from __future__ import annotations

import pickle
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.core import Candidate
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.spaces.base import EnumerableSpace
from nasforge.spaces.custom import ENUMERATE_LIMIT, Choice, Config, Custom, IntRange, load_space

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_space.py"


def tiny_net(cfg, *, in_channels, num_classes, scale=1):
    width = cfg["width"] * scale
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


def nested() -> Custom:
    """Two levels of conditions and a condition with two allowed values."""
    return Custom(
        {
            "depth": IntRange(1, 3),
            "width": [16, 32],
            "block": ["conv", "dilated", "pool"],
            "kernel": Choice([3, 5, 7], when={"block": ["conv", "dilated"]}),
            "groups": Choice([1, 2], when={"kernel": [5, 7]}),
            "rate": Choice([2, 4], when={"block": "dilated"}),
            "bn": [True, False],
        },
        build=tiny_net,
        name="nested",
    )


def expected_size() -> int:
    # kernel 3: groups absent (1); kernel 5/7: groups 2 -> 1 + 2 + 2 = 5 per conv-like block
    per_block = {"conv": 5, "dilated": 5 * 2, "pool": 1}
    return 3 * 2 * sum(per_block.values()) * 2


@pytest.fixture(scope="module")
def space() -> Custom:
    return nested()


def draws(space: Custom, n: int = 300, seed: int = 0) -> list[Config]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def assert_valid(space: Custom, config: Config) -> None:
    """A config of the space: strict round trip and no inactive choice kept."""
    assert isinstance(config, Config)
    assert space.from_string(space.to_string(config)) == config
    assert space.canonical(config) == config
    for spec in space.specs:
        active = all(p in config and config[p] in allowed for p, allowed in spec.when)
        assert (spec.name in config) == active, (spec.name, config)


# --- declaration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choices", "words"),
    [
        ({}, ["non-empty mapping"]),
        ({"depth": []}, ["'depth'", "no values"]),
        ({"depth": range(3, 3)}, ["'depth'", "no values"]),
        ({"2deep": [1]}, ["'2deep'"]),
        ({"a,b": [1]}, ["'a,b'"]),
        ({"depth": [1, None]}, ["'depth'", "None"]),
        ({"lr": [0.1, float("nan")]}, ["'lr'", "nan"]),
        ({"depth": [1, 1.0]}, ["'depth'", "distinct"]),
        ({"flag": [True, 1]}, ["'flag'", "distinct"]),
        ({"op": ["a,b"]}, ["'op'", "'a,b'"]),
        ({"op": [" conv"]}, ["'op'", "' conv'"]),
        ({"depth": {"a": 1}}, ["'depth'", "dict"]),
        ({"depth": Choice("abc")}, ["'depth'", "'abc'"]),
        ({"k": Choice([3], when={"block": "conv"})}, ["'k'", "unknown choice 'block'"]),
        (
            {"block": ["conv", "pool"], "k": Choice([3], when={"block": "sep"})},
            ["'k'", "block='sep'", "accepted: conv, pool"],
        ),
        ({"k": Choice([3, 5], when={"k": 3})}, ["'k'", "itself"]),
        (
            {"a": Choice([1, 2], when={"b": 1}), "b": Choice([1, 2], when={"a": 1})},
            ["a, b", "cycle"],
        ),
        (
            {"a": [1, 2], "b": Choice([1], when={"c": 1}), "c": Choice([1], when={"b": 1})},
            ["b, c", "cycle"],
        ),
    ],
)
def test_bad_declarations_are_config_errors_naming_the_choice(choices, words) -> None:
    with pytest.raises(ConfigError) as err:
        Custom(choices)
    for word in words:
        assert word in str(err.value)


def test_other_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="build must be a function"):
        Custom({"a": [1]}, build=3)
    with pytest.raises(ConfigError, match="when= must map parent choice names"):
        Choice([3], when=["block"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown size option"):
        Custom({"a": [1]}, size_options={"width": "w"})
    for args in ((3, 1), (1, 3, 0), (1.0, 3), (True, 3)):
        with pytest.raises(ConfigError, match="IntRange"):
            IntRange(*args)
    with pytest.raises(ConfigError, match="more than"):
        IntRange(0, 10**6)


def test_int_range_includes_its_end_and_python_range_does_not() -> None:
    s = Custom({"a": IntRange(2, 8, step=3), "b": range(2, 5), "c": (0.5, "x", False)})
    assert s.choice("a").values == (2, 5, 8)
    assert s.choice("b").values == (2, 3, 4)
    assert s.size() == 3 * 3 * 3
    with pytest.raises(UnknownNameError, match=r"'zzz'; accepted: a, b, c"):
        s.choice("zzz")


def test_children_may_be_declared_before_their_parents() -> None:
    s = Custom({"kernel": Choice([3, 5], when={"block": "conv"}), "block": ["conv", "pool"]})
    assert s.names == ("block", "kernel")  # parents first: strings and decisions follow
    assert sorted(map(s.to_string, s.enumerate())) == [
        "block=conv,kernel=3",
        "block=conv,kernel=5",
        "block=pool",
    ]


# --- the Config value --------------------------------------------------------------------------


def test_config_is_a_frozen_hashable_picklable_mapping() -> None:
    a = Config({"width": 32, "depth": 3})
    b = Config((("depth", 3), ("width", 32)))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a["depth"] == 3 and a.get("kernel") is None and "width" in a and "kernel" not in a
    assert dict(a) == {"depth": 3, "width": 32} == a.as_dict()
    assert list(a) == ["depth", "width"]
    assert pickle.loads(pickle.dumps(a)) == a
    assert a != Config({"depth": 3, "width": 64})
    assert repr(a) == "Config({'depth': 3, 'width': 32})"
    with pytest.raises(AttributeError):
        a.pairs = ()  # type: ignore[misc]
    for bad in ({"a": [1]}, {"a": None}, {3: 1}, 7):
        with pytest.raises(InvalidArchError):
            Config(bad)


def test_numpy_values_are_plain_values() -> None:
    assert Config({"depth": np.int64(3)}) == Config({"depth": 3})
    assert isinstance(Config({"depth": np.int64(3)})["depth"], int)


# --- strings -----------------------------------------------------------------------------------


def test_string_round_trip_over_the_whole_space(space: Custom) -> None:
    texts = set()
    for config in space.enumerate():
        text = space.to_string(config)
        assert space.from_string(text) == config
        texts.add(text)
    assert len(texts) == space.size()


def test_string_format_follows_the_declaration() -> None:
    s = Custom({"depth": [2, 3, 4], "width": [16, 32, 64], "kernel": [3, 5]})
    config = s.from_string("depth=3,width=32,kernel=5")
    assert dict(config) == {"depth": 3, "width": 32, "kernel": 5}
    assert s.to_string(config) == "depth=3,width=32,kernel=5"
    assert s.to_string({"kernel": 5, "width": 32, "depth": 3}) == "depth=3,width=32,kernel=5"
    # order and spacing in the input do not matter; numbers are read by value
    assert s.from_string(" kernel=5, depth=3.0 ,width=32") == config


def test_values_of_every_type_round_trip() -> None:
    s = Custom({"lr": [0.1, 1e-3], "bn": [True, False], "act": ["relu", "gelu"], "n": [-1, 2]})
    for config in s.enumerate():
        assert s.from_string(s.to_string(config)) == config
    assert s.from_string("lr=0.001,bn=True,act=gelu,n=-1")["bn"] is True


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("depth=2,width=16,block=pool,bn=true,size=3", ["unknown choice 'size'", "depth, width"]),
        ("depth=2,width=16,bn=true", ["'block' is missing", "conv, dilated, pool"]),
        ("depth=2,width=16,block=conv,bn=true", ["'kernel' is missing", "3, 5, 7"]),
        ("depth=4,width=16,block=pool,bn=true", ["depth='4'", "accepted: 1, 2, 3"]),
        ("depth=2,width=16,block=max,bn=true", ["block='max'", "conv, dilated, pool"]),
        ("depth=2,width=16,block=pool,bn=yes", ["bn='yes'", "true, false"]),
        ("depth=2,width=16,block=pool,kernel=3,bn=true", ["'kernel' is inactive", "block="]),
        ("depth=2,width=16,block=conv,kernel=3,groups=2,bn=true", ["'groups' is inactive"]),
        ("depth=2,width=16,block=conv,rate=2,kernel=3,bn=true", ["'rate' is inactive"]),
        ("depth=2,depth=3,width=16,block=pool,bn=true", ["'depth' given twice"]),
        ("depth=2;width=16", ["depth='2;width=16' is not accepted"]),
        ("depth=2,width", ["'width' is not 'name=value'"]),
        ("", ["not 'name=value'"]),
    ],
)
def test_from_string_is_strict(space: Custom, text: str, words: list[str]) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.from_string(text)
    for word in words:
        assert word in str(err.value)


def test_wrong_values_are_invalid_arch_errors(space: Custom) -> None:
    good = space.sample(np.random.default_rng(0))
    with pytest.raises(InvalidArchError, match="expects a Config"):
        space.to_string(("depth", 3))
    with pytest.raises(InvalidArchError, match="'width' cannot be 48; accepted: 16, 32"):
        space.encode({**good, "width": 48})
    with pytest.raises(InvalidArchError, match="'bn' cannot be 1"):
        space.canonical({**good, "bn": 1})  # a bool choice does not take 1
    with pytest.raises(InvalidArchError):
        space.from_string(3)  # type: ignore[arg-type]


def test_canonical_drops_inactive_choices_only(space: Custom) -> None:
    config = space.from_string("depth=2,width=16,block=pool,bn=false")
    assert space.canonical({**config, "kernel": 5, "groups": 2}) == config
    assert space.canonical(config) == config
    assert space.canonical(dict(config)) == config  # a plain dict is accepted
    with pytest.raises(InvalidArchError, match="unknown choice 'size'"):
        space.canonical({**config, "size": 2})


# --- moves, decisions, encodings ---------------------------------------------------------------


def test_sampling_is_valid_and_reaches_every_configuration(space: Custom) -> None:
    configs = draws(space, 4000)
    for config in configs:
        assert_valid(space, config)
    assert len(set(configs)) == space.size()
    assert draws(space, 20, seed=3) == draws(space, 20, seed=3)
    # each active choice is uniform given its parents: block thirds, rate halves
    blocks = Counter(c["block"] for c in configs)
    assert min(blocks.values()) > 4000 / 3 * 0.9
    rates = Counter(c["rate"] for c in configs if "rate" in c)
    assert abs(rates[2] - rates[4]) < 0.15 * sum(rates.values())


def descendants(space: Custom, name: str) -> set[str]:
    out = {name}
    while True:
        more = {s.name for s in space.specs if any(p in out for p, _ in s.when)} - out
        if not more:
            return out - {name}
        out |= more


def test_mutate_changes_one_active_choice_and_repairs_conditions(space: Custom) -> None:
    rng = np.random.default_rng(1)
    changed_names = Counter()
    for config in draws(space, 400):
        child = space.mutate(config, rng)
        assert_valid(space, child)
        assert child != config
        shared = [n for n in config if n in child]
        changed = [n for n in shared if config[n] != child[n]]
        assert len(changed) == 1, (config, child)
        changed_names[changed[0]] += 1
        # choices that appear or vanish are ones the changed choice controls
        assert set(config) ^ set(child) <= descendants(space, changed[0])
    assert set(changed_names) == set(space.names)  # every choice gets mutated sometimes


def test_neighbours_are_every_one_choice_change(space: Custom) -> None:
    for config in draws(space, 60):
        around = space.neighbours(config)
        assert around == space.neighbours(config)  # deterministic order
        assert len(set(around)) == len(around)
        assert config not in around
        expected = sum(len(space.choice(n).values) - 1 for n in config)
        assert len(around) == expected
        for other in around:
            assert_valid(space, other)
            shared = [n for n in config if n in other]
            assert sum(config[n] != other[n] for n in shared) == 1


def test_single_configuration_cannot_mutate() -> None:
    s = Custom({"a": [1], "b": ["x"]})
    assert s.size() == 1 and s.neighbours(Config({"a": 1, "b": "x"})) == []
    with pytest.raises(ConfigError, match="single configuration"):
        s.mutate(Config({"a": 1, "b": "x"}), np.random.default_rng(0))


def test_decisions_decode_every_sequence_to_a_valid_config(space: Custom) -> None:
    decisions = space.decisions()
    assert decisions.choices == tuple(len(s.values) for s in space.specs)
    rng = np.random.default_rng(2)
    for _ in range(500):
        sequence = [int(rng.integers(c)) for c in decisions.choices]
        config = decisions.decode(sequence)
        assert_valid(space, config)
        # active choices take the sequence's value; inactive ones are ignored
        for spec, index in zip(space.specs, sequence, strict=True):
            if spec.name in config:
                assert config[spec.name] == spec.values[index]
    for config in space.enumerate():
        code = decisions.encode(config)
        assert decisions.decode(code) == config
        assert list(space.encode(config, "index")) == list(code)
    with pytest.raises(InvalidArchError, match="decisions"):
        decisions.decode([0, 0])
    with pytest.raises(InvalidArchError, match="'width' has 2 options"):
        decisions.decode([0, 2, 0, 0, 0, 0, 0])


def test_encodings_have_a_fixed_length_and_an_inactive_slot(space: Custom) -> None:
    width = sum(len(s.values) + bool(s.when) for s in space.specs)
    onehots = {space.to_string(c): space.encode(c) for c in space.enumerate()}
    assert {v.shape for v in onehots.values()} == {(width,)}
    for vector in onehots.values():
        assert vector.sum() == len(space.specs)  # exactly one slot per choice, inactive or not
    assert len({v.tobytes() for v in onehots.values()}) == space.size()  # injective
    pool = space.from_string("depth=1,width=16,block=pool,bn=true")
    vector, start = space.encode(pool), 0
    for spec in space.specs:
        block = vector[start : start + len(spec.values) + bool(spec.when)]
        if spec.name not in pool:
            assert block[-1] == 1.0  # the inactive slot
        start += len(block)
    assert space.encode(pool, "index").shape == (len(space.specs),)
    with pytest.raises(UnknownNameError, match="encoding 'path'"):
        space.encode(pool, "path")


def test_crossover_mixes_parents_and_stays_valid(space: Custom) -> None:
    rng = np.random.default_rng(4)
    configs = draws(space, 300, seed=5)
    mixed = 0
    for a, b in zip(configs[::2], configs[1::2], strict=True):
        child = space.crossover(a, b, rng)
        assert_valid(space, child)
        for name in child:
            donors = [p[name] for p in (a, b) if name in p]
            if donors:
                assert child[name] in donors
        mixed += child != a and child != b
    assert mixed > 30


# --- size and enumeration ----------------------------------------------------------------------


def test_size_and_enumerate_count_the_conditional_product(space: Custom) -> None:
    assert isinstance(space, EnumerableSpace)
    configs = list(space.enumerate())
    assert len(configs) == len(set(configs)) == space.size() == expected_size() == 192
    assert configs == list(space.enumerate())
    plain = Custom({"depth": [2, 3, 4], "width": [16, 32, 64], "kernel": [3, 5]})
    assert plain.size() == len(list(plain.enumerate())) == 18


def test_enumerate_refuses_huge_spaces_but_size_is_exact() -> None:
    huge = Custom({f"c{i}": list(range(10)) for i in range(7)})
    assert huge.size() == 10**7 > ENUMERATE_LIMIT
    with pytest.raises(ConfigError, match="10,000,000 configurations"):
        huge.enumerate()
    wide = Custom({f"c{i}": list(range(10)) for i in range(40)})
    assert wide.size() == 10**40  # computed, not listed


# --- networks ----------------------------------------------------------------------------------


def test_build_calls_the_users_function_with_the_data_shape(space: Custom) -> None:
    config = space.from_string("depth=1,width=32,block=pool,bn=true")
    model = space.build(config, in_channels=1, num_classes=7)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 7)
    bigger = space.build(config, in_channels=3, num_classes=10, scale=2)  # extra net keywords
    assert bigger[0].out_channels == 64
    assert space.param_count(config, in_channels=1, num_classes=7) == sum(
        p.numel() for p in model.parameters()
    )
    assert Custom.size_options == {"channels": None, "cells": None}
    custom = Custom({"width": [8]}, build=tiny_net, size_options={"channels": "scale"})
    assert custom.size_options == {"channels": "scale", "cells": None}


def test_param_count_builds_once_and_keeps_the_torch_seed() -> None:
    calls = []

    def counted(cfg, **kw):
        calls.append(cfg)
        return tiny_net(cfg, **kw)

    s = Custom({"width": [8, 16]}, build=counted)
    config = Config({"width": 16})
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    counts = [s.param_count(config, in_channels=1) for _ in range(3)]
    assert torch.rand(1) == expected
    assert len(calls) == 1 and counts[0] == 16 * 9 + 16 + 16 * 10 + 10
    assert s.param_count(config, in_channels=3) != counts[0] and len(calls) == 2


def test_build_needs_a_function_and_a_module() -> None:
    table_only = Custom({"width": [8, 16]}, name="table-only")
    with pytest.raises(ConfigError, match="'table-only' has no build function"):
        table_only.build(Config({"width": 8}))
    wrong = Custom({"width": [8]}, build=lambda cfg, **kw: "not a net")
    with pytest.raises(ConfigError, match="returned str"):
        wrong.build(Config({"width": 8}))


# --- loading -----------------------------------------------------------------------------------


def test_load_space_from_a_file_and_pickle_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    space = load_space("examples/custom_space.py:space")
    assert isinstance(space, Custom) and space.name == "small-cnn"
    assert space.source == f"{EXAMPLE}:space"
    config = space.sample(np.random.default_rng(0))
    copy = pickle.loads(pickle.dumps(space))  # reloaded from the file: its build comes along
    assert copy.to_string(config) == space.to_string(config)
    net = copy.build(config, in_channels=1, num_classes=10)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_load_space_from_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "spaces.py").write_text(
        textwrap.dedent(
            """
            from nasforge.spaces.custom import Custom

            space = Custom({"width": [8, 16]}, name="from-module")
            not_a_space = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        space = load_space("userpkg.spaces:space")
        assert space.name == "from-module" and space.size() == 2
        assert pickle.loads(pickle.dumps(space)).size() == 2
        with pytest.raises(ConfigError) as err:
            load_space("userpkg.spaces:spaces")
        assert "no attribute 'spaces'; spaces defined there: space" in str(err.value)
        with pytest.raises(ConfigError) as err:
            load_space("userpkg.spaces:not_a_space")
        assert "not_a_space is a int, not a search space" in str(err.value)
    finally:
        for name in ("userpkg", "userpkg.spaces"):
            sys.modules.pop(name, None)
    nb201 = load_space("nasforge.spaces.nb201:NB201Space")  # a class is instantiated
    assert nb201.name == "nb201"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("examples/missing_space.py:space", ["not found", "missing_space.py"]),
        ("no_such_package.mod:space", ["no module 'no_such_package.mod'"]),
        ("examples/custom_space.py:spice", ["no attribute 'spice'", "defined there: space"]),
        ("examples/custom_space.py:build", ["is a function, not a search space", "lacks"]),
        ("examples/custom_space.py", ["expected FILE.py:NAME"]),
        ("examples/custom_space.py:1x", ["identifier"]),
        ("nasforge.spaces.custom:Config", ["not a search space"]),
    ],
)
def test_load_space_errors(spec: str, words: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError) as err:
        load_space(spec)
    for word in words:
        assert word in str(err.value)


def test_errors_inside_a_users_file_name_file_and_line_and_keep_the_cause(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import nasforge_does_not_exist\n")
    with pytest.raises(ConfigError, match=f"{broken}:1: ModuleNotFoundError") as caught:
        load_space(f"{broken}:space")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    declared_badly = tmp_path / "bad.py"
    declared_badly.write_text(
        "from nasforge.spaces.custom import Custom\nspace = Custom({'a': []})\n"
    )
    with pytest.raises(ConfigError, match="'a' has no values"):
        load_space(f"{declared_badly}:space")


# --- the README example trains -----------------------------------------------------------------


@pytest.mark.slow
def test_example_trains_above_chance_on_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.data.datasets import load_dataset
    from nasforge.estimators.train import Train

    monkeypatch.chdir(ROOT)
    space = load_space("examples/custom_space.py:space")
    data = load_dataset("digits")
    # 1,437 training images: batches of 32 give 45 steps in the epoch (128 would give 11)
    train = Train(space, data, epochs=1, batch_size=32, threads=1, seed=0)
    for text in ("depth=2,width=32,block=conv,kernel=3", "depth=3,width=32,block=separable"):
        result = train.evaluate(Candidate(space.from_string(text)))
        assert result.objective > 40.0, (text, result)  # chance is 10 %
        assert result.metrics["params"] == space.param_count(
            space.from_string(text), in_channels=1, num_classes=10
        )
