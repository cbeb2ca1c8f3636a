"""``nasforge latency-table``: its arguments, their checks, progress and summary (the work is
`latency.table`).

Importing this module does not import torch, so ``nasforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

#: `latency.measure.RUNTIMES` and `latency.ops.TABLE_SPACES`, named without importing torch
#: (tests keep them equal)
RUNTIME_NAMES = ("eager", "onnxruntime")
TABLE_SPACE_NAMES = ("mobile",)
#: the mobile space's widths (`spaces.mobile.WIDTHS`, kept equal by a test)
MOBILE_WIDTHS = (0.5, 0.75, 1.0, 1.25)
#: seconds between progress lines
PROGRESS_EVERY = 5.0


def _count(text: str) -> int:
    """A whole number >= 0 (warm-up passes, fitted networks)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_latency_table_parser(sub: Any, positive_int: Any) -> None:
    p = sub.add_parser(
        "latency-table",
        help="measure every op of a space once on this machine: a latency lookup table",
        description="Measure each operation of the space at every shape it occurs in (mobile: "
        "block, kernel, SE, channels, stride, resolution, residual; stem, head, classifier), "
        "once, on this machine with the given runtime, threads and batch size; fit a scale and "
        "a constant on --fit-networks random networks measured end to end; write the table as "
        "JSON. A network's predicted latency is the sum of its ops (ProxylessNAS, FBNet) times "
        "that scale plus that constant. The table is keyed by the machine and runtime: it is "
        "refused on another. Mobile at one width is 633 ops: under a minute with eager, ~3 "
        "with onnxruntime.",
    )
    p.add_argument("--space", default="mobile", help=f"one of: {', '.join(TABLE_SPACE_NAMES)}")
    p.add_argument("--runtime", required=True, help=" or ".join(RUNTIME_NAMES))
    p.add_argument("--out", required=True, metavar="FILE", help="the table's JSON file")
    p.add_argument("--threads", type=positive_int, default=1, help="intra-op threads (1)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size (1)")
    p.add_argument("--input-size", type=positive_int, default=32, help="image side (32)")
    p.add_argument("--num-classes", type=positive_int, default=10, help="classes (10)")
    p.add_argument("--in-channels", type=positive_int, default=3, help="image channels (3)")
    p.add_argument(
        "--width",
        default="1.0",
        help="mobile width multiplier(s) the table covers, comma-separated, or 'all' "
        f"({', '.join(map(str, MOBILE_WIDTHS))}; default 1.0, the mobile supernet's)",
    )
    p.add_argument("--repeats", type=positive_int, default=50, help="timed runs per op (50)")
    p.add_argument("--warmup", type=_count, default=10, help="untimed runs per op first (10)")
    p.add_argument(
        "--fit-networks",
        type=_count,
        default=20,
        help="random networks measured end to end to fit the scale and constant (20; under 5: "
        "the constant only; 0: neither)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the networks fitted on (0)")


def parse_widths(text: str) -> tuple[float, ...]:
    """``--width``: comma-separated widths of the mobile space, or ``all``."""
    from nasforge.errors import ConfigError

    if text.strip() == "all":
        return MOBILE_WIDTHS
    accepted = f"one or more of {', '.join(map(str, MOBILE_WIDTHS))} (comma-separated) or all"
    widths = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--width {text!r} is not accepted; give {accepted}") from None
        if value not in MOBILE_WIDTHS:
            raise ConfigError(f"--width {part.strip()!r} is not accepted; give {accepted}")
        widths.append(value)
    return tuple(widths)


def check_out(out: str) -> Path:
    """``--out``: a file that can be written (its folder is created), checked before minutes
    of measuring."""
    from nasforge.errors import ConfigError

    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name, e.g. {out}/table.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as err:
        raise ConfigError(f"cannot write --out {out}: {err.strerror or err}") from None
    return path


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressLines:
    """Progress with an ETA on stderr, at most one line every `PROGRESS_EVERY` seconds (and
    the last): measuring hundreds of ops takes minutes."""

    def __init__(self, prefix: str):
        self.prefix, self.started, self.last = prefix, time.perf_counter(), -PROGRESS_EVERY

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.perf_counter()
        if now - self.last < PROGRESS_EVERY and done < total:
            return
        self.last, elapsed = now, now - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        sys.stderr.write(
            f"{self.prefix} [{done}/{total}] {what}, elapsed {duration(elapsed)}, "
            f"ETA {duration(eta)}\n"
        )
        sys.stderr.flush()


def quiet_exporter() -> None:
    """Silence two notices torch's ONNX exporter repeats at every export, hundreds of times in
    a table: "torchvision is not installed" (ops these networks never use) and a deprecation
    inside torch's own pytree code. Neither is about the networks or anything a user can
    change; every other warning still shows."""
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    warnings.filterwarnings(
        "ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning
    )


def cmd_latency_table(args: argparse.Namespace) -> None:
    from nasforge.errors import ConfigError

    if args.space not in TABLE_SPACE_NAMES:
        from nasforge.latency.ops import space_ops

        space_ops(args.space)  # the one-line error: unknown, or a space without a table yet
    if args.runtime not in RUNTIME_NAMES:
        raise ConfigError(f"unknown runtime {args.runtime!r}; accepted: {', '.join(RUNTIME_NAMES)}")
    widths = parse_widths(args.width)
    out = check_out(args.out)

    from nasforge.latency.machine import describe_briefly
    from nasforge.latency.measure import check_runtime
    from nasforge.latency.ops import space_ops
    from nasforge.latency.table import LatencyTable

    check_runtime(args.runtime)  # onnxruntime installed?
    quiet_exporter()
    ops = space_ops(
        args.space,
        widths=widths,
        input_size=args.input_size,
        num_classes=args.num_classes,
        in_channels=args.in_channels,
    )
    count = len(ops.enumerate())
    table = LatencyTable.build(
        ops,
        args.runtime,
        threads=args.threads,
        batch=args.batch,
        warmup=args.warmup,
        repeats=args.repeats,
        fit_networks=args.fit_networks,
        seed=args.seed,
        progress=ProgressLines(f"latency-table: {args.runtime}"),
    )
    table.save(out)
    warn_if_unreliable(table)
    fit = table.meta.get("fit")
    fitted = (
        f"scale {table.scale:.3f} and constant {table.constant_ms:+.3f} ms fitted on "
        f"{len(fit['networks'])} networks "
        f"(their MAPE {fit['mape_percent']:.1f} %)"
        if fit
        else "no scale or constant fitted (--fit-networks 0)"
    )
    print(
        f"wrote {out}: {count} ops of the {args.space} space "
        f"(widths {', '.join(f'{w:g}' for w in widths)}, input {args.input_size}) measured "
        f"with {table.meta['runtime_version']}, {args.threads} thread(s), batch {args.batch} in "
        f"{duration(table.meta['build_seconds'])}; {fitted}; on "
        f"{describe_briefly(table.machine)}; load average {table.meta['load']}"
    )


def warn_if_unreliable(table: Any) -> None:
    """Say so when the numbers were measured on a busy machine, or when the fitted scale and
    constant move a typical network's prediction far from the sum of its ops: whole networks
    then ran at another speed than their ops (shared caches and memory bandwidth under load),
    and predictions made on a quiet machine will be off by that much."""
    from nasforge.errors import NasforgeWarning

    loads = [v[0] for v in (table.meta.get("load") or {}).values() if v]
    cores = int(table.machine.get("usable_cores") or table.machine.get("logical_cores") or 1)
    if loads and max(loads) > cores:
        warnings.warn(
            f"the machine was busy while this table was measured (load average up to "
            f"{max(loads):.1f} on {cores} cores); its latencies may be off: build it on an idle "
            "machine",
            NasforgeWarning,
            stacklevel=2,
        )
    fit = table.meta.get("fit")
    if fit:
        sums = sorted(n["sum_ms"] for n in fit["networks"])
        typical = sums[len(sums) // 2]
        shift = table.calibrate(typical) - typical
        if typical > 0 and abs(shift) > 0.25 * typical:
            warnings.warn(
                f"the fitted scale {table.scale:.2f} and constant {table.constant_ms:+.2f} ms "
                f"move a typical network's summed ops by {100 * shift / typical:+.0f} %: "
                "whole networks ran at another speed than their ops (a busy or throttled "
                "machine?); rebuild the table, or check it with "
                "benchmarks/latency_table_error.py",
                NasforgeWarning,
                stacklevel=2,
            )
