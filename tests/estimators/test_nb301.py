"""NAS-Bench-301 surrogate: genotype -> ConfigSpace configuration, model queries, errors."""

from __future__ import annotations

import json
import pickle
from typing import NamedTuple

import numpy as np
import pytest

from conftest import require_data
from nasforge.capabilities import capabilities_of
from nasforge.core import Candidate
from nasforge.errors import ConfigError, DataFormatError, DataNotFoundError, InvalidArchError
from nasforge.estimators.benchmarks.nb301 import (
    CAT_NAMES,
    OPS,
    PREFIX,
    NB301Benchmark,
    genotype_to_config,
)
from nasforge.spaces.darts import DartsArch, DartsSpace


class Genotype(NamedTuple):
    """Stand-in for the DARTS space's arch: the estimator only reads .normal and .reduce."""

    normal: tuple[tuple[str, int], ...]
    reduce: tuple[tuple[str, int], ...]


DARTS_V2 = Genotype(
    normal=(
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ),
    reduce=(
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ),
)


def random_cell(rng: np.random.Generator) -> tuple[tuple[str, int], ...]:
    pairs = []
    for k in range(4):
        for inp in rng.choice(k + 2, size=2, replace=False):
            pairs.append((OPS[int(rng.integers(len(OPS)))], int(inp)))
    return tuple(pairs)


def random_genotypes(n: int, seed: int = 0) -> list[Genotype]:
    rng = np.random.default_rng(seed)
    return [Genotype(random_cell(rng), random_cell(rng)) for _ in range(n)]


@pytest.fixture(scope="module")
def nb301_dir():
    return require_data("nb301/model.onnx").parent


@pytest.fixture(scope="module")
def bench(nb301_dir) -> NB301Benchmark:
    return NB301Benchmark(data_dir=nb301_dir.parent)


@pytest.fixture(scope="module")
def config_space(nb301_dir) -> dict:
    with open(nb301_dir / "config_space.json") as handle:
        return json.load(handle)


def active_names(space: dict, config: dict[str, str]) -> set[str]:
    """The hyperparameters ConfigSpace's conditions make active for ``config`` (epoch aside)."""
    conditions = {c["child"]: c for c in space["conditions"]}
    for c in space["conditions"]:
        assert c["type"] == "IN"  # the only kind NB301 uses; anything else needs handling here
    active = set()
    for hp in space["hyperparameters"]:
        name = hp["name"]
        if name == "epoch":
            continue
        cond = conditions.get(name)
        if cond is None or config.get(cond["parent"]) in cond["values"]:
            active.add(name)
    return active


def check_against_space(space: dict, config: dict[str, str]) -> None:
    choices = {hp["name"]: hp.get("choices") for hp in space["hyperparameters"]}
    assert set(config) == active_names(space, config)
    for name, value in config.items():
        assert value in choices[name], (name, value)


def test_darts_v2_config_has_exactly_the_active_hyperparameters(config_space: dict) -> None:
    config = genotype_to_config(DARTS_V2.normal, DARTS_V2.reduce)
    check_against_space(config_space, config)
    assert len(config) == 2 * (2 * 4 + 3)  # 8 edges and 3 input choices per cell
    # spot-check the mapping: node 3 of the normal cell reads input 0 and node 2 (edges 9, 11)
    assert config[f"{PREFIX}inputs_node_normal_5"] == "0_2"
    assert config[f"{PREFIX}edge_normal_11"] == "dil_conv_3x3"
    assert config[f"{PREFIX}edge_normal_9"] == "skip_connect"
    assert config[f"{PREFIX}inputs_node_reduce_3"] == "1_2"


def test_random_configs_satisfy_the_conditions(config_space: dict) -> None:
    for g in random_genotypes(300, seed=1):
        check_against_space(config_space, genotype_to_config(g.normal, g.reduce))


def test_config_ignores_pair_order_within_a_node() -> None:
    swapped = list(DARTS_V2.normal)
    swapped[6], swapped[7] = swapped[7], swapped[6]
    assert genotype_to_config(swapped, DARTS_V2.reduce) == genotype_to_config(*DARTS_V2)


def test_encode_config_columns(bench: NB301Benchmark) -> None:
    row = bench.encode_config(genotype_to_config(*DARTS_V2))
    assert row.shape == (34,) and row.dtype == np.int32
    inactive = [i for i, name in enumerate(CAT_NAMES) if bench.encoding[name]["#na#"] == row[i]]
    assert len(inactive) == 34 - 22
    column = CAT_NAMES.index(f"{PREFIX}edge_normal_11")
    assert row[column] == bench.encoding[CAT_NAMES[column]]["dil_conv_3x3"]


def test_random_cells_at_epoch_98_match_the_published_ranges(bench: NB301Benchmark) -> None:
    results = bench.evaluate_many([Candidate(g) for g in random_genotypes(200)])
    acc = np.array([r.objective for r in results])
    runtime = np.array([r.cost for r in results])
    assert all(r.fidelity == 98.0 for r in results)
    assert np.allclose(acc, [r.report["val_acc_final"] for r in results])
    assert np.allclose(runtime, [r.metrics["runtime"] for r in results])
    # data README: accuracy 0.90-0.935 and runtime 3,000-6,600 s (ranges slightly widened)
    assert np.mean((acc > 89.5) & (acc < 94.0)) >= 0.95
    assert np.mean((runtime > 2700) & (runtime < 7000)) >= 0.95
    assert acc.std() > 0.2 and runtime.std() > 100  # the model does look at the cell


def test_evaluate_many_equals_evaluate(bench: NB301Benchmark) -> None:
    fidelities = [1, 20, 50, 98, None]
    cands = [Candidate(g, f) for g, f in zip(random_genotypes(5, 3), fidelities, strict=True)]
    many = bench.evaluate_many(cands)
    for cand, batched in zip(cands, many, strict=True):
        single = bench.evaluate(cand)
        assert single.objective == pytest.approx(batched.objective, abs=1e-4)
        assert single.cost == pytest.approx(batched.cost, rel=1e-5)
    assert bench.evaluate_many([]) == []


def test_learning_curves_rise(bench: NB301Benchmark) -> None:
    genotypes = random_genotypes(50, seed=2)
    epochs = [1, 10, 30, 60, 98]
    acc = np.zeros((len(genotypes), len(epochs)))
    runtime = np.zeros_like(acc)
    for j, epoch in enumerate(epochs):
        for i, r in enumerate(bench.evaluate_many([Candidate(g, epoch) for g in genotypes])):
            acc[i, j], runtime[i, j] = r.objective, r.cost
            assert r.fidelity == float(epoch)
            assert r.report["val_acc_final"] == pytest.approx(
                bench.evaluate(Candidate(genotypes[i])).objective, abs=1e-4
            )
    assert np.all(np.diff(acc.mean(axis=0)) > 0)
    assert np.all(np.diff(runtime, axis=1) > 0)  # every cell's cumulative time grows


def test_darts_v2_beats_the_median_random_cell(bench: NB301Benchmark) -> None:
    randoms = [
        r.objective for r in bench.evaluate_many([Candidate(g) for g in random_genotypes(200)])
    ]
    assert bench.evaluate(Candidate(DARTS_V2)).objective > np.median(randoms)


@pytest.mark.parametrize("fidelity", [0, 99, 2.5, -1, float("nan"), "10", True])
def test_bad_fidelity_is_a_config_error(bench: NB301Benchmark, fidelity: object) -> None:
    with pytest.raises(ConfigError, match=r"1\.\.98"):
        bench.evaluate(Candidate(DARTS_V2, fidelity=fidelity))  # type: ignore[arg-type]


def test_whole_float_fidelity_is_accepted(bench: NB301Benchmark) -> None:
    assert bench.evaluate(Candidate(DARTS_V2, 27.0)).fidelity == 27.0


def test_none_op_is_refused_with_the_reason(bench: NB301Benchmark) -> None:
    normal = (("none", 0), *DARTS_V2.normal[1:])
    with pytest.raises(InvalidArchError, match=r"no 'none' op.*7 non-none") as err:
        bench.evaluate(Candidate(Genotype(normal, DARTS_V2.reduce)))
    assert "sep_conv_3x3" in str(err.value) and "\n" not in str(err.value)
    config = genotype_to_config(*DARTS_V2)
    config[f"{PREFIX}edge_normal_0"] = "none"
    with pytest.raises(InvalidArchError, match="none"):
        bench.encode_config(config)


@pytest.mark.parametrize(
    "normal, message",
    [
        ((("conv_7x7", 0), *DARTS_V2.normal[1:]), "unknown op 'conv_7x7'"),
        ((*DARTS_V2.normal[:7], ("dil_conv_3x3", 5)), "out of range"),
        ((*DARTS_V2.normal[:6], ("skip_connect", 2), ("dil_conv_3x3", 2)), "twice"),
        (DARTS_V2.normal[:6], "8 \\(op, input\\) pairs"),
        ((("sep_conv_3x3", 2), *DARTS_V2.normal[1:]), "out of range"),
    ],
)
def test_bad_genotypes_raise(normal: tuple, message: str) -> None:
    with pytest.raises(InvalidArchError, match=message):
        genotype_to_config(normal, DARTS_V2.reduce)


def test_bad_configs_and_archs_raise(bench: NB301Benchmark) -> None:
    with pytest.raises(InvalidArchError, match="unknown NB301 hyperparameter"):
        bench.encode_config({"lr": "0.1"})
    with pytest.raises(InvalidArchError, match=r"\.normal and \.reduce"):
        bench.evaluate(Candidate("|nor_conv_3x3~0|"))


def test_pickle_round_trip_drops_the_session(bench: NB301Benchmark) -> None:
    expected = bench.evaluate(Candidate(DARTS_V2, 40))
    payload = pickle.dumps(bench)
    assert b"onnxruntime" not in payload
    clone = pickle.loads(payload)
    assert clone._session is None
    again = clone.evaluate(Candidate(DARTS_V2, 40))
    assert again.objective == pytest.approx(expected.objective)
    assert again.cost == pytest.approx(expected.cost)
    assert clone.name == "nb301" and clone.objective_name == "val_acc"
    declared = capabilities_of(clone)
    assert declared.fidelity_range == (1.0, 98.0) and declared.report_metric == "val_acc_final"


def test_missing_and_broken_files(tmp_path, nb301_dir, monkeypatch) -> None:
    monkeypatch.delenv("NASFORGE_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match=r"nb301/model\.onnx"):
        NB301Benchmark(data_dir=tmp_path)
    folder = tmp_path / "nb301"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(DataFormatError, match=r"encoding\.json is missing"):
        NB301Benchmark(data_dir=tmp_path)
    (folder / "encoding.json").write_text("{}")
    (folder / "config_space.json").write_text((nb301_dir / "config_space.json").read_text())
    with pytest.raises(DataFormatError, match="missing 34 hyperparameter"):
        NB301Benchmark(data_dir=tmp_path)
    (folder / "encoding.json").write_text((nb301_dir / "encoding.json").read_text())
    with pytest.raises(DataFormatError, match="not a loadable ONNX model"):
        NB301Benchmark(data_dir=tmp_path)


def test_darts_space_archs_are_scored(bench: NB301Benchmark) -> None:
    space = DartsSpace()
    rng = np.random.default_rng(4)
    results = bench.evaluate_many([Candidate(space.sample(rng)) for _ in range(20)])
    assert all(85 < r.objective < 95 for r in results)
    v2 = bench.evaluate(Candidate(DartsArch(DARTS_V2.normal, DARTS_V2.reduce)))
    assert v2.objective == pytest.approx(bench.evaluate(Candidate(DARTS_V2)).objective)
