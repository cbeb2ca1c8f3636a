"""Per-trial cost of the store: start_trial + finish_trial with a realistic result.

    python benchmarks/store_overhead.py [--trials 2000] [--pg-url postgresql://...] [--json]

Backends: SQLite on a file in /tmp (WAL, synchronous=NORMAL), and PostgreSQL on loopback: the
URL given, else a throw-away server started with tests/postgres_server.py (default durability
settings: every commit is flushed) when PostgreSQL is installed. Target: SQLite <= 5 ms per
trial. Prints median, p90 and max in milliseconds, and the time to read the whole run back
(what ``nasforge show`` pays). If optuna is importable, the same loop on Optuna's RDB storage
(SQLite) is timed for comparison; it is not a dependency and is skipped when absent. Measures,
does not assert; the machine is shared, so compare medians, not maxima.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nasforge.core import Result
from nasforge.store import Store

TESTS = Path(__file__).resolve().parents[1] / "tests"
ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+"
    "|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
)


def realistic_result(number: int) -> Result:
    """What the NB201 benchmark or a training estimator returns: objective, a few metrics the
    strategy may see, report-only test accuracy, cost and fidelity."""
    return Result(
        objective=85.0 + (number % 97) / 10,
        metrics={"params": 1_073_290.0, "flops_m": 153.27, "train_seconds": 41.7 + number % 5},
        report={"test_acc": 84.3 + (number % 89) / 10, "test_loss": 0.512},
        cost=41.7,
        fidelity=12.0,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(name: str, per_trial: list[float], read_s: float | None) -> dict[str, object]:
    ms = [s * 1000 for s in per_trial]
    return {
        "backend": name,
        "trials": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(percentile(ms, 0.9), 3),
        "max_ms": round(max(ms), 3),
        "read_all_ms": None if read_s is None else round(read_s * 1000, 1),
    }


def time_store(url: str, trials: int) -> tuple[list[float], float]:
    per_trial = []
    with Store(url) as store:
        run = store.create_run(f"overhead-{time.time_ns()}", {"benchmark": "store_overhead"})
        for number in range(trials):
            result = realistic_result(number)
            started = time.perf_counter()
            store.start_trial(run, number, ARCH, 12.0, asked_after=max(0, number - 3))
            store.finish_trial(run, number, result, None, "host:1234", 41.7, number)
            per_trial.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert len(store.trials(run)) == trials
        return per_trial, time.perf_counter() - started


def time_optuna(folder: Path, trials: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{folder / 'optuna.db'}", direction="maximize")
    per_trial = []
    for number in range(trials):
        result = realistic_result(number)
        started = time.perf_counter()
        trial = study.ask()
        trial.set_user_attr("arch", ARCH)
        for key, value in {**result.metrics, **result.report}.items():
            trial.set_user_attr(key, value)
        study.tell(trial, result.objective)
        per_trial.append(time.perf_counter() - started)
    return per_trial


def with_postgres(url: str | None, run: Callable[[str], None]) -> str | None:
    """Run on the given URL, else on a throw-away local server; the reason if neither."""
    if url:
        run(url)
        return None
    sys.path.insert(0, str(TESTS))
    from postgres_server import PostgresServer, ServerUnavailable

    try:
        with PostgresServer() as server:
            run(server.url)
    except ServerUnavailable as err:
        return str(err)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--pg-url", default=None, help="an existing PostgreSQL database to use")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="nasforge-store-") as folder:
        per_trial, read_s = time_store(str(Path(folder) / "runs.db"), args.trials)
        rows.append(summarise("sqlite (file in /tmp, WAL)", per_trial, read_s))

        def on_postgres(url: str) -> None:
            per, read = time_store(url, args.trials)
            rows.append(summarise("postgresql (loopback)", per, read))

        skipped = with_postgres(args.pg_url, on_postgres)
        if skipped:
            notes.append(f"postgresql skipped: {skipped}")
        if importlib.util.find_spec("optuna") is not None:
            per_trial = time_optuna(Path(folder), args.trials)
            rows.append(summarise("optuna RDB storage (sqlite)", per_trial, None))
        else:
            notes.append("optuna not installed: its figure is skipped")
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}))
        return
    print(f"store overhead per trial (start_trial + finish_trial), {args.trials} trials")
    print("| backend | median ms | p90 ms | max ms | read whole run ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        read = "" if r["read_all_ms"] is None else r["read_all_ms"]
        print(f"| {r['backend']} | {r['median_ms']} | {r['p90_ms']} | {r['max_ms']} | {read} |")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
