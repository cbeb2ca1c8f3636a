"""The image-folder dataset, on folders of real digits / MNIST images written here as PNGs."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from nasforge.core import Candidate
from nasforge.data.datasets import ImageDataset, load_dataset
from nasforge.data.folder import load_image_folder
from nasforge.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from nasforge.errors import ConfigError, DataFormatError, DataNotFoundError
from nasforge.estimators.train import Train

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's real 8×8 digits as uint8 0-255 images and their labels."""
    data = load_digits()
    pixels = np.round(data.images * (255 / 16)).astype(np.uint8)
    return pixels, data.target


def write_folder(
    root: Path,
    pixels: np.ndarray,
    labels: np.ndarray,
    per_class: dict[str, int],
    classes: tuple[str, ...] = NAMES[:3],
) -> dict[str, dict[str, list[np.ndarray]]]:
    """``root/<split>/<class name>/NNN.png``: the first images of each digit; returns them."""
    written: dict[str, dict[str, list[np.ndarray]]] = {}
    for split, count in per_class.items():
        written[split] = {}
        for name in classes:
            digit = NAMES.index(name)
            chosen = np.flatnonzero(labels == digit)
            chosen = chosen[:count] if split == "train" else chosen[-count:]
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, index in enumerate(chosen):
                Image.fromarray(pixels[index]).save(folder / f"{i:03d}.png")
            written[split][name] = [pixels[i] for i in chosen]
    return written


def raw_pixels(data: ImageDataset, x: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation: back to 0-255."""
    mean = torch.tensor(data.mean)[:, None, None]
    std = torch.tensor(data.std)[:, None, None]
    return (x * std + mean) * 255


@pytest.fixture
def folder(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> Path:
    write_folder(tmp_path / "ds", *digits, {"train": 5, "test": 2})
    return tmp_path / "ds"


def test_digits_round_trip_labels_and_pixels(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    written = write_folder(tmp_path, *digits, {"train": 5, "test": 2})
    data = load_image_folder(tmp_path)
    classes = sorted(NAMES[:3])  # one, two, zero: labels follow the sorted folder names
    assert data.class_names == tuple(classes) and data.classes == 3
    assert (data.channels, data.size) == (1, 8)
    assert data.train_x.shape == (15, 1, 8, 8) and data.test_x.shape == (6, 1, 8, 8)
    assert data.train_y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    expected = np.stack([img for name in classes for img in written["test"][name]])
    assert torch.allclose(
        raw_pixels(data, data.test_x)[:, 0], torch.from_numpy(expected).float(), atol=1e-3
    )
    assert abs(data.train_x.mean().item()) < 1e-5  # normalised with the train statistics
    assert data.name == f"folder:{tmp_path.resolve()}"


def test_real_mnist_round_trip(tmp_path: Path, mnist_dir: Path) -> None:
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)[:200]
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)[:200]
    written = write_folder(tmp_path, images, labels, {"train": 4, "test": 3}, NAMES[:10])
    data = load_dataset(f"folder:{tmp_path}")
    assert data.train_x.shape == (40, 1, 28, 28) and data.classes == 10
    for label, name in enumerate(data.class_names or ()):
        rows = (data.train_y == label).nonzero().flatten()
        got = raw_pixels(data, data.train_x[rows])[:, 0]
        want = torch.from_numpy(np.stack(written["train"][name])).float()
        assert torch.allclose(got, want, atol=1e-3)


def test_colour_and_grey_mix_reads_as_rgb(folder: Path) -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).save(folder / "train" / "zero" / "red.png")
    Image.fromarray(np.full((8, 8, 4), 90, np.uint8)).save(folder / "test" / "one" / "rgba.PNG")
    grey_file = folder / "train" / "one" / "000.png"
    grey = np.array(Image.open(grey_file))
    data = load_image_folder(folder)
    assert data.channels == 3 and data.train_x.shape[1:] == (3, 8, 8)
    pixels = raw_pixels(data, data.train_x)
    first_one = int((data.train_y == 0).nonzero()[0])  # "one" sorts first; 000.png is its first
    for c in range(3):  # a grey image is replicated into three equal channels
        assert torch.allclose(pixels[first_one, c], torch.from_numpy(grey).float(), atol=1e-3)
    last_zero = int((data.train_y == 2).nonzero()[-1])  # red.png sorts after 00N.png
    assert pixels[last_zero, 0].mean() == pytest.approx(200, abs=1e-3)
    assert pixels[last_zero, 1:].abs().max() < 1e-3
    assert len(data.test_x) == 7  # the upper-case .PNG is read; alpha dropped


def test_jpeg_and_stray_files(folder: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, _ = digits
    Image.fromarray(pixels[0]).save(folder / "train" / "zero" / "photo.JPG", quality=95)
    (folder / "train" / "zero" / "notes.txt").write_text("not an image")
    (folder / "train" / ".hidden").mkdir()
    data = load_image_folder(folder)
    assert len(data.train_x) == 16 and data.classes == 3
    jpeg = raw_pixels(data, data.train_x[15])[0]
    assert (jpeg - torch.from_numpy(pixels[0]).float()).abs().mean() < 12  # lossy, but close


def test_trains_on_a_folder(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    write_folder(tmp_path, *digits, {"train": 30, "test": 10}, NAMES[:4])
    data = load_dataset(f"folder:{tmp_path}")

    class Space:
        def build(self, arch: int, *, in_channels: int, num_classes: int) -> torch.nn.Module:
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))

    estimator = Train(Space(), data, epochs=3, batch_size=16, lr=0.05, val_fraction=0.25)
    result = estimator.evaluate(Candidate(0))
    assert result.objective > 50 and result.report["test_acc"] > 50  # chance is 25%
    assert estimator.describe()["dataset"] == data.name


# --- bad input: every error names the path ------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(
        DataNotFoundError, match=r"does not exist; expected ROOT/train/<class>"
    ) as e:
        load_image_folder(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)


def test_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"has no train/ or test/ folder.*ROOT/train") as e:
        load_dataset(f"folder:{tmp_path}")
    assert str(tmp_path) in str(e.value)


def test_no_test_split(folder: Path) -> None:
    for path in sorted((folder / "test").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (folder / "test").rmdir()
    with pytest.raises(DataNotFoundError, match=r"has no test/ folder"):
        load_image_folder(folder)


def test_no_class_folders(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(DataNotFoundError, match=f"no class folders in {tmp_path / 'train'}"):
        load_image_folder(tmp_path)


def test_one_class(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    write_folder(tmp_path, *digits, {"train": 2, "test": 1}, ("seven",))
    with pytest.raises(DataFormatError, match=f"{tmp_path / 'train'} has one class folder"):
        load_image_folder(tmp_path)


def test_class_sets_differ(folder: Path) -> None:
    (folder / "test" / "two").rename(folder / "test" / "deux")
    with pytest.raises(DataFormatError, match="test lacks two; test has extra deux"):
        load_image_folder(folder)


def test_empty_class_folder(folder: Path) -> None:
    for path in (folder / "train" / "one").iterdir():
        path.unlink()
    (folder / "train" / "one" / "readme.md").write_text("x")
    with pytest.raises(DataFormatError, match=r"train/one: no images .*1 other file"):
        load_image_folder(folder)


def test_size_mismatch_names_file_and_sizes(folder: Path) -> None:
    odd = folder / "test" / "two" / "big.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(odd)
    with pytest.raises(DataFormatError, match=r"image is 9×9 but .*000\.png is 8×8") as err:
        load_image_folder(folder)
    assert str(odd) in str(err.value)


def test_non_square(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for split in ("train", "test"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / split / name / "x.png")
    with pytest.raises(DataFormatError, match=r"train/a/x\.png: image is 8×6; expected square"):
        load_image_folder(tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "sixteen_bit"])
def test_unreadable_file_is_named(folder: Path, damage: str) -> None:
    bad = folder / "train" / "two" / "001.png"
    if damage == "garbage":
        bad.write_bytes(b"this is not a png at all")
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:40])
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(bad)
    with pytest.raises(
        DataFormatError, match="16-bit" if damage == "sixteen_bit" else "cannot read"
    ) as e:
        load_image_folder(folder)
    assert str(bad) in str(e.value)


def test_gzipped_png_is_not_an_image(folder: Path) -> None:
    bad = folder / "test" / "one" / "000.png"
    bad.write_bytes(gzip.compress(bad.read_bytes()))
    with pytest.raises(DataFormatError, match=f"{bad}: cannot read image"):
        load_image_folder(folder)


def test_folder_spelling_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="folder:PATH"):
        load_dataset("folder:")
