"""``nasforge compress``: its arguments and the run it works on (the work is
`compress.pipeline`; the files `compress.files`).

Importing this module does not import torch, so ``nasforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from nasforge.latency.command import _count  # a whole number >= 0, for argparse

#: the folder of a run's compressed model, beside its ``export/``
COMPRESSED_FOLDER = "compressed"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_compress_parser(sub: Any, artifacts_help: str) -> None:
    p = sub.add_parser(
        "compress",
        help="prune, fine-tune or distil, and quantise a run's final model, measuring each step",
        description="Compress the model kept by 'nasforge train-final': prune it (structured "
        "channel pruning by filter L1 norm or network slimming, or unstructured magnitude "
        "pruning), fine-tune it (optionally distilled from the unpruned model), quantise it "
        "(int8 post-training static, quantisation-aware training, or an int8 ONNX model). "
        "Test accuracy, parameters, MACs, size and CPU latency are measured after every step; "
        "the compressed model and compress.json go to RUN/compressed/ beside the run's "
        "export (written in a temporary folder and moved into place: a failure overwrites "
        "nothing).",
    )
    p.add_argument("run", help="run name")
    p.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")
    p.add_argument(
        "--prune",
        type=_number,
        default=None,
        metavar="RATIO",
        help="share (0-1) of each prunable layer's channels to remove (magnitude: of weights)",
    )
    p.add_argument(
        "--prune-macs",
        type=_number,
        default=None,
        metavar="SHARE",
        help="instead of --prune: remove channels until at most this share (0-1) of the MACs "
        "is left, e.g. 0.5",
    )
    p.add_argument(
        "--method",
        default="l1",
        help="pruning: l1 (filter L1 norm, Li et al. 2017; default), slimming (batch-norm "
        "scales after L1 sparsity training, Liu et al. 2017) or magnitude (unstructured)",
    )
    p.add_argument(
        "--sparsity-epochs",
        type=_count,
        default=1,
        help="slimming: epochs of L1-on-BN training before pruning (1)",
    )
    p.add_argument(
        "--sparsity-strength", type=_number, default=1e-4, help="slimming: L1 weight (1e-4)"
    )
    p.add_argument(
        "--finetune-epochs", type=_count, default=1, help="epochs after pruning (1; 0: none)"
    )
    p.add_argument("--lr", type=_number, default=0.01, help="fine-tuning SGD rate (0.01)")
    p.add_argument(
        "--distill",
        action="store_true",
        help="fine-tune on the unpruned model's soft targets (Hinton et al. 2015)",
    )
    p.add_argument("--temperature", type=_number, default=4.0, help="distillation T (4)")
    p.add_argument(
        "--alpha", type=_number, default=0.9, help="distillation: weight of soft targets (0.9)"
    )
    p.add_argument(
        "--quantize",
        default=None,
        help="int8 (post-training static, calibrated), qat (quantisation-aware training) or "
        "onnx-int8 (an int8 ONNX model for ONNX Runtime)",
    )
    p.add_argument("--qat-epochs", type=_count, default=1, help="QAT epochs (1)")
    p.add_argument(
        "--calibration-images", type=_count, default=512, help="int8 calibration images (512)"
    )
    p.add_argument(
        "--subset",
        type=_number,
        default=None,
        help="share of the run's training images to fine-tune on (default: final training's)",
    )
    p.add_argument("--batch-size", type=_count, default=64, help="fine-tuning batch (64)")
    p.add_argument("--seed", type=_count, default=0, help="seed of fine-tuning and sampling (0)")
    p.add_argument(
        "--out",
        default=None,
        help=f"folder (default: RUN/{COMPRESSED_FOLDER}/ in the run's artifacts folder)",
    )
    p.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    p.add_argument("--artifacts", default=None, metavar="DIR", help=artifacts_help)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _plan(args: argparse.Namespace) -> Any:
    from nasforge.compress.pipeline import CompressPlan

    return CompressPlan(
        prune=args.prune,
        prune_macs=args.prune_macs,
        method=args.method,
        sparsity_epochs=args.sparsity_epochs,
        sparsity_strength=args.sparsity_strength,
        finetune_epochs=args.finetune_epochs,
        lr=args.lr,
        distill=args.distill,
        temperature=args.temperature,
        alpha=args.alpha,
        quantize=args.quantize,
        qat_epochs=args.qat_epochs,
        calibration_images=args.calibration_images,
        batch_size=args.batch_size,
        seed=args.seed,
    ).check()


def _say(line: str) -> None:
    sys.stderr.write(f"compress: {line}\n")
    sys.stderr.flush()


def cmd_compress(args: argparse.Namespace) -> None:
    from nasforge.compress import files
    from nasforge.compress.pipeline import compress, format_steps

    plan = _plan(args)  # every bad value is refused before the store is read
    if args.subset is not None and not 0 < args.subset <= 1:
        from nasforge.errors import ConfigError

        raise ConfigError(f"--subset must be in (0, 1], got {args.subset!r}")
    source = files.load_final(args.run, args.store, args.artifacts, args.data_dir, args.subset)
    out = Path(args.out) if args.out else source.default_out / COMPRESSED_FOLDER
    files.check_writable(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result = compress(source.model, source.data, plan, out_dir=staging, say=_say)
        written = files.write(result, source, plan, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    summary = {
        "run": args.run,
        "arch": source.arch,
        "out_dir": str(out),
        "files": {name: str(out / path.name) for name, path in written.items()},
        **result.to_json(),
    }
    summary["onnx"] = summary["files"].get("int8.onnx")
    if args.json:
        print(json.dumps(summary))
        return
    print(f"compressed {source.arch} of run {args.run!r} ({source.where})")
    print(format_steps(result.steps))
    print(f"wrote {out}/: {', '.join(sorted(written))}")
