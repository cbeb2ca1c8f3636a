"""How well a latency lookup table predicts measured end-to-end latency on this CPU (#15:
"Latency table vs. measured on 50 random mobile-space networks: MAPE and Spearman ρ, for
PyTorch eager and ONNX Runtime").

    python benchmarks/latency_table_error.py [--runtimes eager,onnxruntime] [--networks 50]
        [--threads 1] [--batch 1] [--input-size 32] [--width 1.0] [--repeats 50] [--warmup 10]
        [--fit-networks 20] [--seed 1000] [--table FILE ...] [--accept-foreign-table]
        [--out benchmarks/out/latency_table_error.json]

For each runtime: a table is built (`LatencyTable.build`, as ``nasforge latency-table`` does;
saved as ``benchmarks/out/latency_table_<runtime>_w<width>_s<size>.json``) or loaded with
``--table`` (its runtime read from the file; refused when it is another machine's, unless
``--accept-foreign-table``). Then ``--networks`` random mobile-space networks (seeded by
``--seed``, the width drawn from those the table covers; none of the networks the table was
fitted on) are each measured end to end (`latency.measure.measure`, the same threads, batch,
warm-up and repeats) and predicted by the table. Printed per runtime: MAPE, Spearman ρ
(and Kendall τ), the worst error, the table's size and build time, and the load average. On a
machine shared with other processes the wall time of a run includes the time its thread waited
for a core, so the same errors are also given in CPU time of the measuring thread
(``predict(arch, clock="cpu")`` against the measured CPU medians), with the share of wall time
spent waiting ("waiting %"). A shared machine's speed also drifts over minutes (other
processes' memory traffic, the host's clock), which CPU time does not show: the networks the
scale and constant were fitted on are measured again after the test networks ("drift %": their
change since the table was built) and the MAPE with both refitted on those ("MAPE % refit
now") separates the table's error from the drift. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

OUT = Path(__file__).resolve().parent / "out"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runtimes", default="eager,onnxruntime")
    p.add_argument("--networks", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--width", default="1.0", help="widths a built table covers (or all)")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--fit-networks", type=int, default=20)
    p.add_argument("--seed", type=int, default=1000, help="seed of the measured networks")
    p.add_argument("--table", action="append", default=[], help="a table file to use")
    p.add_argument("--accept-foreign-table", action="store_true")
    p.add_argument("--out", type=Path, default=OUT / "latency_table_error.json")
    return p.parse_args()


def _progress(prefix: str) -> Any:
    from nasforge.latency.command import ProgressLines

    return ProgressLines(prefix)


def _table(runtime: str, args: argparse.Namespace, given: dict[str, Path]) -> Any:
    from nasforge.latency.command import parse_widths
    from nasforge.latency.ops import MobileOps
    from nasforge.latency.table import LatencyTable

    if runtime in given:
        return LatencyTable.load(
            given[runtime],
            runtime=runtime,
            threads=args.threads,
            batch=args.batch,
            accept_foreign=args.accept_foreign_table,
        )
    ops = MobileOps(parse_widths(args.width), args.input_size)
    table = LatencyTable.build(
        ops,
        runtime,
        threads=args.threads,
        batch=args.batch,
        warmup=args.warmup,
        repeats=args.repeats,
        fit_networks=args.fit_networks,
        progress=_progress(f"table {runtime}"),
    )
    widths = "-".join(f"{w:g}" for w in ops.widths)
    path = table.save(OUT / f"latency_table_{runtime}_w{widths}_s{args.input_size}.json")
    sys.stderr.write(f"wrote {path}\n")
    return table


def _networks(table: Any, n: int, seed: int) -> list[Any]:
    """``n`` distinct random networks, none of those the table was fitted on."""
    fitted = {f["arch"] for f in table.meta.get("fit", {}).get("networks", [])}
    rng = np.random.default_rng(seed)
    archs: dict[str, Any] = {}
    while len(archs) < n:
        arch = table.ops.sample(rng)
        text = table.ops.to_string(arch)
        if text not in fitted:
            archs.setdefault(text, arch)
    return list(archs.values())


def _drift(table: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The networks the scale and constant were fitted on, measured again now, beside the test
    networks: how much this machine's speed moved since the table was built (a shared
    machine's does), and the scale and constant a fit now would give."""
    from nasforge.latency.table import affine_fit

    fit = table.meta["fit"]["networks"]
    archs = [table.ops.from_string(n["arch"]) for n in fit]
    again = table.measure_networks(archs, args.warmup, args.repeats)
    then = [n["measured_ms"] for n in fit]
    now = [m.median_ms for m in again]
    sums = [n["sum_ms"] for n in fit]
    return {
        "fit_networks_then_ms": then,
        "fit_networks_now_ms": now,
        "change_percent": 100.0 * (sum(now) / sum(then) - 1.0),
        "scale_now": (fit_now := affine_fit(sums, now))[0],
        "constant_now_ms": fit_now[1],
    }


def evaluate(runtime: str, args: argparse.Namespace, given: dict[str, Path]) -> dict[str, Any]:
    from nasforge.latency.measure import load_average
    from nasforge.latency.table import mape

    started = time.perf_counter()
    table = _table(runtime, args, given)
    built = time.perf_counter() - started
    archs = _networks(table, args.networks, args.seed)
    load_before = load_average()
    progress = _progress(f"measure {runtime}")
    measured = table.measure_networks(
        archs, args.warmup, args.repeats, lambda i, a: progress(i + 1, len(archs), "networks")
    )
    predicted = [table.predict(a) for a in archs]
    times = [m.median_ms for m in measured]
    errors = [abs(p - t) / t * 100.0 for p, t in zip(predicted, times, strict=True)]
    drift = _drift(table, args)
    sums = [(p - table.constant_ms) / table.scale for p in predicted]
    refitted = [drift["scale_now"] * x + drift["constant_now_ms"] for x in sums]
    cpu_predicted = [table.predict(a, clock="cpu") for a in archs]
    cpu_times = [m.cpu_median_ms for m in measured]
    return {
        "runtime": runtime,
        "runtime_version": table.meta.get("runtime_version"),
        "networks": len(archs),
        "mape_percent": mape(predicted, times),
        "median_ape_percent": statistics.median(errors),
        "max_ape_percent": max(errors),
        "spearman_rho": float(stats.spearmanr(predicted, times).statistic),
        "kendall_tau": float(stats.kendalltau(predicted, times).statistic),
        "refit_mape_percent": mape(refitted, times),
        "drift": drift,
        "cpu_mape_percent": mape(cpu_predicted, cpu_times),
        "cpu_spearman_rho": float(stats.spearmanr(cpu_predicted, cpu_times).statistic),
        "waiting_percent": 100.0 * (1.0 - sum(cpu_times) / sum(times)),
        "table_entries": len(table.entries),
        "table_build_seconds": table.meta.get("build_seconds"),
        "table_seconds_here": round(built, 1),
        "table_timing": table.meta.get("timing"),
        "constant_ms": table.constant_ms,
        "scale": table.scale,
        "overhead_ms": table.overhead_ms,
        "fit_mape_percent": table.meta.get("fit", {}).get("mape_percent"),
        "measured_ms": {"min": min(times), "median": statistics.median(times), "max": max(times)},
        "load": {"table": table.meta.get("load"), "before": load_before, "after": load_average()},
        "rows": [
            {
                "arch": table.ops.to_string(a),
                "predicted_ms": p,
                "measured_ms": m.median_ms,
                "p10_ms": m.p10_ms,
                "p90_ms": m.p90_ms,
                "cpu_predicted_ms": c,
                "cpu_ms": m.cpu_median_ms,
            }
            for a, p, m, c in zip(archs, predicted, measured, cpu_predicted, strict=True)
        ],
    }


def main() -> None:
    args = _args()
    import torch

    from nasforge.latency.machine import describe_briefly, describe_machine

    torch.set_num_threads(args.threads)
    from nasforge.latency.command import quiet_exporter

    quiet_exporter()  # two notices torch's ONNX exporter repeats at every export
    given = {}
    for path in args.table:
        runtime = json.loads(Path(path).read_text()).get("runtime")
        given[str(runtime)] = Path(path)
    results = [evaluate(r, args, given) for r in args.runtimes.split(",")]
    machine = describe_machine()
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(f"latency table vs. measured, {describe_briefly(machine)}")
    print(
        f"{args.networks} random mobile networks, input {args.input_size}, width {args.width}, "
        f"batch {args.batch}, {args.threads} thread(s), {args.repeats} repeats after "
        f"{args.warmup} warm-up runs\n"
    )
    print(
        "| runtime | MAPE % | Spearman ρ | Kendall τ | max APE % | measured ms (min-max) "
        "| CPU-time MAPE % | CPU-time ρ | waiting % | drift % | MAPE % refit now "
        "| entries | table build | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        load = r["load"]["after"][0] if r["load"]["after"] else float("nan")
        built = r["table_build_seconds"]
        print(
            f"| {r['runtime_version']} | {r['mape_percent']:.1f} | {r['spearman_rho']:.3f} | "
            f"{r['kendall_tau']:.3f} | {r['max_ape_percent']:.1f} | "
            f"{r['measured_ms']['min']:.2f}-{r['measured_ms']['max']:.2f} | "
            f"{r['cpu_mape_percent']:.1f} | {r['cpu_spearman_rho']:.3f} | "
            f"{r['waiting_percent']:.0f} | {r['drift']['change_percent']:+.1f} | "
            f"{r['refit_mape_percent']:.1f} | {r['table_entries']} | {built:.0f} s | {load:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine, "settings": settings, "results": results}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    sys.stderr.write(f"wrote {args.out}\n")


if __name__ == "__main__":
    main()
