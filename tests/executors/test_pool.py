"""The local worker pool, with real processes: results, failures, limits, reuse, cleanup."""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nasforge.core import Candidate
from nasforge.errors import ConfigError
from nasforge.executors.base import Executor, Job, Outcome
from nasforge.executors.pool import ProcessPoolExecutor, available_cpus

from . import estimators_for_tests as helpers

TESTS_DIR = Path(__file__).resolve().parents[1]
LABEL = re.compile(r"^pid (\d+)@\S+$")


def run_all(pool: ProcessPoolExecutor, archs: list[str], limit: float = 60.0) -> list[Outcome]:
    """Submit one job per arch and collect every outcome, ordered by job number."""
    for number, arch in enumerate(archs):
        pool.submit(Job(number, Candidate(arch)))
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + limit
    while len(outcomes) < len(archs):
        assert time.monotonic() < deadline, f"only {len(outcomes)} of {len(archs)} outcomes"
        outcomes += pool.wait(timeout=1.0)
    return sorted(outcomes, key=lambda o: o.number)


def pid_of(outcome: Outcome) -> int:
    match = LABEL.match(outcome.worker)
    assert match, outcome.worker
    return int(match.group(1))


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "State:\tZ" not in status


def wait_gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_many_jobs_come_back_right_from_reused_workers(start_method):
    pickles_before = helpers.PICKLES
    with ProcessPoolExecutor(workers=2, start_method=start_method) as pool:
        assert isinstance(pool, Executor) and pool.name == "pool" and pool.slots == 2
        pool.start(helpers.Scripted())
        assert helpers.PICKLES - pickles_before == 1  # pickled once, not once per worker
        workers = set(pool.worker_pids)
        outcomes = run_all(pool, [f"ok:{i}" for i in range(40)])
        assert [o.number for o in outcomes] == list(range(40))
        assert all(o.error is None for o in outcomes)
        assert [o.result.objective for o in outcomes] == [2.0 * i for i in range(40)]
        pids = {pid_of(o) for o in outcomes}
        assert pids == workers and len(pids) == 2  # two processes did all 40 trials
        assert {o.result.metrics["pid"] for o in outcomes} == {float(p) for p in pids}
        assert {o.result.metrics["loads"] for o in outcomes} == {1.0}  # loaded once per worker
        assert pool.replacements == 0


@pytest.mark.parametrize(
    ("arch", "reason", "replaced"),
    [
        ("crash", r"^the worker process exited with code 3 during the trial$", True),
        ("hang", r"^exceeded the 1 s trial time limit$", True),
        ("hog:400", r"^exceeded the 200 MB memory limit \(peak ~\d+ MB\)$", True),
        ("raise", r"^ValueError: boom \(at estimators_for_tests\.py:\d+\)$", False),
    ],
)
def test_a_failing_trial_fails_alone_and_the_pool_goes_on(arch, reason, replaced):
    pickles_before = helpers.PICKLES
    with ProcessPoolExecutor(workers=1, trial_timeout=1, memory_limit_mb=200) as pool:
        pool.start(helpers.Scripted())
        first_pid = pool.worker_pids[0]
        ok1, bad, ok2, ok3 = run_all(pool, ["ok:1", arch, "ok:2", "ok:3"])
        assert bad.result is None and not bad.fatal
        assert re.match(reason, bad.error), bad.error
        assert pid_of(bad) == first_pid
        assert [o.result.objective for o in (ok1, ok2, ok3)] == [2.0, 4.0, 6.0]
        assert pool.replacements == int(replaced)
        assert (pid_of(ok2) != first_pid) == replaced
        assert pid_of(ok2) == pid_of(ok3) == pool.worker_pids[0]
        assert ok2.result.metrics["loads"] == 1.0  # a replacement gets the estimator too
        assert helpers.PICKLES - pickles_before == 1  # ... from the bytes pickled at start
    if arch == "hang":
        assert 1.0 <= bad.seconds < 5.0
    if replaced:
        assert not alive(first_pid)


def test_input_error_in_the_estimator_is_fatal_and_keeps_the_worker():
    with ProcessPoolExecutor(workers=1) as pool:
        pool.start(helpers.Scripted())
        bad, ok = run_all(pool, ["config", "ok:5"])
    assert bad.fatal and bad.error == "bad setting for this candidate"
    assert ok.result.objective == 10.0 and pid_of(ok) == pid_of(bad)


def _peak_reset_allowed() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def test_memory_spike_between_polls_still_counts():
    if not _peak_reset_allowed():
        pytest.skip("this system does not let a process reset its peak RSS")
    # The trial touches 400 MB, frees it at once and runs on for 3 s: the current RSS the
    # monitor sees every second is small again, only the peak (VmHWM) shows the spike.
    with ProcessPoolExecutor(workers=1, memory_limit_mb=200, poll_interval=1) as pool:
        pool.start(helpers.Scripted())
        small, spike, after = run_all(pool, ["spike:50:1.5", "spike:400:3", "ok:1"])
    assert small.error is None  # the peak is reset per trial: only this trial's counts
    assert re.match(r"exceeded the 200 MB memory limit \(peak ~(\d+) MB\)", spike.error)
    assert int(re.search(r"~(\d+)", spike.error).group(1)) > 400
    assert spike.seconds < 2.9  # killed while still running, not after it ended
    assert after.result.objective == 2.0


def test_a_result_that_arrives_over_the_memory_limit_is_kept():
    if not _peak_reset_allowed():
        pytest.skip("this system does not let a process reset its peak RSS")
    # The monitor never looks (60 s): the trials end with the peak past the limit. The limit
    # only kills trials still running, so both results are kept; the worker whose memory is
    # back under the limit stays, the one that still holds 400 MB is replaced while idle.
    with ProcessPoolExecutor(workers=1, memory_limit_mb=200, poll_interval=60) as pool:
        pool.start(helpers.Scripted())
        first = pool.worker_pids[0]
        spike, ok1, leak, ok2 = run_all(pool, ["spike:400", "ok:1", "leak:400", "ok:2"])
        assert pool.replacements == 1
    assert spike.error is None and spike.result is not None
    assert leak.error is None and leak.result is not None
    assert pid_of(spike) == pid_of(ok1) == pid_of(leak) == first
    assert ok2.result.objective == 4.0 and pid_of(ok2) != first
    assert not alive(first)


def test_wait_returns_empty_on_timeout_and_when_idle():
    with ProcessPoolExecutor(workers=1) as pool:
        pool.start(helpers.Scripted())
        started = time.monotonic()
        assert pool.wait(timeout=None) == []  # nothing submitted: no blocking
        pool.submit(Job(0, Candidate("sleep:1.5")))
        assert pool.wait(timeout=0.2) == []
        assert time.monotonic() - started < 1.2
        (outcome,) = pool.wait(timeout=10)
        assert outcome.number == 0 and outcome.result.objective == 2.0
        assert outcome.seconds >= 1.5


def test_more_jobs_than_workers_queue_in_the_driver():
    with ProcessPoolExecutor(workers=2) as pool:
        pool.start(helpers.Scripted())
        outcomes = run_all(pool, ["sleep:0.3"] * 6)
    assert all(o.error is None for o in outcomes)
    assert len({pid_of(o) for o in outcomes}) == 2


def test_shutdown_leaves_no_live_processes():
    pool = ProcessPoolExecutor(workers=2)
    pool.start(helpers.Scripted())
    pids = pool.worker_pids
    pool.submit(Job(0, Candidate("hang")))  # one busy worker, one idle
    time.sleep(0.2)
    started = time.monotonic()
    pool.shutdown()
    assert time.monotonic() - started < 5.0
    assert not [p for p in pids if alive(p)]
    assert not [c for c in multiprocessing.active_children() if c.pid in pids]
    pool.shutdown()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(Job(1, Candidate("ok:1")))


def test_a_pool_dropped_without_shutdown_kills_its_workers():
    pool = ProcessPoolExecutor(workers=1)
    pool.start(helpers.Scripted())
    pool.submit(Job(0, Candidate("hang")))
    pids = pool.worker_pids
    del pool
    gc.collect()
    assert wait_gone(pids) == []


DRIVER = """
import os, signal, sys, time
sys.path.insert(0, {tests!r})
from executors.estimators_for_tests import Scripted
from nasforge.core import Candidate
from nasforge.executors.base import Job
from nasforge.executors.pool import ProcessPoolExecutor

if __name__ == "__main__":
    pool = ProcessPoolExecutor(workers=2)
    pool.start(Scripted())
    pool.submit(Job(0, Candidate("hang")))
    time.sleep(0.3)
    print(" ".join(str(p) for p in pool.worker_pids), flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    # "exit": fall off the end without shutdown(), one trial still running
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_orphans_when_the_driver_exits_or_is_killed(tmp_path, how):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(tests=str(TESTS_DIR))))
    done = subprocess.run(
        [sys.executable, str(script), how], capture_output=True, text=True, timeout=60
    )
    expected = -signal.SIGKILL if how == "kill" else 0
    assert done.returncode == expected, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    assert wait_gone(pids, seconds=5.0) == []


def test_threads_per_worker_reach_torch():
    if available_cpus() < 2:
        pytest.skip("needs 2 CPUs: with one, torch's default is already 1 thread")
    assert ProcessPoolExecutor(workers=2).threads_per_worker == available_cpus() // 2
    # torch would take every CPU by default; the probe imports torch lazily, mid-trial, so the
    # first trial shows the environment variables work and the second that set_num_threads did.
    with ProcessPoolExecutor(workers=1, threads_per_worker=1) as pool:
        pool.start(helpers.ThreadsProbe())
        first, second = run_all(pool, ["a", "b"])
    assert first.error is None and first.result.objective == 1.0
    assert second.result.objective == 1.0 and pid_of(first) == pid_of(second)


def test_real_nb201_benchmark_gives_the_same_results_as_in_process(nb201_dir):
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
    from nasforge.spaces.nb201 import NB201Space

    space = NB201Space()
    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent, space=space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    with ProcessPoolExecutor(workers=2) as pool:
        pool.start(bench)
        for number, arch in enumerate(archs):
            pool.submit(Job(number, Candidate(arch)))
        outcomes: list[Outcome] = []
        while len(outcomes) < len(archs):
            outcomes += pool.wait(timeout=60)
    assert sorted(o.number for o in outcomes) == list(range(30))
    for outcome in outcomes:
        expected = bench.evaluate(Candidate(archs[outcome.number]))
        assert outcome.error is None
        assert outcome.result.objective == expected.objective
        assert dict(outcome.result.report) == dict(expected.report)
        assert dict(outcome.result.metrics) == dict(expected.metrics)
        assert outcome.result.fidelity == expected.fidelity
    assert len({o.worker for o in outcomes}) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers must be a whole number >= 1, got 0"),
        ({"workers": 1.5}, "workers must be a whole number >= 1"),
        ({"trial_timeout": 0}, r"trial_timeout \(seconds\) must be a number > 0, got 0"),
        ({"trial_timeout": float("inf")}, "trial_timeout"),
        ({"memory_limit_mb": -5}, "memory_limit_mb must be a number > 0, got -5"),
        ({"threads_per_worker": 0}, "threads_per_worker must be a whole number >= 1"),
        ({"start_method": "fork"}, "unsupported start_method 'fork' .*deadlock.*accepted: "),
        ({"poll_interval": 0}, "poll_interval"),
        ({"start_attempts": 0}, "start_attempts must be a whole number >= 1, got 0"),
        ({"start_attempts": 2.5}, "start_attempts must be a whole number >= 1"),
        ({"retry_backoff": -1}, r"retry_backoff \(seconds\) must be a number > 0, got -1"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ProcessPoolExecutor(**kwargs)


class _WithLambda:
    name = "lambda-holder"
    objective_name = "x"

    def __init__(self):
        self.transform = lambda x: x

    def evaluate(self, candidate):  # pragma: no cover - never runs
        raise AssertionError


def test_unpicklable_estimator_is_a_config_error_naming_it():
    pool = ProcessPoolExecutor(workers=1)
    with pytest.raises(ConfigError, match=r"estimator 'lambda-holder' \(_WithLambda\).*pickled"):
        pool.start(_WithLambda())
    assert pool.worker_pids == []


def test_estimator_that_cannot_load_in_a_worker_is_a_config_error():
    pool = ProcessPoolExecutor(workers=2)
    with pytest.raises(ConfigError, match="could not load the estimator: ImportError: cannot"):
        pool.start(helpers.Unloadable())
    assert pool.worker_pids == []
    assert not [c for c in multiprocessing.active_children() if c.name == "nasforge-pool-worker"]


def test_submit_before_start_is_refused():
    with pytest.raises(RuntimeError, match="call start"):
        ProcessPoolExecutor(workers=1).submit(Job(0, Candidate("ok:1")))


def test_worker_killed_while_idle_is_replaced_without_an_outcome():
    with ProcessPoolExecutor(workers=1) as pool:
        pool.start(helpers.Scripted())
        victim = pool.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_gone([victim]) == []
        (outcome,) = run_all(pool, ["ok:2"])
        assert outcome.result is not None, outcome.error
        assert outcome.result.objective == 4.0 and pid_of(outcome) != victim
        assert pool.replacements == 1
