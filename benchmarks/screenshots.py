"""Screenshots of the HTML report and the live dashboard, as a person sees them (#17).

    python benchmarks/screenshots.py [--out docs/images] [--work benchmarks/out/screenshots]

Makes real runs first: an NB201 CIFAR-10 evolution search (table, 100 evaluations) and a
multi-objective NSGA-II search with the Raspberry Pi 5 latency (100 evaluations), and takes
the report of a ``nasforge benchmark`` result when one is given (``--results``). Then headless
Chromium (Debian's chromium + chromium-driver) opens:

- ``report-run.png``: ``nasforge report`` of the evolution run (top of the page);
- ``report-front.png``: the multi-objective run's report;
- ``report-benchmark.png``: the report of ``--results`` (default: the 100-seed comparison of
  every strategy, benchmarks/out/nb201-all-100seeds.json, if it exists);
- ``dashboard-list.png`` and ``dashboard-run.png``: ``nasforge dashboard`` while a real-training
  search (chain space on the digits data) is running.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def nasforge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "nasforge.cli", *args], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def shoot(url: str, path: Path, width: int = 1300, height: int = 1400, wait: str = "") -> None:
    from tests.report.browser import start_browser

    driver = start_browser(width, height)
    try:
        driver.get(url)
        deadline = time.monotonic() + 30
        while wait and not driver.execute_script(wait) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks/out/screenshots")
    parser.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks/out/nb201-all-100seeds.json"
    )
    args = parser.parse_args()
    from tests.report.browser import free_port, start_dashboard, stop

    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "runs.db"
    store.unlink(missing_ok=True)
    common = ["--space", "nb201", "--estimator", "benchmark", "--dataset", "cifar10",
              "--budget", "100", "--store", str(store)]  # fmt: skip
    nasforge("search", *common, "--strategy", "evolution", "--name", "nb201-evolution")
    nasforge("search", *common, "--strategy", "nsga2", "--name", "nb201-pi5-front",
             "--objectives", "val_acc:max,latency_ms/pi5/onnx/cifar100:min")  # fmt: skip
    nasforge("report", "nb201-evolution", "--store", str(store), "--out", str(args.work / "run"))
    nasforge("report", "nb201-pi5-front", "--store", str(store), "--out",
             str(args.work / "front"))  # fmt: skip
    shoot((args.work / "run/index.html").as_uri(), args.out / "report-run.png", height=1500)
    shoot((args.work / "front/index.html").as_uri(), args.out / "report-front.png", height=1700)
    if args.results.exists():
        nasforge("report", str(args.results), "--out", str(args.work / "benchmark"))
        shoot((args.work / "benchmark/index.html").as_uri(), args.out / "report-benchmark.png",
              height=1500)  # fmt: skip

    live = args.work / "live.db"
    live.unlink(missing_ok=True)
    search = subprocess.Popen(
        [sys.executable, "-m", "nasforge.cli", "search", "--space", "chain", "--estimator",
         "train", "--dataset", "digits", "--strategy", "evolution", "--budget", "200",
         "--epochs", "2", "--batch-size", "32", "--executor", "inprocess", "--store",
         str(live), "--name", "digits-chain"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    port = free_port()
    server = None
    try:
        time.sleep(25)  # some trials first
        server = start_dashboard(live, port, refresh=1.0)
        base = f"http://127.0.0.1:{port}"
        shoot(base + "/", args.out / "dashboard-list.png", height=400,
              wait="return document.querySelectorAll('#runs tbody tr').length > 0")  # fmt: skip
        shoot(base + "/runs/digits-chain", args.out / "dashboard-run.png", height=1500,
              wait="return document.querySelector('#curve svg') !== null")  # fmt: skip
    finally:
        search.terminate()
        search.wait()
        if server is not None:
            stop(server)


if __name__ == "__main__":
    main()
