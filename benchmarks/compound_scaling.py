"""Compound scaling vs. width-, depth- and resolution-only scaling at matched MACs (issue #16).

    python benchmarks/compound_scaling.py [--epochs 3] [--subset 5000] [--seeds 3] [--phis 1,2]
        [--base-resolution 16] [--grid 1.0,1.2,1.4,2.0:1.0,1.1,1.2,1.41:1.0,1.15,1.2,1.41]
        [--coefficients A,B,G] [--out benchmarks/out/compound_scaling]

Tan & Le, "EfficientNet", ICML 2019 (`nasforge.compress.scaling`): the base network is
MobileNetV2 at width 0.5 (the mobile space's stages) on Fashion-MNIST images resized from 28
to ``--base-resolution`` pixels. Step 1 grid-searches (α, β, γ) with α·β²·γ² within
``--tolerance`` of 2 at φ = 1, each candidate trained on ``--subset`` training images less a
20% validation split and scored on that split (never on the test set); ``--coefficients`` skips
it. Step 2 scales the base network by φ in ``--phis`` with the best (α, β, γ), and scales width
alone, depth alone and resolution alone to the MACs counted for the compound network at the same
φ. Every network (and the base) trains with the same recipe on the whole subset, once per seed,
and is scored on the test images; params, MACs and CPU latency (eager, 1 thread, batch 1, median
of 30 after 5 warm-up) are measured once per network.

Prints progress lines with an ETA (from MACs x images x epochs, so a rough one: small networks
on a CPU pay per-layer overheads too), then a Markdown table; writes ``OUT.json`` and ``OUT.png``
(test accuracy vs MACs, one line per method, error bars one standard deviation over seeds).
Measures, does not assert. Latency on a shared machine is noisy; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nasforge.compress.finetune import accuracy
from nasforge.compress.scaling import (
    KINDS,
    GridPoint,
    Recipe,
    Scaling,
    compound,
    describe,
    grid_candidates,
    grid_search,
    network_macs,
    resize_images,
    single_dimension,
    train_scaled,
)
from nasforge.data.datasets import load_dataset
from nasforge.latency.measure import measure
from nasforge.nn.profile import count_params
from nasforge.spaces import mobile

ARCH = mobile.MobileArch(mobile.MOBILENETV2_BASE.stages, 0.5)
METHODS = ("compound", *KINDS)
BENCH_GRID = "1.0,1.2,1.4,2.0:1.0,1.1,1.2,1.41:1.0,1.15,1.2,1.41"


def parse_grid(text: str) -> tuple[tuple[float, ...], ...]:
    """``a1,a2:b1,b2:g1,g2`` -> ((a1, a2), (b1, b2), (g1, g2))."""
    parts = text.split(":")
    if len(parts) != 3:
        raise SystemExit(f"--grid needs three ':'-separated lists (alpha:beta:gamma), got {text!r}")
    return tuple(tuple(float(v) for v in part.split(",")) for part in parts)


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


class Eta:
    """Elapsed time and an ETA from work done so far (work: MACs x images x epochs)."""

    def __init__(self, total: float):
        self.total, self.done, self.started = total, 0.0, time.perf_counter()

    def step(self, work: float) -> str:
        self.done += work
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        return f"elapsed {clock(elapsed)}, ETA {clock(left)}"


def run_grid(
    args: argparse.Namespace, data: Any, x: torch.Tensor, y: torch.Tensor
) -> list[GridPoint]:
    """Step 1: the (α, β, γ) grid at φ = 1, best first."""
    grid = parse_grid(args.grid)
    candidates = grid_candidates(grid, args.tolerance)
    works = [
        network_macs(
            ARCH,
            compound(1.0, *c, args.base_resolution),
            in_channels=data.channels,
            num_classes=data.classes,
            base_resolution=args.base_resolution,
        )
        for c in candidates
    ]
    eta = Eta(sum(works))
    print(f"grid: {len(candidates)} (alpha, beta, gamma) within {args.tolerance:g} of 2")

    def progress(done: int, total: int, p: GridPoint) -> None:
        status = eta.step(works[done - 1])
        reused = "" if p.trained else " (same network as an earlier point)"
        print(
            f"  grid [{done}/{total}] a={p.alpha:g} b={p.beta:g} g={p.gamma:g} "
            f"({p.scaling.label()}): val {p.val_accuracy:.2f}% in {p.seconds:.0f}s{reused}; "
            f"{status}",
            flush=True,
        )

    return grid_search(
        ARCH,
        x,
        y,
        base_resolution=args.base_resolution,
        num_classes=data.classes,
        grid=grid,
        tolerance=args.tolerance,
        recipe=Recipe(epochs=args.grid_epochs or args.epochs, lr=args.lr),
        device=args.device,
        progress=progress,
    )


def networks(
    args: argparse.Namespace, coefficients: tuple[float, float, float], channels: int, classes: int
) -> list[dict[str, Any]]:
    """The base network, then per φ the compound network and the three matched baselines."""
    options = {"in_channels": channels, "num_classes": classes}
    base = args.base_resolution
    rows: list[dict[str, Any]] = [
        {"method": "base", "phi": 0.0, "scaling": Scaling(resolution=base)}
    ]
    for phi in args.phis:
        scaled = compound(phi, *coefficients, base)
        target = network_macs(ARCH, scaled, base_resolution=base, **options)
        rows.append({"method": "compound", "phi": phi, "scaling": scaled, "target": target})
        for kind in KINDS:
            alone = single_dimension(kind, target, ARCH, base_resolution=base, **options)
            rows.append({"method": kind, "phi": phi, "scaling": alone, "target": target})
    for row in rows:
        row["macs"] = network_macs(ARCH, row["scaling"], base_resolution=base, **options)
    return rows


def train_all(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    data: Any,
    x: torch.Tensor,
    y: torch.Tensor,
) -> None:
    """Train every network once per seed; test accuracy, params and latency into the rows."""
    recipe = Recipe(epochs=args.epochs, lr=args.lr)
    eta = Eta(sum(row["macs"] for row in rows) * args.seeds)
    total, done = len(rows) * args.seeds, 0
    test_x, test_y = data.test_x[: args.test_images], data.test_y[: args.test_images]
    for row in rows:
        scaling: Scaling = row["scaling"]
        test_r = resize_images(test_x, scaling.resolution)
        row["accuracy"], row["seconds"] = [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            net = train_scaled(
                ARCH,
                scaling,
                x,
                y,
                base_resolution=args.base_resolution,
                num_classes=data.classes,
                recipe=recipe,
                seed=seed,
                device=args.device,
            )
            row["accuracy"].append(accuracy(net, test_r, test_y))
            row["seconds"].append(time.perf_counter() - started)
            if seed == 0:
                row["params"] = count_params(net)
                shape = (data.channels, scaling.resolution, scaling.resolution)
                row["latency"] = measure(net, shape, "eager", threads=1, warmup=5, repeats=30)
            done += 1
            print(
                f"[{done}/{total}] {row['method']} phi={row['phi']:g} seed {seed} "
                f"({scaling.label()}, {row['macs'] / 1e6:.1f} MMACs): test "
                f"{row['accuracy'][-1]:.2f}% in {row['seconds'][-1]:.0f}s; {eta.step(row['macs'])}",
                flush=True,
            )


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def print_grid(points: list[GridPoint], base_macs: int) -> None:
    print("\n| alpha | beta | gamma | a*b^2*g^2 | layers | d | w | r | MACs / base | val acc % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in points:
        s = p.scaling
        print(
            f"| {p.alpha:g} | {p.beta:g} | {p.gamma:g} | {p.factor:.3f} | {sum(p.layers)} | "
            f"{s.depth:.3g} | {s.width:.3g} | {s.resolution} | {p.macs / base_macs:.2f} | "
            f"{p.val_accuracy:.2f}{'' if p.trained else ' (same net)'} |"
        )


def print_table(rows: list[dict[str, Any]], base: int) -> None:
    print(
        "\n| phi | scaling | d | w | r | layers | params | MMACs | MACs / target | latency ms "
        "(median / p90) | test acc % (mean ± std) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        s, info = row["scaling"], describe(ARCH, row["scaling"], base)
        mean, std = mean_std(row["accuracy"])
        ratio = f"{row['macs'] / row['target']:.3f}" if "target" in row else "-"
        lat = row["latency"]
        print(
            f"| {row['phi']:g} | {row['method']} | {s.depth:.4g} | {s.width:.3g} | "
            f"{s.resolution} | {sum(info['layers'])} | {row['params']:,} | "
            f"{row['macs'] / 1e6:.2f} | {ratio} | {lat.median_ms:.2f} / {lat.p90_ms:.2f} | "
            f"{mean:.2f} ± {std:.2f} |"
        )


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    base = next(r for r in rows if r["method"] == "base")
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for method, marker in zip(METHODS, "osD^", strict=True):
        line = [base, *(r for r in rows if r["method"] == method)]
        stats = [mean_std(r["accuracy"]) for r in line]
        ax.errorbar(
            [r["macs"] / 1e6 for r in line],
            [m for m, _ in stats],
            yerr=[s for _, s in stats],
            marker=marker,
            markevery=list(range(1, len(line))),
            capsize=3,
            label=method if method == "compound" else f"{method} only",
        )
        for r, (m, _) in zip(line[1:], stats[1:], strict=True):
            ax.annotate(
                f"φ={r['phi']:g}",
                (r["macs"] / 1e6, m),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    mean, _ = mean_std(base["accuracy"])
    ax.plot([base["macs"] / 1e6], [mean], "k*", markersize=11, label="base", zorder=5)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("MACs per image (millions, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_json(rows: list[dict[str, Any]], base: int) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        mean, std = mean_std(row["accuracy"])
        record = {k: v for k, v in row.items() if k not in ("scaling", "latency")}
        record.update(
            network=describe(ARCH, row["scaling"], base),
            latency=row["latency"].to_json(),
            accuracy_mean=mean,
            accuracy_std=std,
        )
        out.append(record)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per network")
    parser.add_argument("--grid-epochs", type=int, default=0, help="per candidate (0: --epochs)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--subset", type=int, default=5000, help="training images used")
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--phis", type=lambda t: [float(v) for v in t.split(",")], default=[1.0, 2.0]
    )
    parser.add_argument("--base-resolution", type=int, default=16)
    parser.add_argument("--grid", default=BENCH_GRID, help="alpha values:beta values:gamma values")
    parser.add_argument("--tolerance", type=float, default=0.1, help="|a*b^2*g^2 - 2| allowed")
    parser.add_argument("--coefficients", default="", help="A,B,G: skip the grid search")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--device", default="cpu", help="training device (latency: CPU)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/compound_scaling"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    data = load_dataset("fashion-mnist")
    keep = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(0))
    keep = keep[: args.subset]
    x, y = data.train_x[keep], data.train_y[keep]
    base = args.base_resolution
    print(
        f"fashion-mnist: {len(x)} training images, {min(args.test_images, len(data.test_x))} "
        f"test images; base MobileNetV2 0.5 at {base}px; {args.epochs} epochs, lr {args.lr:g}, "
        f"{args.seeds} seeds; phi {args.phis}"
    )

    base_macs = network_macs(
        ARCH,
        Scaling(resolution=base),
        in_channels=data.channels,
        num_classes=data.classes,
        base_resolution=base,
    )
    grid: list[GridPoint] = []
    if args.coefficients:
        a, b, g = (float(v) for v in args.coefficients.split(","))
    else:
        grid = run_grid(args, data, x, y)
        print_grid(grid, base_macs)
        a, b, g = grid[0].alpha, grid[0].beta, grid[0].gamma
    print(f"\ncompound coefficients: alpha={a:g}, beta={b:g}, gamma={g:g}")

    rows = networks(args, (a, b, g), data.channels, data.classes)
    train_all(args, rows, data, x, y)
    print_table(rows, base)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    title = (
        f"Fashion-MNIST, MobileNetV2 0.5 at {base}px, {len(x)} images x {args.epochs} epochs, "
        f"{args.seeds} seeds\ncompound: alpha={a:g}, beta={b:g}, gamma={g:g}; baselines at "
        "the compound network's MACs"
    )
    plot(rows, args.out.with_suffix(".png"), title)
    record = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "coefficients": [a, b, g],
        "base_macs": base_macs,
        "grid": [asdict(p) for p in grid],
        "rows": to_json(rows, base),
        "wall_s": time.perf_counter() - started,
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    print(f"\nwrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    print(f"total wall time: {clock(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
