"""Searched compression vs uniform compression at three budgets each (#16: "The AMC-style and
HAQ-style searches vs. uniform ratios / uniform 8-bit and 4-bit at three budgets").

    python benchmarks/searched_compression.py [--network cnn|mobilenet] [--resolution 16]
        [--train-images 10000] [--val-images 2000] [--test-images 10000] [--epochs 6]
        [--prune 0.3,0.5,0.7] [--quantize 0.5,0.375,0.3125] [--strategy evolution]
        [--trials 50] [--seeds 2] [--bn-images 1000] [--finetune-epochs 0] [--joint]
        [--threads N] [--smoke] [--out benchmarks/out/searched_compression]

The network, trained once on ``--train-images`` Fashion-MNIST training images resized to
``--resolution`` pixels (`data.datasets.resized`) for ``--epochs`` of `finetune.fit`'s SGD
(lr 0.05, batch 64, cosine: the `compress.scaling.Recipe` of ``compound_scaling.py``):

* ``cnn`` (default): conv-BN-ReLU 16, 32, pool, 64, 64, pool, a 128-unit hidden layer and the
  classifier; 4.9 MMACs and 193k parameters at 16 pixels, 5 prunable and 6 quantisable layers
  that differ as the papers' do (the four convs hold 97 % of the MACs and 31 % of the weights,
  the hidden layer 68 % of the weights and 3 % of the MACs). The default: 4^5 and 4^6 policies, so
  ``--trials`` 50 search them in earnest, each trial well under a second on a CPU;
* ``mobilenet``: MobileNetV2 at width 0.5 (the mobile space's stages, 6.9 MMACs at 16 pixels),
  the network AMC and HAQ report on, with 25 prunable groups and 53 quantisable layers. Its
  4^25 and 4^53 policies need hundreds of trials (AMC searches 400 episodes, HAQ 600) at
  seconds each: give ``--trials 300`` or more, and hours.

``--val-images`` further training images, never trained on, are the validation split every
policy is chosen on; ``--test-images`` test images score the chosen and the uniform policies
for the report only. Per budget and per seed, `compress.search.search_compression` runs
``--trials`` policies of ``--strategy``; every pruned policy (searched or uniform) is scored
after its batch norms are recalibrated on ``--bn-images`` training images (adaptive batch
norm, EagleEye: without it a pruned network with batch norm is near chance, and so is every
trial's objective), every quantised one after 256 training images set its activation ranges;
both after ``--finetune-epochs`` of fine-tuning (0: none, as AMC):

* pruning (AMC-style): per-layer ratios from 0 / 0.25 / 0.5 / 0.75 with at most ``--prune``
  of the MACs, against the best uniform ratio within the same MACs (the space's ratios and the
  smallest ratio that fits, by bisection), and the unpruned network;
* quantisation (HAQ-style): per-layer weight bits from 2 / 4 / 6 / 8 (activations 8 bits) with
  at most ``--quantize`` of the 8-bit weights' size (0.5 / 0.375 / 0.3125: the size of uniform
  4 / 3 / 2.5-bit weights), against the best uniform bit-width within the size, and uniform 8
  and 4 bits; ``--joint`` searches activation bits too, under BitOps budgets instead. Sizes
  above 4 bits are left out of the defaults: uniform 4-bit lost nothing measurable on the
  CNN in trial runs, so there is nothing to search for there.

Prints progress, then a Markdown table (searched: mean ± std over seeds; uniform policies do
not depend on the seed); writes ``OUT.md`` and ``OUT.json`` (every trial's policy, validation
accuracy and cost). Measures, does not assert: the searched policy is the best of many on the
validation split, so its validation accuracy is optimistic; compare test accuracies.

Expected time with the defaults on 2 busy CPU cores: about 1 minute to load and train, then
1 to 1.5 minutes per search (6 budgets x 2 seeds), about 20 minutes in all. ``--smoke``
(1,000 / 300 / 300 images, 1 epoch, 4 trials, 1 seed) takes under a minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nasforge.compress.finetune import accuracy, fit
from nasforge.compress.search import CompressionData, CompressionSearch, Scored, search_compression
from nasforge.data.datasets import load_dataset, resized
from nasforge.spaces import mobile

OUT = Path(__file__).resolve().parent / "out"
NETWORKS = {"cnn": "small CNN", "mobilenet": "MobileNetV2 0.5"}
SMOKE = {
    "train_images": 1000,
    "val_images": 300,
    "test_images": 300,
    "epochs": 1,
    "trials": 4,
    "seeds": 1,
}


def _fractions(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", choices=("cnn", "mobilenet"), default="cnn")
    p.add_argument("--train-images", type=int, default=10000)
    p.add_argument("--val-images", type=int, default=2000)
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--resolution", type=int, default=16)
    p.add_argument("--prune", type=_fractions, default=[0.3, 0.5, 0.7], help="shares of MACs")
    p.add_argument(
        "--quantize",
        type=_fractions,
        default=[0.5, 0.375, 0.3125],
        help="shares of the 8-bit size (or BitOps with --joint)",
    )
    p.add_argument("--strategy", default="evolution")
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--bn-images", type=int, default=1000)
    p.add_argument("--finetune-epochs", type=int, default=0)
    p.add_argument("--joint", action="store_true", help="search activation bits too (BitOps)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--out", type=Path, default=OUT / "searched_compression")
    args = p.parse_args()
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def prepare(args: argparse.Namespace) -> CompressionData:
    """Fashion-MNIST at ``--resolution``: seeded disjoint train / validation images from the
    training set, the first test images."""
    data = resized(load_dataset("fashion-mnist"), args.resolution)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(data.train_x)))
    train = order[: args.train_images]
    val = order[args.train_images : args.train_images + args.val_images]
    n = args.test_images
    return CompressionData(
        data.train_x[train],
        data.train_y[train],
        data.train_x[val],
        data.train_y[val],
        data.test_x[:n],
        data.test_y[:n],
    )


def cnn(side: int, channels: int) -> nn.Sequential:
    """conv-BN-ReLU 16, 32, max pool, 64, 64, max pool, hidden linear 128, classifier."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(channels, 16), *block(16, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * (side // 4) ** 2, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10),
    )  # fmt: skip


def train(args: argparse.Namespace, data: CompressionData) -> nn.Module:
    torch.manual_seed(0)
    if args.network == "cnn":
        net: nn.Module = cnn(args.resolution, data.shape[0])
    else:
        arch = mobile.MobileArch(mobile.MOBILENETV2_BASE.stages, 0.5)
        net = mobile.build(arch, in_channels=data.shape[0], num_classes=10,
                           input_size=args.resolution)  # fmt: skip

    def progress(epoch: int, epochs: int, loss: float, seconds: float) -> None:
        print(f"  epoch {epoch}/{epochs}: loss {loss:.3f} in {seconds:.0f}s", flush=True)

    fit(
        net,
        data.train_x,
        data.train_y,
        epochs=args.epochs,
        lr=0.05,
        batch_size=64,
        progress=progress,
    )
    return net.eval()


def summary(found: CompressionSearch) -> str:
    """The searched policy in a few numbers (the whole policy is in the JSON)."""
    values = found.space.from_string(found.searched.policy)
    if found.kind == "prune":
        return f"layer-mean ratio {statistics.fmean(values):.2f}"
    weights = statistics.fmean(w for w, _ in values)
    acts = statistics.fmean(a for _, a in values)
    return f"layer-mean bits w{weights:.1f} a{acts:.1f}"


def size_text(kind: str, rows: list[Scored]) -> str:
    """MMACs (pruning) or KiB of quantised weights, the mean over ``rows``."""
    if kind == "prune":
        return f"{statistics.fmean(r.metrics['macs'] for r in rows) / 1e6:.2f} MMACs"
    return f"{statistics.fmean(r.metrics['size_bits'] for r in rows) / 8192:.1f} KiB"


def ms(values: list[float | None]) -> str:
    if not values or any(v is None for v in values):
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}"


def table(runs: list[CompressionSearch]) -> list[str]:
    """One block of rows per (kind, budget): searched over seeds, then the uniform policies
    within the budget (best first) and the references out of it."""
    lines = [
        "| kind | budget | policy | val acc | test acc | cost / full | size | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r.kind, r.fraction) for r in runs}, key=lambda k: (k[0], -k[1]))
    for kind, fraction in keys:
        group = [r for r in runs if (r.kind, r.fraction) == (kind, fraction)]
        first = group[0]
        budget = f"{first.metric} ≤ {fraction:g}"
        searched = [r.searched for r in group]
        lines.append(
            f"| {kind} | {budget} | searched ({first.strategy}, {len(group)} seeds) | "
            f"{ms([s.val_acc for s in searched])} | {ms([s.test_acc for s in searched])} | "
            f"{ms([s.cost / first.reference for s in searched])} | "
            f"{size_text(kind, searched)} | {'; '.join(summary(r) for r in group)} |"
        )
        for row in sorted(first.uniform, key=lambda u: (not u.within_budget, -u.val_acc)):
            best = "best uniform in budget" if row == first.baseline else ""
            over = "" if row.within_budget else "over budget"
            if not (
                row.within_budget or row.label in ("unpruned", "uniform 8-bit", "uniform 4-bit")
            ):
                continue
            lines.append(
                f"| {kind} | {budget} | {row.label} | {row.val_acc:.2f} | "
                f"{'-' if row.test_acc is None else f'{row.test_acc:.2f}'} | "
                f"{row.cost / first.reference:.3f} | {size_text(kind, [row])} | {best or over} |"
            )
    return lines


def main() -> None:
    args = _args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = prepare(args)
    print(
        f"data: {len(data.train_x)} train, {len(data.val_x)} val, {len(data.test_x)} test "
        f"images at {args.resolution}px ({clock(time.perf_counter() - started)})",
        flush=True,
    )
    net = train(args, data)
    float_val = accuracy(net, data.val_x, data.val_y)
    float_test = accuracy(net, data.test_x, data.test_y)  # type: ignore[arg-type]
    print(
        f"trained: val {float_val:.2f}, test {float_test:.2f} "
        f"({clock(time.perf_counter() - started)})",
        flush=True,
    )
    jobs = [("prune", f) for f in args.prune] + [("quantize", f) for f in args.quantize]
    runs: list[CompressionSearch] = []
    search_started = time.perf_counter()
    total = len(jobs) * args.seeds
    for kind, fraction in jobs:
        for seed in range(args.seeds):
            found = search_compression(
                kind,
                net,
                data,
                fraction,
                strategy=args.strategy,
                trials=args.trials,
                seed=seed,
                finetune_epochs=args.finetune_epochs,
                bn_images=args.bn_images,
                activation_bits=None if args.joint else 8,
            )
            runs.append(found)
            elapsed = time.perf_counter() - search_started
            eta = elapsed / len(runs) * (total - len(runs))
            print(
                f"  [{len(runs)}/{total}] {kind} {found.metric} <= {fraction:g}, seed {seed}: "
                f"searched val {found.searched.val_acc:.2f} vs {found.baseline.label} "
                f"{found.baseline.val_acc:.2f}; elapsed {clock(elapsed)}, ETA {clock(eta)}",
                flush=True,
            )
    head = (
        f"{NETWORKS[args.network]} on Fashion-MNIST at {args.resolution}px, trained "
        f"{args.epochs} epochs on {len(data.train_x)} images: val {float_val:.2f}, test "
        f"{float_test:.2f}; {args.trials} trials of {args.strategy} per search, "
        f"batch norm recalibrated on {args.bn_images} images, {args.finetune_epochs} "
        f"fine-tuning epochs; val {len(data.val_x)}, test "
        f"{len(data.test_x)} images"
    )
    lines = [head, "", *table(runs)]
    print("\n" + "\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "setup": {k: str(v) for k, v in vars(args).items()},
                "float": {"val_acc": float_val, "test_acc": float_test},
                "searches": [r.to_json() for r in runs],
                "seconds": time.perf_counter() - started,
            },
            indent=1,
        )
    )
    print(
        f"wrote {args.out.with_suffix('.md')} and .json in {clock(time.perf_counter() - started)}"
    )


if __name__ == "__main__":
    main()
