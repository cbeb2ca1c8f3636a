"""Batched augmentation: each transform checked image by image against its definition."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from nasforge.data.augment import Augmentation, cutout, random_crop, random_flip
from nasforge.errors import ConfigError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch() -> torch.Tensor:
    """Distinct, strictly positive images, so zero padding and cutout are recognisable."""
    return torch.rand(64, 3, 10, 10, generator=gen(42)) + 1.0


@pytest.mark.parametrize("mode", ["reflect", "zero"])
def test_crop_is_a_window_of_the_padded_image(batch: torch.Tensor, mode: str) -> None:
    before = batch.clone()
    out = random_crop(batch, 3, gen(), mode)
    assert out.shape == batch.shape and torch.equal(batch, before)  # input untouched
    padded = F.pad(batch, (3, 3, 3, 3), mode="reflect" if mode == "reflect" else "constant")
    offsets = set()
    for i in range(len(batch)):
        hits = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.equal(out[i], padded[i, :, dy : dy + 10, dx : dx + 10])
        ]
        assert len(hits) >= 1, f"image {i} is not a window of its padded self"
        offsets.add(hits[0])
    assert len(offsets) > 10  # offsets vary per image
    zeros = (out == 0).any().item()
    assert zeros == (mode == "zero")  # reflect never brings in zeros; zero padding does


def test_crop_covers_every_offset_uniformly() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(8100, 1, 4, 4).contiguous()
    out = random_crop(x, 2, gen(), "zero")
    # the top-left pixel of a crop tells its offset: value 0 (original) shifts by dy, dx
    padded = F.pad(x[:1], (2, 2, 2, 2))
    windows = {
        (dy, dx): padded[0, :, dy : dy + 4, dx : dx + 4] for dy in range(5) for dx in range(5)
    }
    counts = {key: 0 for key in windows}
    for image in out:
        key = next(k for k, w in windows.items() if torch.equal(image, w))
        counts[key] += 1
    assert min(counts.values()) > 8100 / 25 * 0.7 and max(counts.values()) < 8100 / 25 * 1.3


def test_reflect_crop_needs_room() -> None:
    with pytest.raises(ConfigError, match="reflect padding 4"):
        random_crop(torch.zeros(2, 1, 4, 4), 4, gen())


def test_flip_mirrors_about_half(batch: torch.Tensor) -> None:
    big = batch.repeat(40, 1, 1, 1)
    out = random_flip(big, gen())
    flipped = [torch.equal(o, x.flip(2)) for o, x in zip(out, big, strict=True)]
    kept = [torch.equal(o, x) for o, x in zip(out, big, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # exactly one of the two
    assert 0.45 < sum(flipped) / len(big) < 0.55


def test_cutout_zeroes_one_clipped_square(batch: torch.Tensor) -> None:
    out = cutout(batch, 4, gen())
    areas = []
    for o, x in zip(out, batch, strict=True):
        zero = (o == 0).all(dim=0)  # the same square in every channel
        assert torch.equal(zero, (o == 0).any(dim=0))
        assert torch.equal(o[:, ~zero], x[:, ~zero])  # nothing else changes
        rows, cols = zero.any(dim=1).nonzero().flatten(), zero.any(dim=0).nonzero().flatten()
        assert len(rows) >= 2 and len(cols) >= 2  # the centre is inside: at least half a side
        assert zero.sum() == len(rows) * len(cols)  # a rectangle (a square clipped at an edge)
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all() and len(rows) <= 4
        areas.append(int(zero.sum()))
    assert 16 in areas and min(areas) < 16  # whole squares inside, clipped ones at edges


def test_same_seed_same_batch_and_seeds_differ(batch: torch.Tensor) -> None:
    aug = Augmentation(crop_padding=2, flip=True, cutout=3)
    assert torch.equal(aug(batch, gen(1)), aug(batch, gen(1)))
    assert not torch.equal(aug(batch, gen(1)), aug(batch, gen(2)))
    g = gen(1)
    assert not torch.equal(aug(batch, g), aug(batch, g))  # a stream, not a fixed pattern


def test_default_is_identity_and_describe_is_json(batch: torch.Tensor) -> None:
    assert not Augmentation().active and torch.equal(Augmentation()(batch, gen()), batch)
    aug = Augmentation.standard(cutout=16)
    assert aug.active
    record = json.loads(json.dumps(aug.describe()))
    assert record == {"crop_padding": 4, "padding_mode": "reflect", "flip": True, "cutout": 16}
    assert Augmentation(**record) == aug
    with pytest.raises(dataclasses.FrozenInstanceError):
        aug.flip = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("none", Augmentation()),
        ("standard", Augmentation(crop_padding=4, flip=True)),
        ("crop:4,flip,cutout:16", Augmentation(crop_padding=4, flip=True, cutout=16)),
        ("crop:2:zero", Augmentation(crop_padding=2, padding_mode="zero")),
        (" Flip ", Augmentation(flip=True)),
    ],
)
def test_parse(spec: str, expected: Augmentation) -> None:
    assert Augmentation.parse(spec) == expected


@pytest.mark.parametrize(
    "spec", ["crop", "crop:x", "cutout:1:2", "rotate", "flip:1", "crop:2:wrap"]
)
def test_parse_rejects(spec: str) -> None:
    with pytest.raises(ConfigError, match="accepted"):
        Augmentation.parse(spec)


@pytest.mark.parametrize(
    "bad",
    [
        {"crop_padding": -1},
        {"crop_padding": 1.5},
        {"cutout": True},
        {"flip": 1},
        {"padding_mode": "edge"},
    ],
)
def test_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="augmentation"):
        Augmentation(**bad)  # type: ignore[arg-type]
