"""A found network pruned to half its MACs, then int8-quantised, over seeds; and the pruning
methods side by side at the same MACs (#16: "A found network pruned to 50 % of its FLOPs, then
int8-quantised: accuracy drop, size and measured CPU latency at each step, 3 seeds" and
"Pruning methods side by side at the same FLOPs").

    python benchmarks/compress_found.py [--store benchmarks/out/latency_budget.db]
        [--run NAME] [--arch STRING] [--seeds 3] [--epochs 3] [--subset 0.1]
        [--macs 0.5] [--finetune-epochs 1] [--methods l1,slimming,magnitude]
        [--out benchmarks/out/compress_found.json]

The network: ``--arch``, else the best trial of ``--run`` (default: the first run of the
store, the latency-budget search's network on Fashion-MNIST). Per seed it is trained from
scratch with that run's recipe (`final.make_trainer`: its data split, resolution and SGD
recipe, ``--epochs`` on ``--subset``), then compressed by `compress.pipeline.compress` once per
method, each time from the same trained model:

* ``l1`` (the main pipeline): filter-L1 channel pruning to ``--macs`` of the MACs,
  ``--finetune-epochs`` of fine-tuning, then post-training static int8 (512 calibration
  images) in PyTorch, and the same network as float and int8 ONNX files for ONNX Runtime;
* ``slimming``: one epoch of L1 on batch-norm scales, then pruning by |γ| to the same MACs and
  the same fine-tuning;
* ``magnitude``: unstructured, the same share of weights zeroed (its MACs do not fall: dense
  kernels multiply the zeros), the same fine-tuning.

Every step is measured: test accuracy, parameters, MACs, size, CPU latency (1 thread, batch 1;
eager PyTorch, or ONNX Runtime for the ONNX rows). Printed: mean ± std over seeds per step and
per method. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=str(OUT / "latency_budget.db"))
    p.add_argument("--run", default=None, help="run whose recipe (and best network) to use")
    p.add_argument("--arch", default=None, help="the network (default: the run's best)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--subset", type=float, default=0.1)
    p.add_argument("--macs", type=float, default=0.5, help="share of the MACs to keep")
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--methods", default="l1,slimming,magnitude")
    p.add_argument("--out", type=Path, default=OUT / "compress_found.json")
    return p.parse_args()


def _source(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(run configuration, network, run name)."""
    from nasforge import final
    from nasforge.store import Store

    with Store(args.store, create=False) as store:
        name = args.run or sorted(store.run_names())[0]
        _, cfg, trials = final.load_run(store, name)
    arch = args.arch
    if arch is None:
        from nasforge import runconfig

        arch = final.top_architectures(runconfig.make_space(cfg), trials, 1)[0]["arch"]
    return cfg, arch, name


def _plan(method: str, args: argparse.Namespace, seed: int) -> Any:
    from nasforge.compress.pipeline import CompressPlan

    if method == "magnitude":
        return CompressPlan(prune=1 - args.macs, method=method, seed=seed,
                            finetune_epochs=args.finetune_epochs)  # fmt: skip
    return CompressPlan(prune_macs=args.macs, method=method, seed=seed,
                        finetune_epochs=args.finetune_epochs)  # fmt: skip


def _int8_rows(model: Any, data: Any, plan: Any, seed: int, rows: dict) -> None:
    """Post-training static int8 (eager PyTorch), and the float and int8 ONNX files under ONNX
    Runtime, of one pruned and fine-tuned network."""
    from nasforge.compress import pipeline
    from nasforge.compress.quantize import export_onnx_int8, quantize_static

    calibration = pipeline.calibration_images(data, plan)
    int8 = quantize_static(model, calibration)
    rows[("l1", "int8 (static)")].append(
        vars(pipeline.record("int8 (static)", int8, data, plan, macs_of=model))
    )
    rows[("l1", "fine-tuned, ONNX Runtime")].append(
        vars(pipeline.record_onnx_float(model, data, plan))
    )
    path = export_onnx_int8(model, data.test_x[:2], calibration, OUT / f"compress_s{seed}.onnx")
    rows[("l1", "int8 (ONNX Runtime)")].append(vars(pipeline.record_onnx(path, model, data, plan)))


def _say(line: str) -> None:
    print(f"  {line}", flush=True)


def _report(args: argparse.Namespace, arch: str, run: str, rows: dict, seeds: int) -> None:
    """The table so far (after every seed: a long run that is stopped keeps its seeds)."""

    def ms(values: list[float]) -> str:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.fmean(values):.2f} ± {std:.2f}"

    print(f"\n{arch}: {args.epochs} epochs on {args.subset:g} of the training images; pruned "
          f"to {args.macs:g} of the MACs, {args.finetune_epochs} fine-tuning epoch(s); "
          f"{seeds} seed(s); CPU latency 1 thread, batch 1")  # fmt: skip
    print("| method | step | test acc | params | MMACs | size KiB | latency ms |")
    print("|---|---|---|---|---|---|---|")
    for (method, step), found in rows.items():
        print(f"| {method} | {step} | {ms([r['test_acc'] for r in found])} | "
              f"{statistics.fmean(r['params'] for r in found):,.0f} | "
              f"{statistics.fmean(r['macs'] for r in found) / 1e6:.2f} | "
              f"{statistics.fmean(r['size_bytes'] for r in found) / 1024:.0f} | "
              f"{ms([r['latency_ms'] for r in found])} |", flush=True)  # fmt: skip
    args.out.write_text(json.dumps({
        "setup": {k: str(v) for k, v in vars(args).items()}, "arch": arch, "run": run,
        "seeds_done": seeds,
        "rows": [{"method": m, "step": s, "seeds": v} for (m, s), v in rows.items()],
    }, indent=1))  # fmt: skip
    print(f"wrote {args.out}", flush=True)


def main() -> None:
    args = _args()
    from nasforge import final
    from nasforge.compress.pipeline import Data, compress

    cfg, arch, run = _source(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"network {arch} (from run {run}); {args.seeds} seeds", flush=True)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    started = time.perf_counter()
    for seed in range(args.seeds):
        space, trainer = final.make_trainer(cfg, seed, args.epochs, args.subset, None)
        model, result = final.train_once(trainer, space, arch)
        d = trainer.dataset
        idx = trainer.train_idx
        data = Data(d.train_x.index_select(0, idx), d.train_y.index_select(0, idx),
                    d.test_x, d.test_y)  # fmt: skip
        print(f"seed {seed}: trained, test {result.report['test_acc']:.2f}", flush=True)
        for method in methods:
            plan = _plan(method, args, seed)
            done = compress(model, data, plan, say=_say)
            for step in done.steps:
                rows[(method, step.step)].append(vars(step))
            if method == "l1":  # the pruned, fine-tuned network, int8 in both runtimes
                _int8_rows(done.model, data, plan, seed, rows)
        elapsed = time.perf_counter() - started
        eta = elapsed / (seed + 1) * (args.seeds - seed - 1)
        print(f"seed {seed} done; elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")
        _report(args, arch, run, rows, seed + 1)


if __name__ == "__main__":
    main()
