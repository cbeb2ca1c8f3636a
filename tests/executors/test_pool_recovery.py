"""Workers that cannot start: the pool retries them, goes on with fewer slots, and only when no
worker can start at all does the run stop, as interrupted, to be resumed. Real processes; the
start-up failures are real too (the estimator fails to load in a worker after N loads)."""

from __future__ import annotations

import multiprocessing
import re
import time
from pathlib import Path

import pytest

from nasforge.core import Candidate
from nasforge.errors import ConfigError
from nasforge.executors.base import Job, WorkersUnavailable
from nasforge.executors.pool import ProcessPoolExecutor
from nasforge.experiment import Experiment
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store
from nasforge.strategies.random import RandomSearch

from . import estimators_for_tests as helpers
from .test_pool import alive, pid_of, run_all

FAST_RETRY = {"retry_backoff": 0.05, "start_attempts": 3}
SPACE = NB201Space()


def live_workers() -> list[multiprocessing.process.BaseProcess]:
    return [c for c in multiprocessing.active_children() if c.name == "nasforge-pool-worker"]


def settle(pool: ProcessPoolExecutor, lost: int, seconds: float = 60.0) -> None:
    """Let the pool tend its retries (``wait`` does) until ``lost`` slots are given up."""
    deadline = time.monotonic() + seconds
    while pool.lost_slots < lost:
        assert time.monotonic() < deadline, f"{pool.lost_slots} slots lost, expected {lost}"
        pool.wait(timeout=0.2)
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        (
            "raise",
            r"could not load the estimator: OSError: no space left to load the estimator "
            r"\(at estimators_for_tests\.py:\d+\)",
        ),
        ("exit", r"exited before it was ready: it exited with code 4"),
        ("hang", r"did not load the estimator within 6 s \(startup_timeout\)"),
    ],
)
def test_replacements_that_cannot_start_cost_a_slot_not_the_search(tmp_path, how, reason):
    counter = tmp_path / "loads"
    estimator = helpers.FailsToStart(counter, good_loads=2, how=how)
    with ProcessPoolExecutor(workers=2, startup_timeout=6, **FAST_RETRY) as pool:
        pool.start(estimator)  # both first workers load (loads 1 and 2)
        assert pool.slots == 2 and pool.degraded is None
        archs = ["ok:1", "crash", *[f"ok:{i}" for i in range(2, 10)]]
        outcomes = run_all(pool, archs, limit=120)
        settle(pool, lost=1)
        assert pool.slots == 1 and pool.lost_slots == 1
        assert re.fullmatch(
            rf"on 1 of 2 workers: 1 could not start \(3 tries each; last: {reason}\)",
            pool.degraded,
        ), pool.degraded
        more = run_all(pool, ["ok:20", "ok:21"])  # the pool goes on with the worker left
        survivor = pool.worker_pids
    assert [o.number for o in outcomes] == list(range(10))
    crashed = outcomes[1]
    assert crashed.result is None and "exited with code 3" in crashed.error
    objectives = [o.result.objective for o in outcomes if o.number != 1]
    assert objectives == [2.0 * i for i in range(1, 10)]
    assert [o.result.objective for o in more] == [40.0, 42.0]
    assert len(survivor) == 1 and {pid_of(o) for o in more} == set(survivor)
    # two good loads, then the crashed worker's slot tried three times
    assert helpers.loads_counted(counter) == 2 + 3


def test_a_replacement_that_fails_once_is_retried_and_the_slot_kept(tmp_path):
    counter = tmp_path / "loads"
    # loads 1, 2: the first workers; 3: the crashed worker's replacement dies; 4: its retry
    estimator = helpers.FailsToStart(counter, good_loads=2, how="exit", bad_loads=1)
    with ProcessPoolExecutor(workers=2, **FAST_RETRY) as pool:
        pool.start(estimator)
        crashed, *rest = run_all(pool, ["crash", "sleep:0.5", "sleep:0.5", "sleep:0.5"])
        deadline = time.monotonic() + 60
        while len(pool.worker_pids) < 2 or helpers.loads_counted(counter) < 4:
            assert time.monotonic() < deadline, "the slot was not started again"
            pool.wait(timeout=0.2)
        pids: set[int] = set()
        while len(pids) < 2:  # both slots run trials again (once the retry is ready)
            assert time.monotonic() < deadline, f"trials ran on {pids} only"
            busy = run_all(pool, ["sleep:0.5", "sleep:0.5"])
            assert all(o.error is None for o in busy)
            pids |= {pid_of(o) for o in busy}
        assert pool.slots == 2 and pool.lost_slots == 0 and pool.degraded is None
    assert crashed.result is None and all(o.error is None for o in rest)
    assert helpers.loads_counted(counter) == 4


def test_no_worker_can_start_at_all_raises_workers_unavailable_and_leaves_nothing(tmp_path):
    counter = tmp_path / "loads"
    pool = ProcessPoolExecutor(workers=2, **FAST_RETRY)
    with pytest.raises(WorkersUnavailable, match=r"no pool worker could start after 3 tries"):
        pool.start(helpers.FailsToStart(counter, good_loads=0, how="exit"))
    assert helpers.loads_counted(counter) == 2 * 3  # every slot was tried three times
    assert pool.worker_pids == [] and not live_workers()


def test_an_estimator_no_first_worker_can_load_is_still_an_input_error(tmp_path):
    counter = tmp_path / "loads"
    pool = ProcessPoolExecutor(workers=2, retry_backoff=60)  # no retry before both have failed
    with pytest.raises(ConfigError, match="could not load the estimator: OSError: no space"):
        pool.start(helpers.FailsToStart(counter, good_loads=0, how="raise"))
    assert helpers.loads_counted(counter) == 2  # not retried: retrying cannot fix it
    assert not live_workers()


def test_results_are_delivered_before_the_pool_reports_no_workers(tmp_path):
    counter = tmp_path / "loads"
    with ProcessPoolExecutor(workers=1, **FAST_RETRY) as pool:
        pool.start(helpers.FailsToStart(counter, good_loads=1, how="exit"))
        first_pid = pool.worker_pids[0]
        for number, arch in enumerate(["ok:1", "crash", "ok:2"]):
            pool.submit(Job(number, Candidate(arch)))
        outcomes = []
        deadline = time.monotonic() + 60
        with pytest.raises(WorkersUnavailable, match="exited with code 4"):
            while time.monotonic() < deadline:
                outcomes += pool.wait(timeout=1.0)
        assert [o.number for o in outcomes] == [0, 1]  # job 2 never ran: nothing to run it
        assert outcomes[0].result.objective == 2.0 and outcomes[1].result is None
        with pytest.raises(WorkersUnavailable):
            pool.submit(Job(3, Candidate("ok:3")))
    assert not alive(first_pid) and not live_workers()


# -- through the experiment and the store ----------------------------------------------------


def stored_trials(db: Path, name: str):
    store = Store(db)
    return store.get_run(name), store.trials(store.get_run(name))


def test_a_search_whose_replacement_cannot_start_finishes_on_fewer_slots(tmp_path, capsys):
    counter, crash = tmp_path / "loads", tmp_path / "crash"
    crash.write_text("")
    # Trials wait until the crashed worker's slot has failed all 3 starts (loads 3-5), so the
    # rest of the search runs on the one worker left and the progress line says so.
    estimator = helpers.ArchTrials(counter, 2, how="exit", wait_loads=5, crash=crash, pause=0.2)
    pool = ProcessPoolExecutor(workers=2, **FAST_RETRY)
    db = tmp_path / "runs.db"
    run = Experiment(
        SPACE, RandomSearch(SPACE, seed=0), estimator, 8, executor=pool,
        store=db, name="fewer", log_dir=tmp_path,
    )  # fmt: skip
    history = run.run()
    assert pool.slots == 1 and pool.lost_slots == 1
    assert [t.number for t in history.trials] == list(range(8))
    assert len(history.failed) == 1 and "exited with code 3" in history.failed[0].error
    record, trials = stored_trials(db, "fewer")
    assert record.status == "finished"
    assert [t.number for t in trials] == list(range(8))
    assert sorted(t.state for t in trials) == ["complete"] * 7 + ["failed"]
    log = (tmp_path / "fewer.log").read_text()
    assert re.search(r"WARNING executor pool: on 1 of 2 workers: 1 could not start", log), log
    assert "on 1 of 2 workers" in capsys.readouterr().err.splitlines()[-1]


def test_a_search_with_no_worker_left_stops_interrupted_and_resumes(tmp_path):
    counter, crash = tmp_path / "loads", tmp_path / "crash"
    crash.write_text("")
    db = tmp_path / "runs.db"

    def experiment(estimator, resume: bool) -> Experiment:
        pool = ProcessPoolExecutor(workers=1, **FAST_RETRY)
        return Experiment(
            SPACE, RandomSearch(SPACE, seed=1), estimator, 6, executor=pool, store=db,
            name="lost", resume=resume, progress=False,
        )  # fmt: skip

    # one worker loads; its first trial kills it and no replacement can start
    with pytest.raises(WorkersUnavailable):
        experiment(helpers.ArchTrials(counter, 1, how="exit", crash=crash), False).run()
    record, trials = stored_trials(db, "lost")
    assert record.status == "interrupted"
    assert [(t.number, t.state) for t in trials] == [(0, "failed"), (1, "running")]
    assert not live_workers()
    # workers can start again: the run continues where it stopped, nothing evaluated twice
    history = experiment(helpers.ArchTrials(counter, 1000), True).run()
    record, trials = stored_trials(db, "lost")
    assert record.status == "finished"
    assert [t.number for t in trials] == list(range(6))
    assert [t.state for t in trials] == ["failed"] + ["complete"] * 5
    assert [t.number for t in history.trials] == list(range(6))
    expected = [float(sum(map(ord, str(SPACE.from_string(t.arch)))) % 97) for t in trials[1:]]
    assert [t.result.objective for t in trials[1:]] == expected
