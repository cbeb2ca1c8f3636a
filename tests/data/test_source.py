"""A loaded dataset pickles as its description and loads again identically, once per process;
data built in memory, or changed behind its description, pickles its tensors instead."""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_datasets import write_fake_mnist, write_idx

from nasforge.data.datasets import (
    DataSource,
    ImageDataset,
    first_test_images,
    from_arrays,
    load_dataset,
    resized,
)
from nasforge.errors import DataFormatError


def same_tensors(a: ImageDataset, b: ImageDataset) -> bool:
    pairs = [(a.train_x, b.train_x), (a.train_y, b.train_y), (a.test_x, b.test_x)]
    return all(torch.equal(x, y) for x, y in [*pairs, (a.test_y, b.test_y)])


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NASFORGE_DATA", raising=False)
    root = tmp_path / "root"
    write_fake_mnist(root, n=300)
    return root


def test_a_loaded_dataset_pickles_as_its_description(fake_root: Path) -> None:
    data = load_dataset("mnist", data_dir=fake_root)
    assert data.source == DataSource("mnist", (str(fake_root),))
    payload = pickle.dumps(data)
    assert len(payload) < 1_000 < data.train_x.numel()  # 300 images of 784 floats, not sent
    again = pickle.loads(payload)
    assert again is not data and same_tensors(again, data)
    assert (again.mean, again.std, again.source) == (data.mean, data.std, data.source)
    assert pickle.loads(payload) is again  # loaded once per process while it is in use
    del again
    gc.collect()
    assert same_tensors(pickle.loads(payload), data)  # and loaded again once it was not


def test_derivations_travel_with_the_description(fake_root: Path) -> None:
    data = first_test_images(resized(load_dataset("mnist", data_dir=fake_root), 14), 7)
    assert data.source.steps == (("resolution", 14), ("test_images", 7))
    assert data.train_x.shape == (300, 1, 14, 14) and data.test_x.shape == (7, 1, 14, 14)
    again = pickle.loads(pickle.dumps(data))
    assert same_tensors(again, data)
    assert resized(data, 14) is data  # a no-op is no step


def test_a_copy_changed_by_hand_pickles_its_tensors(fake_root: Path) -> None:
    data = load_dataset("mnist", data_dir=fake_root)
    changed = dataclasses.replace(data, train_x=data.train_x * 2)
    assert changed.source is None  # it no longer matches the description
    again = pickle.loads(pickle.dumps(changed))
    assert torch.equal(again.train_x, data.train_x * 2)


def test_data_built_in_memory_pickles_its_arrays() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    labels = np.arange(20) % 2
    data = from_arrays("mine", (pixels, labels), (pixels[:5], labels[:5]), classes=2, scale=255)
    assert data.source is None
    payload = pickle.dumps(data)
    assert len(payload) > data.train_x.numel() * 4  # the float32 pixels themselves
    assert same_tensors(pickle.loads(payload), data)


def test_files_that_changed_since_the_driver_loaded_them_are_refused(fake_root: Path) -> None:
    payload = pickle.dumps(load_dataset("mnist", data_dir=fake_root))
    other = np.random.default_rng(1).integers(0, 256, (300, 28, 28))  # same shape, new pixels
    write_idx(fake_root / "mnist" / "train-images-idx3-ubyte.gz", other)
    with pytest.raises(DataFormatError, match=r"dataset 'mnist' loaded again .* differs"):
        pickle.loads(payload)


def test_a_machine_without_the_driver_roots_uses_its_own(
    fake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load_dataset("mnist", data_dir=fake_root)
    payload = pickle.dumps(data)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(fake_root, elsewhere)  # the same files, under another root on this "machine"
    monkeypatch.setenv("NASFORGE_DATA", str(elsewhere))
    assert same_tensors(pickle.loads(payload), data)


def test_deepcopy_copies_the_tensors(fake_root: Path) -> None:
    data = load_dataset("mnist", data_dir=fake_root)
    clone = copy.deepcopy(data)
    assert same_tensors(clone, data) and clone.source == data.source
    clone.train_x.zero_()
    assert data.train_x.abs().sum() > 0


def test_statistics_do_not_depend_on_the_thread_count(fake_root: Path) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = load_dataset("mnist", data_dir=fake_root)
        torch.set_num_threads(1)
        one = load_dataset("mnist", data_dir=fake_root)
    finally:
        torch.set_num_threads(before)
    assert one.fingerprint() == two.fingerprint() and same_tensors(one, two)
    # the statistics of the written bytes, worked out here in float64 and rounded once
    pixels = np.random.default_rng(0).integers(0, 256, (300, 28, 28)) / 255.0  # as written
    assert two.mean == (float(np.float32(pixels.mean())),)
    assert two.std == (float(np.float32(pixels.std(ddof=1))),)
