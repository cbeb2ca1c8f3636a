"""Does a latency table predict a kernel-size change as the network feels it? (#15: the eager
table was seen to under-predict networks with plain k5/k7 convolutions, and a latency-budget
search passed over its best network for being over budget when measured.)

    python benchmarks/latency_table_kernels.py [--table FILE] [--runtime eager] [--width 0.5]
        [--stage 2] [--rounds 3] [--repeats 50]

Takes MobileNetV2 at ``--width`` and swaps one stage's block for a plain convolution or an
MBConv6 of kernel 3, 5 and 7, the rest unchanged. Every network is measured end to end in
alternating rounds (`LatencyTable.measure_networks`, the table's threads and batch) and
predicted by the table. Printed per network: predicted and measured ms and their ratio; a
ratio that grows with the kernel, above the unchanged network's, is the table under-pricing
large kernels in a network. Measures, does not assert. The default table is the one
``latency_budget_search.py`` builds for Fashion-MNIST (28x28, 1 channel, every width).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", type=Path, default=OUT / "latency-table-eager-wall-r28-c1.json")
    p.add_argument("--runtime", default="eager")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--stage", type=int, default=2, help="which stage (1-7) to change")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args()
    if not args.table.exists():
        raise SystemExit(
            f"no table at {args.table}: build one with nasforge latency-table --space mobile "
            "--width all --input-size 28 --in-channels 1, or run latency_budget_search.py"
        )

    from nasforge.latency.table import LatencyTable
    from nasforge.spaces import mobile

    table = LatencyTable.load(args.table, runtime=args.runtime)
    base = mobile.MobileArch(mobile.MOBILENETV2_BASE.stages, args.width)
    if not 1 <= args.stage <= len(base.stages):
        raise SystemExit(f"--stage must be 1..{len(base.stages)}, got {args.stage}")
    networks = {"MobileNetV2 (unchanged)": base}
    for block in ("conv", "mbconv6"):
        for kernel in (3, 5, 7):
            stages = list(base.stages)
            stages[args.stage - 1] = replace(stages[args.stage - 1], block=block, kernel=kernel)
            arch = mobile.MobileArch(tuple(stages), args.width)
            same = " (= unchanged, measured again: the noise)" if arch == base else ""
            networks[f"stage {args.stage}: {block} k{kernel}{same}"] = arch
    names = list(networks)
    measured: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        results = table.measure_networks(
            [networks[n] for n in names], warmup=10, repeats=args.repeats
        )
        for name, result in zip(names, results, strict=True):
            measured[name].append(result.median_ms)
    print(f"{args.table.name} ({table.runtime}, {table.threads} thread(s), batch {table.batch}), "
          f"width {args.width:g}, medians of {args.rounds} alternating rounds")  # fmt: skip
    print("| network | predicted ms | measured ms | measured / predicted |")
    print("|---|---|---|---|")
    for name in names:
        predicted = table.predict(networks[name])
        median = statistics.median(measured[name])
        print(f"| {name} | {predicted:.3f} | {median:.3f} | {median / predicted:.3f} |")


if __name__ == "__main__":
    main()
