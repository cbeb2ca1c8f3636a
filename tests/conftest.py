"""Shared fixtures. Tests that need real data skip when it is absent, except in CI where
NASFORGE_REQUIRE_DATA=1 turns a missing dataset into a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasforge.data.paths import find_data
from nasforge.errors import DataNotFoundError

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def require_data(relative: str) -> Path:
    """Locate a data file for a test: skip if missing, fail if NASFORGE_REQUIRE_DATA=1."""
    extra = [DEFAULT_SHARED] if DEFAULT_SHARED.is_dir() else []
    try:
        return find_data(relative, extra_roots=extra)
    except DataNotFoundError as err:
        if os.environ.get("NASFORGE_REQUIRE_DATA") == "1":
            pytest.fail(f"NASFORGE_REQUIRE_DATA=1 but {err}")
        pytest.skip(str(err))


@pytest.fixture
def nb201_dir() -> Path:
    """The folder holding the NAS-Bench-201 tables."""
    return require_data("nb201/nb201_200ep_test.csv").parent


@pytest.fixture
def mnist_dir() -> Path:
    return require_data("mnist/train-images-idx3-ubyte.gz").parent
