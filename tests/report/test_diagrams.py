"""Architecture diagrams: each built-in space's SVG shows what its stored string says.

The expected facts (op names and counts, layer kinds, stage choices) are read from the string
itself, not from the drawing code, and checked against the ``<text>`` elements of the SVG, the
text a browser (or a person searching the report) sees.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

from nasforge.factory import make_space
from nasforge.report.diagrams import SPACES, architecture_svg
from nasforge.spaces import darts, mobile, nasnet, nb101, nb201

NS = "{http://www.w3.org/2000/svg}"
SEEDS = (0, 1, 2)


@functools.cache
def sample(space: str, seed: int) -> str:
    sp = make_space(space)
    return sp.to_string(sp.sample(np.random.default_rng(seed)))


@functools.cache
def drawn(space: str, seed: int) -> tuple[str, str, ET.Element, tuple[str, ...]]:
    """(arch string, SVG markup, parsed SVG root, its text elements in document order)."""
    arch = sample(space, seed)
    svg = architecture_svg(space, arch)
    assert svg is not None
    root = ET.fromstring(svg)
    texts = tuple("".join(t.itertext()).strip() for t in root.iter(f"{NS}text"))
    return arch, svg, root, texts


def among(texts: tuple[str, ...], names: tuple[str, ...]) -> Counter[str]:
    return Counter(t for t in texts if t in names)


def first_words(texts: tuple[str, ...], words: set[str]) -> list[str]:
    return [t.split()[0] for t in texts if t and t.split()[0] in words]


# --- the document -------------------------------------------------------------------------------


@pytest.mark.parametrize("space", SPACES)
def test_inlinable_svg_root(space: str) -> None:
    _, svg, root, _ = drawn(space, 0)
    assert svg.startswith("<svg")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert root.tag == f"{NS}svg"
    assert root.get("class") == "arch-diagram"
    assert root.get("data-space") == space
    width_pt = float(root.get("width", "").removesuffix("pt"))
    assert 0 < width_pt <= 10 * 72  # modest: at most 10 inches
    # matplotlib's embedded stylesheet must not restyle the rest of an HTML page
    for style in root.iter(f"{NS}style"):
        assert not re.search(r"(^|\})\s*\*", style.text or "")


def test_deterministic_and_ids_unique_across_diagrams() -> None:
    arch = sample("darts", 0)
    assert architecture_svg.__wrapped__("darts", arch) == architecture_svg(
        "darts", arch
    )  # uncached
    ids: list[str] = []
    for space in SPACES:
        _, _, root, _ = drawn(space, 0)
        ids += [e.get("id") for e in root.iter() if e.get("id")]
    _, _, root, _ = drawn("nb201", 1)  # a second diagram of the same space on the same page
    ids += [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))


def test_user_space_has_no_drawing() -> None:
    assert architecture_svg("my_space", "anything") is None


@pytest.mark.parametrize(
    "space, bad",
    [
        ("nb201", "|nor_conv_3x3~0|+|bogus~0|none~1|"),
        ("darts", "Genotype(normal=[('sep_conv_3x3', 0)])"),
        ("nasnet", "normal=[add(0:identity)];reduce=[]"),
        ("nb101", "input,conv3x3-bn-relu,output|011,001"),
        ("chain", "conv3-32-s1|warp9"),
        ("mobile", "w1.0|mbconv6_k3"),
    ],
)
def test_malformed_string_raises_naming_the_space(space: str, bad: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{space}\b") as info:
        architecture_svg(space, bad)
    assert "\n" not in str(info.value)


# --- what each drawing shows --------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_nb201_shows_every_live_edge_op_and_all_nodes(seed: int) -> None:
    arch, _, _, texts = drawn("nb201", seed)
    ops = [entry.split("~")[0] for entry in arch.replace("+", "").split("|") if entry]
    assert len(ops) == 6
    live = Counter(op for op in ops if op != "none")
    assert among(texts, nb201.OPS) == live  # one label per non-none edge, 'none' never drawn
    assert {"in", "1", "2", "out"} <= set(texts)


@pytest.mark.parametrize("seed", SEEDS)
def test_darts_shows_both_cells(seed: int) -> None:
    arch, _, _, texts = drawn("darts", seed)
    normal, reduce = arch.split("reduce=")
    pairs = re.findall(r"\('(\w+)', (\d+)\)", normal) + re.findall(r"\('(\w+)', (\d+)\)", reduce)
    assert len(pairs) == 16
    assert among(texts, darts.OPS) == Counter(op for op, _ in pairs)
    assert Counter(texts)["c_{k-2}"] == 2 and Counter(texts)["c_{k-1}"] == 2
    assert {"normal cell", "reduction cell"} <= set(texts)


@pytest.mark.parametrize("seed", SEEDS)
def test_nasnet_shows_every_block(seed: int) -> None:
    arch, _, _, texts = drawn("nasnet", seed)
    ops = re.findall(r"\d+:(\w+)", arch)
    combiners = re.findall(r"(add|concat)\(", arch)
    assert len(ops) == 2 * len(combiners)
    assert among(texts, nasnet.OPS) == Counter(ops)
    assert among(texts, ("add", "concat")) == Counter(combiners)


@pytest.mark.parametrize("seed", SEEDS)
def test_nb101_shows_every_vertex(seed: int) -> None:
    arch, _, _, texts = drawn("nb101", seed)
    labels = arch.split("|")[0].split(",")
    assert among(texts, nb101.OPS) == Counter(labels[1:-1])
    assert {"input", "output"} <= set(texts)


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_one_box_per_layer_in_order(seed: int) -> None:
    arch, _, _, texts = drawn("chain", seed)
    tokens = arch.split("|")
    kinds = [re.match(r"[a-z]+", token).group() for token in tokens]
    labels = [t for t in texts if t.split() and t.split()[0] in {"conv", "pool", "fc"}]
    assert [label.split()[0] for label in labels] == kinds
    for token, label in zip(tokens, labels, strict=True):
        numbers = re.findall(r"\d+", token.split("+")[0])
        assert all(n in label for n in numbers), (token, label)
    assert Counter(texts)["concat"] == arch.count("+skip")


@pytest.mark.parametrize("seed", SEEDS)
def test_mobile_one_box_per_stage_with_its_choices(seed: int) -> None:
    arch, _, _, texts = drawn("mobile", seed)
    width, *stages = arch.split("|")
    assert len(stages) == len(mobile.BASE_STAGES)
    labels = [t for t in texts if t.split() and t.split()[0] in set(mobile.BLOCKS)]
    assert [label.split()[0] for label in labels] == [s.split("_")[0] for s in stages]
    for stage, label, (_, _, n, _) in zip(stages, labels, mobile.BASE_STAGES, strict=True):
        _, kernel, se, skip, delta = stage.split("_")
        assert kernel in label.split()
        assert f"SE {float(se[2:]):g}" in label
        assert ("no skip" in label) == (skip == "noskip")
        assert f"×{max(1, n + int(delta[1:]))}" in label  # the depth the space builds
    title = next(t for t in texts if "width multiplier" in t)
    assert float(re.search(r"width multiplier ([\d.]+)", title).group(1)) == float(width[1:])
