"""A stored run that names a user's space file records the file's SHA-256 at creation;
``resume``, ``train-final`` and ``export`` refuse the file once it has changed (one line, exit
2), and accept it again once restored."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from cli_run import nasforge  # tests/ is on sys.path (tests/conftest.py)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_a_changed_space_file_is_refused_by_every_command_that_rebuilds_the_run(
    tmp_path: Path,
) -> None:
    space_file = tmp_path / "custom_space.py"
    shutil.copy(EXAMPLES / "custom_space.py", space_file)
    original = space_file.read_bytes()
    search = ["search", "--space", "custom_space.py:space", "--dataset", "digits", "--subset"]
    search += ["1", "--epochs", "1", "--batch-size", "32", "--budget", "1", "--workers", "1"]
    done = nasforge(*search, "--search-only", "--store", "s.db", "--name", "mine", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = json.loads(nasforge("show", "mine", "--store", "s.db", "--json", cwd=tmp_path).stdout)
    recorded = json.dumps(shown)
    assert hashlib.sha256(original).hexdigest() in recorded  # the file's own digest

    space_file.write_bytes(original + b"\n# tuned later\n")
    for command in (
        ["resume", "mine", "--store", "s.db"],
        ["train-final", "mine", "--store", "s.db", "--top-k", "1", "--seeds", "1"],
        ["export", "mine", "--store", "s.db"],
    ):
        refused = nasforge(*command, cwd=tmp_path)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2, (command, refused.stderr[-2000:])
        assert lines[-1].startswith("nasforge: error: space file custom_space.py has changed")
        assert "Traceback" not in refused.stderr

    space_file.write_bytes(original)  # restored: the run is whole again
    again = nasforge("export", "mine", "--store", "s.db", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
