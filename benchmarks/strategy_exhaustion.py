"""How fast a strategy proposes as it exhausts NAS-Bench-201 (no training, no store).

    python benchmarks/strategy_exhaustion.py [--strategy random] [--asks 8000] [--block 1000]
        [--seed 0]

Asks ``--asks`` candidates of a fresh strategy on NB201 (6,466 isomorphism classes), telling
each a dummy score, and prints per block of ``--block`` asks the proposals per second and the
distinct classes proposed so far. Past the last class, every ask is a repeat by design; the
question is whether the asks before and after stay fast. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import time

from nasforge.core import Result
from nasforge.factory import make_strategy
from nasforge.spaces.nb201 import NB201Space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategy", default="random")
    p.add_argument("--asks", type=int, default=8000)
    p.add_argument("--block", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    space = NB201Space()
    strategy = make_strategy(args.strategy, space, args.seed, {})
    classes: set = set()
    total = 0.0
    print(f"{args.strategy} on nb201, seed {args.seed}: asks/s per block of {args.block}")
    for start in range(0, args.asks, args.block):
        began = time.perf_counter()
        for i in range(min(args.block, args.asks - start)):
            candidate = strategy.ask()
            classes.add(space.canonical(candidate.arch))
            strategy.tell(candidate, Result(objective=float((start + i) % 97)))
        spent = time.perf_counter() - began
        total += spent
        print(f"  asks {start + 1:>6}-{start + args.block:<6} {args.block / spent:>9.0f} asks/s"
              f"   distinct classes {len(classes):>5}", flush=True)  # fmt: skip
    print(f"total {total:.1f} s for {args.asks} asks; {len(classes)} distinct classes")


if __name__ == "__main__":
    main()
