"""The store on SQLite and on a real PostgreSQL server started by the tests themselves.

Every behaviour test runs on both backends (``store_url`` is parametrised). The PostgreSQL server
is a throw-away one on loopback (`postgres_server.PostgresServer`); each test gets its own empty
database. Without PostgreSQL installed those cases skip, unless NASFORGE_REQUIRE_SERVICES=1 (CI),
which makes them fail.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from nasforge.core import Result
from nasforge.errors import ConfigError
from nasforge.store import SCHEMA_VERSION, Store, StoredTrial
from nasforge.store import dialects as store_dialects
from postgres_server import PASSWORD, PASSWORD_ROLE

BACKENDS = ["sqlite", "postgresql"]
_database_numbers = itertools.count()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    """A URL for a new, empty store on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    server = request.getfixturevalue("pg_server")
    return server.create_database(f"t{next(_database_numbers)}")


def execute(store: Store, statement: str) -> list[tuple]:
    """Raw SQL on the store's own connection (to tamper with it as another program would)."""
    cursor = store.db.execute(statement)
    return cursor.fetchall() if cursor.description else []


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


RESULT = Result(
    objective=93.123456789012345,  # needs double precision: PostgreSQL's REAL would round it
    metrics={"params": 1_073_290.0, "train_seconds": 0.1 + 0.2},
    report={"test_acc": 92.87654321},
    cost=12.5,
    fidelity=12.0,
)


# round trips ---------------------------------------------------------------------------------


def test_runs_and_trials_round_trip(store_url):
    config = {"strategy": "re", "seed": 3, "budget": {"evaluations": 10, "seconds": None}}
    with Store(store_url) as store:
        run = store.create_run("first", config)
        store.start_trial(run, 0, "|a|", 12.0, asked_after=0)
        store.start_trial(run, 1, "|b|", None, asked_after=0)
        store.start_trial(run, 2, "|c|", 0.1 + 0.2, asked_after=1)
        store.finish_trial(run, 1, None, "RuntimeError: boom", "host-b:2", 0.25, 0)
        store.finish_trial(run, 0, RESULT, None, worker="host-a:1", seconds=3.5, tell_seq=1)

    with Store(store_url) as store:  # a fresh connection: everything was committed
        run = store.get_run("first")
        assert (run.name, run.config, run.status) == ("first", config, "running")
        assert (run.host, run.pid) == (socket.gethostname(), os.getpid())
        first, failed, running = store.trials(run)
    assert first == StoredTrial(
        0, "|a|", 12.0, "complete", RESULT, None, first.started, first.finished,
        worker="host-a:1", seconds=3.5, asked_after=0, tell_seq=1,
    )  # fmt: skip
    assert first.result.objective == 93.123456789012345
    assert first.result.report["test_acc"] == 92.87654321
    assert first.finished >= first.started > time.time() - 60
    assert (failed.state, failed.result, failed.error) == ("failed", None, "RuntimeError: boom")
    assert (failed.worker, failed.seconds) == ("host-b:2", 0.25)
    assert (failed.asked_after, failed.tell_seq) == (0, 0)
    assert (running.state, running.fidelity, running.finished, running.tell_seq) == (
        "running", 0.1 + 0.2, None, None,
    )  # fmt: skip
    assert running.asked_after == 1


def test_old_call_sites_keep_working(store_url):
    """experiment.py before asked_after/worker/tell_seq: those stay NULL, seconds is measured."""
    with Store(store_url) as store:
        run = store.create_run("r", {})
        store.start_trial(run, 0, "|a|", None)
        time.sleep(0.01)
        store.finish_trial(run, 0, RESULT)
        (trial,) = store.trials(run)
    assert (trial.worker, trial.asked_after, trial.tell_seq) == (None, None, None)
    assert trial.seconds == pytest.approx(trial.finished - trial.started) and trial.seconds >= 0.01


def test_starting_a_trial_again_replaces_it(store_url):
    with Store(store_url) as store:
        run = store.create_run("r", {})
        store.start_trial(run, 0, "|a|", None, asked_after=0)
        store.finish_trial(run, 0, RESULT, None, "w", 1.0, 0)
        store.start_trial(run, 0, "|b|", 6.0, asked_after=2)
        (trial,) = store.trials(run)
        assert (trial.arch, trial.fidelity, trial.asked_after) == ("|b|", 6.0, 2)
        assert trial.state == "running" and trial.result is None
        assert (trial.worker, trial.seconds, trial.tell_seq) == (None, None, None)
        with pytest.raises(LookupError, match=r"trial 5 .* never started"):
            store.finish_trial(run, 5, RESULT)


def test_trials_are_kept_per_run_in_number_order(store_url):
    with Store(store_url) as store:
        a, b = store.create_run("a", {}), store.create_run("b", {})
        for number in (2, 0, 1):
            store.start_trial(a, number, f"|a{number}|", None)
        store.start_trial(b, 0, "|b0|", None)
        assert [t.arch for t in store.trials(a)] == ["|a0|", "|a1|", "|a2|"]
        assert [t.arch for t in store.trials(b)] == ["|b0|"]


def test_narrow_reads_agree_with_the_full_trial_list(store_url):
    """The dashboard's reads (counts, series, failures, sorted and filtered pages) give what
    sorting and filtering `trials()` in Python gives, on both backends."""
    with Store(store_url) as store:
        run, other = store.create_run("r", {}), store.create_run("o", {})
        store.start_trial(other, 0, "|x_%|", None)
        for n in range(25):
            store.start_trial(run, n, f"|op{n % 4}~0|{'x_%' if n % 5 == 0 else 'y'}|", None)
            if n % 7 == 3:
                store.finish_trial(run, n, None, error=f"boom {n}")
            elif n < 22:
                store.finish_trial(run, n, Result((n * 13) % 17, {}, cost=1.0), seconds=n % 6)
        trials = store.trials(run)
        assert store.trial_counts(run) == {
            s: sum(t.state == s for t in trials) for s in ("running", "complete", "failed")
        }
        done = [t for t in trials if t.state == "complete"]
        assert [row[:2] for row in store.trial_series(run)] == [
            (t.number, t.result.objective) for t in done
        ]
        assert [n for n, _, _ in store.failures(run, 2)] == [24, 17]
        total, page = store.trial_page(run, sort="objective", descending=True, limit=5, offset=2)
        ranked = sorted(done, key=lambda t: (-t.result.objective, t.number))
        assert total == 25 and [t.number for t in page] == [t.number for t in ranked[2:7]]
        _, up = store.trial_page(run, sort="objective", limit=100)
        assert [t.state for t in up[len(done) :]] and all(
            t.result is None for t in up[len(done) :]
        )  # missing objectives last, ascending too
        total, found = store.trial_page(run, contains="x_%", limit=100)
        assert total == 5 and [t.number for t in found] == [0, 5, 10, 15, 20]
        total, failed = store.trial_page(run, state="failed", sort="seconds", descending=True)
        assert total == 4 and {t.number for t in failed} == {3, 10, 17, 24}
        assert store.last_activity(run) >= max(t.finished or t.started for t in trials)


# runs -------------------------------------------------------------------------------------------


def test_run_names_are_unique_and_a_missing_run_lists_the_others(store_url):
    with Store(store_url) as store:
        store.create_run("alpha", {"x": 1})
        store.create_run("beta", {})
        with pytest.raises(ConfigError, match="run 'alpha' already exists"):
            store.create_run("alpha", {"x": 2})
        assert store.get_run("alpha").config == {"x": 1}
        assert store.run_names() == ["alpha", "beta"]
        assert store.find_run("gamma") is None
        with pytest.raises(ConfigError, match=r"no run named 'gamma' in .*: alpha, beta$"):
            store.get_run("gamma")


def test_status_transitions_and_claims(store_url):
    with Store(store_url) as store:
        run = store.create_run("r", {})
        assert store.get_run("r").effective_status == "running"  # this process owns it
        store.set_status(run, "interrupted")
        assert store.get_run("r").effective_status == "interrupted"
        store.claim_run(store.get_run("r"))
        assert store.get_run("r").status == "running"
        store.set_status(run, "finished")
        assert store.get_run("r").effective_status == "finished"
        with pytest.raises(ValueError, match="'paused'"):
            store.set_status(run, "paused")

        # a driver killed without a word: still 'running' in the table, 'interrupted' in effect
        execute(store, f"UPDATE runs SET status = 'running', pid = {dead_pid()}")
        killed = store.get_run("r")
        assert (killed.status, killed.effective_status) == ("running", "interrupted")

        with Store(store_url) as other:  # another process resumes it first
            other.claim_run(other.get_run("r"))
        with pytest.raises(ConfigError, match="claimed by another process"):
            store.claim_run(killed)


def test_a_killed_driver_loses_no_finished_trial(store_url, tmp_path):
    """SIGKILL between two writes: every finished trial is there, the one in flight is
    'running', and the run reads as interrupted."""
    driver = textwrap.dedent(
        f"""
        import time
        from nasforge.core import Result
        from nasforge.store import Store
        store = Store({store_url!r})
        run = store.create_run("killed", {{}})
        for number in range(31):
            store.start_trial(run, number, f"|{{number}}|", None, asked_after=number)
            if number == 30:
                print("in flight", flush=True)
                time.sleep(60)
            result = Result(float(number), report={{"test_acc": number / 2}})
            store.finish_trial(run, number, result, None, "w", 0.0, number)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "in flight"
    finally:
        child.kill()
        child.wait()
    with Store(store_url) as store:
        run = store.get_run("killed")
        trials = store.trials(run)
    assert run.effective_status == "interrupted"
    assert [t.state for t in trials] == ["complete"] * 30 + ["running"]
    assert [t.result.report["test_acc"] for t in trials[:30]] == [n / 2 for n in range(30)]


def test_a_second_store_reads_while_the_driver_writes(store_url):
    """Readers (nasforge show) see each trial as soon as it is written, without blocking or
    being blocked by the driver."""
    total, half = 120, 60
    reader_saw_half, errors = threading.Event(), []
    driver = Store(store_url)
    run = driver.create_run("live", {})

    def drive() -> None:
        try:
            for number in range(total):
                driver.start_trial(run, number, f"|{number}|", None, asked_after=number)
                driver.finish_trial(run, number, RESULT, None, "w", 0.0, number)
                if number == half - 1 and not reader_saw_half.wait(20):
                    raise AssertionError("the reader never saw the first half")
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=drive)
    thread.start()
    seen = []
    with Store(store_url) as reader:
        reader_run = reader.get_run("live")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            trials = reader.trials(reader_run)
            assert all(t.result == RESULT for t in trials if t.state == "complete")
            complete = sum(t.state == "complete" for t in trials)
            seen.append(complete)
            if complete >= half:
                reader_saw_half.set()
            if complete == total:
                break
    thread.join(30)
    driver.close()
    assert not errors, errors
    assert seen == sorted(seen) and seen[-1] == total
    assert half in seen  # the driver paused there, its connection open, and the reader saw it


def test_processes_opening_a_new_store_at_once_create_it_once(store_url):
    """Workers or drivers started together: one creates the tables, the others wait and use
    them (without the schema lock, PostgreSQL fails some with duplicate-key errors)."""
    barrier, stores, errors = threading.Barrier(6), [], []

    def open_store() -> None:
        barrier.wait()
        try:
            stores.append(Store(store_url))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    stores[0].create_run("r", {})
    assert all(store.run_names() == ["r"] for store in stores)
    assert execute(stores[1], "SELECT count(*) FROM meta") == [(1,)]
    for store in stores:
        store.close()


# refused stores ---------------------------------------------------------------------------------


def test_a_store_of_another_schema_version_is_refused_untouched(store_url):
    with Store(store_url) as store:
        store.create_run("old", {})
        execute(store, "UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    fingerprint = _fingerprint(store_url)
    for create in (True, False):
        with pytest.raises(ConfigError, match=rf"schema version 1; .* version {SCHEMA_VERSION}"):
            Store(store_url, create=create)
    assert _fingerprint(store_url) == fingerprint


def _as_version_2(url: str) -> None:
    """Make a store what nasforge wrote before final results lived in it (schema 2, no
    ``finals`` and ``oneshot`` tables), with raw SQL around nasforge."""
    if "://" in url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            db.execute("DROP TABLE finals")
            db.execute("DROP TABLE oneshot")
            db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    else:
        with sqlite3.connect(url) as db:
            db.executescript(
                "DROP TABLE finals; DROP TABLE oneshot; "
                "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
            )
        db.close()


def test_a_version_2_store_is_upgraded_in_place_and_keeps_its_runs(store_url):
    with Store(store_url) as store:
        run = store.create_run("old", {"cli": {"space": "nb201"}})
        store.start_trial(run, 0, "|a|", None)
        store.finish_trial(run, 0, RESULT)
    _as_version_2(store_url)
    with Store(store_url, create=False) as store:  # a reader (show) upgrades it too
        assert execute(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        run = store.get_run("old")
        assert run.config == {"cli": {"space": "nb201"}}
        assert [t.result for t in store.trials(run)] == [RESULT]
        assert store.final(run) is None
        store.save_final(run, {"best": {"arch": "|a|"}})
        assert store.oneshot(run) is None
        store.save_oneshot(run, {"method": "gdas"})
    with Store(store_url) as store:  # upgraded once: opening again changes nothing
        assert store.final(store.get_run("old")) == {"best": {"arch": "|a|"}}
        assert store.oneshot(store.get_run("old")) == {"method": "gdas"}


def test_final_results_are_seen_by_another_connection_and_kept_per_run(store_url):
    writer, reader = Store(store_url), Store(store_url, create=False)
    try:
        first, second = writer.create_run("a", {}), writer.create_run("b", {})
        writer.save_final(first, {"seeds": [0], "best": {"val_acc": 0.1 + 0.2}})
        assert reader.final(reader.get_run("a")) == {"seeds": [0], "best": {"val_acc": 0.1 + 0.2}}
        assert reader.final(reader.get_run("b")) is None
        writer.save_final(first, {"seeds": [0, 1]})  # a later train-final replaces it
        writer.save_final(second, {"seeds": [5]})
        assert reader.final(reader.get_run("a")) == {"seeds": [0, 1]}
        assert reader.final(reader.get_run("b")) == {"seeds": [5]}
    finally:
        writer.close()
        reader.close()


def _fingerprint(url: str) -> object:
    """What a store holds, read around nasforge: the SQLite file's bytes, or PostgreSQL's rows."""
    if "://" not in url:
        return hashlib.sha256(Path(url).read_bytes()).hexdigest()
    import psycopg

    with psycopg.connect(url) as db:
        return [
            db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("meta", "runs", "trials")
        ]


def test_a_database_holding_other_tables_is_not_taken_over(store_url):
    Store(store_url).close()
    # the same database, but as another program left it: a 'runs' table and no nasforge meta
    if "://" in store_url:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as db:
            db.execute("DROP TABLE trials; DROP TABLE finals; DROP TABLE oneshot; DROP TABLE meta")
    else:
        with sqlite3.connect(store_url) as db:
            db.executescript(
                "DROP TABLE trials; DROP TABLE finals; DROP TABLE oneshot; DROP TABLE meta;"
            )
    with pytest.raises(ConfigError, match="not a nasforge store: it has tables runs"):
        Store(store_url)
    with pytest.raises(ConfigError, match="not a nasforge store"):
        Store(store_url)  # and the first attempt created nothing


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite, just some text that is long enough " * 20)
    with pytest.raises(ConfigError, match=r"notes\.db is not a nasforge SQLite store"):
        Store(path)
    with pytest.raises(ConfigError, match="is a directory"):
        Store(tmp_path)


def test_create_false_never_makes_an_empty_store(store_url):
    expected = "holds no nasforge runs" if "://" in store_url else "does not exist"
    with pytest.raises(ConfigError, match=expected):
        Store(store_url, create=False)
    if "://" not in store_url:
        assert not Path(store_url).exists()
    with Store(store_url) as store:
        store.create_run("r", {})
    with Store(store_url, create=False) as store:
        assert store.run_names() == ["r"]


# locations and bad URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "location"),
    [
        ("runs.db", Path("runs.db"), "runs.db"),
        ("sub/runs.db", Path("sub/runs.db"), "sub/runs.db"),
        ("sqlite:///sub/runs.db", Path("sub/runs.db"), "sub/runs.db"),
        ("sqlite:////tmp/x/runs.db", Path("/tmp/x/runs.db"), "/tmp/x/runs.db"),
    ],
)
def test_sqlite_locations(url, path, location, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if path.is_absolute():
        path = tmp_path / path.relative_to("/")
        url, location = url.replace("/tmp/x", str(tmp_path / "tmp/x")), str(path)
    with Store(url) as store:
        assert (store.backend, store.path, store.location) == ("sqlite", path, location)
        store.create_run("r", {})
    assert Store(path).run_names() == ["r"]


def test_in_memory_sqlite_store():
    with Store("sqlite:///:memory:") as store:
        assert store.path is None
        run = store.create_run("r", {})
        store.start_trial(run, 0, "|a|", None)
        assert [t.state for t in store.trials(run)] == ["running"]


def _silent_server():
    """A socket that accepts connections and never answers (a firewall, a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://me:hunter22@127.0.0.1:{free}/db", "Connection refused"),
        ("postgres://me:hunter22@no-such-host.invalid/db", "resolve host"),
        ("postgresql://me:hunter22@127.0.0.1:{silent}/db?connect_timeout=2", "timeout"),
        ("postgresql://me:hunter22@127.0.0.1:port/db", "malformed"),
        ("postgresql://me:hunter22@[::1/db", "malformed"),
        ("postgresql://me:hunter22@127.0.0.1/db?nonsense=1", "invalid URI query parameter"),
        ("mysql://me:hunter22@127.0.0.1/db", "scheme 'mysql'.* is not supported"),
        ("http://example.org/runs.db", "scheme 'http'"),
        ("sqlite://somehost/runs.db", "three slashes"),
    ],
)
def test_a_bad_or_unreachable_url_is_one_clear_line(url, reason, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with _silent_server() as silent:
        url = url.format(free=_unused_port(), silent=silent.getsockname()[1])
        started = time.monotonic()
        with pytest.raises(ConfigError, match=reason) as caught:
            Store(url)
    message = str(caught.value)
    assert time.monotonic() - started < 4
    assert "\n" not in message and "hunter22" not in message
    assert url.replace("hunter22", "***").split("?")[0] in message or "sqlite://" in url
    assert "postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME" in message
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_the_default_connect_timeout_applies(monkeypatch):
    monkeypatch.setattr(store_dialects, "CONNECT_TIMEOUT", 2)
    with _silent_server() as silent:
        started = time.monotonic()
        with pytest.raises(ConfigError, match="timeout"):
            Store(f"postgresql://me@127.0.0.1:{silent.getsockname()[1]}/db")
    assert 1.5 < time.monotonic() - started < 4


def test_credentials_and_databases_on_a_real_server(pg_server):
    good = pg_server.url_for("nasforge", PASSWORD_ROLE, PASSWORD)
    with Store(good) as store:
        assert store.location == good.replace(PASSWORD, "***") and store.path is None
        store.create_run("r", {})
        assert store.run_names() == ["r"]
    wrong = pg_server.url_for("nasforge", PASSWORD_ROLE, "not-the-password")
    with pytest.raises(ConfigError, match="password authentication failed") as caught:
        Store(wrong)
    assert "not-the-password" not in str(caught.value) and ":***@" in str(caught.value)
    with pytest.raises(ConfigError, match='role "nobody" does not exist'):
        Store(pg_server.url_for("nasforge", "nobody"))
    with pytest.raises(ConfigError, match='database "missing" does not exist'):
        Store(pg_server.url_for("missing"))


# the experiment on PostgreSQL -------------------------------------------------------------------


class _StopAt:
    """The real benchmark, interrupted (KeyboardInterrupt) at one evaluation."""

    def __init__(self, bench, at=None):
        self.bench, self.at, self.calls = bench, at, 0
        self.name, self.objective_name = bench.name, bench.objective_name

    def evaluate(self, candidate):
        self.calls += 1
        if self.calls - 1 == self.at:
            raise KeyboardInterrupt
        return self.bench.evaluate(candidate)


def test_an_experiment_runs_and_resumes_on_each_backend(store_url, nb201_dir, tmp_path):
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
    from nasforge.experiment import Experiment
    from nasforge.spaces.nb201 import NB201Space
    from nasforge.strategies.random import RandomSearch

    space = NB201Space()
    bench = NB201Benchmark("cifar10", data_dir=nb201_dir.parent)

    def experiment(estimator, resume=False):
        strategy = RandomSearch(space, seed=7)
        return Experiment(
            space,
            strategy,
            estimator,
            15,
            store=store,
            name="rs",
            resume=resume,
            progress=False,
            log_dir=tmp_path / "logs",
        )

    reference = Experiment(space, RandomSearch(space, seed=7), bench, 15, progress=False).run()
    store = Store(store_url)
    with pytest.raises(KeyboardInterrupt):
        experiment(_StopAt(bench, at=9)).run()
    assert store.get_run("rs").status == "interrupted"
    assert [t.state for t in store.trials(store.get_run("rs"))].count("complete") == 9

    rest = _StopAt(bench)
    experiment(rest, resume=True).run()
    trials = store.trials(store.get_run("rs"))
    assert rest.calls == 6  # the trial in flight again, then the rest; nothing twice
    assert store.get_run("rs").status == "finished"
    log = (tmp_path / "logs" / "rs.log").read_text()
    assert "run interrupted" in log and "run resumed" in log and "trial 14 finished" in log
    assert [t.arch for t in trials] == [t.arch for t in reference.trials]
    assert [t.result.report["test_acc"] for t in trials] == [
        t.result.report["test_acc"] for t in reference.trials
    ]
    store.close()


@pytest.mark.slow
def test_search_to_exported_model_on_a_password_protected_server(
    pg_server, tmp_path, monkeypatch, capsys
):
    """The pipeline keeps using the open store: its redacted location could not be reopened."""
    import json

    from nasforge import cli

    monkeypatch.chdir(tmp_path)  # a server store's products go to the working directory
    url = pg_server.url_for("nasforge", PASSWORD_ROLE, PASSWORD)
    code = cli.main(
        [
            "search", "--dataset", "digits", "--budget", "2", "--epochs", "1", "--subset", "1",
            "--channels", "4", "--cells", "1", "--batch-size", "32", "--executor", "inprocess",
            "--final-epochs", "1", "--final-seeds", "1", "--store", url, "--name", "pipe-pg",
            "--json",
        ]
    )  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    done = json.loads(out)
    assert "go to " + str(tmp_path / "nasforge-artifacts") in err  # the default is said
    assert done["store"] == url.replace(PASSWORD, "***") and PASSWORD not in json.dumps(done)
    # final results live in the database, seen by any other connection to it; files go to a
    # folder of this database in the working directory
    with Store(url, create=False) as other:
        assert other.final(other.get_run("pipe-pg")) == done["final"]
    folder = tmp_path / "nasforge-artifacts" / f"127.0.0.1-{pg_server.port}-nasforge" / "pipe-pg"
    assert Path(done["final"]["best"]["weights"]) == folder / "final.pt"
    assert (folder / "export" / "model.onnx").is_file()
    assert not (tmp_path / "final").exists()
