"""A real multi-node Ray cluster on this machine, for tests: ``ray start --head`` plus workers.

Each node gets its own temp dir and its own free ports (node manager, object manager, agents,
metrics), as Ray needs for two raylets on one host. Stopping kills only the processes of this
cluster: ``ray stop`` would kill every Ray process of the user on the machine, including other
test sessions' clusters. Every ``ray start`` runs in its own session, so its daemons share a
process group we can kill; worker processes (which the raylet puts in groups of their own) are
found by the ``RAY_RAYLET_PID`` in their environment. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY_CLI = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _zombie(pid: int) -> bool:
    stat = _read(f"/proc/{pid}/stat")
    return not stat or stat.rpartition(b")")[2].split()[:1] == [b"Z"]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


class LocalRayCluster:
    """``nodes`` Ray nodes with ``cpus`` CPUs each, all on 127.0.0.1 (Ray advertises the host's
    own IP for them). ``start()`` returns the address; ``stop()`` leaves no process behind.
    Drivers should run with ``env`` in their environment."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_mb: int = 100):
        self.nodes, self.cpus, self.object_store_mb = nodes, cpus, object_store_mb
        self.root = Path(tempfile.mkdtemp(prefix="nfray", dir="/tmp"))  # socket paths are short
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: list[int] = []  # one process group per `ray start`
        self.raylets: set[int] = set()  # remembered: their workers outlive them briefly
        self.startup_seconds = 0.0
        # Authentication is off, and said so explicitly: with RAY_AUTH_MODE unset, a head node
        # turns token authentication on whenever ~/.ray/auth_token exists (a local ray.init
        # writes one), while nodes joining it do not, and they are refused. A driver process
        # reads the mode when it imports ray, so a token cannot be switched on for it later.
        #: environment for every process that joins or uses this cluster (drivers included)
        self.env = {"RAY_AUTH_MODE": "disabled"}

    def _command(self, index: int) -> list[str]:
        temp = self.root / f"n{index}"
        temp.mkdir()
        command = [str(RAY_CLI), "start"]
        if index == 0:
            command += ["--head", "--port", str(self.port), "--include-dashboard", "false"]
        else:
            command += ["--address", self.address]
        for option in (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
        ):
            command += [option, str(free_port())]
        return [
            *command,
            "--node-ip-address", "127.0.0.1",
            "--num-cpus", str(self.cpus),
            "--object-store-memory", str(self.object_store_mb * 2**20),
            "--temp-dir", str(temp),
            "--min-worker-port", "0",
            "--max-worker-port", "0",
            "--disable-usage-stats",
        ]  # fmt: skip

    def start(self, timeout: float = 120) -> str:
        began = time.perf_counter()
        atexit.register(self.stop)
        env = {**os.environ, **self.env, "RAY_USAGE_STATS_ENABLED": "0"}
        try:
            for index in range(self.nodes):
                log = self.root / f"start-{index}.log"
                with open(log, "wb") as out:
                    proc = subprocess.Popen(
                        self._command(index),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                    self.groups.append(proc.pid)
                    code = proc.wait(timeout=timeout)
                if code != 0:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"`ray start` for node {index} failed ({code}):\n{tail}")
            self._wait_for_nodes(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self.address

    def _wait_for_nodes(self, timeout: float) -> None:
        """Connects as a driver: the caller's environment must hold ``self.env``."""
        import ray

        ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
        try:
            deadline = time.monotonic() + timeout
            while sum(node["Alive"] for node in ray.nodes()) < self.nodes:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fewer than {self.nodes} Ray nodes alive after {timeout}s")
                time.sleep(0.2)
        finally:
            ray.shutdown()

    def processes(self) -> list[int]:
        """Every live process of this cluster: the daemons in our process groups, and every
        process a raylet of ours started (workers run in process groups of their own)."""
        live = [pid for pid in _processes() if not _zombie(pid)]
        ours = [pid for pid in live if _pgid(pid) in self.groups]
        self.raylets.update(pid for pid in ours if _read(f"/proc/{pid}/comm").strip() == b"raylet")
        marks = [f"RAY_RAYLET_PID={pid}\0".encode() for pid in self.raylets]
        root = str(self.root).encode()
        for pid in live:
            if pid in ours:
                continue
            environ = _read(f"/proc/{pid}/environ")
            if any(mark in environ for mark in marks) or root in _read(f"/proc/{pid}/cmdline"):
                ours.append(pid)
        return ours

    def stop(self) -> None:
        """SIGKILL (what `ray stop --force` sends) to this cluster's processes only."""
        for _ in range(50):
            victims = self.processes()
            if not victims:
                break
            for group in self.groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGKILL)
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)
