"""Dataset loaders on the real files, on tiny fakes written here, and on damaged files."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_data
from nasforge.data import datasets
from nasforge.data.cifar import TRAIN_BATCHES, read_batch
from nasforge.data.datasets import DATASETS, load_dataset, split_train_val
from nasforge.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from nasforge.errors import ConfigError, DataFormatError, DataNotFoundError, UnknownNameError


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, the format's header followed by the raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_fake_mnist(root: Path, name: str = "mnist", n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    folder = root / name
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def write_fake_cifar(root: Path, n: int = 4) -> Path:
    """The official layout with ``n`` images per batch; every image is pure red."""
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    image = np.zeros((3, 32, 32), np.uint8)
    image[0] = 255
    for batch in (*TRAIN_BATCHES, "test_batch"):
        data = np.tile(image.reshape(1, -1), (n, 1))
        with (folder / batch).open("wb") as f:
            pickle.dump({b"data": data, b"labels": list(range(n))}, f)
    return folder


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Search only the roots a test names, so the machine's NASFORGE_DATA cannot satisfy it."""
    monkeypatch.delenv("NASFORGE_DATA", raising=False)


# --- IDX / MNIST ---------------------------------------------------------------------------------


def test_read_idx_real_mnist(mnist_dir: Path) -> None:
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz", LABELS_MAGIC)
    test_labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    assert labels.shape == (60000,) and test_labels.shape == (10000,)
    assert set(np.unique(labels)) == set(range(10))


def test_load_mnist_real(mnist_dir: Path) -> None:
    data = load_dataset("mnist", data_dir=mnist_dir.parent)
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert (data.classes, data.channels, data.size) == (10, 1, 28)
    assert abs(data.train_x.mean().item()) < 1e-3 and abs(data.train_x.std().item() - 1) < 1e-3
    assert data.mean[0] == pytest.approx(0.1307, abs=1e-3)  # MNIST's well-known mean
    assert int(data.train_y.min()) == 0 and int(data.train_y.max()) == 9
    assert "tensor" not in repr(data)  # the repr stays one short line


def test_fashion_mnist_real() -> None:
    folder = require_data("fashion-mnist/train-images-idx3-ubyte.gz").parent
    data = load_dataset("fashion-mnist", data_dir=folder.parent)
    assert data.train_x.shape == (60000, 1, 28, 28)
    assert torch.bincount(data.train_y).tolist() == [6000] * 10


def test_fashion_mnist_found_in_debian_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    write_fake_mnist(tmp_path, "fashion-mnist")
    monkeypatch.setattr(datasets, "DEBIAN_DATASETS", str(tmp_path))
    assert load_dataset("fashion-mnist").train_x.shape == (12, 1, 28, 28)


def test_fake_mnist_layout_and_normalisation(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, n=12)
    data = load_dataset("mnist", data_dir=tmp_path)
    assert data.train_x.shape == (12, 1, 28, 28) and data.test_y.tolist() == [*range(10), 0, 1]
    assert abs(data.train_x.mean().item()) < 1e-4


@pytest.mark.parametrize(
    "damage",
    ["magic", "labels_as_images", "short", "long", "truncated_gzip", "empty"],
)
def test_damaged_idx_raises_format_error_naming_file(tmp_path: Path, damage: str) -> None:
    folder = write_fake_mnist(tmp_path)
    target = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    if damage == "magic":
        target.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    elif damage == "labels_as_images":
        target.write_bytes((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    elif damage == "short":
        target.write_bytes(gzip.compress(raw[:-5]))
    elif damage == "long":
        target.write_bytes(gzip.compress(raw + b"\0"))
    elif damage == "truncated_gzip":
        target.write_bytes(target.read_bytes()[:-20])
    else:
        target.write_bytes(b"")
    with pytest.raises(DataFormatError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)


def test_uncompressed_idx_is_read(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x-idx3-ubyte", np.arange(24).reshape(2, 3, 4), gz=False)
    assert read_idx(path).tolist() == np.arange(24).reshape(2, 3, 4).tolist()


def test_label_count_mismatch_is_format_error(tmp_path: Path) -> None:
    folder = write_fake_mnist(tmp_path)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.raises(DataFormatError, match=r"t10k-labels.*5 labels for 12 images"):
        load_dataset("mnist", data_dir=tmp_path)


def test_missing_dataset_names_path_and_file(tmp_path: Path, no_env: None) -> None:
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "mnist/train-images-idx3-ubyte.gz" in str(err.value)


def test_unknown_name_lists_accepted() -> None:
    accepted = "cifar10, cifar100, digits, fashion-mnist, folder:PATH, mnist"
    with pytest.raises(UnknownNameError, match=accepted):
        load_dataset("imagenet")
    assert set(DATASETS) == {"mnist", "fashion-mnist", "cifar10", "cifar100", "digits"}


# --- CIFAR-10 ------------------------------------------------------------------------------------


def test_cifar10_real_batch_and_dataset() -> None:
    test_batch = require_data("cifar10/cifar-10-batches-py/test_batch")
    images, labels = read_batch(test_batch)
    assert images.shape == (10000, 3, 32, 32) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
    data = load_dataset("cifar10", data_dir=test_batch.parents[2])
    assert data.train_x.shape == (50000, 3, 32, 32) and data.test_x.shape == (10000, 3, 32, 32)
    assert (data.classes, data.channels, data.size) == (10, 3, 32)
    assert torch.bincount(data.train_y).tolist() == [5000] * 10
    assert data.mean == pytest.approx((0.491, 0.482, 0.447), abs=5e-3)


def test_cifar10_fake_layout_channel_order(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path, n=4)
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    assert data.mean == pytest.approx((1.0, 0.0, 0.0))  # rows are R plane, G plane, B plane
    assert data.train_y.tolist() == [0, 1, 2, 3] * 5


def test_cifar10_missing_batch_is_not_taken_from_another_root(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match=r"incomplete.*cifar-10-batches-py/data_batch_3"):
        load_dataset("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({b"data": np.zeros((2, 3072), np.uint8)}, "lacks labels"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "expected uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "one integer label"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "expected 0..9"),
        ([1, 2, 3], "expected a dict"),
        (print, "not allowed"),  # a pickle naming any global beyond numpy's is refused
    ],
)
def test_cifar10_malformed_batch(tmp_path: Path, content: object, message: str) -> None:
    folder = write_fake_cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(content))
    with pytest.raises(DataFormatError, match=message) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "test_batch" in str(err.value)


def test_cifar10_truncated_pickle(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path)
    path = folder / "data_batch_1"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match="data_batch_1"):
        load_dataset("cifar10", data_dir=tmp_path)


# --- digits and splits ---------------------------------------------------------------------------


def test_digits_shapes_and_fixed_split() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.train_x.shape == (1437, 1, 8, 8) and a.test_x.shape == (360, 1, 8, 8)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert torch.bincount(a.test_y).min() >= 35  # stratified: every class near 36 of 360


def test_split_train_val_disjoint_and_deterministic() -> None:
    train, val = split_train_val(1000, 0.1, seed=3)
    assert len(val) == 100 and len(train) == 900
    assert not set(train) & set(val) and set(train) | set(val) == set(range(1000))
    again = split_train_val(1000, 0.1, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, split_train_val(1000, 0.1, seed=4)[1])


def test_split_subset_is_nested_and_keeps_validation() -> None:
    full_train, val = split_train_val(1000, 0.2, seed=0)
    small, small_val = split_train_val(1000, 0.2, seed=0, subset=0.25)
    half, _ = split_train_val(1000, 0.2, seed=0, subset=0.5)
    assert len(small) == 200 and np.array_equal(val, small_val)
    assert set(small) <= set(half) <= set(full_train)


@pytest.mark.parametrize(
    ("n", "val_fraction", "subset"),
    [
        (100, 0.0, 1.0),
        (100, 1.0, 1.0),
        (100, -0.1, 1.0),
        (100, 0.1, 0.0),
        (100, 0.1, 1.5),
        (1, 0.5, 1.0),
    ],
)
def test_split_rejects_bad_settings(n: int, val_fraction: float, subset: float) -> None:
    with pytest.raises(ConfigError):
        split_train_val(n, val_fraction, seed=0, subset=subset)
