"""``nasforge report`` and ``nasforge dashboard``: their arguments and what they run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nasforge.errors import ConfigError


def add_report_parsers(sub: Any, positive_int: Any) -> None:
    report = sub.add_parser(
        "report",
        help="an HTML report (one self-contained file, plus PNG figures) of runs or a benchmark",
        description="Write DIR/index.html, a page that opens without network access: the "
        "trial table (sortable, filterable), anytime curve, objective vs cost and parameters, "
        "the Pareto front of a multi-objective run, the best architecture drawn, a one-shot "
        "run's α and weight-sharing check, and the fair-comparison disclosure. Several runs or "
        "a benchmark result (the JSON of nasforge benchmark --out) add the comparison table "
        "and curves with bands.",
    )
    report.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run names in --store, or one RESULTS.json written by nasforge benchmark --out",
    )
    report.add_argument("--store", default=None, help="SQLite file or postgresql:// URL")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for index.html")

    dashboard = sub.add_parser(
        "dashboard",
        help="a read-only web page of a store's runs, updated live while they run",
        description="Serve a small read-only web app over the store: the runs, and per run its "
        "progress, best so far, curve, trials and failures, refreshed every few seconds. "
        "Bound to 127.0.0.1 unless --host says otherwise.",
    )
    dashboard.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dashboard.add_argument("--port", type=positive_int, default=8765, help="port (8765)")
    dashboard.add_argument(
        "--refresh", type=float, default=2.0, help="seconds between live updates (2)"
    )


def cmd_report(args: argparse.Namespace) -> None:
    from nasforge.report.html_report import report_benchmark, report_runs

    if args.store:
        written = report_runs(args.store, list(dict.fromkeys(args.runs)), args.out)
    elif len(args.runs) == 1 and Path(args.runs[0]).suffix == ".json":
        written = report_benchmark(args.runs[0], args.out)
    else:
        raise ConfigError(
            f"run {args.runs[0]!r} needs --store (the SQLite file or postgresql:// URL it is "
            "in); without --store give one RESULTS.json written by nasforge benchmark --out"
        )
    figures = sorted(p.name for p in Path(args.out).glob("*.png"))
    sys.stderr.write(f"wrote {written} ({len(figures)} PNG figures beside it)\n")
    print(written)


def cmd_dashboard(args: argparse.Namespace) -> None:
    from nasforge.report.dashboard import serve

    if args.refresh <= 0:
        raise ConfigError(f"--refresh must be > 0 seconds, got {args.refresh}")
    serve(args.store, args.host, args.port, refresh=args.refresh)
