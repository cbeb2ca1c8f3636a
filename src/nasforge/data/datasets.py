"""Image-classification datasets decoded once into normalised in-memory tensors.

Training on a CPU is dominated by per-sample Python work if images stay as files or PIL
objects, so every loader decodes the whole set up front and an epoch only slices tensors.
The test set is kept apart and is only ever used for reporting: searches validate on a seeded
split of the training set (`split_train_val`).

A dataset that `load_dataset` made knows how it was made (`DataSource`: its name, the data
roots searched, and the derivations applied since, such as `resized`), and it pickles as that
description, a few hundred bytes, instead of its tensors: a worker process loads the files
again itself, once per process (`_reload` keeps what it loaded while anything uses it), and
checks the result against the driver's `ImageDataset.fingerprint`. A dataset built from arrays
in memory (`from_arrays`, a user's own data) has no description and pickles its tensors.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.data.cifar import TEST_BATCH, TRAIN_BATCHES, read_batch, unpickle_dict
from nasforge.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from nasforge.data.paths import data_roots, find_data
from nasforge.errors import ConfigError, DataFormatError, DataNotFoundError, UnknownNameError

#: One data root, or several searched in order (before NASFORGE_DATA), or None (only it).
DataDir = str | os.PathLike[str] | tuple[str | os.PathLike[str], ...] | None

#: Where Debian's ``dataset-fashion-mnist`` package installs the official files.
DEBIAN_DATASETS = "/usr/share/datasets"

#: Seed and fraction of the fixed train/test split of scikit-learn's digits (it has none).
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2

#: Images sampled from each split for `ImageDataset.fingerprint` (labels are hashed whole).
_FINGERPRINT_ROWS = 64


@dataclass(frozen=True)
class DataSource:
    """How to make a dataset again, identically, in another process.

    ``name`` is what `load_dataset` accepts (``folder:`` names carry an absolute path);
    ``roots`` are the data roots the driver searched, searched first again (a machine without
    them falls back to its own NASFORGE_DATA); ``steps`` are the derivations applied after
    loading, in order, as ``(step, value)`` pairs: ``("resolution", side)`` for `resized`,
    ``("test_images", n)`` for `first_test_images`.
    """

    name: str
    roots: tuple[str, ...] = ()
    steps: tuple[tuple[str, int], ...] = ()

    def then(self, step: str, value: int) -> DataSource:
        return replace(self, steps=(*self.steps, (step, int(value))))


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
    #: how to load it again (set by `load_dataset` and the derivations here); None for data
    #: built in memory. Not an argument, so `dataclasses.replace` drops it: a changed copy no
    #: longer matches its description and falls back to pickling its tensors.
    source: DataSource | None = field(default=None, init=False, repr=False, compare=False)

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

    def fingerprint(self) -> str:
        """A cheap digest (milliseconds, even for CIFAR-10) that tells two loads apart: the
        shapes, statistics and every label, and a fixed sample of images bit for bit."""
        digest = hashlib.blake2b(digest_size=16)
        meta = (self.name, self.classes, self.channels, self.size, self.mean, self.std)
        digest.update(repr((*meta, self.class_names, str(self.train_x.dtype))).encode())
        for x, y in ((self.train_x, self.train_y), (self.test_x, self.test_y)):
            digest.update(repr(tuple(x.shape)).encode())
            digest.update(y.contiguous().numpy().tobytes())
            if len(x):
                rows = torch.linspace(0, len(x) - 1, min(len(x), _FINGERPRINT_ROWS)).long()
                digest.update(x.index_select(0, rows).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def __reduce_ex__(self, protocol: Any) -> Any:
        """With a `source`, pickle the description (the receiver loads the files); without
        one, the tensors themselves."""
        if self.source is None:
            return super().__reduce_ex__(protocol)
        return (_reload, (self.source, self.fingerprint()))

    def __copy__(self) -> ImageDataset:
        clone = replace(self)
        clone.source = self.source
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> ImageDataset:
        """A real copy of the tensors (pickling's shortcut would share a reloaded dataset)."""
        values = {
            f.name: copy.deepcopy(getattr(self, f.name), memo) for f in fields(self) if f.init
        }
        clone = ImageDataset(**values)
        clone.source = self.source
        return clone


#: Datasets loaded again from a description in this process, kept while something uses them.
_RELOADED: weakref.WeakValueDictionary[tuple[DataSource, str], ImageDataset] = (
    weakref.WeakValueDictionary()
)


def _reload(source: DataSource, fingerprint: str) -> ImageDataset:
    """Unpickling a described dataset: load it (once per process), check it is the same."""
    key = (source, fingerprint)
    cached = _RELOADED.get(key)
    if cached is not None:
        return cached
    data = load_dataset(source.name, source.roots)
    for step, value in source.steps:
        if step not in _STEPS:
            raise DataFormatError(
                f"dataset {source.name!r}: unknown derivation {step!r}; accepted: "
                f"{', '.join(_STEPS)}"
            )
        data = _STEPS[step](data, value)
    if data.fingerprint() != fingerprint:
        roots = ", ".join(str(r) for r in data_roots(source.roots)) or "(no data roots)"
        raise DataFormatError(
            f"dataset {source.name!r} loaded again in process {os.getpid()} (roots: {roots}) "
            "differs from the one the driver loaded; expected the same files on every machine"
        )
    data.source = source
    _RELOADED[key] = data
    return data


def _derived(dataset: ImageDataset, result: ImageDataset, step: str, value: int) -> ImageDataset:
    result.source = None if dataset.source is None else dataset.source.then(step, value)
    return result


def resized(dataset: ImageDataset, side: int) -> ImageDataset:
    """The dataset at ``side``×``side`` pixels, resized once so every epoch is cheap
    (bilinear; antialiased when shrinking, so fine detail is averaged rather than aliased)."""
    if side == dataset.size:
        return dataset

    def resize(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(
            x, size=(side, side), mode="bilinear", align_corners=False, antialias=side < x.shape[-1]
        )

    result = replace(
        dataset, train_x=resize(dataset.train_x), test_x=resize(dataset.test_x), size=side
    )
    return _derived(dataset, result, "resolution", side)


def first_test_images(dataset: ImageDataset, count: int) -> ImageDataset:
    """The dataset with only its first ``count`` test images (cheaper report-only scoring)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"test image count must be a whole number >= 1, got {count!r}")
    count = min(count, len(dataset.test_x))
    result = replace(
        dataset, test_x=dataset.test_x[:count].clone(), test_y=dataset.test_y[:count].clone()
    )
    return _derived(dataset, result, "test_images", count)


_STEPS: dict[str, Callable[[ImageDataset, int], ImageDataset]] = {
    "resolution": resized,
    "test_images": first_test_images,
}


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
    mean, std = _channel_statistics(train[0], scale)
    # copy=True: float32 input would otherwise be shared, and normalised in the caller's array
    train_x = torch.from_numpy(train[0]).to(torch.float32, copy=True).div_(scale)
    test_x = torch.from_numpy(test[0]).to(torch.float32, copy=True).div_(scale)
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


def _channel_statistics(pixels: np.ndarray, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) standard deviation of ``pixels / scale``, float32.

    Computed exactly (integer sums of a byte histogram; float64 sums otherwise), not as a
    parallel float32 reduction, whose last bits depend on torch's thread count: a worker that
    loads the data again with one thread must normalise it to the very same bits."""
    means, stds = [], []
    for channel in range(pixels.shape[1]):
        plane = np.ascontiguousarray(pixels[:, channel]).ravel()
        n = plane.size
        if plane.dtype == np.uint8:  # counting is exact whatever the order (and fast)
            counts = torch.bincount(torch.from_numpy(plane), minlength=256).numpy()
            values = np.arange(256, dtype=np.int64)
            s1, s2 = int((counts * values).sum()), int((counts * values * values).sum())
            mean = s1 / n
            var = (n * s2 - s1 * s1) / (n * max(n - 1, 1))  # exact integers, one rounding
        else:
            wide = plane.astype(np.float64)
            mean = float(wide.sum()) / n
            var = float(((wide - mean) ** 2).sum()) / max(n - 1, 1)
        means.append(mean / scale)
        stds.append(math.sqrt(max(var, 0.0)) / scale)
    mean_t = torch.tensor(means, dtype=torch.float32)
    return mean_t, torch.tensor(stds, dtype=torch.float32).clamp_min(1e-6)


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
    not searched for under the data roots. The dataset records how it was loaded (`source`),
    so it pickles small.
    """
    if name.startswith(FOLDER_PREFIX):
        from nasforge.data.folder import load_image_folder

        path = name[len(FOLDER_PREFIX) :]
        if not path.strip():
            raise ConfigError(f"dataset {name!r} names no folder; expected folder:PATH")
        data = load_image_folder(path)
    elif name not in _LOADERS:
        raise UnknownNameError("dataset", name, (*DATASETS, f"{FOLDER_PREFIX}PATH"))
    else:
        data = _LOADERS[name](data_dir)
    data.source = DataSource(data.name, tuple(str(root) for root in data_roots(data_dir)))
    return data


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
