"""ProxylessNAS on the mobile space under several latency targets: predicted vs. measured latency
of the networks it finds, and their accuracy.

    python benchmarks/proxylessnas_targets.py [--targets p20,p60] [--seeds 1] [--width 0.5]
        [--resolution 16] [--epochs 5] [--subset 0.05] [--final-epochs 4] [--final-subset 0.2]
        [--lr 0.025] [--runtime eager] [--table FILE] [--dataset cifar10|fashion-mnist]
        [--option KEY=VALUE]
        [--store benchmarks/out/proxyless.db] [--out FILE]

1. A latency table of this machine for the mobile space at ``--width`` and ``--resolution``
   (``nasforge latency-table``; built once, reused).
2. Targets: milliseconds, or ``pNN`` = the NN-th percentile of the predicted latency of 200
   random networks of the supernet's space (that width, no SE, skips on), so a target is
   neither trivial nor impossible.
3. Per target and seed: ``nasforge oneshot --method proxylessnas`` on ``--dataset`` at
   ``--resolution`` (the supernet trains on ``--subset`` of each half of the training images),
   the derived network's latency predicted by the table and measured end to end with the same
   runtime, 1 thread, batch 1, and its test accuracy after ``nasforge train-final`` (seeds 0, 1).

Stored runs are reused (finished) or resumed. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.store import Store


def cli(*args: str, capture: bool = False) -> str:
    print("$ nasforge " + " ".join(args), flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        check=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
    )
    return done.stdout or ""


#: ``nasforge oneshot``'s own weight learning rate
DEFAULT_LR = 0.025
#: image channels of the datasets this script searches
CHANNELS = {"cifar10": 3, "fashion-mnist": 1}


def latency_table(args: argparse.Namespace) -> Path:
    channels = CHANNELS[args.dataset]
    path = Path(args.table or f"benchmarks/out/latency-table-{args.runtime}-w{args.width:g}-r"
                f"{args.resolution}-c{channels}.json")  # fmt: skip
    if not path.exists():
        size = str(args.resolution)
        cli("latency-table", "--space", "mobile", "--runtime", args.runtime, "--width",
            f"{args.width:g}", "--input-size", size, "--in-channels", str(channels),
            "--out", str(path))  # fmt: skip
    return path


def resolve_targets(text: str, table: Any, width: float) -> list[tuple[str, float]]:
    """``p20,3.5`` -> [("p20", ms), ("3.5 ms", 3.5)]."""
    from nasforge.spaces.mobile import MobileSupernetSpace

    space = MobileSupernetSpace(width)  # the networks the supernet holds: no SE, skips on
    rng = np.random.default_rng(0)
    predicted = np.array([table.predict(space.sample(rng)) for _ in range(200)])
    targets = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.startswith("p"):
            targets.append((part, float(np.percentile(predicted, float(part[1:])))))
        else:
            targets.append((f"{float(part):g} ms", float(part)))
    print(f"predicted latency of 200 random networks: median {np.median(predicted):.3f} ms, "
          f"range {predicted.min():.3f}-{predicted.max():.3f} ms")  # fmt: skip
    return targets


def search(args: argparse.Namespace, table: Path, target: float, seed: int) -> str:
    name = (f"proxyless-{args.dataset}-t{target:.4g}-seed{seed}-e{args.epochs}-s{args.subset:g}"
            f"-w{args.width:g}-r{args.resolution}")  # fmt: skip
    if args.lr != DEFAULT_LR:
        name += f"-lr{args.lr:g}"
    if args.option:
        name += "-" + "-".join(o.replace("=", "_") for o in args.option)
    with Store(args.store) as store:
        run = store.find_run(name)
        status = None if run is None else run.effective_status
    if status == "finished":
        return name
    if status is not None:
        cli("resume", name, "--store", args.store)
        return name
    cli("oneshot", "--method", "proxylessnas", "--space", "mobile", "--width", f"{args.width:g}",
        "--dataset", args.dataset, "--resolution", str(args.resolution), "--epochs",
        str(args.epochs), "--subset", str(args.subset), "--seed", str(seed), "--option",
        f"latency_table={table}", "--option", f"target_ms={target:.6g}", "--store", args.store,
        "--lr", f"{args.lr:g}",
        "--name", name, *[x for o in args.option for x in ("--option", o)])  # fmt: skip
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="p20,p60")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--dataset", default="cifar10", choices=sorted(CHANNELS))
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a ProxylessNAS option, e.g. arch_every=1")  # fmt: skip
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--subset", type=float, default=0.05)
    parser.add_argument("--final-epochs", type=int, default=4)
    parser.add_argument("--final-subset", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="the weights' SGD rate")
    parser.add_argument("--runtime", default="eager")
    parser.add_argument("--table", default=None)
    parser.add_argument("--store", default="benchmarks/out/proxyless.db")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)

    from nasforge.oneshot.latency_model import load_table
    from nasforge.spaces import mobile

    table_path = latency_table(args)
    table = load_table(str(table_path))
    rows = []
    for label, target in resolve_targets(args.targets, table, args.width):
        for seed in range(args.seeds):
            name = search(args, table_path, target, seed)
            with Store(args.store) as store:
                record = store.oneshot(store.get_run(name))
            arch = mobile.from_string(record["derived"])
            predicted = table.predict(arch)
            measured = table.measure_networks([arch], warmup=10, repeats=50)[0]
            final = json.loads(cli("train-final", name, "--store", args.store, "--epochs",
                                   str(args.final_epochs), "--subset", str(args.final_subset),
                                   "--json", capture=True))  # fmt: skip
            chosen = final["architectures"][0]
            rows.append({
                "target": label, "target_ms": target, "seed": seed, "arch": record["derived"],
                "predicted_ms": predicted, "measured_ms": measured.median_ms,
                "measured_p90_ms": measured.p90_ms, "test_acc_mean": chosen["test_acc_mean"],
                "test_acc_std": chosen["test_acc_std"], "params": chosen.get("params"),
                "search_minutes": record.get("train_seconds", 0) / 60,
            })  # fmt: skip
            print(rows[-1], flush=True)
    print(f"\nProxylessNAS, mobile space width {args.width:g}, {args.dataset} at {args.resolution}x"
          f"{args.resolution}, {args.epochs} epochs on {args.subset:g} of each half; latency "
          f"{table.runtime}, 1 thread, batch 1 on this machine")  # fmt: skip
    print("| target | seed | predicted ms | measured ms | error | test acc | network |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        error = 100 * (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
        print(f"| {r['target']} ({r['target_ms']:.3f} ms) | {r['seed']} | {r['predicted_ms']:.3f}"
              f" | {r['measured_ms']:.3f} | {error:+.1f} % | {r['test_acc_mean']:.2f} ± "
              f"{r['test_acc_std']:.2f} | `{r['arch']}` |")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps({"setup": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
