"""Running the ``nasforge`` command line as a user would: a subprocess of this interpreter
(``python -m nasforge.cli``), its output captured, with a time limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def nasforge(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def assert_search_refused(tmp_path: Path, args: list[str], message: str) -> None:
    """``nasforge search`` on the NB201 table with ``args`` fails with exit status 2 and one
    line holding ``message``, before it writes a store."""
    done = nasforge(
        "search", "--estimator", "benchmark", "--budget", "5", "--store",
        str(tmp_path / "r.db"), *args,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.db").exists()
