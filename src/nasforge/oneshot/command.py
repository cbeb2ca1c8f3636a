"""``nasforge oneshot``: the command's arguments and what it prints (the work is `oneshot.run`).

Importing this module does not import torch, so ``nasforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: `oneshot.registry.METHODS`' names (a test keeps the two equal), listed without importing torch
METHOD_NAMES = (
    "darts", "gdas", "snas", "pc-darts", "p-darts", "beta-darts", "drnas", "darts-",
    "spos", "fairnas", "rsws", "enas", "proxylessnas", "fbnet",
)  # fmt: skip


def add_oneshot_parser(sub: Any, positive_int: Any, fraction: Any, run_name: Any) -> None:
    p = sub.add_parser(
        "oneshot",
        help="one-shot search: train a weight-sharing supernet (DARTS, GDAS, SPOS, ...)",
        description="Train the space's supernet with a one-shot method and derive its "
        "architecture (gradient methods: from α; spos/fairnas/rsws: a search with the "
        "supernet's inherited weights; enas: the controller's best sample). The weights train "
        "on one half of the training images, α on the other; the test set is never used. On "
        "nb201 the run also reports the supernet's Kendall tau / Spearman rho against the table "
        "and the derived cell's table accuracy. A killed run continues from its last epoch "
        "with 'nasforge resume RUN'; 'nasforge train-final RUN' retrains the result.",
    )
    p.add_argument("--method", required=True, help=", ".join(METHOD_NAMES))
    p.add_argument("--space", default="nb201", help="nb201, darts or mobile")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100, fashion-mnist, ...")
    p.add_argument("--epochs", type=positive_int, default=10, help="supernet epochs (10)")
    p.add_argument(
        "--subset", type=fraction, default=1.0, help="fraction of each half of the training data"
    )
    p.add_argument("--channels", type=positive_int, default=None, help="C (nb201 16, darts 16)")
    p.add_argument(
        "--cells", type=positive_int, default=None, help="nb201 N (5) or darts layers (8)"
    )
    p.add_argument(
        "--width",
        type=float,
        default=None,
        help="mobile only: the supernet's width multiplier, 0.5, 0.75, 1.0 (default) or 1.25",
    )
    p.add_argument("--resolution", type=positive_int, default=None, help="resize images to this")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=0.025, help="weights' SGD learning rate (0.025)")
    p.add_argument(
        "--eval-images", type=positive_int, default=1000, help="validation images scoring a path"
    )
    p.add_argument(
        "--check-sample",
        type=int,
        default=200,
        help="nb201 cells of the supernet-vs-table check (0: none)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option, e.g. order=2 (darts), tau_max=10 (gdas), search_budget=100 "
        "(spos); a wrong key lists the accepted ones",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (cpu)")
    p.add_argument("--store", default=None, help="SQLite file or postgresql:// URL")
    p.add_argument("--name", type=run_name, default=None, help="run name (default from method)")
    p.add_argument("--artifacts", default=None, metavar="DIR", help="folder of the run's files")
    p.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_oneshot(args: argparse.Namespace, default_store: str) -> None:
    from nasforge.config import parse_options
    from nasforge.errors import ConfigError
    from nasforge.oneshot.run import oneshot_config

    if args.method not in METHOD_NAMES:
        raise ConfigError(
            f"unknown one-shot method {args.method!r}; accepted: {', '.join(METHOD_NAMES)}"
        )
    if args.check_sample < 0:
        raise ConfigError(f"--check-sample must be >= 0, got {args.check_sample}")
    cfg, recipe = oneshot_config(
        args.method,
        args.space,
        args.dataset,
        args.seed,
        channels=args.channels,
        cells=args.cells,
        resolution=args.resolution,
        subset=args.subset,
        options=parse_options(args.option),
        recipe={
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "eval_images": args.eval_images,
            "check_sample": args.check_sample if args.space == "nb201" else 0,
            "width": args.width,
        },
    )
    name = args.name or f"oneshot-{args.method}-{args.space}-{args.dataset}-seed{args.seed}"
    store = args.store or default_store
    if args.store is None:
        Path(store).parent.mkdir(parents=True, exist_ok=True)
    from nasforge.oneshot.run import OneShotRun

    run = OneShotRun(cfg, recipe, args.data_dir, args.device)
    record = execute(run, store, name, args.artifacts, resuming=False)
    emit(record, name, store, args.json)


def execute(run: Any, store: str | Any, name: str, artifacts: str | None, resuming: bool) -> dict:
    from nasforge.oneshot.run import OneShotDriver
    from nasforge.oneshot.train import stderr_line
    from nasforge.outputs import run_folder
    from nasforge.report.show import open_existing
    from nasforge.store import Store

    opened = open_existing(store) if resuming else Store(store)
    with opened:
        driver = OneShotDriver(run, opened, name, run_folder(opened, name, artifacts), stderr_line)
        return driver.execute(resuming)


def resume_oneshot(stored: dict[str, Any], args: argparse.Namespace) -> None:
    """``nasforge resume`` of a one-shot run: the stored configuration, its last checkpoint."""
    from nasforge.config import stored_config
    from nasforge.oneshot.run import OneShotRun
    from nasforge.oneshot.train import OneShotRecipe

    cfg = stored_config(stored)
    recipe = OneShotRecipe(**stored["oneshot"])
    device = getattr(args, "device", None) or "cpu"
    run = OneShotRun(cfg, recipe, args.data_dir, device)  # type: ignore[arg-type]
    record = execute(run, args.store, args.run, args.artifacts, resuming=True)
    emit(record, args.run, args.store, args.json)


def emit(record: dict[str, Any], name: str, store: str, as_json: bool) -> None:
    summary = {
        "run": name,
        "method": record["method"],
        "space": record["space"],
        "derived": record["derived"],
        "derived_val_acc": record["derived_val_acc"],
        "epochs": len(record["history"]),
        "train_seconds": record["train_seconds"],
        "derive_seconds": record["derive_seconds"],
    }
    for key in ("derived_nb201", "check"):
        if key in record:
            summary[key] = (
                record[key]
                if key != "check"
                else {**record[key], "scores": None, "archs": None, "truths": None}
            )
    if as_json:
        print(json.dumps(summary))
        return
    print(f"one-shot run {name!r}: {record['method']} on {record['space']}")
    print(
        f"  supernet: {len(record['history'])} epochs in {record['train_seconds'] / 60:.1f} min "
        f"({record['history'][-1]['step_seconds']:.2f} s/step)"
    )
    print(f"  derived: {record['derived']}")
    print(f"  supernet val_acc of the derived cell: {record['derived_val_acc']:.2f}")
    if "derived_nb201" in record:
        accs = ", ".join(f"{k} {v:.2f}" for k, v in record["derived_nb201"].items())
        print(f"  NB201 200-epoch test accuracy (report only): {accs}")
    if "check" in record:
        check = record["check"]
        for dataset, m in check["metrics"].items():
            print(
                f"  supernet vs NB201 {dataset} over {check['cells']} cells: Kendall tau "
                f"{m['kendall']:.3f}, Spearman rho {m['spearman']:.3f}"
            )
    print(f"next: nasforge train-final {name} --store {store}")
