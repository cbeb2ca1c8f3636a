"""Training and evaluation throughput of the `Train` estimator vs a minimal hand-written loop.

    python benchmarks/train_throughput.py [--dataset cifar10] [--steps 5] [--repeats 3]
                                          [--threads 1,2] [--batch-size 128] [--variants all]

Issue #6 asks that the estimator train at >= 0.95x the images/s of the loop a PyTorch user
would write by hand, on the same network, data, batch size and thread count. Both train a
fresh NB201 network (default: the ResNet-like cell at the benchmark's size, C=16, N=5) built
from the same seed, on the same in-memory CIFAR-10 images, in the same batch order, with the
same SGD and per-step cosine schedule, so they compute the same numbers (the script checks
that their mean losses agree) and only the loop's overhead differs.

*Estimator* is timed through its public path: ``Train.evaluate`` with ``epochs=1`` on a
dataset cut to ``steps * batch_size`` training images, the epoch's seconds read from the
``on_epoch`` hook (network building, validation and test scoring lie outside it; the shrunken
validation and test sets keep them cheap). *Hand* times the same epoch of a plain loop.
Everything is warmed up first (oneDNN primitives, allocator), then repeats are interleaved,
alternating which runs first, because the machine is shared and noisy: the table gives the
median and min/max images/s and the estimator/hand ratio (median of per-repeat ratios).

Variants of the hand loop show what moves the number: channels-last memory format,
``zero_grad(set_to_none=False)``, a ``loss.item()`` per step, gathering the epoch's images once
and slicing batches instead of ``index_select`` per batch, and the thread count. Evaluation
(inference over ``--eval-images`` test images) is timed separately: the estimator's own scoring
routine vs hand loops with autograd on, ``no_grad``, ``inference_mode``, channels-last and a
smaller batch. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from nasforge.core import Candidate
from nasforge.data.datasets import ImageDataset, load_dataset
from nasforge.errors import DataNotFoundError
from nasforge.estimators.train import Train
from nasforge.spaces.nb201 import NB201Space

#: NAS-Bench-201's "ResNet" cell: two 3x3 convs in series plus a skip.
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"

#: Hand-loop variants: name -> the options that differ from the plain hand loop.
TRAIN_VARIANTS: dict[str, dict[str, bool]] = {
    "channels_last": {"channels_last": True},
    "zero_grad(set_to_none=False)": {"set_to_none": False},
    "loss.item() every step": {"item": True},
    "gather epoch once, slice batches": {"slice": True},
}

#: Evaluation variants: name -> (grad mode, channels_last, batch size or None for --eval-batch).
EVAL_VARIANTS: dict[str, tuple[str, bool, int | None]] = {
    "hand: autograd on": ("grad", False, None),
    "hand: no_grad": ("no_grad", False, None),
    "hand: inference_mode": ("inference", False, None),
    "hand: inference_mode + channels_last": ("inference", True, None),
    "hand: inference_mode, batch 256": ("inference", False, 256),
}

SEED = 0
VAL_IMAGES = 64  # validation images of the shrunken dataset: scored once per estimator run
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4  # Train's defaults, restated for the hand loop


@dataclass
class Timings:
    """Images/s of one configuration over the repeats, and its mean losses (for the check)."""

    label: str
    threads: int
    rates: list[float] = field(default_factory=list)  # images per wall second
    cpu_rates: list[float] = field(default_factory=list)  # images per CPU second of the process
    losses: list[float] = field(default_factory=list)

    def clear(self) -> None:
        self.rates.clear()
        self.cpu_rates.clear()
        self.losses.clear()


# --- data and network ---------------------------------------------------------------------------


def load(name: str) -> ImageDataset:
    try:
        return load_dataset(name)
    except DataNotFoundError as err:
        sys.exit(
            f"{err}\nset NASFORGE_DATA to the folder holding {name}/ (see the data README) "
            "or pick another dataset with --dataset (e.g. digits, which needs no files)"
        )


def shrink(data: ImageDataset, train_images: int, test_images: int) -> ImageDataset:
    """The first images of each split: Train then trains exactly the images we time."""
    if train_images > len(data.train_x):
        sys.exit(f"{data.name} has {len(data.train_x)} training images; need {train_images}")
    return ImageDataset(
        name=data.name,
        train_x=data.train_x[:train_images].clone(),
        train_y=data.train_y[:train_images].clone(),
        test_x=data.test_x[:test_images].clone(),
        test_y=data.test_y[:test_images].clone(),
        classes=data.classes,
        channels=data.channels,
        size=data.size,
        mean=data.mean,
        std=data.std,
    )


def make_estimator(
    space: NB201Space,
    data: ImageDataset,
    args: argparse.Namespace,
    threads: int,
    hook: Callable[..., None],
    channels_last: bool = False,
) -> Train:
    train_images = len(data.train_x)
    return Train(
        space,
        data,
        epochs=1,
        batch_size=args.batch_size,
        val_fraction=VAL_IMAGES / train_images,
        seed=SEED,
        net={"C": args.C, "N": args.N},
        threads=threads,
        eval_batch_size=args.eval_batch,
        on_epoch=hook,
        channels_last=channels_last,
    )


def fresh_model(space: NB201Space, arch: object, data: ImageDataset, args) -> torch.nn.Module:
    """Built exactly as Train builds it (same seed, same keywords), so the weights match."""
    torch.manual_seed(SEED)
    return space.build(
        arch, C=args.C, N=args.N, in_channels=data.channels, num_classes=data.classes
    )


# --- the two training loops ---------------------------------------------------------------------


def time_estimator(estimator: Train, arch: object) -> tuple[float, float, float]:
    """(wall seconds of the training epoch, CPU seconds up to its end, its mean loss).

    The wall time is the ``on_epoch`` hook's epoch seconds; the CPU time runs from the call of
    ``evaluate`` to the hook, so it also counts building the network, as the hand loop's does.
    """
    calls: list[tuple] = []
    estimator.on_epoch = lambda *a: calls.append((time.perf_counter(), time.process_time(), *a))
    before, cpu_before = time.perf_counter(), time.process_time()
    result = estimator.evaluate(Candidate(arch))
    if not calls:
        raise RuntimeError("Train.evaluate did not call on_epoch; cannot time its epoch")
    stamp, cpu_stamp, *hook_args = calls[0]
    if len(hook_args) >= 3 and isinstance(hook_args[2], float):
        seconds = hook_args[2]  # (epoch, mean loss, epoch seconds)
    else:  # the hook's signature changed: fall back to the wall time up to the hook
        seconds = stamp - before
    loss = hook_args[1] if len(hook_args) >= 2 else result.metrics.get("train_loss", math.nan)
    return seconds, cpu_stamp - cpu_before, float(loss)


def time_hand(
    build: Callable[[], torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    batch_size: int,
    *,
    channels_last: bool = False,
    set_to_none: bool = True,
    item: bool = False,
    slice: bool = False,
) -> tuple[float, float, float]:
    """One epoch of the loop a user writes: (wall seconds of the epoch, CPU seconds from
    building the network to the epoch's end, mean loss over the epoch's images).

    Batch order, schedule and optimiser mirror Train (seeded ``randperm`` per epoch, cosine per
    step, SGD with Nesterov momentum), so without channels-last the losses agree exactly.
    """
    cpu_before = time.process_time()
    model = build()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.SGD(
        model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, nesterov=True
    )
    full, rest = divmod(len(train_idx), batch_size)
    steps = full + (rest >= 2)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps))
    )
    order_rng = torch.Generator().manual_seed(SEED)
    losses: list[torch.Tensor] = []
    sizes: list[int] = []
    model.train()
    start = time.perf_counter()
    order = train_idx[torch.randperm(len(train_idx), generator=order_rng)]
    if slice:
        xs, ys = x[order], y[order]
    for b in range(steps):
        lo, hi = b * batch_size, (b + 1) * batch_size
        if slice:
            xb, yb = xs[lo:hi], ys[lo:hi]
        else:
            idx = order[lo:hi]
            xb, yb = x[idx], y[idx]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(xb), yb)
        optimiser.zero_grad(set_to_none=set_to_none)
        loss.backward()
        optimiser.step()
        schedule.step()
        if item:
            loss.item()
        losses.append(loss.detach())
        sizes.append(len(yb))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_before
    weights = torch.tensor(sizes, dtype=torch.float32)
    mean_loss = float((torch.stack(losses) * weights).sum() / weights.sum())
    return seconds, cpu, mean_loss


# --- evaluation ---------------------------------------------------------------------------------


def time_eval_hand(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mode: str,
    channels_last: bool,
    batch: int,
) -> tuple[float, float]:
    """(wall, CPU) seconds to score all of ``x`` (accuracy and summed loss, as Train does)."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.eval()
    context = {
        "grad": torch.enable_grad,
        "no_grad": torch.no_grad,
        "inference": torch.inference_mode,
    }[mode]
    start, cpu_start = time.perf_counter(), time.process_time()
    correct, loss_sum = 0, 0.0
    with context():
        for lo in range(0, len(x), batch):
            xb, yb = x[lo : lo + batch], y[lo : lo + batch]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            logits = model(xb)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum").detach())
            correct += int((logits.argmax(dim=1) == yb).sum())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    model.train()
    return seconds, cpu


def time_eval_estimator(
    estimator: Train, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float] | None:
    """(wall, CPU) seconds of the estimator's own scoring routine; None if it is not there."""
    score = getattr(estimator, "_score", None)
    if score is None or "idx" not in inspect.signature(score).parameters:
        return None
    start, cpu_start = time.perf_counter(), time.process_time()
    score(model, x, y, None)
    return time.perf_counter() - start, time.process_time() - cpu_start


# --- running ------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def paired_ratio(values: list[float], base: list[float]) -> float:
    """Median over repeats of value / base from the same repeat (they ran back to back)."""
    return median([a / b for a, b in zip(values, base, strict=True)])


def parse_threads(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        sys.exit(f"--threads must be comma-separated whole numbers, got {text!r}")
    if not values or min(values) < 1:
        sys.exit(f"--threads must list whole numbers >= 1, got {text!r}")
    return values


def parse_variants(text: str) -> list[str]:
    if text == "all":
        return list(TRAIN_VARIANTS)
    if text == "none":
        return []
    names = [v.strip() for v in text.split(";") if v.strip()]
    unknown = [v for v in names if v not in TRAIN_VARIANTS]
    if unknown:
        sys.exit(f"unknown --variants {unknown}; accepted: all, none, {list(TRAIN_VARIANTS)}")
    return names


Runner = Callable[[], tuple[float, float, float]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10", help="cifar10 (default) or any loadable")
    parser.add_argument("--arch", default=RESNET_CELL, help="NB201 cell string")
    parser.add_argument("--C", type=int, default=16, help="NB201 channels (benchmark: 16)")
    parser.add_argument("--N", type=int, default=5, help="NB201 cells per stage (benchmark: 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats")
    parser.add_argument("--threads", default="1", help="torch threads, e.g. 1,2")
    parser.add_argument(
        "--variants",
        default="all",
        help="hand-loop variants to time at the first thread count: all, none, or names "
        f"separated by ';' from: {'; '.join(TRAIN_VARIANTS)}",
    )
    parser.add_argument("--eval-images", type=int, default=300, help="0 skips evaluation")
    parser.add_argument("--eval-batch", type=int, default=1000, help="Train's eval_batch_size")
    args = parser.parse_args()
    thread_counts = parse_threads(args.threads)
    variants = parse_variants(args.variants)
    if args.steps < 1 or args.repeats < 1 or args.batch_size < 2:
        sys.exit("--steps and --repeats must be >= 1, --batch-size >= 2")

    space = NB201Space()
    arch = space.from_string(args.arch)
    full = load(args.dataset)
    data = shrink(full, args.steps * args.batch_size + VAL_IMAGES, 2)  # tiny test set: Train
    eval_x = full.test_x[: args.eval_images].clone()  # scores it after every run
    eval_y = full.test_y[: args.eval_images].clone()
    del full
    x, y = data.train_x, data.train_y
    x_cl = x.contiguous(memory_format=torch.channels_last)  # converted once, outside timing
    build = partial(fresh_model, space, arch, data, args)
    params = sum(p.numel() for p in build().parameters())
    print(
        f"{data.name} {data.channels}x{data.size}x{data.size}; NB201 C={args.C} N={args.N} "
        f"({params:,} params) {args.arch}\nbatch {args.batch_size}, {args.steps} timed steps "
        f"({args.steps * args.batch_size} images) per run, {args.repeats} interleaved repeats, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads by default), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )

    configs: list[tuple[Timings, Runner]] = []
    estimators: dict[int, Train] = {}
    for threads in thread_counts:
        estimator = make_estimator(space, data, args, threads, lambda *a: None)
        estimators[threads] = estimator
        idx = estimator.train_idx
        configs.append(
            (Timings("estimator (Train)", threads), partial(time_estimator, estimator, arch))
        )
        configs.append(
            (Timings("hand loop", threads), partial(time_hand, build, x, y, idx, args.batch_size))
        )
    first = thread_counts[0]
    for name in variants:
        options = TRAIN_VARIANTS[name]
        xv = x_cl if options.get("channels_last") else x
        idx = estimators[first].train_idx
        runner = partial(time_hand, build, xv, y, idx, args.batch_size, **options)
        configs.append((Timings(f"hand + {name}", first), runner))
    if "channels_last" in variants:  # the estimator's own switch for the same change
        fast = make_estimator(space, data, args, first, lambda *a: None, channels_last=True)
        configs.append(
            (
                Timings("estimator (Train, channels_last=True)", first),
                partial(time_estimator, fast, arch),
            )
        )

    def run(timings: Timings, runner: Runner) -> None:
        torch.set_num_threads(timings.threads)
        seconds, cpu, loss = runner()
        images = args.steps * args.batch_size
        timings.rates.append(images / seconds)
        timings.cpu_rates.append(images / cpu)
        timings.losses.append(loss)

    started = time.perf_counter()
    print("warming up ...", flush=True)
    warm: set[tuple[int, bool]] = set()
    for timings, runner in configs:  # first use per thread count and memory format: oneDNN
        key = (timings.threads, "channels_last" in timings.label)  # primitives, allocator
        if key not in warm:
            warm.add(key)
            run(timings, runner)
            timings.clear()
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats} ...", flush=True)
        for timings, runner in configs if repeat % 2 == 0 else configs[::-1]:
            run(timings, runner)

    hand = {t.threads: t for t, _ in configs if t.label == "hand loop"}
    print("\n## Training (one epoch of a fresh network, after warm-up)\n")
    print(
        "| loop | threads | images/s median [min, max] | vs hand loop | images/CPU-s median "
        "| vs hand loop (CPU) | mean loss |"
    )
    print("|---|---|---|---|---|---|---|")
    for timings, _ in configs:
        base = hand[timings.threads]
        print(
            f"| {timings.label} | {timings.threads} | {median(timings.rates):.1f} "
            f"[{min(timings.rates):.1f}, {max(timings.rates):.1f}] "
            f"| {paired_ratio(timings.rates, base.rates):.3f} "
            f"| {median(timings.cpu_rates):.1f} "
            f"| {paired_ratio(timings.cpu_rates, base.cpu_rates):.3f} "
            f"| {timings.losses[-1]:.6f} |"
        )
    print(
        "\n'vs hand loop': median over repeats of the ratio to the hand loop run next to it, "
        "same threads. CPU-s: process CPU time from building the network to the epoch's end; "
        "with 1 thread it is far less disturbed by other processes than wall time."
    )
    for threads in thread_counts:
        est = next(
            t for t, _ in configs if t.label.startswith("estimator") and t.threads == threads
        )
        gap = abs(est.losses[-1] / hand[threads].losses[-1] - 1.0)
        print(
            f"threads {threads}: estimator / hand loop = "
            f"{median(est.rates) / median(hand[threads].rates):.3f} wall, "
            f"{median(est.cpu_rates) / median(hand[threads].cpu_rates):.3f} CPU "
            f"(ratios of medians; target >= 0.95); mean losses differ by {gap:.1e} (relative; "
            f"{'same training' if gap < 1e-4 else 'CHECK: not the same training'})"
        )
    if args.eval_images > 0:
        evaluate(build, (eval_x, eval_y), args, estimators[first], first)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def evaluate(
    build: Callable[[], torch.nn.Module],
    images: tuple[torch.Tensor, torch.Tensor],
    args: argparse.Namespace,
    estimator: Train,
    threads: int,
) -> None:
    """Inference throughput: the estimator's scoring routine vs hand-written variants."""
    torch.set_num_threads(threads)
    xe, ye = images
    runners: dict[str, Callable[[], tuple[float, float] | None]] = {
        f"estimator (Train._score, batch {args.eval_batch})": lambda: time_eval_estimator(
            estimator, build(), xe, ye
        )
    }
    for name, (mode, channels_last, batch) in EVAL_VARIANTS.items():
        size = batch or args.eval_batch
        label = name if batch else f"{name}, batch {size}"
        runners[label] = partial(_eval_hand, build, xe, ye, mode, channels_last, size)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    cpu_rates: dict[str, list[float]] = {name: [] for name in runners}
    print(f"\nevaluation: {len(xe)} test images, {threads} thread(s) ...", flush=True)
    for repeat in range(args.repeats + 1):  # round 0 warms up
        for name in list(runners) if repeat % 2 == 0 else list(runners)[::-1]:
            timed = runners[name]()
            if timed is not None and repeat:
                rates[name].append(len(xe) / timed[0])
                cpu_rates[name].append(len(xe) / timed[1])
    base_name = f"hand: inference_mode, batch {args.eval_batch}"
    base, cpu_base = rates[base_name], cpu_rates[base_name]
    print("\n## Evaluation (inference, model.eval())\n")
    print(
        "| scoring | images/s median [min, max] | vs hand inference_mode "
        "| images/CPU-s median | vs hand (CPU) |"
    )
    print("|---|---|---|---|---|")
    for name, values in rates.items():
        if not values:
            print(f"| {name} | n/a (no Train._score to call) | | | |")
            continue
        print(
            f"| {name} | {median(values):.1f} [{min(values):.1f}, {max(values):.1f}] "
            f"| {paired_ratio(values, base):.3f} | {median(cpu_rates[name]):.1f} "
            f"| {paired_ratio(cpu_rates[name], cpu_base):.3f} |"
        )


def _eval_hand(build, x, y, mode: str, channels_last: bool, batch: int) -> tuple[float, float]:
    return time_eval_hand(build(), x, y, mode, channels_last, batch)


if __name__ == "__main__":
    main()
