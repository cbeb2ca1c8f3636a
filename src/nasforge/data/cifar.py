"""A reader for CIFAR-10's official python layout (``cifar-10-batches-py``).

The batches are pickles. Unpickling can run arbitrary code, so the unpickler here only
resolves the few numpy globals an array needs: a doctored file fails with DataFormatError
instead of executing anything.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import DataFormatError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
PIXELS = 3 * 32 * 32

_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray"}
_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar"}


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves numpy's array-rebuilding globals and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def unpickle_dict(path: str | os.PathLike[str], what: str) -> dict[object, object]:
    """A pickled dict with bytes keys decoded; only numpy's array globals may be resolved."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            # encoding="bytes" is how the official (Python 2) pickles must be read.
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataFormatError(f"{path}: not a {what} pickle ({err})") from err
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: pickle holds {type(obj).__name__}; expected a dict")
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(
    path: str | os.PathLike[str], labels_key: str = "labels", what: str = "CIFAR-10 batch"
) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ``(images uint8 N×3×32×32, labels int64 N)``. CIFAR-100's ``train``
    and ``test`` files have the same layout with ``fine_labels`` (and ``coarse_labels``)."""
    batch = unpickle_dict(path, what)
    missing = [k for k in ("data", labels_key) if k not in batch]
    if missing:
        raise DataFormatError(
            f"{path}: batch dict lacks {', '.join(missing)}; expected keys data, {labels_key}"
        )
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[labels_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataFormatError(
            f"{path}: data is {data.dtype} {data.shape}; expected uint8 (N, {PIXELS})"
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{path}: {labels.shape} {labels_key} of type {labels.dtype} for {len(data)} "
            "images; expected one integer label per image"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)
