"""How fast the dashboard answers over a store of 100,000 trials (#17).

    python benchmarks/dashboard_load.py [--trials 100000] [--repeats 7]
        [--store benchmarks/out/dashboard-100k.db] [--out benchmarks/out/dashboard_load.json]

The store is written through the Store API the way a search writes it: ``--trials`` NB201
cells drawn uniformly (with repeats: the space has 15,625), each looked up in the CIFAR-10 table
by the NB201 estimator and stored with its result (made once, then reused; a plain random
search cannot make it, because without repeats it runs out of cells). ``nasforge dashboard``
is started as a user starts it. Then each route a browser asks for is timed over HTTP on
127.0.0.1: the first request (cold: the curve is drawn) and the median and max of
``--repeats`` more. Finally headless Chromium opens the list of runs and the run's page and
waits until the trial table and the curve are filled in: the time a person waits. Prints a
table; measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.report.browser: the same Chromium and server start-up


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def browser_wait(driver, url: str, ready: str, repeats: int) -> tuple[float, float]:
    """Median and max seconds from navigation until the script ``ready`` returns true."""
    times = []
    for _ in range(repeats):
        driver.get("about:blank")
        started = time.perf_counter()
        driver.get(url)
        while not driver.execute_script(ready):
            if time.perf_counter() - started > 60:
                raise SystemExit(f"{url}: page not ready after 60 s")
            time.sleep(0.01)
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times)


def make_store(path: Path, trials: int) -> None:
    """A run 'big' of ``trials`` NB201 cells with their table results, still 'running'."""
    import numpy as np

    from nasforge.core import Candidate
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
    from nasforge.spaces.nb201 import NB201Space
    from nasforge.store import Store

    space = NB201Space()
    bench = NB201Benchmark("cifar10", space=space)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    staged = path.with_suffix(".part")
    staged.unlink(missing_ok=True)
    with Store(staged) as store:
        run = store.create_run(
            "big",
            {"space": "nb201", "strategy": "random", "estimator": bench.name,
             "objective": bench.objective_name, "budget": {"evaluations": trials}},
        )  # fmt: skip
        for n in range(trials):
            arch = space.sample(rng)
            store.start_trial(run, n, space.to_string(arch), None)
            store.finish_trial(run, n, bench.evaluate(Candidate(arch)), seconds=0.001)
            if (n + 1) % 10_000 == 0:
                rate = (n + 1) / (time.perf_counter() - started)
                print(f"  {n + 1}/{trials} trials stored, {rate:.0f}/s", flush=True)
    staged.rename(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--store", type=Path, default=ROOT / "benchmarks/out/dashboard-100k.db")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/dashboard_load.json")
    args = parser.parse_args()
    from tests.report.browser import free_port, start_browser, start_dashboard, stop

    from nasforge.store import Store

    if not args.store.exists():
        make_store(args.store, args.trials)
    with Store(args.store, create=False) as store:
        counts = store.trial_counts(store.get_run("big"))
    print(f"store {args.store}: run 'big' with {sum(counts.values())} trials {counts}")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_dashboard(args.store, port, refresh=2.0)
    rows = []
    try:
        routes = [
            ("list of runs (HTML)", "/"),
            ("run page (HTML)", "/runs/big"),
            ("run status (JSON, polled)", "/api/runs/big"),
            ("curve SVG", "/runs/big/curve.svg"),
            ("trials: newest 50", "/api/runs/big/trials?sort=number&order=desc"),
            ("trials: best 50 by objective", "/api/runs/big/trials?sort=objective&order=desc"),
            ("trials: by seconds, page 1000", "/api/runs/big/trials?sort=seconds&offset=50000"),
            ("trials: filter 'avg_pool_3x3~0'", "/api/runs/big/trials?q=avg_pool_3x3~0"),
            ("trials: last page", "/api/runs/big/trials?sort=number&order=asc&offset=99950"),
        ]
        for label, path in routes:
            cold, size = fetch(base + path)
            warm = [fetch(base + path)[0] for _ in range(args.repeats)]
            rows.append(
                {
                    "what": label,
                    "path": path,
                    "cold_s": cold,
                    "median_s": statistics.median(warm),
                    "max_s": max(warm),
                    "kb": size / 1024,
                }
            )
        driver = start_browser()
        try:
            runs = browser_wait(
                driver, base + "/", "return document.querySelectorAll('#runs tbody tr').length > 0",
                args.repeats,
            )  # fmt: skip
            page = browser_wait(
                driver,
                base + "/runs/big",
                "return document.querySelectorAll('#trials tbody tr').length > 0 && "
                "document.querySelector('#curve svg') !== null",
                args.repeats,
            )
        finally:
            driver.quit()
        rows.append({"what": "browser: list of runs shown", "median_s": runs[0], "max_s": runs[1]})
        rows.append(
            {
                "what": "browser: run page with table and curve",
                "median_s": page[0],
                "max_s": page[1],
            }
        )
    finally:
        stop(server)
    print("\n| what | cold s | median s | max s | KB |")
    print("|---|---|---|---|---|")
    for r in rows:
        cold = f"{r['cold_s']:.3f}" if "cold_s" in r else ""
        size = f"{r['kb']:.1f}" if "kb" in r else ""
        print(f"| {r['what']} | {cold} | {r['median_s']:.3f} | {r['max_s']:.3f} | {size} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"trials": sum(counts.values()), "rows": rows}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
