"""``nasforge report``: the page a person reads, checked against the store and the benchmark
JSON read independently (sqlite3, json), and the bad inputs the issue names."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import time
from pathlib import Path

import pytest
from tests.cli_run import nasforge
from tests.conftest import require_data
from tests.report.pages import external_resources, read_page, stored_trials

from nasforge.cli import main
from nasforge.store import Store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """NB201 CIFAR-10 table runs: two evolution seeds, one random, one multi-objective."""
    require_data("nb201/nb201_200ep_test.csv")
    path = tmp_path_factory.mktemp("report") / "runs.db"
    for name, strategy, seed, extra in (
        ("evo-0", "evolution", "0", []),
        ("evo-1", "evolution", "1", []),
        ("rand-0", "random", "0", []),
        ("mo", "nsga2", "0", ["--objectives", "val_acc:max,latency_ms/pi5/onnx/cifar100:min"]),
    ):
        code = main(["search", "--space", "nb201", "--estimator", "benchmark", "--dataset",
                     "cifar10", "--strategy", strategy, "--budget", "40", "--seed", seed,
                     "--store", str(path), "--name", name, *extra])  # fmt: skip
        assert code == 0
    return path


def report(tmp_path: Path, *args: str) -> tuple[Path, str]:
    out = tmp_path / "rep"
    assert main(["report", *args, "--out", str(out)]) == 0
    return out, (out / "index.html").read_text()


def test_run_report_shows_every_stored_trial_the_best_cell_and_the_figures(store, tmp_path):
    out, html = report(tmp_path, "evo-0", "--store", str(store))
    page = read_page(html)
    stored = stored_trials(store, "evo-0")
    rows = page.tables["trials-1"]
    header, body = rows[0], rows[1:]
    assert header[:3] == ["trial", "state", "objective"]
    arch_column = header.index("architecture")
    assert [(int(r[0]), r[arch_column]) for r in body] == [(n, a) for n, _, a, _ in stored]
    # the best trial is the stored maximum of the objective (one fidelity on a table)
    best_number, _, best_arch, _ = max(stored, key=lambda t: (t[3], -t[0]))
    assert f"trial #{best_number}," in html and best_arch in "".join(page.text)
    # the NB201 cell is drawn: its non-none operations are the drawing's labels
    drawn = re.search(r'<svg class="arch-diagram".*?</svg>', html, re.S).group(0)
    ops = {p.split("~")[0] for p in best_arch.split("|") if "~" in p} - {"none"}
    assert ops and all(f">{op}<" in drawn for op in ops)
    # the anytime curve has one point per complete trial, and its PNG twin exists
    curve = re.search(r'<g id="trial-points">.*?</g>', html, re.S).group(0)
    assert curve.count("<use") == len(stored)
    for name in ("run1-anytime", "run1-params"):
        assert name in page.ids and (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    # a table run reports no training cost: no cost figure pretends otherwise
    with sqlite3.connect(store) as db:
        costs = [json.loads(r)["cost"] for (r,) in db.execute("SELECT result FROM trials")]
    assert ("run1-cost" in page.ids) == any(c > 0 for c in costs)
    # self-contained: nothing to fetch, and the CSV holds every trial too; the figures'
    # stylesheets are scoped to the figures, not the whole page
    assert external_resources(page) == []
    assert '<style type="text/css">*{' not in html
    assert len((out / "run1-trials.csv").read_text().strip().splitlines()) == len(stored) + 1


def test_disclosure_states_space_estimator_split_seed_cost_hardware_and_versions(store, tmp_path):
    _, html = report(tmp_path, "evo-1", "--store", str(store))
    page = read_page(html)
    text = " ".join(page.text)
    with sqlite3.connect(store) as db:
        config = json.loads(db.execute("SELECT config FROM runs WHERE name='evo-1'").fetchone()[0])
    env = config["environment"]
    for expected in ("search space", "nb201", "search seed 1", "nb201-benchmark on cifar10",
                     "40 trials", env["cpu"], f"torch {env['torch']}",
                     f"python {env['python']}"):  # fmt: skip
        assert expected in text, expected


def test_multi_objective_run_shows_its_front_matching_a_brute_force_front(store, tmp_path):
    out, html = report(tmp_path, "mo", "--store", str(store))
    page = read_page(html)
    with sqlite3.connect(store) as db:
        results = [
            (n, json.loads(r))
            for n, r in db.execute(
                "SELECT number, result FROM trials t JOIN runs r ON r.id=t.run_id "
                "WHERE r.name='mo' AND state='complete'"
            )
        ]
    points = {n: (r["objective"], r["metrics"]["latency_ms/pi5/onnx/cifar100"]) for n, r in results}
    # first trial of each architecture (the table gives a cell the same values every time)
    firsts: dict[tuple, int] = {}
    for n in sorted(points):
        firsts.setdefault(points[n], n)
    front = {
        n
        for p, n in firsts.items()
        if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in firsts)
    }
    rows = page.tables["front-1"]
    assert rows[0][:3] == ["trial", "val_acc (max)", "latency_ms/pi5/onnx/cifar100 (min)"]
    assert {int(row[0]) for row in rows[1:]} == front
    assert (out / "run1-front.png").exists()


def test_several_runs_are_compared_by_strategy_with_mean_and_std(store, tmp_path):
    out, html = report(tmp_path, "evo-0", "evo-1", "rand-0", "--store", str(store))
    page = read_page(html)
    rows = {r[0]: r for r in page.tables["comparison-table"][1:]}
    finals = {
        run: max(o for _, state, _, o in stored_trials(store, run) if state == "complete")
        for run in ("evo-0", "evo-1", "rand-0")
    }
    evo = [finals["evo-0"], finals["evo-1"]]
    assert rows["evolution"][1] == "2"
    assert rows["evolution"][2] == f"{statistics.mean(evo):.3f} ± {statistics.pstdev(evo):.3f}"
    assert rows["random"][2] == f"{finals['rand-0']:.3f} ± 0.000"
    assert (out / "comparison-anytime.png").exists()
    assert len([s for s in page.ids if s.startswith("run-")]) == 3


def test_benchmark_result_report_has_each_strategy_and_its_numbers(nb201_dir, tmp_path):
    results = tmp_path / "bench.json"
    code = main(["benchmark", "--space", "nb201", "--dataset", "cifar10", "--strategies",
                 "random,evolution", "--seeds", "4", "--budget", "25", "--out",
                 str(results)])  # fmt: skip
    assert code == 0
    out, html = report(tmp_path, str(results))
    data = json.loads(results.read_text())
    rows = {r[0]: r for r in read_page(html).tables["comparison-table"][1:]}
    assert set(rows) == set(data["strategies"])
    for name, row in data["strategies"].items():
        assert rows[name][2] == f"{row['mean']:.3f} ± {row['std']:.3f}"
        assert rows[name][1] == str(row["runs"]) == "4"
    assert (out / "anytime.png").read_bytes()[:8] == PNG_MAGIC
    assert "random is the baseline" in html


def test_a_run_still_being_written_is_reported_as_such(tmp_path):
    path = tmp_path / "live.db"
    with Store(path) as s:
        run = s.create_run("live", {"space": "nb201", "strategy": "random", "objective": "acc"})
        s.start_trial(run, 0, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", None)
    _, html = report(tmp_path, "live", "--store", str(path))
    assert "still being written" in html
    assert read_page(html).tables["trials-1"][1][1] == "running"


def test_markup_in_a_run_name_or_an_error_is_shown_as_text(tmp_path):
    path = tmp_path / "evil.db"
    with Store(path) as s:
        run = s.create_run("ok", {"space": "nb201", "strategy": "random", "objective": "acc"})
        s.start_trial(run, 0, "<script>window.pwned=1</script>", None)
        s.finish_trial(run, 0, None, error="<img src=x onerror=alert(1)>")
    # a name no nasforge writes, put there by another program
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET name = '<b>bold</b>' WHERE name = 'ok'")
    _, html = report(tmp_path, "<b>bold</b>", "--store", str(path))
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_bad_inputs_are_one_line_errors_with_status_2(store, tmp_path):
    cases = [
        (["report", "r", "--store", str(tmp_path / "none.db")], "does not exist"),
        (["report", "nope", "--store", str(store)], "nope"),
        (["report", "evo-0"], "needs --store"),
        (["report", str(tmp_path / "missing.json")], "does not exist"),
    ]
    (tmp_path / "text.db").write_text("not a database at all, just text\n" * 50)
    cases.append((["report", "r", "--store", str(tmp_path / "text.db")], "text.db"))
    (tmp_path / "other.json").write_text('{"hello": 1}')
    cases.append((["report", str(tmp_path / "other.json")], "not a nasforge benchmark result"))
    (tmp_path / "a-file").write_text("not a folder")
    cases.append((["report", "evo-0", "--store", str(store), "--out", str(tmp_path / "a-file")],
                  "cannot write the report to"))  # fmt: skip
    for args, message in cases:
        if "--out" not in args:
            args = [*args, "--out", str(tmp_path / "out")]
        done = nasforge(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out" / "index.html").exists()


def test_report_of_100_seeds_of_every_strategy_is_small(tmp_path, nb201_dir):
    """Size, not speed (speed is measured by benchmarks/report_speed.py): a comparison of
    every strategy over 100 seeds stays a few MB at most."""
    results = tmp_path / "all.json"
    started = time.perf_counter()
    code = main(["benchmark", "--space", "nb201", "--dataset", "cifar10", "--strategies",
                 "random,evolution,local,reinforce", "--seeds", "100", "--budget", "30",
                 "--out", str(results)])  # fmt: skip
    assert code == 0 and time.perf_counter() - started < 300
    out, html = report(tmp_path, str(results))
    assert (out / "index.html").stat().st_size < 5 * 2**20
    assert len(read_page(html).tables["comparison-table"]) == 5


def test_one_shot_run_shows_alpha_over_epochs_and_the_weight_sharing_check(tmp_path):
    require_data("nb201/nb201_200ep_test.csv")
    store = tmp_path / "os.db"
    done = nasforge("oneshot", "--method", "darts", "--epochs", "2", "--subset", "0.004",
                    "--channels", "4", "--cells", "1", "--resolution", "8", "--batch-size",
                    "32", "--eval-images", "100", "--check-sample", "12", "--store", str(store),
                    "--name", "d")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out, html = report(tmp_path, "d", "--store", str(store))
    with Store(store) as s:
        record = s.oneshot(s.get_run("d"))
    page = read_page(html)
    # one α line per operation of the supernet, one point per epoch
    alpha = re.search(r'<figure id="run1-alpha">.*?</figure>', html, re.S).group(0)
    for op in record["supernet"]["ops"]:
        assert f">{op}<" in alpha
    check = record["check"]
    for dataset, metrics in check["metrics"].items():
        figure_id = f"run1-check-{dataset}"
        assert figure_id in page.ids and (out / f"{figure_id}.png").exists()
        drawn = re.search(rf'<figure id="{figure_id}">.*?</figure>', html, re.S).group(0)
        assert f"Kendall τ {metrics['kendall']:.3f}" in drawn
        assert drawn.split('<g id="points">')[1].split("</g>")[0].count("<use") == 12
    # the derived cell is the best architecture, drawn
    assert record["derived"] in " ".join(page.text)
    assert '<svg class="arch-diagram"' in html
