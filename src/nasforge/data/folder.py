"""A user's own images as a dataset: ``ROOT/{train,test}/<class>/*.png|jpg|jpeg``.

The folder is decoded once, with Pillow, into one uint8 array per split and then normalised like
the built-in datasets, so an epoch never touches a file. Classes are the sub-folder names sorted
(label ``i`` is ``class_names[i]``). Nothing is guessed: every image must have the same square
size (nasforge never resizes silently; ``Train(resolution=...)`` does it explicitly), and the
test split must have the same class folders as the train split. If every image is grey the data
set has one channel; if any image is in colour, all are read as RGB (grey ones replicated into
three equal channels, alpha dropped), so one folder never mixes channel counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from nasforge.data.datasets import FOLDER_PREFIX, ImageDataset, from_arrays
from nasforge.errors import DataFormatError, DataNotFoundError

#: File name endings read as images (case-insensitive); other files are ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
LAYOUT = "ROOT/train/<class>/*.png|jpg|jpeg and ROOT/test/<class>/... (one folder per class)"

#: Modes read as one grey channel; the 16-bit and float modes are refused, not clipped.
_GREY_MODES = frozenset({"1", "L", "LA"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def load_image_folder(root: str | os.PathLike[str]) -> ImageDataset:
    """Read ``root/train`` and ``root/test`` into an `ImageDataset` named ``folder:<root>``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root} does not exist; expected {LAYOUT}")
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise DataNotFoundError(
            f"image folder {root} has no {' or '.join(f'{s}/' for s in missing)} folder; "
            f"expected {LAYOUT}"
        )
    classes = _class_names(root / "train")
    test_classes = _class_names(root / "test")
    if test_classes != classes:
        lacks = sorted(set(classes) - set(test_classes))
        extra = sorted(set(test_classes) - set(classes))
        diff = "; ".join(
            part
            for part in (
                f"test lacks {', '.join(lacks)}" if lacks else "",
                f"test has extra {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise DataFormatError(
            f"{root / 'test'}: class folders differ from {root / 'train'} ({diff}); "
            "expected the same class folders in both"
        )
    files = {s: _image_files(root / s, classes) for s in SPLITS}
    pixels = _decode([path for split in SPLITS for path, _ in files[split]])
    n_train = len(files["train"])
    train = (pixels[:n_train], np.array([label for _, label in files["train"]], np.int64))
    test = (pixels[n_train:], np.array([label for _, label in files["test"]], np.int64))
    return from_arrays(
        f"{FOLDER_PREFIX}{root.resolve()}",
        train,
        test,
        classes=len(classes),
        scale=255.0,
        class_names=classes,
    )


def _class_names(split_dir: Path) -> list[str]:
    """Sorted sub-folder names (hidden ones skipped); at least two are needed."""
    names = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataNotFoundError(f"no class folders in {split_dir}; expected {LAYOUT}")
    if len(names) < 2 and split_dir.name == "train":
        raise DataFormatError(
            f"{split_dir} has one class folder ({names[0]}); a classifier needs at least 2"
        )
    return names


def _image_files(split_dir: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """(path, label) of every image, class by class, files sorted by name."""
    found: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        folder = split_dir / name
        entries = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        images = sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            ignored = f"; {len(entries)} other file(s) ignored" if entries else ""
            raise DataFormatError(
                f"{folder}: no images (*{', *'.join(IMAGE_SUFFIXES)}){ignored}; "
                "every class folder needs at least one"
            )
        found.extend((path, label) for path in images)
    return found


def _decode(paths: list[Path]) -> np.ndarray:
    """All images as uint8 N×C×H×W: C=1 if every image is grey, else 3 (RGB)."""
    first_size: tuple[int, int] | None = None
    out: np.ndarray | None = None
    colour = False
    for i, path in enumerate(paths):
        image = _read(path)
        if first_size is None:
            first_size = image.size
            width, height = first_size
            if width != height:
                raise DataFormatError(
                    f"{path}: image is {width}×{height}; expected square images "
                    "(crop or pad them to one square size)"
                )
            # three planes for every image; sliced to one at the end if all are grey
            out = np.empty((len(paths), 3, height, width), np.uint8)
        elif image.size != first_size:
            raise DataFormatError(
                f"{path}: image is {image.size[0]}×{image.size[1]} but {paths[0]} is "
                f"{first_size[0]}×{first_size[1]}; every image must have the same size "
                "(nasforge does not resize silently)"
            )
        assert out is not None
        array = np.asarray(image)
        if array.ndim == 2:
            out[i] = array  # grey: broadcast into the three planes
        else:
            out[i] = array.transpose(2, 0, 1)
            colour = True
    assert out is not None
    return out if colour else np.ascontiguousarray(out[:, :1])


def _read(path: Path) -> Image.Image:
    """The decoded image in mode L (grey) or RGB; any failure names the file."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in _WIDE_MODES:
                raise DataFormatError(
                    f"{path}: {mode} image (16-bit or float); expected 8-bit grey or colour"
                )
            return image.convert("L" if mode in _GREY_MODES else "RGB")
    except DataFormatError:
        raise
    except MemoryError:
        raise
    except Exception as err:  # Pillow raises many types for a damaged file; all mean "bad file"
        raise DataFormatError(
            f"{path}: cannot read image ({type(err).__name__}: {err}); expected a PNG or JPEG file"
        ) from err
