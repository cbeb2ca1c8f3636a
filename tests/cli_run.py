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
