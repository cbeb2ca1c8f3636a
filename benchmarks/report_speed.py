"""How big the HTML report of a large benchmark is, and how fast it is made and rendered (#17).

    python benchmarks/report_speed.py [--results benchmarks/out/nb201-all-100seeds.json]
        [--repeats 5] [--out benchmarks/out/report-speed]

The issue's case: every strategy of the suite, 100 seeds, on NB201 CIFAR-10. Without
``--results`` the benchmark is run first (``nasforge benchmark --strategies all --seeds 100
--budget 100``, a few minutes). Then: seconds to write the report (``report_benchmark``), the
size of ``index.html`` and of the whole folder, and the time headless Chromium takes to open
the page until its load event, and until every figure is laid out, median and max of
``--repeats`` fresh loads (Debian's chromium and chromium-driver, as the browser tests use).
Also the same for the report of one 5,000-trial run, the largest table a run page embeds.
Prints a table; measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.report.browser: the same Chromium set-up as the tests


def nasforge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "nasforge.cli", *args], check=True)


def render_times(page: str, repeats: int) -> dict[str, float]:
    """Seconds from navigation to the load event, and to every SVG figure having a size."""
    from tests.report.browser import start_browser

    loads, drawn = [], []
    for _ in range(repeats):
        driver = start_browser()  # a fresh browser: no cache
        try:
            driver.get("about:blank")
            started = time.perf_counter()
            driver.get(page)  # returns after the load event
            loads.append(time.perf_counter() - started)
            driver.execute_script(
                "return Array.from(document.querySelectorAll('svg')).every("
                "s => s.getBoundingClientRect().width > 0)"
            )
            drawn.append(time.perf_counter() - started)
        finally:
            driver.quit()
    return {
        "load_median_s": statistics.median(loads),
        "load_max_s": max(loads),
        "drawn_median_s": statistics.median(drawn),
        "drawn_max_s": max(drawn),
    }


def measure(label: str, make: callable, folder: Path, repeats: int) -> dict[str, float | str]:
    started = time.perf_counter()
    index = make()
    made = time.perf_counter() - started
    row: dict[str, float | str] = {
        "report": label,
        "write_s": made,
        "index_mb": index.stat().st_size / 2**20,
        "folder_mb": sum(p.stat().st_size for p in folder.iterdir()) / 2**20,
    }
    row.update(render_times(index.as_uri(), repeats))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks/out/nb201-all-100seeds.json"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--run-trials", type=int, default=5000, help="trials of the run report")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/report-speed")
    args = parser.parse_args()
    from nasforge.report.html_report import report_benchmark, report_runs

    if not args.results.exists():
        print(f"{args.results} missing: running the benchmark (all strategies, 100 seeds)")
        nasforge("benchmark", "--space", "nb201", "--dataset", "cifar10", "--strategies", "all",
                 "--seeds", "100", "--budget", "100", "--out", str(args.results))  # fmt: skip
    results = json.loads(args.results.read_text())
    strategies = len(results["strategies"])
    seeds = results["config"]["seeds"]
    rows = []
    bench_dir = args.out / "benchmark"
    rows.append(
        measure(
            f"benchmark: {strategies} strategies x {seeds} seeds",
            lambda: report_benchmark(args.results, bench_dir),
            bench_dir,
            args.repeats,
        )
    )
    store = args.out / f"run-{args.run_trials}.db"
    if not store.exists():
        nasforge("search", "--space", "nb201", "--estimator", "benchmark", "--dataset", "cifar10",
                 "--strategy", "evolution", "--budget", str(args.run_trials), "--store",
                 str(store), "--name", "big")  # fmt: skip
    run_dir = args.out / "run"
    rows.append(
        measure(
            f"one run: {args.run_trials} trials",
            lambda: report_runs(str(store), ["big"], run_dir),
            run_dir,
            args.repeats,
        )
    )
    print("\n| report | write s | index.html MB | folder MB | load s (median / max) | "
          "figures drawn s (median / max) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['report']} | {r['write_s']:.2f} | {r['index_mb']:.2f} | {r['folder_mb']:.2f} "
            f"| {r['load_median_s']:.2f} / {r['load_max_s']:.2f} "
            f"| {r['drawn_median_s']:.2f} / {r['drawn_max_s']:.2f} |"
        )
    (args.out / "report_speed.json").write_text(json.dumps(rows, indent=1))
    print(f"\nwrote {args.out / 'report_speed.json'}")


if __name__ == "__main__":
    main()
