"""Shared fixtures. Tests that need real data skip when it is absent, except in CI where
NASFORGE_REQUIRE_DATA=1 turns a missing dataset into a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a test module (``pytestmark = pytest.mark.usefixtures(...)``):
    the small networks of the tests lose time to thread hand-offs, and CI shares 2 cores.
    Module scope, so module fixtures that train (a stored search) run under it too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def nb201_dir() -> Path:
    """The folder holding the NAS-Bench-201 tables."""
    return require_data("nb201/nb201_200ep_test.csv").parent


@pytest.fixture
def mnist_dir() -> Path:
    return require_data("mnist/train-images-idx3-ubyte.gz").parent


@pytest.fixture(scope="session")
def pg_server():
    """A throw-away PostgreSQL server on loopback for the session (tests/postgres_server.py):
    skip without the server binaries, fail instead under NASFORGE_REQUIRE_SERVICES=1."""
    from postgres_server import PostgresServer, ServerUnavailable

    try:
        server = PostgresServer(settings=["fsync=off", "synchronous_commit=off"])
        server.start()
    except ServerUnavailable as err:
        if os.environ.get("NASFORGE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"NASFORGE_REQUIRE_SERVICES=1 but PostgreSQL is unavailable: {err}")
        pytest.skip(f"PostgreSQL unavailable: {err}")
    try:
        yield server
    finally:
        server.stop()
