"""Rank correlation of the low-fidelity training proxy with NAS-Bench-201's 200-epoch accuracy.

    python benchmarks/proxy_correlation.py [--cells 100] [--seed 0]
                                           [--fidelities 1:0.1:8:1,3:0.2:8:1]
                                           [--workers 1] [--threads 1]
                                           [--csv benchmarks/out/proxy_correlation.csv]

A search that trains candidates briefly is only as good as the ranking its short training
gives. This script trains ``--cells`` distinct random NB201 cells (seeded; one cell per
isomorphism class of the benchmark, its canonical form) on real CIFAR-10 with the `Train`
estimator at each fidelity, and compares the proxy (validation accuracy on the seeded 10%
search-validation split of the training set) with the benchmark's 200-epoch CIFAR-10 test
accuracy (``NB201Benchmark("cifar10")``, report metric ``test_acc``): Kendall tau and Spearman
rho with bootstrap 95% intervals (cells resampled). As a reference it gives the same numbers for
the benchmark's own 12-epoch validation accuracy on the same cells.

A fidelity is ``EPOCHS:SUBSET:C:N[:RESOLUTION]`` (SUBSET: fraction of the training split; C, N:
NB201 channels and cells per stage; RESOLUTION only if `Train` accepts a ``resolution``
option). Each finished cell is appended to ``--csv`` at once; a rerun with the same settings
skips the cells already there, so an interrupted run resumes. ``--report-only`` analyses the CSV
without training. Cells run in a pool of worker processes (``--workers``, each with
``--threads`` torch threads) that load CIFAR-10 once each (the `Train` estimator is sent to them
as a description of its data, not the data). Only the first ``--test-images`` test images are
scored: the proxy is the validation accuracy, and scoring all 10,000 test images would cost
more than a 1-epoch training. A scatter plot goes to ``--png``. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from nasforge.core import Candidate
from nasforge.data.datasets import ImageDataset, first_test_images, load_dataset
from nasforge.errors import NasforgeError
from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
from nasforge.estimators.train import Train
from nasforge.executors.base import Job
from nasforge.executors.pool import ProcessPoolExecutor
from nasforge.spaces.nb201 import NB201Arch, NB201Space

FIELDS = [
    "fidelity",
    "settings",
    "cell",
    "arch",
    "val_acc",
    "val_loss",
    "train_loss",
    "proxy_test_acc",
    "params",
    "train_seconds",
    "trial_seconds",
    "nb201_test_200ep",
    "nb201_val_12ep",
    "nb201_test_12ep",
]

#: Cells whose 200-epoch accuracy is below this are (near) chance: no path from input to output.
DEGENERATE_ACC = 15.0


@dataclass(frozen=True)
class Fidelity:
    epochs: int
    subset: float
    C: int
    N: int
    resolution: int | None = None

    @property
    def label(self) -> str:
        res = "" if self.resolution is None else f" r{self.resolution}"
        return f"{self.epochs}ep {self.subset:g} C{self.C} N{self.N}{res}"

    def describe(self) -> str:
        res = "" if self.resolution is None else f", {self.resolution}px"
        return (
            f"{self.epochs} epoch(s), {self.subset:.0%} of the training split, "
            f"C={self.C} N={self.N}{res}"
        )


def parse_fidelities(text: str) -> list[Fidelity]:
    """``E:S:C:N[:R]`` items separated by commas; a clear exit on anything else."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        parts = item.split(":")
        try:
            if len(parts) not in (4, 5):
                raise ValueError
            fid = Fidelity(
                int(parts[0]),
                float(parts[1]),
                int(parts[2]),
                int(parts[3]),
                int(parts[4]) if len(parts) == 5 else None,
            )
        except ValueError:
            sys.exit(
                f"--fidelities: {item!r} is not EPOCHS:SUBSET:C:N[:RESOLUTION] "
                "(e.g. 1:0.1:8:1 = 1 epoch, 10% of the data, C=8, N=1)"
            )
        if fid.epochs < 1 or not 0 < fid.subset <= 1 or fid.C < 1 or fid.N < 1:
            sys.exit(f"--fidelities: {item!r}: need epochs >= 1, 0 < subset <= 1, C, N >= 1")
        out.append(fid)
    if not out:
        sys.exit("--fidelities: give at least one EPOCHS:SUBSET:C:N")
    return out


def train_accepts(keyword: str) -> bool:
    return keyword in inspect.signature(Train.__init__).parameters


def sample_cells(space: NB201Space, count: int, seed: int) -> list[NB201Arch]:
    """``count`` cells from distinct isomorphism classes, each in its canonical form."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    cells: list[NB201Arch] = []
    while len(cells) < count:
        arch = space.canonical(space.sample(rng))
        text = space.to_string(arch)
        if text not in seen:
            seen.add(text)
            cells.append(arch)
    return cells


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def append_row(path: Path, row: dict[str, object]) -> None:
    """Append one row (header first if the file is new), flushed so a kill loses nothing."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_fidelity(
    fid: Fidelity,
    settings: str,
    cells: list[NB201Arch],
    done: set[str],
    space: NB201Space,
    bench: NB201Benchmark,
    data: ImageDataset,
    args: argparse.Namespace,
) -> None:
    """Train every cell not yet in the CSV at ``fid``; append each as it finishes."""
    todo = [(i, a) for i, a in enumerate(cells) if space.to_string(a) not in done]
    print(
        f"\n{fid.label}: {fid.describe()}; {len(cells) - len(todo)} cells in the CSV, "
        f"{len(todo)} to train",
        flush=True,
    )
    if not todo:
        return
    kwargs: dict[str, Any] = {
        "epochs": fid.epochs,
        "subset": fid.subset,
        "net": {"C": fid.C, "N": fid.N},
        "batch_size": args.batch_size,
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "threads": args.threads,
    }
    if fid.resolution is not None:
        kwargs["resolution"] = fid.resolution
    estimator = Train(space, data, **kwargs)
    started = time.perf_counter()
    finished = 0
    with ProcessPoolExecutor(workers=args.workers, threads_per_worker=args.threads) as pool:
        pool.start(estimator)
        print(
            f"  {args.workers} worker(s) ready after {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        started = time.perf_counter()
        for number, (_, arch) in enumerate(todo):
            pool.submit(Job(number, Candidate(arch)))
        while finished < len(todo):
            outcomes = pool.wait()
            if not outcomes:
                break
            for outcome in outcomes:
                finished += 1
                index, arch = todo[outcome.number]
                text = space.to_string(arch)
                if outcome.result is None:
                    print(f"  cell {index} {text} FAILED: {outcome.error}", flush=True)
                    if outcome.fatal:
                        sys.exit(f"stopping: {outcome.error}")
                    continue
                result, entry = outcome.result, bench.lookup(arch)
                append_row(
                    args.csv,
                    {
                        "fidelity": fid.label,
                        "settings": settings,
                        "cell": index,
                        "arch": text,
                        "val_acc": result.objective,
                        "val_loss": result.metrics.get("val_loss", math.nan),
                        "train_loss": result.metrics.get("train_loss", math.nan),
                        "proxy_test_acc": result.report.get("test_acc", math.nan),
                        "params": result.metrics.get("params", math.nan),
                        "train_seconds": result.metrics.get("train_seconds", result.cost),
                        "trial_seconds": round(outcome.seconds, 3),
                        "nb201_test_200ep": entry.test_acc_200ep,
                        "nb201_val_12ep": entry.val_acc_12ep,
                        "nb201_test_12ep": entry.test_acc_12ep,
                    },
                )
                elapsed = time.perf_counter() - started
                eta = elapsed / finished * (len(todo) - finished)
                print(
                    f"  [{finished}/{len(todo)}] cell {index}: val {result.objective:.2f}% "
                    f"(NB201 200ep {entry.test_acc_200ep:.2f}%) {outcome.seconds:.1f} s; "
                    f"elapsed {duration(elapsed)}, ETA {duration(eta)}",
                    flush=True,
                )


def bootstrap(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> dict[str, tuple]:
    """Point estimate and percentile 95% interval of tau and rho, cells resampled."""
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    for _ in range(reps):
        pick = rng.integers(0, len(x), len(x))
        if len(set(x[pick])) < 2 or len(set(y[pick])) < 2:
            continue
        taus.append(stats.kendalltau(x[pick], y[pick]).statistic)
        rhos.append(stats.spearmanr(x[pick], y[pick]).statistic)
    out = {}
    for name, point, values in (
        ("tau", stats.kendalltau(x, y).statistic, taus),
        ("rho", stats.spearmanr(x, y).statistic, rhos),
    ):
        low, high = np.percentile(values, [2.5, 97.5]) if values else (math.nan, math.nan)
        out[name] = (float(point), float(low), float(high))
    return out


def fmt(result: tuple[float, float, float]) -> str:
    return f"{result[0]:.3f} [{result[1]:.3f}, {result[2]:.3f}]"


def report(
    fidelities: list[Fidelity],
    settings: str,
    cells: list[NB201Arch],
    space: NB201Space,
    bench: NB201Benchmark,
    args: argparse.Namespace,
) -> None:
    wanted = {space.to_string(a) for a in cells}
    rows = [r for r in read_rows(args.csv) if r["settings"] == settings and r["arch"] in wanted]
    print(f"\n## Proxy vs NAS-Bench-201 CIFAR-10 200-epoch test accuracy (seed {args.seed})\n")
    print(
        "| proxy | cells | Kendall tau [95% CI] | Spearman rho [95% CI] | tau w/o degenerate "
        "| train s total | trial s total | trial s mean |"
    )
    print("|---|---|---|---|---|---|---|---|")
    series: list[tuple[str, np.ndarray, np.ndarray]] = []
    for fid in fidelities:
        mine = {r["arch"]: r for r in rows if r["fidelity"] == fid.label}
        if len(mine) < 3:
            print(f"| {fid.label} | {len(mine)} | too few cells | | | | | |")
            continue
        x = np.array([float(r["val_acc"]) for r in mine.values()])
        y = np.array([float(r["nb201_test_200ep"]) for r in mine.values()])
        train_s = sum(float(r["train_seconds"]) for r in mine.values())
        trial_s = [float(r["trial_seconds"]) for r in mine.values()]
        print(
            _row(f"{fid.label} val acc", x, y, args)
            + f" {train_s:.0f} | {sum(trial_s):.0f} | {statistics.mean(trial_s):.1f} |"
        )
        series.append((f"{fid.describe()} (val acc)", x, y))
    # the benchmark's own short schedule on the same cells, as a yardstick
    entries = [bench.lookup(a) for a in cells]
    x12 = np.array([e.val_acc_12ep for e in entries])
    y200 = np.array([e.test_acc_200ep for e in entries])
    print(_row("NB201 12-epoch val acc (table)", x12, y200, args) + " - | - | - |")
    series.append(("NB201 12-epoch val acc (table, C=16 N=5)", x12, y200))
    degenerate = int((y200 < DEGENERATE_ACC).sum())
    print(
        f"\n{len(cells)} cells; {degenerate} degenerate (200-epoch acc < {DEGENERATE_ACC:g}%, "
        f"no input-output path), dropped in 'tau w/o degenerate'. CIs: {args.bootstrap} "
        "bootstrap resamples of the cells. 'trial s' includes validation/test scoring."
    )
    if args.png and series:
        plot(series, args.png)
        print(f"scatter plot: {args.png}")


def _row(label: str, x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> str:
    corr = bootstrap(x, y, args.bootstrap, args.seed)
    keep = y >= DEGENERATE_ACC
    tau_nd = stats.kendalltau(x[keep], y[keep]).statistic if keep.sum() >= 3 else math.nan
    return f"| {label} | {len(x)} | {fmt(corr['tau'])} | {fmt(corr['rho'])} | {tau_nd:.3f} |"


def plot(series: list[tuple[str, np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 4), squeeze=False)
    for ax, (title, x, y) in zip(axes[0], series, strict=True):
        tau = stats.kendalltau(x, y).statistic
        ax.scatter(x, y, s=12, alpha=0.7)
        ax.set_title(f"{title}\nKendall tau {tau:.3f}, n={len(x)}", fontsize=9)
        ax.set_xlabel("proxy accuracy (%)")
        ax.set_ylabel("NB201 CIFAR-10 200-epoch test acc (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100, help="distinct random NB201 cells")
    parser.add_argument("--seed", type=int, default=0, help="cell sample, split, init, order")
    parser.add_argument(
        "--fidelities",
        default="1:0.1:8:1,3:0.2:8:1",
        help="EPOCHS:SUBSET:C:N[:RESOLUTION], comma-separated (cheapest first is wise)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "--test-images", type=int, default=1000, help="test images the proxy also scores"
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--csv", type=Path, default=Path("benchmarks/out/proxy_correlation.csv"))
    parser.add_argument("--png", type=Path, default=Path("benchmarks/out/proxy_correlation.png"))
    parser.add_argument("--data-dir", default=None, help="root holding cifar10/ and nb201/")
    parser.add_argument("--report-only", action="store_true", help="analyse the CSV, no training")
    args = parser.parse_args()
    fidelities = parse_fidelities(args.fidelities)
    if args.cells < 3:
        sys.exit(f"--cells must be >= 3 for a rank correlation, got {args.cells}")
    if any(f.resolution is not None for f in fidelities) and not train_accepts("resolution"):
        sys.exit(
            "a fidelity sets RESOLUTION but this Train has no 'resolution' option; "
            "drop the fifth field"
        )
    if args.csv.exists():
        header = read_rows(args.csv)[:1]
        if header and set(header[0]) != set(FIELDS):
            sys.exit(
                f"{args.csv}: columns {sorted(header[0])} differ from this script's; "
                "pass another --csv"
            )
    args.csv.parent.mkdir(parents=True, exist_ok=True)

    space = NB201Space()
    try:
        bench = NB201Benchmark("cifar10", data_dir=args.data_dir)
        data = None
        if not args.report_only:
            full = load_dataset("cifar10", args.data_dir)
            data = first_test_images(full, max(2, args.test_images))
            del full
    except NasforgeError as err:
        sys.exit(f"{err}\nset NASFORGE_DATA (or --data-dir) to the folder with cifar10/ and nb201/")
    settings = (
        f"seed={args.seed} batch={args.batch_size} val={args.val_fraction:g} "
        f"test_images={args.test_images}"
    )
    cells = sample_cells(space, args.cells, args.seed)
    print(
        f"{len(cells)} distinct canonical NB201 cells (seed {args.seed}); CSV {args.csv}; "
        f"{settings}; {args.workers} worker(s) x {args.threads} thread(s)"
    )
    started = time.perf_counter()
    if not args.report_only:
        for fid in fidelities:
            done = {
                r["arch"]
                for r in read_rows(args.csv)
                if r["fidelity"] == fid.label and r["settings"] == settings
            }
            run_fidelity(fid, settings, cells, done, space, bench, data, args)
    report(fidelities, settings, cells, space, bench, args)
    print(f"wall time this run: {duration(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
