"""The MetaQNN / NAS-RL chain space: grammar, validity rules, decisions, moves, networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.core import Candidate
from nasforge.data.datasets import load_dataset
from nasforge.errors import ConfigError, InvalidArchError, UnknownNameError
from nasforge.estimators.train import Train
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.chain import (
    FC,
    GRAMMAR,
    LAYER_OPTIONS,
    ChainArch,
    ChainNetwork,
    ChainSpace,
    Conv,
    Pool,
)

EXAMPLE = "conv3-32-s1|pool2|conv5-64-s2+skip0|fc128"
SKIPPY = "conv3-16-s2|conv3-16-s2|pool2|conv3-32-s1+skip0"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space() -> ChainSpace:
    return ChainSpace()


def samples(space: ChainSpace, n: int, seed: int = 0) -> list[ChainArch]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_space_satisfies_the_protocol(space: ChainSpace) -> None:
    assert isinstance(space, SearchSpace)
    assert space.name == "chain"
    assert space.size_options == {"channels": None, "cells": None}
    assert (space.input_size, space.max_layers) == (32, 8)


def test_example_parses_to_the_layers_it_names(space: ChainSpace) -> None:
    arch = space.from_string(EXAMPLE)
    assert arch.layers == (Conv(3, 32, 1), Pool(2), Conv(5, 64, 2, skip=0), FC(128))
    assert space.to_string(arch) == EXAMPLE
    assert space.resolutions(arch) == [32, 16, 8, 8]


def test_string_round_trip_over_samples_and_neighbours(space: ChainSpace) -> None:
    archs = samples(space, 300)
    archs += space.neighbours(archs[0])
    for arch in archs:
        text = space.to_string(arch)
        assert space.from_string(text) == arch
    assert len({space.to_string(a) for a in archs}) == len(set(archs))


@pytest.mark.parametrize(
    "text, token",
    [
        ("conv3-32", "conv3-32"),
        ("conv3-32-s1|", "''"),
        ("conv4-32-s1", "conv4-32-s1"),  # kernel not offered
        ("conv3-33-s1", "conv3-33-s1"),  # filters not offered
        ("conv3-32-s3", "conv3-32-s3"),  # stride not offered
        ("conv03-32-s1", "conv03-32-s1"),  # leading zero
        ("Conv3-32-s1", "Conv3-32-s1"),
        ("conv3-32-s1 | pool2", "conv3-32-s1 "),
        ("conv3-32-s1|conv3-32-s1+skip", "conv3-32-s1+skip"),
        ("conv3-32-s1|conv3-32-s1|conv3-32-s1+skip-1", "conv3-32-s1+skip-1"),
        ("conv3-32-s1|pool4", "pool4"),
        ("conv3-32-s1|avgpool2", "avgpool2"),
        ("conv3-32-s1|pool2|fc100", "fc100"),
        ("conv3-32-s1,pool2", "conv3-32-s1,pool2"),
    ],
)
def test_malformed_strings_name_the_token_and_the_grammar(
    space: ChainSpace, text: str, token: str
) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.from_string(text)
    message = str(err.value)
    assert token in message and GRAMMAR in message and "\n" not in message


def test_empty_string_and_non_strings(space: ChainSpace) -> None:
    with pytest.raises(InvalidArchError, match="empty chain"):
        space.from_string("  ")
    with pytest.raises(InvalidArchError, match="must be a str"):
        space.from_string(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, message",
    [
        ("pool2|conv3-32-s1", "first layer must be conv or fc"),
        ("conv3-32-s2|conv3-32-s2|conv3-32-s2|fc64|conv3-32-s1", "only fc layers may follow fc"),
        ("conv3-32-s2|conv3-32-s2|pool2|fc64|pool2", "only fc layers may follow fc"),
        ("conv3-32-s2|conv3-32-s2|pool2|fc64|fc64|fc128", "at most 2 allowed"),
        ("conv3-32-s1|conv3-32-s1+skip0", "not the direct input"),
        ("conv3-32-s1|conv3-32-s1+skip3", "not the direct input"),
        ("conv3-32-s1|pool2|conv3-32-s1+skip1", "not the direct input"),
        ("conv3-32-s1|pool2|pool2|conv3-32-s1+skip1", "must come from a conv layer"),
        ("conv3-32-s1|fc64", r"fc layers need resolution <= 8 \(input_size=32\)"),
        ("conv3-32-s1|" * 8 + "conv3-32-s1", "more than max_layers=8"),
        ("conv3-32-s2|" * 5 + "pool2", "pooling and stride-2 convs need resolution >= 2"),
        ("conv3-32-s2|" * 5 + "conv1-16-s2", "downsamples a 1x1 map"),
    ],
)
def test_every_validity_rule_raises_a_clear_error(
    space: ChainSpace, text: str, message: str
) -> None:
    with pytest.raises(InvalidArchError, match=message) as err:
        space.from_string(text)
    assert "\n" not in str(err.value) and "invalid chain" in str(err.value)


def test_rules_that_depend_on_the_space() -> None:
    text = "conv3-32-s1|fc64|fc64"
    assert ChainSpace(input_size=8).is_valid(ChainSpace(input_size=8).from_string(text))
    arch = ChainSpace(input_size=8).from_string(text)
    assert not ChainSpace(input_size=9).is_valid(arch)  # the conv keeps 9x9: too big for fc
    ChainSpace(input_size=8).from_string("fc64")  # an MLP on a small image is a valid chain
    long = "|".join(["conv3-16-s1"] * 12)
    assert len(ChainSpace(max_layers=12).from_string(long).layers) == 12
    with pytest.raises(InvalidArchError, match="max_layers=11"):
        ChainSpace(max_layers=11).from_string(long)


def test_arch_values_validate_and_are_hashable() -> None:
    with pytest.raises(InvalidArchError, match="no layers"):
        ChainArch(())
    with pytest.raises(InvalidArchError, match="conv kernel must be one of 1, 3, 5"):
        Conv(7, 32)
    with pytest.raises(InvalidArchError, match="fc units"):
        FC(100)
    with pytest.raises(InvalidArchError, match="Conv, Pool or FC"):
        ChainArch(("conv3-32-s1",))  # type: ignore[arg-type]
    arch = ChainArch([Conv(3, 32), Pool(2)])  # a list is frozen into a tuple
    assert arch == ChainArch((Conv(3, 32, 1, None), Pool(2))) and hash(arch) == hash(
        ChainArch((Conv(3, 32), Pool(2)))
    )
    with pytest.raises(AttributeError):
        arch.layers = ()  # type: ignore[misc]


@pytest.mark.parametrize("input_size, max_layers", [(32, 8), (8, 8), (28, 4), (32, 1)])
def test_any_decision_sequence_decodes_to_a_valid_arch(input_size: int, max_layers: int) -> None:
    space = ChainSpace(input_size=input_size, max_layers=max_layers)
    decisions = space.decisions()
    assert len(decisions.choices) == max_layers + max(0, max_layers - 2)
    rng = np.random.default_rng(input_size + max_layers)
    for _ in range(500):
        seq = [int(rng.integers(n)) for n in decisions.choices]
        arch = decisions.decode(seq)
        space.check(arch)
        assert decisions.decode(decisions.encode(arch)) == arch
    # corner cases: all "end", all zeros, all maximal options
    layer_choices = len(LAYER_OPTIONS) + 1
    for seq in (
        [n - 1 if n == layer_choices else 0 for n in decisions.choices],
        [0] * len(decisions.choices),
        [n - 1 for n in decisions.choices],
    ):
        space.check(decisions.decode(seq))


def test_decode_repairs_deterministically(space: ChainSpace) -> None:
    decisions = space.decisions()
    end = len(LAYER_OPTIONS)
    pool2, fc64, conv = LAYER_OPTIONS.index(Pool(2)), LAYER_OPTIONS.index(FC(64)), 0
    # slots: conv, pool, fc at 16x16 (dropped), conv + skip from layer 0, end
    seq = [conv, pool2, fc64, 0, conv, 1, end, 0] + [end, 0] * 3
    assert decisions.decode(seq).layers == (Conv(1, 16, 1), Pool(2), Conv(1, 16, 1, skip=0))
    # pool first (dropped), conv, conv + skip from its direct input (skip dropped)
    seq = [pool2, conv, conv, 1, end, 0] + [end, 0] * 4
    assert decisions.decode(seq).layers == (Conv(1, 16, 1), Conv(1, 16, 1))
    assert decisions.decode([end] * 2 + [end, 0] * 6).layers == (Conv(3, 32, 1),)  # fallback
    with pytest.raises(InvalidArchError, match=r"0\.\.29"):
        decisions.decode([30] * len(decisions.choices))
    with pytest.raises(InvalidArchError, match="need 14 values"):
        decisions.decode([0])


def test_encodings(space: ChainSpace) -> None:
    arch = space.from_string(EXAMPLE)
    index = space.encode(arch, "index")
    choices = space.decisions().choices
    assert index.shape == (len(choices),) and index.dtype == np.float64
    assert index.tolist() == [float(v) for v in space.decisions().encode(arch)]
    onehot = space.encode(arch)
    assert onehot.shape == (sum(choices),) and onehot.sum() == len(choices)
    blocks = np.split(onehot, np.cumsum(choices)[:-1])
    assert [int(b.argmax()) for b in blocks] == index.astype(int).tolist()
    assert len({space.encode(a).tobytes() for a in samples(space, 100)}) == len(
        set(samples(space, 100))
    )
    with pytest.raises(UnknownNameError, match="onehot"):
        space.encode(arch, "path")


def test_neighbours_are_valid_distinct_and_deterministic(space: ChainSpace) -> None:
    for arch in [space.from_string(EXAMPLE), *samples(space, 15, seed=3)]:
        near = space.neighbours(arch)
        assert near == space.neighbours(arch)
        assert arch not in near and len(set(near)) == len(near) > 0
        for child in near:
            space.check(child)
            assert abs(len(child.layers) - len(arch.layers)) <= 1
    near = space.neighbours(space.from_string(EXAMPLE))
    texts = {space.to_string(a) for a in near}
    assert "conv3-32-s1|pool2|conv5-64-s2+skip0" in texts  # delete
    assert "conv3-32-s1|pool2|conv5-64-s2|fc128" in texts  # drop the skip
    assert "conv3-32-s1|pool2|conv5-64-s2+skip0|fc128|fc64" in texts  # insert
    assert "conv3-32-s1|pool3|conv5-64-s2+skip0|fc128" in texts  # replace
    assert "conv1-16-s1|conv3-32-s1|pool2|conv5-64-s2+skip1|fc128" in texts  # skip follows
    assert len(near) < 600
    # deleting a layer takes along the skips that read from it or that would become direct
    texts = {space.to_string(a) for a in space.neighbours(space.from_string(SKIPPY))}
    assert "conv3-16-s2|pool2|conv3-32-s1" in texts  # layer 0 deleted: its reader loses the skip
    assert "conv3-16-s2|pool2|conv3-32-s1+skip0" in texts  # layer 1 deleted: skip re-indexed
    texts = {
        space.to_string(a)
        for a in space.neighbours(space.from_string("conv3-16-s1|pool2|conv3-32-s1+skip0"))
    }
    assert "conv3-16-s1|conv3-32-s1" in texts  # pool deleted: the skip would be the direct input


def test_mutate_is_valid_different_and_uses_every_edit(space: ChainSpace) -> None:
    rng = np.random.default_rng(1)
    arch = space.from_string(EXAMPLE)
    sizes = set()
    for _ in range(200):
        child = space.mutate(arch, rng)
        assert child != arch and space.is_valid(child)
        sizes.add(len(child.layers) - len(arch.layers))
    assert sizes == {-1, 0, 1}
    chain = arch
    for _ in range(100):  # a random walk stays valid
        chain = space.mutate(chain, rng)
        space.check(chain)


def test_sample_and_crossover(space: ChainSpace) -> None:
    first, again = samples(space, 50, seed=7), samples(space, 50, seed=7)
    assert first == again and len(set(first)) > 45
    lengths = {len(a.layers) for a in samples(space, 300)}
    assert lengths == set(range(1, 9))
    kinds = {type(layer) for a in samples(space, 300) for layer in a.layers}
    assert kinds == {Conv, Pool, FC}
    rng = np.random.default_rng(2)
    a, b = first[0], first[1]
    for _ in range(50):
        space.check(space.crossover(a, b, rng))
    assert space.canonical(a) is a


@pytest.mark.parametrize("size, channels", [(8, 1), (28, 1), (32, 3)])
def test_build_forward_for_each_input_size(size: int, channels: int) -> None:
    torch.manual_seed(0)
    space = ChainSpace(input_size=size)
    archs = samples(space, 6, seed=size)
    archs.append(space.from_string("conv3-16-s2|conv3-16-s2|conv1-32-s1+skip0|fc64|fc128"))
    for arch in archs:
        net = space.build(arch, in_channels=channels, num_classes=7)
        assert isinstance(net, ChainNetwork)
        out = net(torch.randn(2, channels, size, size))
        assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("size", [8, 15, 64])
def test_network_takes_other_image_sizes_than_planned(space: ChainSpace, size: int) -> None:
    deep = space.from_string("conv3-16-s2|pool2|conv3-32-s2|conv1-16-s1+skip0|pool3|fc64")
    net = space.build(deep, in_channels=3, num_classes=4)
    assert net(torch.randn(2, 3, size, size)).shape == (2, 4)


def test_skip_concatenates_channels(space: ChainSpace) -> None:
    arch = space.from_string("conv3-16-s1|pool2|conv3-32-s1+skip0")
    net = space.build(arch, in_channels=3)
    assert net.blocks[2][0].in_channels == 16 + 16
    unskipped = space.build(space.from_string("conv3-16-s1|pool2|conv3-32-s1"), in_channels=3)
    assert unskipped.blocks[2][0].in_channels == 16


@pytest.mark.parametrize("multiplier", [1.0, 0.5, 2.0])
def test_param_count_matches_build(space: ChainSpace, multiplier: float) -> None:
    archs = [space.from_string(EXAMPLE), *samples(space, 10, seed=4)]
    for arch in archs:
        for net in (dict(in_channels=1, num_classes=3), dict(in_channels=3, num_classes=10)):
            built = space.build(arch, width_multiplier=multiplier, **net)
            count = sum(p.numel() for p in built.parameters() if p.requires_grad)
            assert space.param_count(arch, width_multiplier=multiplier, **net) == count
    assert space.param_count(space.from_string(EXAMPLE)) > space.param_count(
        space.from_string(EXAMPLE), width_multiplier=0.5
    )


def test_build_rejects_bad_settings(space: ChainSpace) -> None:
    arch = space.from_string(EXAMPLE)
    with pytest.raises(ConfigError, match="width_multiplier"):
        space.build(arch, width_multiplier=0)
    with pytest.raises(ConfigError, match="num_classes"):
        space.build(arch, num_classes=0)
    with pytest.raises(InvalidArchError, match="ChainArch"):
        space.build("conv3-32-s1")  # type: ignore[arg-type]
    with pytest.raises(InvalidArchError, match="resolution <= 8"):
        ChainSpace(input_size=32).build(ChainSpace(input_size=8).from_string("conv3-16-s1|fc64"))
    with pytest.raises(ConfigError, match="input_size"):
        ChainSpace(input_size=0)
    with pytest.raises(ConfigError, match="max_layers"):
        ChainSpace(max_layers=1.5)  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_epoch_on_digits_beats_chance() -> None:
    space = ChainSpace(input_size=8)
    arch = space.from_string("conv3-32-s1|pool2|conv3-64-s1+skip0|fc128")
    estimator = Train(space, load_dataset("digits"), epochs=1, batch_size=32, threads=1)
    result = estimator.evaluate(Candidate(arch))
    assert result.objective > 50  # chance is 10 %
    assert result.metrics["params"] == space.param_count(arch, in_channels=1, num_classes=10)
