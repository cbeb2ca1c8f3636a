"""The report and the dashboard as a person sees them, in headless Chromium: the table holds
the stored trials and sorts and filters, the curve has its points, the cell is drawn, and on
the dashboard of a search that is still running a new trial appears without a reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from tests.conftest import require_data
from tests.report.browser import free_port, start_dashboard, stop, wait_for
from tests.report.pages import stored_trials

from nasforge.cli import main

pytestmark = pytest.mark.slow


def visible_rows(driver, table_id: str) -> list[list[str]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'))"
        ".filter(r => r.offsetParent !== null)"
        ".map(r => Array.from(r.cells).map(c => c.textContent.trim()));",
        f"#{table_id}",
    )


def test_report_in_a_browser_table_sorts_filters_and_figures_are_drawn(browser, tmp_path):
    require_data("nb201/nb201_200ep_test.csv")
    store = tmp_path / "runs.db"
    assert main(["search", "--space", "nb201", "--estimator", "benchmark", "--dataset",
                 "cifar10", "--strategy", "evolution", "--budget", "30", "--store", str(store),
                 "--name", "evo"]) == 0  # fmt: skip
    out = tmp_path / "report"
    assert main(["report", "evo", "--store", str(store), "--out", str(out)]) == 0
    stored = stored_trials(store, "evo")
    browser.get((out / "index.html").as_uri())

    rows = visible_rows(browser, "trials-1")
    assert [int(r[0]) for r in rows] == [n for n, *_ in stored]
    header = browser.find_elements("css selector", "#trials-1 th")
    objective = next(h for h in header if h.text.startswith("objective"))
    objective.click()  # ascending
    objective.click()  # descending
    top = visible_rows(browser, "trials-1")[0]
    best = max(o for *_, o in stored)
    assert float(top[2]) == pytest.approx(best, abs=5e-3 * abs(best))

    needle = "avg_pool_3x3~0"
    box = browser.find_element("id", "trials-1-filter")
    box.send_keys(needle)
    expected = sum(needle in a for _, _, a, _ in stored)
    assert expected > 0
    assert len(visible_rows(browser, "trials-1")) == expected
    assert browser.find_element("id", "trials-1-shown").text == str(expected)

    points = browser.execute_script(
        "return document.querySelectorAll('#run1-anytime g#trial-points use').length"
    )
    assert points == len(stored)
    diagram = browser.find_element("css selector", "svg.arch-diagram")
    assert diagram.is_displayed() and diagram.size["width"] > 200
    best_arch = browser.find_element("css selector", "code.best-arch").text
    ops = {p.split("~")[0] for p in best_arch.split("|") if "~" in p} - {"none"}
    assert ops <= set(diagram.text.split())
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_dashboard_shows_a_running_search_and_new_trials_arrive_without_reload(browser, tmp_path):
    store = tmp_path / "live.db"
    search = subprocess.Popen(
        [sys.executable, "-m", "nasforge.cli", "search", "--space", "chain", "--estimator",
         "train", "--dataset", "digits", "--strategy", "random", "--budget", "60",
         "--epochs", "2", "--batch-size", "32", "--executor", "inprocess", "--store",
         str(store), "--name", "live"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    server = None
    try:
        wait_for(
            lambda: store.exists() and any(s == "complete" for _, s, _, _ in
                                           stored_trials(store, "live")),
            120,
            "the search's first complete trial",
        )  # fmt: skip
        port = free_port()
        server = start_dashboard(store, port, refresh=0.5)
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: visible_rows(browser, "runs"), 20, "the list of runs")
        assert visible_rows(browser, "runs")[0][:2] == ["live", "running"]
        browser.find_element("link text", "live").click()
        wait_for(lambda: visible_rows(browser, "trials"), 20, "the trial table")
        browser.execute_script("window.loadedOnce = 'still the same page';")
        shown = int(browser.find_element("id", "complete").text)
        wait_for(
            lambda: int(browser.find_element("id", "complete").text) > shown,
            120,
            "a new complete trial on the page",
        )
        assert browser.execute_script("return window.loadedOnce") == "still the same page"
        numbers = [int(r[0]) for r in visible_rows(browser, "trials")]
        stored = stored_trials(store, "live")
        assert numbers == sorted(numbers, reverse=True) and numbers[0] >= shown  # newest first
        assert set(numbers) <= {n for n, *_ in stored}

        def points_on_curve() -> int:
            return browser.execute_script(
                "return document.querySelectorAll('#curve g#trial-points use').length"
            )

        # the curve SVG is fetched apart from the counts, so it may lag them by one refresh
        wait_for(lambda: points_on_curve() >= shown, 20, f"{shown} or more points on the curve")
        assert browser.find_element("id", "status").text == "running"
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        if search.poll() is None:  # Ctrl-C, as a user stops a search
            search.send_signal(signal.SIGINT)
            try:
                search.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(search)
        if server is not None:
            stop(server)
    assert search.returncode in (0, 130), search.stderr.read() if search.stderr else ""
