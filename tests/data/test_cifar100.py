"""CIFAR-100 in its official python layout, on tiny fixtures written here in that exact layout
(the shared data has no CIFAR-100): ``cifar-100-python/{train,test,meta}``, pickled dicts."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data.datasets import DATASETS, load_dataset
from nasforge.errors import DataFormatError, DataNotFoundError, UnknownNameError

FINE_NAMES = [f"fine{i:02d}" for i in range(100)]


def images(n: int, offset: int) -> np.ndarray:
    """N×3072 uint8 rows in CIFAR's order (R plane, G plane, B plane); image i is distinct."""
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar100(
    root: Path, n_train: int = 6, n_test: int = 4, folder: str = "cifar100/cifar-100-python"
) -> Path:
    """The official layout, with bytes keys and names as the original (Python 2) pickles have."""
    target = root / folder
    target.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [(7 * i + 99) % 100 for i in range(n)]  # spans 99 and 0
        batch = {
            b"filenames": [f"{split}_{i}.png".encode() for i in range(n)],
            b"batch_label": split.encode(),
            b"fine_labels": fine,
            b"coarse_labels": [f // 5 for f in fine],
            b"data": images(n, offset=len(split)),
        }
        (target / split).write_bytes(pickle.dumps(batch))
    meta = {
        b"fine_label_names": [name.encode() for name in FINE_NAMES],
        b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
    }
    (target / "meta").write_bytes(pickle.dumps(meta))
    return target


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NASFORGE_DATA", raising=False)


def test_fixture_round_trips_pixels_labels_and_names(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    data = load_dataset("cifar100", data_dir=tmp_path)
    assert data.name == "cifar100"
    assert data.train_x.shape == (6, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    assert (data.classes, data.channels, data.size) == (100, 3, 32)
    # fine labels, not the coarse superclasses
    assert data.train_y.tolist() == [(7 * i + 99) % 100 for i in range(6)]
    assert data.class_names == tuple(FINE_NAMES)
    mean, std = torch.tensor(data.mean)[:, None, None], torch.tensor(data.std)[:, None, None]
    pixels = (data.test_x * std + mean) * 255
    expected = torch.from_numpy(images(4, offset=len("test")).reshape(4, 3, 32, 32)).float()
    assert torch.allclose(pixels, expected, atol=1e-3)


def test_found_through_environment_and_bare_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cifar100(tmp_path / "a")
    write_cifar100(tmp_path / "b", n_train=3, folder="cifar-100-python")
    monkeypatch.setenv("NASFORGE_DATA", f"{tmp_path / 'missing'}:{tmp_path / 'a'}")
    assert len(load_dataset("cifar100").train_x) == 6
    assert len(load_dataset("cifar100", data_dir=tmp_path / "b").train_x) == 3


def test_str_keys_are_read_too(tmp_path: Path) -> None:
    """A fixture pickled from Python 3 (str keys and names) reads the same."""
    folder = write_cifar100(tmp_path)
    for split in ("train", "test"):
        raw = pickle.loads((folder / split).read_bytes())
        (folder / split).write_bytes(pickle.dumps({k.decode(): v for k, v in raw.items()}))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": FINE_NAMES}))
    data = load_dataset("cifar100", data_dir=tmp_path)
    assert data.class_names == tuple(FINE_NAMES) and len(data.test_y) == 4


def test_missing_names_layout(tmp_path: Path, no_env: None) -> None:
    with pytest.raises(DataNotFoundError, match="cifar100/cifar-100-python/train") as err:
        load_dataset("cifar100", data_dir=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_meta_is_incomplete(tmp_path: Path, no_env: None) -> None:
    folder = write_cifar100(tmp_path)
    (folder / "meta").unlink()
    with pytest.raises(DataNotFoundError, match=r"incomplete.*cifar-100-python/meta"):
        load_dataset("cifar100", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("split", "content", "message"),
    [
        ("train", {b"data": np.zeros((2, 3072), np.uint8)}, "lacks fine_labels"),
        ("train", {b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}, "uint8"),
        ("test", {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0]}, "one integer"),
        ("test", {b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [100]}, "0..99"),
        ("test", [1, 2], "expected a dict"),
        ("test", print, "not allowed"),  # a pickle naming a global beyond numpy's is refused
        ("meta", {b"fine_label_names": [b"a", b"b"]}, "2 fine_label_names"),
        ("meta", {b"coarse_label_names": []}, "no fine_label_names"),
    ],
)
def test_malformed_files_name_the_file(
    tmp_path: Path, split: str, content: object, message: str
) -> None:
    folder = write_cifar100(tmp_path)
    (folder / split).write_bytes(pickle.dumps(content))
    with pytest.raises(DataFormatError, match=message) as err:
        load_dataset("cifar100", data_dir=tmp_path)
    assert str(folder / split) in str(err.value)


def test_truncated_pickle(tmp_path: Path) -> None:
    folder = write_cifar100(tmp_path)
    (folder / "train").write_bytes((folder / "train").read_bytes()[:50])
    with pytest.raises(DataFormatError, match="cifar-100-python/train"):
        load_dataset("cifar100", data_dir=tmp_path)


def test_registered_and_listed() -> None:
    assert "cifar100" in DATASETS
    with pytest.raises(UnknownNameError, match=r"cifar100, digits.*folder:PATH"):
        load_dataset("cifar-1000")
