"""Trials as Ray tasks: one search spread over the CPUs of a Ray cluster (or of this machine).

Design choices, and why:

* **Connect in the constructor.** A wrong ``--ray-address`` must fail before the experiment
  writes a run to its store, and within ``connect_timeout`` seconds. ``ray.init`` retries an
  unreachable or non-Ray address for minutes, so the address is probed first: a TCP connect,
  then an HTTP/2 preface that any gRPC server (Ray's GCS is one) answers with a SETTINGS frame.
* **The estimator is shipped once.** ``ray.put`` stores it in the object store; tasks receive
  the reference inside a list, so Ray does not resolve it per task, and each worker process
  deserialises it once and keeps it (the NB201 estimator pickles to 2 MB and takes ~0.1 s to
  load, a thousand times its lookup). An estimator that a worker cannot load (a class it cannot
  import) gives a *fatal* outcome: every trial would fail the same way.
* **One task per trial, no retries.** ``max_retries=0``: a trial that kills its worker
  (``os._exit``, out of memory) is a failed trial with Ray's reason, not a silent re-run.
* **Time limits from the driver.** A task past ``trial_timeout`` is cancelled with
  ``force=True``, which kills its worker process; a hung trial cannot stop itself. The clock
  starts at submission (the experiment keeps at most ``slots`` tasks out, so a task waits only
  for a worker process to start, a few seconds on a fresh job; more if ``slots`` exceeds the
  cluster's CPUs).
* **Threads.** Ray sets ``OMP_NUM_THREADS`` to a task's CPUs; the task also calls
  ``torch.set_num_threads`` so torch, already imported in a reused worker, follows it.
* **Only undo what we did.** ``shutdown`` cancels our tasks and calls ``ray.shutdown()`` only
  if this executor called ``ray.init`` (a local instance stops; a cluster is only disconnected).

This module is ``nasforge.executors.ray``; ``import ray`` inside it is an absolute import and
finds the real Ray package.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ConfigError
from nasforge.estimators.base import Estimator
from nasforge.executors.base import ExecutorBase, Job, Outcome, run_job

INSTALL_HINT = "the Ray executor needs `pip install nasforge[ray]`"
START_HINT = "start one with `ray start --head` or omit --ray-address"

#: HTTP/2 connection preface followed by an empty SETTINGS frame (RFC 9113, section 3.4).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_SETTINGS = 0x4

# Worker side ------------------------------------------------------------------------------

#: Estimators deserialised in this worker process, by object id (one experiment at a time).
_ESTIMATORS: dict[str, Estimator] = {}


def _estimator(box: list[Any]) -> Estimator:
    import ray

    ref = box[0]
    key = ref.hex()
    if key not in _ESTIMATORS:
        estimator = ray.get(ref)
        _ESTIMATORS.clear()  # a worker serves one driver; drop an earlier experiment's estimator
        _ESTIMATORS[key] = estimator
    return _ESTIMATORS[key]


def _run_trial(box: list[Any], job: Job, threads: int) -> Outcome:
    """The body of every Ray task: evaluate one job with the worker's cached estimator."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    label = f"ray:{ray.util.get_node_ip_address()} node {node[:8]} pid {os.getpid()}"
    try:
        estimator = _estimator(box)
    except Exception as err:  # every trial would fail the same way: stop the search
        reason = f"cannot load the estimator in a Ray worker: {describe_ray_error(err)}"
        return Outcome(job.number, None, reason, 0.0, label, fatal=True)
    torch = sys.modules.get("torch")  # imported by the estimator if it needs it
    if torch is not None:
        torch.set_num_threads(threads)
    return run_job(estimator, job, worker=label)


# Driver side ------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    if not hasattr(ray, "remote"):  # e.g. run from this folder: '' on sys.path finds ray.py
        raise ConfigError(
            f"`import ray` found {getattr(ray, '__file__', ray)}, not the Ray package; "
            "run from another folder"
        )
    return ray


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not host:port or 'auto'")
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout: float) -> None:
    """Raise ConfigError unless something that speaks gRPC listens at ``address``, within
    ``timeout`` seconds. Catches the mistakes ``ray.init`` would retry for minutes."""
    host, port = _split_address(address)
    deadline = time.monotonic() + timeout

    def fail(why: str) -> ConfigError:
        return ConfigError(f"cannot reach Ray cluster at {address} ({why}); {START_HINT}")

    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            if os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
                return  # a TLS cluster does not answer cleartext HTTP/2
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            conn.sendall(_H2_PREFACE)
            header = b""
            while len(header) < 9:
                chunk = conn.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
    except TimeoutError:
        raise fail(f"no answer within {timeout:g} s") from None
    except OSError as err:
        raise fail(err.strerror or type(err).__name__) from None
    if len(header) < 9 or header[3] != _H2_SETTINGS:
        raise fail("the port answers, but not as a Ray (gRPC) server")


def describe_ray_error(err: BaseException) -> str:
    """Ray's error as one line: its type and the first line of its message."""
    cause = getattr(err, "cause", None)  # RayTaskError wraps the exception the task raised
    if isinstance(cause, BaseException) and not isinstance(cause, type(err)):
        err = cause
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass
class _Pending:
    job: Job
    submitted: float


class RayExecutor(ExecutorBase):
    """Run trials as Ray tasks on a cluster (``address="host:port"`` or ``"auto"``) or on a
    Ray instance started here (``address=None``).

    ``slots`` defaults to the cluster's CPUs // ``cpus_per_trial`` (at least 1) when connecting;
    ``trial_timeout`` (seconds, counted from submission) fails and kills a trial that runs
    longer. If this process is already connected to Ray, that session is used (``address`` is
    ignored) and left running. The driver must run on a node of the cluster (Ray's rule for
    ``ray.init(address=...)``).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        slots: int | None = None,
        trial_timeout: float | None = None,
        cpus_per_trial: float = 1,
        connect_timeout: float = 30,
    ):
        if slots is not None and slots < 1:
            raise ConfigError(f"slots must be >= 1, got {slots}")
        if not cpus_per_trial > 0:
            raise ConfigError(f"cpus_per_trial must be > 0, got {cpus_per_trial}")
        if trial_timeout is not None and not trial_timeout > 0:
            raise ConfigError(f"trial_timeout must be > 0 seconds, got {trial_timeout}")
        if not connect_timeout > 0:
            raise ConfigError(f"connect_timeout must be > 0 seconds, got {connect_timeout}")
        self.ray = _import_ray()
        self.address = address
        self.trial_timeout = trial_timeout
        self.cpus_per_trial = cpus_per_trial
        self.pending: dict[Any, _Pending] = {}  # ObjectRef -> job
        self.owns_ray = False
        self._box: list[Any] | None = None
        self._task: Any = None
        self._connect(slots, connect_timeout)
        cpus = self.ray.cluster_resources().get("CPU", 0.0)
        self.slots = slots if slots is not None else max(1, int(cpus // cpus_per_trial))

    def _connect(self, slots: int | None, connect_timeout: float) -> None:
        ray = self.ray
        if ray.is_initialized():
            return  # the caller's Ray session: use it, leave it running
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "include_dashboard": False,
        }
        if self.address is None:
            # "local": a new instance even when RAY_ADDRESS or a running cluster is around
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            cpus = slots * self.cpus_per_trial if slots is not None else os.cpu_count() or 1
            kwargs.update(address="local", num_cpus=max(1, math.ceil(cpus)))
        else:
            resolved = self._resolve(self.address)
            if resolved != "auto":
                probe_address(resolved, connect_timeout)
            kwargs["address"] = self.address
            del kwargs["include_dashboard"]  # a setting of the cluster, not of a driver
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError, OSError) as err:
            with contextlib.suppress(Exception):
                ray.shutdown()  # whatever part of the connection was made
            if self.address is None:
                raise ConfigError(
                    f"cannot start a local Ray instance ({describe_ray_error(err)})"
                ) from None
            raise ConfigError(
                f"cannot reach Ray cluster at {self.address} ({describe_ray_error(err)}); "
                + START_HINT
            ) from None
        self.owns_ray = True

    def _resolve(self, address: str) -> str:
        """``auto`` -> host:port of the cluster Ray would pick (RAY_ADDRESS, then the latest
        cluster started on this machine)."""
        if address != "auto":
            return address
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # moved in another Ray version: let ray.init find it
            return address
        try:
            found = canonicalize_bootstrap_address("auto")
        except (ConnectionError, ValueError) as err:
            raise ConfigError(
                f"cannot find a Ray cluster for address 'auto' ({describe_ray_error(err)});"
                f" {START_HINT}"
            ) from None
        return found or address

    def start(self, estimator: Estimator) -> None:
        ray = self.ray
        self._box = [ray.put(estimator)]
        self._task = ray.remote(num_cpus=self.cpus_per_trial, max_retries=0)(_run_trial)

    def submit(self, job: Job) -> None:
        if self._task is None:
            raise RuntimeError("RayExecutor.start(estimator) was not called")
        threads = max(1, int(self.cpus_per_trial))
        ref = self._task.remote(self._box, job, threads)
        self.pending[ref] = _Pending(job, time.monotonic())

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Every outcome ready within ``timeout`` seconds (at least one, unless it passes)."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.pending:
            finished = self._collect(0)  # a trial done in time is never reported as late
            expired = self._expire(time.monotonic())
            if finished or expired:
                return finished + expired
            now = time.monotonic()
            step = self._until_next_deadline(now)
            if end is not None:
                step = min(step, max(0.0, end - now)) if step is not None else max(0.0, end - now)
            ready = self._collect(step)
            if ready or (end is not None and time.monotonic() >= end):
                return ready
        return []

    def _collect(self, timeout: float | None) -> list[Outcome]:
        ray = self.ray
        refs = list(self.pending)
        if not refs:
            return []
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if done:
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes = []
        for ref in done:
            entry = self.pending.pop(ref)
            try:
                outcomes.append(ray.get(ref))
            except Exception as err:  # the task died: worker crash, node lost, OOM kill
                seconds = time.monotonic() - entry.submitted
                outcomes.append(
                    Outcome(entry.job.number, None, describe_ray_error(err), seconds, "ray")
                )
        return outcomes

    def _until_next_deadline(self, now: float) -> float | None:
        if self.trial_timeout is None:
            return None
        first = min(entry.submitted for entry in self.pending.values())
        return max(0.0, first + self.trial_timeout - now)

    def _expire(self, now: float) -> list[Outcome]:
        if self.trial_timeout is None:
            return []
        late = [r for r, e in self.pending.items() if now - e.submitted >= self.trial_timeout]
        outcomes = []
        for ref in late:
            entry = self.pending.pop(ref)
            self._cancel(ref)
            reason = f"exceeded the {self.trial_timeout:g} s trial time limit"
            outcomes.append(Outcome(entry.job.number, None, reason, now - entry.submitted, "ray"))
        return outcomes

    def _cancel(self, ref: Any) -> None:
        # already finished, or its worker is gone: nothing left to stop
        with contextlib.suppress(Exception):
            self.ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        if not self.ray.is_initialized():  # already shut down, by us or by the caller
            self.pending.clear()
            self.owns_ray = False
            return
        for ref in list(self.pending):
            self._cancel(ref)
        self.pending.clear()
        self._box = None
        if self.owns_ray:
            self.ray.shutdown()
            self.owns_ray = False
