"""``nasforge dashboard``'s routes, through Starlette's test client, checked against the store
read with sqlite3 directly; the command's own errors through the CLI."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest
from tests.cli_run import nasforge
from tests.report.pages import read_page, stored_trials

from nasforge.core import Result
from nasforge.errors import ConfigError
from nasforge.report.dashboard import create_app
from nasforge.store import Store

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|none~0|avg_pool_3x3~1|skip_connect~2|",
]


@pytest.fixture
def store_path(tmp_path):
    """A run of 30 trials (objective from a formula, so the order is known), 2 failed, 1 in
    flight, and a second, finished run."""
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = s.create_run(
            "live", {"space": "nb201", "strategy": "random", "objective": "val_acc",
                     "estimator": "train", "budget": {"evaluations": 40}}
        )  # fmt: skip
        for n in range(30):
            s.start_trial(run, n, ARCHS[n % 3], None)
            if n in (7, 19):
                s.finish_trial(run, n, None, error=f"out of memory in trial {n} <oops>")
            else:
                value = 50 + (n * 37) % 41
                s.finish_trial(
                    run, n, Result(value, {"params": 1000.0 + n}, cost=2.0), seconds=1.0 + n
                )
        s.start_trial(run, 30, ARCHS[0], None)
        other = s.create_run("done", {"space": "nb201", "strategy": "evolution"})
        s.start_trial(other, 0, ARCHS[1], None)
        s.finish_trial(other, 0, Result(70.0, {}, cost=1.0))
        s.set_status(other, "finished")
    return path


@pytest.fixture
def client(store_path):
    from starlette.testclient import TestClient

    with TestClient(create_app(str(store_path))) as c:
        yield c


def test_runs_list_matches_the_store(client, store_path):
    runs = client.get("/api/runs").json()
    assert [r["name"] for r in runs] == ["live", "done"]
    live = runs[0]
    states = [state for _, state, _, _ in stored_trials(store_path, "live")]
    assert live["counts"] == {s: states.count(s) for s in ("running", "complete", "failed")}
    assert live["status"] == "running" and live["progress"] == pytest.approx(30 / 40)
    best = max((o, -n) for n, st, _, o in stored_trials(store_path, "live") if st == "complete")
    assert live["best"]["objective"] == best[0] and live["best"]["trial"] == -best[1]
    page = read_page(client.get("/").text)
    assert [row[0] for row in page.tables["runs"][1:]] == ["live", "done"]


def test_trial_pages_sort_and_filter_like_sql_on_the_raw_table(client, store_path):
    rows = stored_trials(store_path, "live")
    page = client.get("/api/runs/live/trials?sort=objective&order=desc&limit=5").json()
    complete = sorted((r for r in rows if r[3] is not None), key=lambda r: (-r[3], r[0]))
    assert [r["trial"] for r in page["rows"]] == [r[0] for r in complete[:5]]
    assert page["total"] == len(rows)
    # missing objectives (failed, running) sort last in both directions
    up = client.get("/api/runs/live/trials?sort=objective&order=asc&limit=100").json()
    assert [r["state"] for r in up["rows"]][-3:] != ["complete"] * 3
    assert all(r["state"] == "complete" for r in up["rows"][:27])
    failed = client.get("/api/runs/live/trials?state=failed").json()
    assert sorted(r["trial"] for r in failed["rows"]) == [7, 19] and failed["total"] == 2
    match = client.get("/api/runs/live/trials", params={"q": "avg_pool_3x3~0"}).json()
    assert {r["trial"] for r in match["rows"]} == {
        n for n, _, a, _ in rows if "avg_pool_3x3~0" in a
    }
    second = client.get("/api/runs/live/trials?sort=number&order=asc&offset=10&limit=10").json()
    assert [r["trial"] for r in second["rows"]] == list(range(10, 20))


def test_run_page_curve_and_failures(client, store_path):
    detail = client.get("/api/runs/live").json()
    assert [f["trial"] for f in detail["failures"]] == [19, 7]
    assert "<oops>" in detail["failures"][0]["error"]  # JSON carries it; the page escapes it
    html = client.get("/runs/live").text
    assert "&lt;oops&gt;" in html and "<oops>" not in html
    svg = client.get("/runs/live/curve.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    points = svg.text.split('<g id="trial-points">')[1].split("</g>")[0]
    complete = [r for r in stored_trials(store_path, "live") if r[1] == "complete"]
    assert points.count("<use") == len(complete)


def test_new_trials_show_up_and_the_curve_is_redrawn(client, store_path):
    before = client.get("/api/runs/live").json()
    with Store(store_path) as s:
        run = s.get_run("live")
        s.finish_trial(run, 30, Result(99.0, {}, cost=1.0))
    after = client.get("/api/runs/live").json()
    assert after["counts"]["complete"] == before["counts"]["complete"] + 1
    assert after["best"] == {"trial": 30, "objective": 99.0, "arch": ARCHS[0], "report": {}}
    assert after["curve_version"] != before["curve_version"]
    newest = client.get("/api/runs/live/trials?limit=1").json()["rows"][0]
    assert newest["trial"] == 30 and newest["state"] == "complete"


def test_unknown_runs_and_bad_queries_are_clear_messages_not_tracebacks(client):
    page = client.get("/runs/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert page.status_code == 404
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "Traceback" not in page.text
    api = client.get("/api/runs/nope")
    assert api.status_code == 404 and api.json() == {
        "error": f"no run named 'nope' in {client.app.state.store.location}"
    }
    bad = client.get("/api/runs/live/trials?sort=objective;drop")
    assert bad.status_code == 400 and "sort must be one of" in bad.json()["error"]
    assert client.get("/api/runs/live/trials?limit=lots").status_code == 400


def test_the_dashboard_never_writes_to_the_store(client, store_path):
    def snapshot():
        with sqlite3.connect(store_path) as db:
            return json.dumps(
                [db.execute(f"SELECT * FROM {t}").fetchall() for t in ("runs", "trials", "meta")]
            )

    before = snapshot()
    for url in ("/", "/api/runs", "/runs/live", "/api/runs/live", "/runs/live/curve.svg",
                "/api/runs/live/trials?sort=seconds", "/runs/missing"):  # fmt: skip
        client.get(url)
    assert snapshot() == before


def test_stores_that_cannot_be_served_are_refused_before_serving(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        create_app(str(tmp_path / "none.db"))
    text = tmp_path / "notes.db"
    text.write_text("just some text, not a database\n" * 100)
    done = nasforge("dashboard", "--store", str(text), "--port", "8791", timeout=60)
    assert done.returncode == 2 and "notes.db" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_a_one_line_error(store_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = nasforge("dashboard", "--store", str(store_path), "--port", str(port), timeout=60)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_dashboard_serves_a_postgresql_store(pg_server):
    """The same routes over a real PostgreSQL server (started on loopback by the fixture)."""
    from starlette.testclient import TestClient

    url = pg_server.create_database("dash")
    with Store(url) as s:
        run = s.create_run("pg", {"space": "nb201", "strategy": "random"})
        for n in range(12):
            s.start_trial(run, n, ARCHS[n % 3], None)
            s.finish_trial(run, n, Result(float((n * 5) % 7), {}, cost=1.0))
        expected = sorted(s.trials(run), key=lambda t: (-t.result.objective, t.number))
    with TestClient(create_app(url)) as client:
        runs = client.get("/api/runs").json()
        assert runs[0]["name"] == "pg" and runs[0]["counts"]["complete"] == 12
        page = client.get("/api/runs/pg/trials?sort=objective&limit=4").json()
        assert [r["trial"] for r in page["rows"]] == [t.number for t in expected[:4]]
        assert "trial-points" in client.get("/runs/pg/curve.svg").text
        assert client.get("/runs/pg").status_code == 200
