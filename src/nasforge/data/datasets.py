"""Image-classification datasets decoded once into normalised in-memory tensors.

Training on a CPU is dominated by per-sample Python work if images stay as files or PIL
objects, so every loader decodes the whole set up front and an epoch only slices tensors.
The test set is kept apart and is only ever used for reporting: searches validate on a seeded
split of the training set (`split_train_val`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nasforge.data.cifar import TEST_BATCH, TRAIN_BATCHES, read_batch, unpickle_dict
from nasforge.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from nasforge.data.paths import find_data
from nasforge.errors import ConfigError, DataFormatError, DataNotFoundError, UnknownNameError

DataDir = str | os.PathLike[str] | None

#: Where Debian's ``dataset-fashion-mnist`` package installs the official files.
DEBIAN_DATASETS = "/usr/share/datasets"

#: Seed and fraction of the fixed train/test split of scikit-learn's digits (it has none).
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


@dataclass(eq=False)
class ImageDataset:
    """Train and test images as float32 N×C×H×W tensors normalised per channel, labels int64.

    ``mean``/``std`` are the per-channel statistics of the *training* images (on the 0-1
    scale) that both splits were normalised with, kept so new images can be treated alike.
    ``class_names[i]``, where the source names its classes, is the name of label ``i``.
    """

    name: str
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    classes: int
    channels: int
    size: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for split, x, y in (
            ("train", self.train_x, self.train_y),
            ("test", self.test_x, self.test_y),
        ):
            if x.ndim != 4 or x.shape[1:] != (self.channels, self.size, self.size):
                raise ValueError(f"{split}_x has shape {tuple(x.shape)}; expected N×C×H×W")
            if y.shape != (len(x),):
                raise ValueError(f"{split}_y has shape {tuple(y.shape)} for {len(x)} images")
        if self.class_names is not None and len(self.class_names) != self.classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.classes} classes")

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape, C×H×W."""
        return (self.channels, self.size, self.size)


def from_arrays(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: int,
    scale: float,
    class_names: Sequence[str] | None = None,
) -> ImageDataset:
    """Convert raw N×C×H×W pixel arrays to tensors normalised with the train statistics
    (pixels are divided by ``scale`` first, so the stored mean/std are on the 0-1 scale)."""
    train_x = torch.from_numpy(train[0]).to(torch.float32).div_(scale)
    test_x = torch.from_numpy(test[0]).to(torch.float32).div_(scale)
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    for x in (train_x, test_x):
        x.sub_(mean[:, None, None]).div_(std[:, None, None])
    return ImageDataset(
        name=name,
        train_x=train_x,
        train_y=torch.from_numpy(train[1].astype(np.int64)),
        test_x=test_x,
        test_y=torch.from_numpy(test[1].astype(np.int64)),
        classes=classes,
        channels=train_x.shape[1],
        size=train_x.shape[2],
        mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
        class_names=None if class_names is None else tuple(class_names),
    )


def _check_labels(labels: np.ndarray, images: int, classes: int, where: object) -> None:
    if len(labels) != images:
        raise DataFormatError(f"{where}: {len(labels)} labels for {images} images; expected equal")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise DataFormatError(
            f"{where}: labels span {labels.min()}..{labels.max()}; expected 0..{classes - 1}"
        )


def _locate(
    folders: Sequence[str],
    files: Sequence[Sequence[str]],
    data_dir: DataDir,
    extra_roots: Sequence[str],
    what: str,
) -> list[Path]:
    """Every file of a dataset, all from the one folder that holds the first.

    ``files`` lists each file's accepted names (e.g. gzipped or not). Taking all files from one
    folder means a root holding a stray copy of one file cannot silently mix two datasets.
    """
    first = find_data(
        [f"{folder}/{name}" for folder in folders for name in files[0]],
        data_dir,
        extra_roots,
        what=what,
    )
    paths = [first]
    for names in files[1:]:
        found = [first.parent / name for name in names if (first.parent / name).exists()]
        if not found:
            expected = " or ".join(str(first.parent / name) for name in names)
            raise DataNotFoundError(f"{what} incomplete: found {first} but not {expected}")
        paths.append(found[0])
    return paths


def _load_mnist_like(name: str, data_dir: DataDir, extra_roots: Sequence[str] = ()) -> ImageDataset:
    """The four official IDX files (gzipped or not): 60k+10k images N×1×28×28."""
    stems = [
        f"{prefix}-{kind}"
        for prefix in ("train", "t10k")
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    ]
    paths = _locate([name], [[f"{s}.gz", s] for s in stems], data_dir, extra_roots, name)
    splits = []
    for images_path, labels_path in (paths[:2], paths[2:]):
        images = read_idx(images_path, IMAGES_MAGIC)
        labels = read_idx(labels_path, LABELS_MAGIC)
        _check_labels(labels, len(images), 10, labels_path)
        splits.append((images[:, None], labels))
    return from_arrays(name, splits[0], splits[1], classes=10, scale=255.0)


def _load_cifar10(data_dir: DataDir) -> ImageDataset:
    """The official python batches: 50k train (five batches) + 10k test, N×3×32×32."""
    folders = ["cifar10/cifar-10-batches-py", "cifar-10-batches-py"]
    batches = [*TRAIN_BATCHES, TEST_BATCH]
    parts = []
    for path in _locate(folders, [[b] for b in batches], data_dir, (), "cifar10"):
        images, labels = read_batch(path)
        _check_labels(labels, len(images), 10, path)
        parts.append((images, labels))
    train = (np.concatenate([p[0] for p in parts[:-1]]), np.concatenate([p[1] for p in parts[:-1]]))
    return from_arrays("cifar10", train, parts[-1], classes=10, scale=255.0)


#: Where CIFAR-100's official python layout is looked for under each data root.
CIFAR100_FOLDERS = ("cifar100/cifar-100-python", "cifar-100-python")
CIFAR100_CLASSES = 100


def _read_cifar100_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``train`` or ``test``: (images uint8 N×3×32×32, fine labels int64 N)."""
    data, labels = read_batch(path, "fine_labels", "CIFAR-100")
    _check_labels(labels, len(data), CIFAR100_CLASSES, path)
    return data, labels


def _read_cifar100_names(path: Path) -> tuple[str, ...]:
    """The 100 fine class names from ``meta``, in label order."""
    names = unpickle_dict(path, "CIFAR-100 meta").get("fine_label_names")
    if not isinstance(names, list | tuple) or len(names) != CIFAR100_CLASSES:
        count = len(names) if isinstance(names, list | tuple) else "no"
        raise DataFormatError(
            f"{path}: {count} fine_label_names; expected a list of {CIFAR100_CLASSES} names"
        )
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _load_cifar100(data_dir: DataDir) -> ImageDataset:
    """The official python layout (``train``, ``test``, ``meta``): 50k + 10k images, N×3×32×32,
    labelled with the 100 fine classes (the coarse superclasses are not used)."""
    paths = _locate(CIFAR100_FOLDERS, [["train"], ["test"], ["meta"]], data_dir, (), "cifar100")
    train = _read_cifar100_split(paths[0])
    test = _read_cifar100_split(paths[1])
    names = _read_cifar100_names(paths[2])
    return from_arrays(
        "cifar100", train, test, classes=CIFAR100_CLASSES, scale=255.0, class_names=names
    )


def _load_digits(data_dir: DataDir) -> ImageDataset:
    """scikit-learn's bundled 8×8 digits (no files to find), split 80/20 stratified, seeded."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None]
    labels = digits.target.astype(np.int64)
    tr_x, te_x, tr_y, te_y = train_test_split(
        images,
        labels,
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SPLIT_SEED,
        stratify=labels,
    )
    return from_arrays("digits", (tr_x, tr_y), (te_x, te_y), classes=10, scale=16.0)


_LOADERS: dict[str, Callable[[DataDir], ImageDataset]] = {
    "mnist": lambda d: _load_mnist_like("mnist", d),
    "fashion-mnist": lambda d: _load_mnist_like("fashion-mnist", d, [DEBIAN_DATASETS]),
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
    "digits": _load_digits,
}

#: Names accepted by `load_dataset` (besides ``folder:PATH``).
DATASETS: tuple[str, ...] = tuple(_LOADERS)

#: The prefix that names a user's image folder: ``folder:/path/to/root``.
FOLDER_PREFIX = "folder:"


def load_dataset(name: str, data_dir: DataDir = None) -> ImageDataset:
    """Load a dataset by name from ``data_dir`` or the NASFORGE_DATA roots (see `find_data`).

    ``data_dir`` is a root holding ``mnist/``, ``fashion-mnist/``, ``cifar10/`` ... folders.
    ``folder:PATH`` loads a user's own images from ``PATH/{train,test}/<class>/*.png|jpg``
    (see `nasforge.data.folder`); PATH is taken as given (relative to the working directory),
    not searched for under the data roots.
    """
    if name.startswith(FOLDER_PREFIX):
        from nasforge.data.folder import load_image_folder

        path = name[len(FOLDER_PREFIX) :]
        if not path.strip():
            raise ConfigError(f"dataset {name!r} names no folder; expected folder:PATH")
        return load_image_folder(path)
    if name not in _LOADERS:
        raise UnknownNameError("dataset", name, (*DATASETS, f"{FOLDER_PREFIX}PATH"))
    return _LOADERS[name](data_dir)


def _check_fraction(label: str, value: float, *, closed: bool) -> None:
    ok = 0.0 < value <= 1.0 if closed else 0.0 < value < 1.0
    if not ok:
        interval = "(0, 1]" if closed else "(0, 1)"
        raise ConfigError(f"{label} must be in {interval}, got {value!r}")


def split_train_val(
    n: int, val_fraction: float, seed: int, subset: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint ``(train_idx, val_idx)`` over ``n`` training images, each sorted.

    ``val_fraction`` of the images (at least one) validate. ``subset`` keeps a seeded fraction
    of the remaining train indices (low-fidelity training) and leaves validation whole, so
    objectives measured at different subsets stay comparable.
    """
    _check_fraction("val_fraction", val_fraction, closed=False)
    _check_fraction("subset", subset, closed=True)
    if n < 2:
        raise ConfigError(f"cannot split {n} images into train and validation; need at least 2")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = order[:n_val], order[n_val:]
    if subset < 1.0:
        keep = max(1, round(len(train_idx) * subset))
        train_idx = train_idx[:keep]  # a prefix of a random permutation is a random subset
    return np.sort(train_idx), np.sort(val_idx)
