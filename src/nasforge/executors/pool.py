"""A pool of long-lived local worker processes: trials run in parallel and in isolation.

Design choices, and why:

* **Long-lived workers.** Importing torch costs seconds; a process per trial (what some NAS tools
  do) pays that on every trial. Each worker here is started once, receives the estimator once
  (pickled once in the driver; the same bytes go to every worker, replacements included), and
  then loops: receive a job, ``run_job``, send the outcome back. Per-trial overhead is one
  small message each way (~0.2 ms, ``benchmarks/executor_overhead.py``). Workers import torch
  when the estimator needs it, once; a torch-free estimator starts its workers in ~0.3 s.
* **spawn (or forkserver), never fork.** Forking a driver whose torch/OpenMP thread pool has
  already run leaves the child with locks held by threads that do not exist there: it can
  deadlock on its first parallel op. spawn starts a clean interpreter.
* **Threads per worker.** Each worker limits OpenMP/MKL/OpenBLAS (environment variables, set
  before the estimator loads, so they hold even when torch is imported mid-trial) and torch
  (``set_num_threads``) to ``threads_per_worker`` threads, by default the CPUs divided among
  the workers. k workers then do not oversubscribe the machine: an OpenMP team whose threads
  share a core waits at every barrier for its descheduled members (on a busy 2-CPU machine,
  2 threads per trial ran a training step ~6x slower than 1).
* **One pipe per worker.** The driver always knows which worker holds which job, so a worker
  that dies fails exactly its own trial.
* **Limits enforced from outside.** A monitor thread in the driver checks busy workers every
  ``poll_interval`` seconds: a trial past ``trial_timeout``, or a worker whose resident memory
  passed ``memory_limit_mb``, is killed with SIGKILL (a hung trial cannot be interrupted from
  inside, a trial in native code ignores Python signals). The memory limit uses RSS, not
  ``RLIMIT_AS``: torch reserves far more virtual memory than it touches, so an address-space
  limit fails healthy trials. The peak is read from ``VmHWM`` in ``/proc/<pid>/status``, reset
  before each trial (``/proc/<pid>/clear_refs``), so a spike between two polls still counts;
  where that reset is not permitted the current RSS is polled instead. The limit covers the
  whole worker process (the interpreter and torch take ~100-300 MB of it), not its children.
* **A dead worker fails one trial, not the search.** Crash, time or memory limit: the trial
  becomes a failed ``Outcome`` saying why, a replacement worker starts (and gets the estimator),
  and the pool goes on. A Python exception in the estimator never kills the worker: ``run_job``
  turns it into a failed outcome. The memory limit kills trials still running only: a result
  that has arrived is kept even if the peak passed the limit (the worker is then replaced if
  it still holds more than the limit while idle).
* **A worker that cannot start costs a slot, not the search.** A new worker that dies before
  it is ready, fails to load the estimator or passes ``startup_timeout`` is tried again after a
  back-off (``retry_backoff`` seconds, doubling); after ``start_attempts`` failed starts in a
  row its slot is given up: ``slots`` shrinks, ``degraded`` says so (the experiment logs it
  and shows it in its progress line) and the search goes on with the others. Only when no slot
  is left does ``wait`` raise `WorkersUnavailable`, which the experiment records as
  ``interrupted``, so the run can be resumed. The one exception is an estimator that every
  first worker fails to load (a class that cannot be imported by module path): that is an
  input error, a ``ConfigError`` from ``start``, since retrying cannot fix it.
* **No orphans.** ``shutdown`` (also on ``__exit__``, on garbage collection and at interpreter
  exit) stops idle workers and kills busy ones; workers ignore Ctrl-C (the driver handles it)
  and exit by themselves when the driver process disappears. A stopping worker flushes its
  output and skips the interpreter's teardown, which takes seconds once torch is loaded.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
import weakref
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing import connection as mpc
from multiprocessing import util as mp_util
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from nasforge.core import Result
from nasforge.errors import ConfigError
from nasforge.estimators.base import Estimator
from nasforge.executors.base import (
    ExecutorBase,
    Job,
    Outcome,
    WorkersUnavailable,
    describe_exception,
    run_job,
    worker_label,
)

START_METHODS = ("forkserver", "spawn")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ORPHAN_EXIT_CODE = 75  # a worker whose driver went away exits with this
MAX_BACKOFF = 60.0  # seconds: the longest wait before another try to start a worker
_HOST = socket.gethostname()
_LOG = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _number(value: Any) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------------------------
# Worker side


class _ThreadLimit:
    """Caps torch's intra-op threads once torch is imported (by the estimator, maybe lazily)."""

    def __init__(self, threads: int):
        self.threads = threads
        self.applied = False

    def apply(self) -> None:
        torch = sys.modules.get("torch")
        if not self.applied and torch is not None and hasattr(torch, "set_num_threads"):
            torch.set_num_threads(self.threads)
            self.applied = True


def _watch_parent(parent: int) -> None:
    """Exit when the parent (the driver, or the forkserver) is gone, even in mid-trial."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(ORPHAN_EXIT_CODE)


def _encode(outcome: Outcome) -> tuple[Any, ...]:
    # Result holds read-only mappings, which do not pickle: send its JSON form.
    result = None if outcome.result is None else outcome.result.to_json()
    return (outcome.number, result, outcome.error, outcome.seconds, outcome.worker, outcome.fatal)


def _decode(data: tuple[Any, ...]) -> Outcome:
    number, result, error, seconds, worker, fatal = data
    return Outcome(
        number, None if result is None else Result.from_json(result), error, seconds, worker, fatal
    )


def _send(conn: Connection, message: tuple[Any, ...]) -> bool:
    try:
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:  # the driver is gone
        return False
    return True


def _flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(code)


def _worker_main(conn: Connection, threads: int) -> None:
    """The loop each worker process runs: load the estimator once, then job -> outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    for variable in THREAD_VARIABLES:  # before torch or numpy load their thread pools
        os.environ[variable] = str(threads)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    limit = _ThreadLimit(threads)
    try:
        payload = conn.recv_bytes()
    except (EOFError, OSError):  # the driver is gone
        return
    try:  # an OSError here is the estimator's (a data file it reads), not the pipe's
        estimator = pickle.loads(payload)
        del payload
        limit.apply()
    except BaseException as err:
        _send(conn, ("load-failed", describe_exception(err)))
        return
    if not _send(conn, ("ready",)):
        return
    label = worker_label()
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            job = pickle.loads(data)
        except Exception as err:
            _send(conn, ("job-failed", f"the job could not be read: {describe_exception(err)}"))
            continue
        if job is None:  # stop: skip the interpreter's teardown, which takes seconds with torch
            _flush_and_exit(0)
        if not _send(conn, ("started",)):  # from here on a death is this trial's failure
            return
        limit.apply()
        outcome = run_job(estimator, job, label)
        try:
            message = pickle.dumps(("outcome", _encode(outcome)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            reason = f"the result could not be sent back: {describe_exception(err)}"
            message = pickle.dumps(("job-failed", reason))
        try:
            conn.send_bytes(message)
        except OSError:
            return


# --------------------------------------------------------------------------------------------
# Driver side


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    pid: int
    spawned: float
    ready: bool = False
    job: Job | None = None
    job_data: bytes = b""
    acknowledged: bool = False  # the worker confirmed it began the current job
    started: float = 0.0  # monotonic time the current job was sent
    sender: threading.Thread | None = None  # writes the estimator into the pipe
    kill_reason: str | None = None  # set when the monitor killed it
    gone: bool = False  # its pipe reached end of file
    attempt: int = 0  # failed starts of its slot in a row before this one
    load_error: str | None = None  # why it could not load the estimator, if it said so

    def close(self) -> None:
        """Close the pipe once the payload writer is done with it (call after the process
        exited; a write to a dead process fails at once). Closing under a writer could let the
        descriptor number be reused and the rest of the payload land in another pipe."""
        if self.sender is not None:
            self.sender.join(timeout=5.0)
            if self.sender.is_alive():  # pragma: no cover - leak the descriptor, stay safe
                return
        self.conn.close()
        with suppress(ValueError):  # still running: keep its handle
            self.process.close()

    @property
    def label(self) -> str:
        return f"pid {self.pid}@{_HOST}"


def _memory_mb(pid: int, field: str) -> float | None:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of a process in MB, None if it has none."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")  # 5 = reset the peak RSS (VmHWM), nothing else
    except OSError:
        return False
    return True


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = {
            "SIGKILL": " (perhaps by the system for lack of memory)",
            "SIGSEGV": " (a crash in native code)",
        }.get(name, "")
        return f"was killed by {name}{hint}"
    if exitcode == ORPHAN_EXIT_CODE:
        return f"exited with code {exitcode} (its parent process disappeared)"
    return f"exited with code {exitcode}"


def _stop_processes(workers: list[_Worker], stop: threading.Event) -> None:
    """Last-resort cleanup (garbage collection, interpreter exit): kill every worker."""
    stop.set()
    for worker in workers:
        with _ignored_errors():
            worker.process.kill()
    for worker in workers:
        with _ignored_errors():
            worker.process.join(timeout=2.0)
            worker.close()
    workers.clear()


def _monitor(pool_ref: weakref.ref[ProcessPoolExecutor], stop: threading.Event, every: float):
    while not stop.wait(every):
        pool = pool_ref()
        if pool is None:
            return
        pool._check_limits()
        del pool


class ProcessPoolExecutor(ExecutorBase):
    """``workers`` local processes, each running one trial at a time (see the module docstring).

    ``trial_timeout`` (seconds) and ``memory_limit_mb`` (peak RSS of the worker process) turn a
    runaway trial into a failed outcome; ``threads_per_worker`` defaults to the available CPUs
    divided among the workers; ``start_method`` is ``"spawn"`` or ``"forkserver"``.
    ``poll_interval`` is how often limits are checked; ``startup_timeout`` how long a new worker
    may take to import its modules and load the estimator; ``start_attempts`` how many starts
    in a row a slot may fail (waiting ``retry_backoff`` seconds, doubling, between them) before
    the pool gives it up and goes on with fewer ``slots``.
    """

    name = "pool"

    def __init__(
        self,
        workers: int = 2,
        trial_timeout: float | None = None,
        memory_limit_mb: float | None = None,
        threads_per_worker: int | None = None,
        start_method: str = "spawn",
        *,
        poll_interval: float = 0.05,
        startup_timeout: float = 300.0,
        start_attempts: int = 4,
        retry_backoff: float = 1.0,
    ):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"pool workers must be a whole number >= 1, got {workers!r}")
        _check_positive("trial_timeout (seconds)", trial_timeout, optional=True)
        _check_positive("memory_limit_mb", memory_limit_mb, optional=True)
        _check_positive("poll_interval (seconds)", poll_interval)
        _check_positive("startup_timeout (seconds)", startup_timeout)
        _check_positive("retry_backoff (seconds)", retry_backoff)
        if (
            isinstance(start_attempts, bool)
            or not isinstance(start_attempts, int)
            or (start_attempts < 1)
        ):
            raise ConfigError(f"start_attempts must be a whole number >= 1, got {start_attempts!r}")
        if threads_per_worker is None:
            threads_per_worker = max(1, available_cpus() // workers)
        if (
            isinstance(threads_per_worker, bool)
            or not isinstance(threads_per_worker, int)
            or threads_per_worker < 1
        ):
            raise ConfigError(
                f"threads_per_worker must be a whole number >= 1, got {threads_per_worker!r}"
            )
        if start_method not in START_METHODS or start_method not in (
            multiprocessing.get_all_start_methods()
        ):
            accepted = [m for m in START_METHODS if m in multiprocessing.get_all_start_methods()]
            why = (
                " (forking a process that has used torch's thread pool can deadlock)"
                if start_method == "fork"
                else ""
            )
            raise ConfigError(
                f"unsupported start_method {start_method!r}{why}; accepted: {', '.join(accepted)}"
            )
        if memory_limit_mb is not None and not os.path.exists("/proc/self/status"):
            raise ConfigError("memory_limit_mb needs Linux (/proc/<pid>/status); leave it unset")
        self.workers = workers
        self.trial_timeout = None if trial_timeout is None else float(trial_timeout)
        self.memory_limit_mb = None if memory_limit_mb is None else float(memory_limit_mb)
        self.threads_per_worker = threads_per_worker
        self.start_method = start_method
        self.poll_interval = float(poll_interval)
        self.startup_timeout = float(startup_timeout)
        self.start_attempts = start_attempts
        self.retry_backoff = float(retry_backoff)
        #: workers started to replace ones that died or were killed
        self.replacements = 0
        #: slots given up because their workers kept failing to start
        self.lost_slots = 0
        #: None while every slot works; else one line saying how many are left and why
        self.degraded: str | None = None
        self._respawns: list[tuple[float, int]] = []  # (when, attempt) of slots to start again
        self._ever_ready = False
        self._first_load_failures = 0
        self._last_start_failure = ""
        self._context = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._pending: deque[tuple[Job, bytes]] = deque()
        self._ready: list[Outcome] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._payload: bytes | None = None
        self._state = "new"  # -> "starting" -> "running" -> "closed"
        self._peak_field = "VmRSS:"
        self._monitor: threading.Thread | None = None
        self._finalizer: mp_util.Finalize | None = None

    # ---------------------------------------------------------------------------- public API

    @property
    def slots(self) -> int:  # type: ignore[override]
        """Jobs run at once: the workers asked for, less the slots given up. Never reported
        below 1 (the driver would take 0 for "finished"): with none left, ``submit`` and
        ``wait`` raise `WorkersUnavailable` instead."""
        return max(1, self.workers - self.lost_slots)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (replacements included)."""
        with self._lock:
            return [w.pid for w in self._workers]

    def start(self, estimator: Estimator) -> None:
        """Pickle the estimator once, start the workers and wait until each has loaded it, or
        until one has and every other has failed at least once (those retry in the background).

        Raises `WorkersUnavailable` if no worker could start, ``ConfigError`` if every first
        worker failed to load the estimator (an input error: retrying cannot fix it)."""
        if self._state != "new":
            raise RuntimeError(f"ProcessPoolExecutor.start() called twice (state {self._state})")
        try:
            self._payload = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            label = getattr(estimator, "name", type(estimator).__name__)
            raise ConfigError(
                f"estimator {label!r} ({type(estimator).__qualname__}) cannot be sent to worker "
                f"processes because it cannot be pickled ({type(err).__name__}: {err}); "
                "make it picklable or use the inprocess executor"
            ) from None
        self._state = "starting"
        self._finalizer = mp_util.Finalize(
            self, _stop_processes, args=(self._workers, self._stop), exitpriority=10
        )
        try:
            with self._lock:
                self._workers.extend(self._spawn() for _ in range(self.workers))
            while True:
                with self._lock:
                    self._tend()
                    if self.lost_slots >= self.workers:
                        raise WorkersUnavailable(self._unavailable())
                    if self._started_enough():
                        break
                    handles, wake = self._handles(), self._next_wake()
                mpc.wait(handles, wake)
        except BaseException:
            self.shutdown()
            raise
        if self.memory_limit_mb is not None and all(_reset_peak(w.pid) for w in self._workers):
            self._peak_field = "VmHWM:"
        self._state = "running"
        every = self.poll_interval if (self.trial_timeout or self.memory_limit_mb) else 1.0
        self._monitor = threading.Thread(
            target=_monitor,
            args=(weakref.ref(self), self._stop, every),
            name="nasforge-pool-monitor",
            daemon=True,
        )
        self._monitor.start()

    def submit(self, job: Job) -> None:
        """Queue a job; it goes to the first idle worker. Never blocks."""
        if self._state != "running":
            raise RuntimeError(f"cannot submit to a pool that is {self._state}; call start()")
        try:
            data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            reason = f"the candidate could not be sent to a worker: {describe_exception(err)}"
            with self._lock:
                self._ready.append(Outcome(job.number, None, reason, 0.0, worker_label()))
            return
        with self._lock:
            if self.lost_slots >= self.workers:
                raise WorkersUnavailable(self._unavailable())
            self._pending.append((job, data))
            self._dispatch()

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Every outcome ready now, else block until one is (or ``timeout`` passes: ``[]``).
        Returns ``[]`` at once when no job is queued or running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._state == "running":
                    self._tend()
                    self._dispatch()
                if self._ready:  # finished trials first, even when no worker is left
                    outcomes, self._ready = sorted(self._ready, key=lambda o: o.number), []
                    return outcomes
                if self._state == "running" and self.lost_slots >= self.workers:
                    raise WorkersUnavailable(self._unavailable())
                if self._state != "running" or (
                    not self._pending and all(w.job is None for w in self._workers)
                ):
                    return []
                handles, wake = self._handles(), self._next_wake()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            mpc.wait(handles, _earliest(remaining, wake))

    def shutdown(self) -> None:
        """Stop idle workers cleanly, kill busy ones (their trials are abandoned)."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._stop.set()
        with self._lock:
            for worker in self._workers:
                if worker.ready and worker.job is None and not worker.gone:
                    with _ignored_errors():
                        worker.conn.send_bytes(pickle.dumps(None))  # "stop" to an idle worker
            deadline = time.monotonic() + 2.0
            for worker in self._workers:
                if worker.ready and worker.job is None:
                    worker.process.join(max(0.0, deadline - time.monotonic()))
            for worker in self._workers:
                if worker.process.exitcode is None:
                    worker.process.kill()
                    worker.process.join(5.0)
                worker.close()
            self._workers.clear()
            self._pending.clear()
            self._respawns.clear()
        if self._finalizer is not None:
            self._finalizer.cancel()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5.0)

    # ---------------------------------------------------------------------------- internals

    def _spawn(self, attempt: int = 0) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, self.threads_per_worker),
            name="nasforge-pool-worker",
        )
        process.start()
        child_end.close()
        worker = _Worker(
            process, parent_end, process.pid or 0, spawned=time.monotonic(), attempt=attempt
        )
        # The payload may be large (a dataset): a thread writes it while the driver goes on.
        worker.sender = threading.Thread(
            target=_send_payload, args=(parent_end, self._payload), daemon=True
        )
        worker.sender.start()
        return worker

    def _handles(self) -> list[Any]:
        handles: list[Any] = []
        for worker in self._workers:
            if not worker.gone:
                handles.append(worker.conn)
            handles.append(worker.process.sentinel)
        return handles

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._pending:
                return
            if not worker.ready or worker.job is not None or worker.gone or worker.kill_reason:
                continue
            if worker.process.exitcode is not None:
                continue  # died while idle: _poll replaces it, the job waits for the new one
            job, data = self._pending.popleft()
            if self._peak_field == "VmHWM:":
                _reset_peak(worker.pid)
            worker.job, worker.started = job, time.monotonic()
            worker.job_data, worker.acknowledged = data, False
            try:
                worker.conn.send_bytes(data)
            except OSError:  # it just died: the job goes to another worker
                worker.job, worker.gone = None, True
                self._pending.appendleft((job, data))

    def _tend(self) -> None:
        """Read messages, bury the dead, time out slow starters, start slots that are due."""
        self._poll()
        self._kill_slow_starters(time.monotonic())
        self._spawn_due()

    def _started_enough(self) -> bool:
        """``start`` may return: every slot has a ready worker, or one has and each other slot
        has failed at least once (those go on retrying while the search runs)."""
        ready = [w for w in self._workers if w.ready]
        if len(ready) == self.workers - self.lost_slots:
            return True
        return bool(ready) and all(w.attempt > 0 for w in self._workers if not w.ready)

    def _next_wake(self) -> float | None:
        """Seconds until a start-up deadline or a retry falls due (None: nothing scheduled)."""
        now = time.monotonic()
        times = [when for when, _ in self._respawns]
        times += [w.spawned + self.startup_timeout for w in self._workers if not w.ready]
        return max(0.0, min(times) - now) if times else None

    def _spawn_due(self) -> None:
        if self._state not in ("starting", "running"):
            return
        now = time.monotonic()
        due = [r for r in self._respawns if r[0] <= now]
        for entry in due:
            self._respawns.remove(entry)
            self._workers.append(self._spawn(attempt=entry[1]))

    def _kill_slow_starters(self, now: float) -> None:
        for worker in self._workers:
            if (
                not worker.ready
                and worker.kill_reason is None
                and not worker.gone
                and now - worker.spawned > self.startup_timeout
            ):
                self._kill(
                    worker,
                    f"did not load the estimator within {_number(self.startup_timeout)} s "
                    "(startup_timeout)",
                )

    def _start_failed(self, worker: _Worker, reason: str) -> None:
        """A worker died before it was ready: try its slot again later, or give the slot up."""
        self._workers.remove(worker)
        self._last_start_failure = reason
        if self._state == "starting" and worker.attempt == 0 and worker.load_error is not None:
            self._first_load_failures += 1
            if self._first_load_failures >= self.workers and not self._ever_ready:
                raise ConfigError(
                    f"a pool worker could not load the estimator: {worker.load_error} (classes "
                    "must be importable by module path in a fresh interpreter, not defined "
                    "interactively)"
                )
        attempt = worker.attempt + 1
        if attempt < self.start_attempts:
            delay = min(self.retry_backoff * 2.0 ** (attempt - 1), MAX_BACKOFF)
            self._respawns.append((time.monotonic() + delay, attempt))
            _LOG.info(
                "pool worker %s %s; trying again in %s s (start %d of %d)",
                worker.label,
                reason,
                _number(round(delay, 2)),
                attempt + 1,
                self.start_attempts,
            )
            return
        self.lost_slots += 1
        left = self.workers - self.lost_slots
        self.degraded = (
            f"on {left} of {self.workers} workers: {self.lost_slots} could not start "
            f"({self.start_attempts} tries each; last: {reason})"
        )
        _LOG.warning("pool: %s", self.degraded)

    def _unavailable(self) -> str:
        return (
            f"no pool worker could start after {self.start_attempts} tries per slot (last: "
            f"{self._last_start_failure}); the run stops as interrupted and can be resumed"
        )

    def _poll(self) -> None:
        """Read every message that has arrived; bury (and replace) workers that died."""
        for worker in list(self._workers):
            if not worker.gone:
                try:
                    while worker.conn.poll():
                        self._handle(worker, pickle.loads(worker.conn.recv_bytes()))
                except (EOFError, OSError):
                    worker.gone = True
            if worker.gone or worker.process.exitcode is not None:
                self._bury(worker)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._ever_ready = True
        elif kind == "started":
            worker.acknowledged = True
        elif kind == "load-failed":  # the worker exits next; _bury retries or gives up its slot
            worker.load_error = message[1]
        elif kind in ("outcome", "job-failed"):
            job = worker.job
            if job is None:
                raise RuntimeError(f"worker {worker.label} sent an outcome for no job")
            if kind == "job-failed":
                elapsed = time.monotonic() - worker.started
                outcome = Outcome(job.number, None, message[1], elapsed, worker.label)
            else:
                outcome = _decode(message[1])
            worker.job = None  # finished: whatever a limit says now, the result is kept
            self._ready.append(outcome)
            if self.memory_limit_mb is not None and worker.kill_reason is None:
                resident = _memory_mb(worker.pid, "VmRSS:")
                if resident is not None and resident > self.memory_limit_mb:
                    # idle but still over the limit (a leak?): the next trial would be blamed
                    self._kill(worker, f"held ~{resident:.0f} MB after its trial")

    def _bury(self, worker: _Worker) -> None:
        worker.gone = True
        worker.process.join(2.0)
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join(5.0)
        exit_reason = _describe_exit(worker.process.exitcode)
        worker.close()
        if not worker.ready:
            if worker.load_error is not None:
                why = f"could not load the estimator: {worker.load_error}"
            else:
                why = worker.kill_reason or f"exited before it was ready: it {exit_reason}"
            self._start_failed(worker, why)
            return
        index = self._workers.index(worker)
        if worker.job is not None and not (worker.acknowledged or worker.kill_reason):
            # it died before it began the job (killed while idle): the job was not tried
            self._pending.appendleft((worker.job, worker.job_data))
        elif worker.job is not None:
            reason = worker.kill_reason or f"the worker process {exit_reason} during the trial"
            elapsed = time.monotonic() - worker.started
            self._ready.append(Outcome(worker.job.number, None, reason, elapsed, worker.label))
        self._workers[index] = self._spawn()
        self.replacements += 1

    def _kill(self, worker: _Worker, reason: str) -> None:
        worker.kill_reason = reason
        worker.process.kill()

    def _over_memory(self, worker: _Worker) -> bool:
        peak = _memory_mb(worker.pid, self._peak_field)
        limit = self.memory_limit_mb
        if peak is None or limit is None or peak <= limit:
            return False
        self._kill(worker, f"exceeded the {_number(limit)} MB memory limit (peak ~{peak:.0f} MB)")
        return True

    def _check_limits(self) -> None:
        """Called by the monitor thread: kill workers past a limit (the driver reports them)."""
        with self._lock:
            if self._state != "running":
                return
            now = time.monotonic()
            self._kill_slow_starters(now)
            self._spawn_due()  # the driver may be busy elsewhere (the strategy, the store)
            for worker in self._workers:
                if worker.kill_reason is not None or worker.gone or worker.job is None:
                    continue
                # memory first: a trial past both limits is most likely slow because it swaps
                if self.memory_limit_mb is not None and self._over_memory(worker):
                    continue
                limit = self.trial_timeout
                if limit is not None and now - worker.started > limit:
                    self._kill(worker, f"exceeded the {_number(limit)} s trial time limit")


def _earliest(*timeouts: float | None) -> float | None:
    """The shortest of some timeouts, None meaning "no limit"."""
    finite = [t for t in timeouts if t is not None]
    return min(finite) if finite else None


def _send_payload(conn: Connection, payload: bytes | None) -> None:
    with suppress(OSError):  # the worker died before reading it; the driver notices the death
        conn.send_bytes(payload or b"")


def _ignored_errors() -> suppress:
    """Cleanup goes on past a worker that is already gone or closed."""
    return suppress(OSError, ValueError, AssertionError)


def _check_positive(what: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{what} must be a number > 0, got {value!r}")
