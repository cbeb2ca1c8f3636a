"""A user's space file that fails to import is one line naming the file and the line, exit
status 2, no traceback (the README's promise for bad input)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BROKEN = {
    # file text, the line that fails (counted by hand in the text), what the line must name
    "syntax": (
        "from nasforge.spaces import Custom\n\nspace = Custom({'a': [1, 2]}\n",
        3,
        "SyntaxError",
    ),
    "import": ("import math\nimport no_such_module_of_a_user\n", 2, "ModuleNotFoundError"),
    "raises": ("x = 1\ny = 2\nraise RuntimeError('bad config')\n", 3, "RuntimeError: bad config"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_space_file_that_fails_to_import_is_one_line_with_file_and_line(
    kind: str, tmp_path: Path
) -> None:
    text, line, names = BROKEN[kind]
    path = tmp_path / f"{kind}_space.py"
    path.write_text(text)
    table = ROOT / "examples" / "tabular_benchmark.csv"
    args = ["search", "--space", f"{path}:space", "--table", str(table), "--budget", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args, "--store", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nasforge: error: ")
    assert f"{path}:{line}:" in lines[0] and names in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s.db").exists()  # nothing written
