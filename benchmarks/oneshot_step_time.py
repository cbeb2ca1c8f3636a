"""Seconds per supernet training step: NB201 supernet C=16 N=5, 32×32 CIFAR-10 minibatches of
64, on ``--threads`` torch threads (2), for DARTS (first order: an α step on a validation batch,
then a weight step), GDAS and SPOS; and where DARTS's time goes (torch.profiler).

    python benchmarks/oneshot_step_time.py [--steps 5] [--threads 2] [--methods darts,gdas,spos]

The issue's reference is NATS-Bench's own code measured on this kind of machine: 3.94 s (DARTS),
0.81 s (GDAS), 0.75 s (SPOS) per step. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.data.datasets import load_dataset
from nasforge.oneshot.methods import make_method
from nasforge.oneshot.supernet import NB201Supernet
from nasforge.oneshot.train import _detached

REFERENCE = {"darts": 3.94, "gdas": 0.81, "spos": 0.75}


def one_step(method, optimiser, batch, val, rng) -> None:
    method.arch_step(batch, val, 0.025)
    optimiser.zero_grad(set_to_none=True)
    for path in method.train_paths(rng):
        F.cross_entropy(method.net(batch[0], _detached(path)), batch[1]).backward()
    torch.nn.utils.clip_grad_norm_(optimiser.param_groups[0]["params"], 5.0)
    optimiser.step()


def time_method(name: str, data, steps: int) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    net = NB201Supernet(C=16, N=5)
    method = make_method(name, net, {}, epochs=10, seed=0)
    optimiser = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    rng = np.random.default_rng(0)
    x, y = data.train_x, data.train_y
    times = []
    for step in range(steps + 2):  # two warm-up steps
        i = step * 128
        batch, val = (x[i : i + 64], y[i : i + 64]), (x[i + 64 : i + 128], y[i + 64 : i + 128])
        start = time.perf_counter()
        one_step(method, optimiser, batch, val, rng)
        if step >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times), times


def profile_darts(data) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    net = NB201Supernet(C=16, N=5)
    method = make_method("darts", net, {}, epochs=10, seed=0)
    optimiser = torch.optim.SGD(net.parameters(), lr=0.025)
    rng = np.random.default_rng(0)
    batch, val = (
        (data.train_x[:64], data.train_y[:64]),
        (data.train_x[64:128], data.train_y[64:128]),
    )
    one_step(method, optimiser, batch, val, rng)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        one_step(method, optimiser, batch, val, rng)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    return [(e.key, 100.0 * e.self_cpu_time_total / total) for e in rows[:8]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="darts,gdas,spos")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("cifar10")
    out = {"threads": args.threads, "batch": 64, "supernet": "NB201 C=16 N=5, 32x32"}
    print(f"NB201 supernet C=16 N=5, batch 64, 32x32 CIFAR-10, {args.threads} threads")
    print("| method | s/step (median) | reference (NATS-Bench code) | speed-up |")
    print("|---|---|---|---|")
    for name in args.methods.split(","):
        median, times = time_method(name, data, args.steps)
        ref = REFERENCE.get(name)
        ratio = f"{ref / median:.2f}x" if ref else "-"
        print(f"| {name} | {median:.3f} | {ref if ref else '-'} | {ratio} |", flush=True)
        out[name] = {"median": median, "times": times, "reference": ref}
    print("\nwhere DARTS's step goes (self CPU time):")
    for key, share in profile_darts(data):
        print(f"  {share:5.1f} %  {key}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
