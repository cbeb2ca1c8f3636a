"""kill -9 of the driver in the middle of a real-training search, then `nasforge resume`:
every trial ends up in the store exactly once, and what had finished is not run again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SEARCH = [
    "search", "--estimator", "train", "--search-only", "--dataset", "digits",
    "--strategy", "evolution", "--population", "4", "--budget", "10", "--epochs", "1",
    "--subset", "1", "--channels", "4", "--cells", "1",
    "--workers", "2", "--seed", "0",
]  # fmt: skip


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def stored(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT number, state, objective, finished FROM trials ORDER BY number"
        ).fetchall()


def processes_in_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume_loses_and_repeats_nothing(tmp_path):
    db = tmp_path / "runs.db"
    driver = subprocess.Popen(
        [sys.executable, "-m", "nasforge.cli", *SEARCH, "--store", str(db), "--name", "k"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if db.exists() and sum(r[1] == "complete" for r in stored(db)) >= 3:
            break
        if driver.poll() is not None:
            pytest.fail(f"search ended before it could be killed: {driver.stderr.read()}")
        time.sleep(0.2)
    else:
        pytest.fail("no trial finished within 300 s")
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = stored(db)
    finished = {r[0]: r for r in before if r[1] == "complete"}
    assert 3 <= len(finished) < 10

    # the orphaned workers notice and exit on their own
    deadline = time.monotonic() + 30
    while processes_in_group(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in_group(driver.pid) == []

    shown = cli("show", "k", "--store", str(db), "--json")
    assert json.loads(shown.stdout)["status"] == "interrupted"

    resumed = cli("resume", "k", "--store", str(db), "--json")
    assert resumed.returncode == 0, resumed.stderr
    after = stored(db)
    assert [r[0] for r in after] == list(range(10))
    assert all(r[1] == "complete" for r in after)
    for number, row in finished.items():
        assert after[number] == row  # same result, same finish time: not evaluated again
    assert json.loads(resumed.stdout)["trials"] == 10
    assert json.loads(cli("show", "k", "--store", str(db), "--json").stdout)["status"] == (
        "finished"
    )
