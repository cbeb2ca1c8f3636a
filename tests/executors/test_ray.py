"""The Ray executor on a real two-node Ray cluster started on this machine (one per session).

Skipped when Ray is not installed, except when NASFORGE_REQUIRE_SERVICES=1 (CI), where a missing
Ray is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.executors.base import Executor, Job, Outcome
from nasforge.spaces.nb201 import NB201Space
from ray_cluster import LocalRayCluster  # tests/ is on sys.path (tests/conftest.py)


def require_ray():
    try:
        import ray
    except ImportError:
        if os.environ.get("NASFORGE_REQUIRE_SERVICES") == "1":
            pytest.fail("NASFORGE_REQUIRE_SERVICES=1 but the `ray` package is not installed")
        pytest.skip("the `ray` package is not installed (pip install nasforge[ray])")
    return ray


@pytest.fixture(scope="session")
def cluster():
    """Address of a real Ray cluster: a head and a worker node with 1 CPU each, on loopback."""
    ray = require_ray()
    # test-only estimators travel by value: the workers cannot import this test module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    nodes = LocalRayCluster(nodes=2, cpus=1)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in nodes.env.items():  # this driver uses the cluster's settings
            patch.setenv(key, value)
        address = nodes.start()
        print(f"\nRay cluster of 2 nodes up in {nodes.startup_seconds:.1f} s")
        try:
            yield address
        finally:
            if ray.is_initialized():
                ray.shutdown()
            nodes.stop()
    assert nodes.processes() == [], "Ray processes left behind"


class Script:
    """A test estimator whose ``arch`` is a script: ``"ok:N"`` -> objective N; ``"crash"``
    exits the worker; ``"sleep:S"`` sleeps S seconds (writing its pid first); ``"threads"``
    reports torch's thread count. Every unpickling appends a line to ``loads``."""

    name = "script"
    objective_name = "value"

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        with open(os.path.join(self.folder, "loads"), "a") as log:
            log.write(f"{os.getpid()}\n")

    def evaluate(self, candidate: Candidate) -> Result:
        command, _, argument = str(candidate.arch).partition(":")
        if command == "crash":
            os._exit(3)
        if command == "sleep":
            Path(self.folder, "sleeper.pid").write_text(str(os.getpid()))
            time.sleep(float(argument))
        if command == "threads":
            import torch

            return Result(float(torch.get_num_threads()))
        return Result(float(argument or 0), metrics={"pid": float(os.getpid())})


class Unloadable:
    """Pickles in the driver, fails to load in a worker (a class the workers cannot import)."""

    name = "unloadable"
    objective_name = "none"

    def __init__(self) -> None:
        self.state = "some"  # pickle calls __setstate__ only for a non-empty state

    def __setstate__(self, state: dict) -> None:
        raise ImportError("no module named 'only_on_the_driver'")

    def evaluate(self, candidate: Candidate) -> Result:  # pragma: no cover - never loaded
        return Result(0.0)


def drain(executor, count: int, limit: float = 60) -> list[Outcome]:
    """Wait for ``count`` outcomes; fail if they take longer than ``limit`` seconds."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + limit
    while len(outcomes) < count:
        assert time.monotonic() < deadline, f"only {len(outcomes)} of {count} outcomes"
        outcomes += executor.wait(timeout=1.0)
    return outcomes


def node_of(outcome: Outcome) -> str:
    return outcome.worker.split(" node ")[1].split()[0]


@pytest.mark.slow
def test_nb201_trials_run_on_both_nodes(cluster, nb201_dir):
    from nasforge.executors.ray import RayExecutor

    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)
    space, rng = NB201Space(), np.random.default_rng(0)
    jobs = [Job(n, Candidate(space.sample(rng))) for n in range(12)]
    with RayExecutor(address=cluster) as executor:
        assert isinstance(executor, Executor)
        assert executor.name == "ray" and executor.slots == 2  # 2 nodes x 1 CPU
        executor.start(bench)
        began = time.perf_counter()
        for job in jobs:
            executor.submit(job)  # more than slots: Ray queues the rest
        outcomes = drain(executor, len(jobs))
        seconds = time.perf_counter() - began
        assert executor.wait(timeout=0.1) == []  # nothing left
    print(f"\n{len(jobs)} NB201 trials on 2 nodes: {seconds:.2f} s (first includes worker start)")
    assert sorted(o.number for o in outcomes) == list(range(len(jobs)))
    for outcome in outcomes:
        expected = bench.evaluate(jobs[outcome.number].candidate)
        assert outcome.error is None and outcome.result == expected
        assert outcome.worker.startswith("ray:") and " pid " in outcome.worker
    assert len({node_of(o) for o in outcomes}) == 2  # both nodes ran trials


@pytest.mark.slow
def test_estimator_is_loaded_once_per_worker_and_threads_follow_cpus(cluster, tmp_path):
    from nasforge.executors.ray import RayExecutor

    with RayExecutor(address=cluster) as executor:
        executor.start(Script(tmp_path))
        for number in range(10):
            executor.submit(Job(number, Candidate(f"ok:{number}")))
        executor.submit(Job(10, Candidate("threads")))
        outcomes = {o.number: o for o in drain(executor, 11)}
    assert [outcomes[n].result.objective for n in range(10)] == [float(n) for n in range(10)]
    workers = {int(o.result.metrics["pid"]) for n, o in outcomes.items() if n < 10}
    loads = (tmp_path / "loads").read_text().split()
    assert len(loads) == len(set(loads))  # never twice in one worker
    assert set(map(int, loads)) >= workers and len(loads) < 10
    assert outcomes[10].result.objective == 1.0  # torch limited to cpus_per_trial (2 cores here)


@pytest.mark.slow
def test_crashed_worker_fails_its_trial_only(cluster, tmp_path):
    from nasforge.executors.ray import RayExecutor

    with RayExecutor(address=cluster, slots=1) as executor:
        executor.start(Script(tmp_path))
        executor.submit(Job(0, Candidate("crash")))
        (crashed,) = drain(executor, 1)
        executor.submit(Job(1, Candidate("ok:7")))
        executor.submit(Job(2, Candidate("ok:8")))
        later = sorted(drain(executor, 2), key=lambda o: o.number)
    assert crashed.number == 0 and crashed.result is None and not crashed.fatal
    assert "\n" not in crashed.error and "died" in crashed.error.lower()
    assert [o.result.objective for o in later] == [7.0, 8.0]


@pytest.mark.slow
def test_an_estimator_workers_cannot_load_is_fatal(cluster):
    """Every trial would fail the same way, so the outcome stops the search (fatal)."""
    from nasforge.executors.ray import RayExecutor

    with RayExecutor(address=cluster, slots=1) as executor:
        executor.start(Unloadable())
        executor.submit(Job(0, Candidate("ok:1")))
        (outcome,) = drain(executor, 1)
    assert outcome.fatal and outcome.result is None and "\n" not in outcome.error
    assert outcome.error.startswith("cannot load the estimator in a Ray worker: ")
    assert "only_on_the_driver" in outcome.error


@pytest.mark.slow
def test_trial_timeout_kills_the_task(cluster, tmp_path):
    from nasforge.executors.ray import RayExecutor

    with RayExecutor(address=cluster, trial_timeout=3) as executor:
        executor.start(Script(tmp_path))
        executor.submit(Job(0, Candidate("sleep:600")))
        assert executor.wait(timeout=0.2) == []  # wait returns when its timeout passes
        began = time.monotonic()
        (late,) = drain(executor, 1, limit=30)
        waited = time.monotonic() - began
        executor.submit(Job(1, Candidate("ok:5")))
        (after,) = drain(executor, 1)
    assert late.result is None and late.error == "exceeded the 3 s trial time limit"
    assert waited < 5 and late.seconds >= 3
    assert after.result.objective == 5.0
    pid = int((tmp_path / "sleeper.pid").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid):
        assert time.monotonic() < deadline, "the timed-out worker is still running"
        time.sleep(0.1)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return b"Z"


def test_unreachable_address_is_a_fast_one_line_config_error():
    ray = require_ray()
    from nasforge.executors.ray import RayExecutor

    began = time.monotonic()
    with pytest.raises(ConfigError) as info:
        RayExecutor(address="127.0.0.1:1", connect_timeout=5)
    assert time.monotonic() - began < 5
    message = str(info.value)
    assert message.startswith("cannot reach Ray cluster at 127.0.0.1:1 (")
    assert "ray start --head" in message and "\n" not in message
    assert not ray.is_initialized()


def test_a_port_that_is_not_ray_fails_within_connect_timeout():
    """ray.init would retry such an address for minutes; the probe gives up in time."""
    ray = require_ray()
    from nasforge.executors.ray import RayExecutor

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
        thread.start()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(ConfigError, match="no answer within 1 s"):
            RayExecutor(address=address, connect_timeout=1)
        assert time.monotonic() - began < 3
        for conn in accepted:
            conn.close()
    assert not ray.is_initialized()


def test_bad_settings_are_config_errors():
    require_ray()
    from nasforge.executors.ray import RayExecutor

    for kwargs in ({"slots": 0}, {"cpus_per_trial": 0}, {"trial_timeout": -1}):
        with pytest.raises(ConfigError):
            RayExecutor(address="127.0.0.1:1", **kwargs)
    with pytest.raises(ConfigError, match="not host:port"):
        RayExecutor(address="nowhere")


def test_missing_ray_package_is_a_config_error(monkeypatch):
    from nasforge.executors.ray import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r"needs `pip install nasforge\[ray\]`"):
        RayExecutor()


@pytest.mark.slow
def test_experiment_on_the_cluster_records_every_trial_once(cluster, nb201_dir, tmp_path):
    """A whole search through Ray: each trial stored exactly once, and (deterministic order)
    the same trials and results as the in-process executor with the same number of slots."""
    from nasforge.executors.inprocess import InProcessExecutor
    from nasforge.executors.ray import RayExecutor
    from nasforge.experiment import Experiment
    from nasforge.store import Store
    from nasforge.strategies.evolution import RegularizedEvolution

    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)
    space, budget = NB201Space(), 16

    def search(executor, store=None):
        strategy = RegularizedEvolution(space, seed=5, population=6, sample=3)
        experiment = Experiment(
            space, strategy, bench, budget, executor=executor, store=store, name="ray-run",
            progress=False,
        )  # fmt: skip
        return experiment.run()

    with Store(tmp_path / "runs.db") as store:
        history = search(RayExecutor(address=cluster), store)
        stored = store.trials(store.get_run("ray-run"))
    reference = search(InProcessExecutor(slots=2))
    assert sorted(t.number for t in stored) == list(range(budget))
    assert all(t.state == "complete" and t.worker.startswith("ray:") for t in stored)
    assert len({t.worker.split(" node ")[1].split()[0] for t in stored}) == 2
    assert [t.number for t in history.trials] == list(range(budget))
    ours = [(t.arch, t.result.objective) for t in history.trials]
    assert ours == [(t.arch, t.result.objective) for t in reference.trials]
    assert ours == [(t.arch, t.result.objective) for t in sorted(stored, key=lambda t: t.number)]


@pytest.mark.slow
def test_local_instance_starts_and_stops_with_the_executor(tmp_path, monkeypatch):
    """No address: Ray starts here with the CPUs the slots need, and shutdown stops it."""
    ray = require_ray()
    from nasforge.executors.ray import RayExecutor

    if ray.is_initialized():
        ray.shutdown()
    root = Path(tempfile.mkdtemp(prefix="nfrl", dir="/tmp"))  # short: Ray's socket paths
    monkeypatch.setenv("RAY_TMPDIR", str(root))
    # with RAY_AUTH_MODE unset, a local ray.init turns token authentication on for this
    # process and writes a token to ~/.ray: a test must not change the user's home
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    try:
        executor = RayExecutor(slots=1)
        assert executor.owns_ray and ray.cluster_resources()["CPU"] == 1
        executor.start(Script(tmp_path))
        executor.submit(Job(0, Candidate("ok:3")))
        (outcome,) = drain(executor, 1)
        assert _processes_mentioning(str(root))  # the instance lives in our temp dir
        executor.shutdown()
        assert outcome.result.objective == 3.0 and not ray.is_initialized()
        deadline = time.monotonic() + 15
        while _processes_mentioning(str(root)):
            assert time.monotonic() < deadline, "the local Ray instance is still running"
            time.sleep(0.2)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _state(int(name)) != b"Z":
            try:
                if text.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(int(name))
            except OSError:
                pass
    return found
