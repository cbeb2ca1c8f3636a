"""The ``nasforge`` command line: search, benchmark, show, resume.

Input errors print one line, ``nasforge: error: ...``, naming what was wrong and what is
accepted, and exit with status 2 without a traceback. Progress goes to stderr so that ``--json``
output on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from nasforge import factory
from nasforge.compress.command import add_compress_parser, cmd_compress
from nasforge.config import (
    DEFAULT_STRATEGY,
    FinalPlan,
    RunConfig,
    TrainRecipe,
    describe_default_train_search,
    parse_options,
    stored_config,
)
from nasforge.errors import ConfigError, NasforgeError, NasforgeWarning
from nasforge.executors.base import WorkersUnavailable
from nasforge.latency.command import add_latency_table_parser, cmd_latency_table
from nasforge.oneshot.command import add_oneshot_parser, cmd_oneshot, resume_oneshot
from nasforge.pipeline import DEFAULT_STORE, finish
from nasforge.report.command import add_report_parsers, cmd_dashboard, cmd_report
from nasforge.runconfig import build_experiment, make_estimator, make_space

__all__ = ["build_parser", "main", "parse_options", "search_config"]

ARTIFACTS_HELP = (
    "folder for the run's files (final weights, export) as DIR/RUN/; default: STORE.artifacts/ "
    "beside a SQLite store, nasforge-artifacts/HOST-PORT-DBNAME/ here for PostgreSQL"
)

EPILOG_SEARCH = """examples:
  # the defaults: 12 low-fidelity trials of real training on Fashion-MNIST (NB201 cells,
  # C=8 N=1, 2 epochs on 10%, 2 workers), then final training of the winner and export;
  # about five minutes on 2 cores, stored in runs/nasforge.db:
  nasforge search
  # your own images (root/{train,test}/<class>/*.png), searched longer:
  nasforge search --dataset folder:/data/parts --budget 40 --epochs 3 --subset 0.3
  # 100 queries of the NAS-Bench-201 table (seconds), regularized evolution:
  nasforge search --estimator benchmark --dataset cifar10 --strategy evolution --budget 100
data is read from --data-dir or the colon-separated NASFORGE_DATA; nothing is downloaded."""


OBJECTIVES_HELP = (
    "what to optimise, NAME:max|min comma-separated, e.g. "
    "val_acc:max,latency_ms/pi5/onnx/cifar100:min (the estimator's objective is val_acc or "
    "'objective'; any other name is one of its metrics: params, the NB201 hardware metrics "
    "...); several need --strategy nsga2, pareto-evolution, parego or random"
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see '{self.prog} --help')")


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"nasforge: error: {message}\n")
    raise SystemExit(2)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def run_name(text: str) -> str:
    from nasforge.names import check_run_name

    try:
        return check_run_name(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> Parser:
    parser = Parser(
        prog="nasforge",
        description="Neural architecture search: pick a search space, a search strategy and a "
        "performance estimator, and search.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show its traceback too (accepted anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    search = sub.add_parser(
        "search",
        help="search, then (real training) retrain the winner and export it",
        description="Run one search: the strategy proposes architectures from the space, the "
        "estimator scores them, the best by objective is printed. With real training (the "
        "default estimator) the winner is then retrained at a higher fidelity over several "
        "seeds and exported (TorchScript, ONNX, arch.json, weights, a torch-only loader), "
        "unless --search-only.",
        epilog=EPILOG_SEARCH,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_search_arguments(search)
    search.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    bench = sub.add_parser(
        "benchmark",
        help="compare strategies over many seeds on a tabular benchmark",
        description="The fair-comparison protocol: every strategy (random search always "
        "included) gets the same budget on the same benchmark over seeds 0..N-1; prints mean ± "
        "std of the report-only test accuracy of each run's best-by-objective architecture.",
    )
    bench.add_argument("--space", default="nb201", help=SPACE_HELP)
    bench.add_argument(
        "--dataset",
        default="cifar10",
        help=f"nb201: {', '.join(factory.BENCHMARK_DATASETS)}; darts (NB301): cifar10",
    )
    bench.add_argument(
        "--strategies",
        default="random,evolution",
        help=f"comma-separated, from: {', '.join(factory.STRATEGIES)}, or all "
        "(random is always added)",
    )
    add_table_arguments(bench)
    bench.add_argument("--seeds", type=positive_int, default=100, help="runs per strategy")
    bench.add_argument(
        "--budget", type=positive_int, default=None, help="evaluations per run (default 100)"
    )
    bench.add_argument(
        "--budget-seconds",
        type=positive_float,
        default=None,
        help="simulated training seconds per run (the benchmark's cost, e.g. NB301 runtime); "
        "the fair budget for multi-fidelity strategies",
    )
    bench.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="STRATEGY:KEY=VALUE",
        help="an option of one compared strategy, repeatable, e.g. --option "
        "proxy-evolution:proxy_table=meco.csv --option proxy-evolution:proxy=meco",
    )
    bench.add_argument(
        "--objectives",
        default=None,
        help=OBJECTIVES_HELP + "; with several, each run is scored by the hypervolume of its "
        "front as a fraction of the true front's (hypervolume_fraction)",
    )
    bench.add_argument("--workers", type=positive_int, default=None, help="processes (all cores)")
    bench.add_argument("--out", default=None, help="write results JSON here (and a .png plot)")
    bench.add_argument(
        "--data-dir", default=None, help="folder holding nb201/ (else NASFORGE_DATA)"
    )
    bench.add_argument("--json", action="store_true", help="print the results JSON on stdout")

    show = sub.add_parser(
        "show",
        help="what a run found (finished, running, failed or interrupted)",
        description="Show a stored run: its status, configuration and best trials. Without a "
        "run name, list the runs in the store.",
    )
    show.add_argument("run", nargs="?", help="run name (omit to list runs)")
    show.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")
    show.add_argument("--top", type=positive_int, default=5, help="how many best trials to list")
    show.add_argument("--artifacts", default=None, metavar="DIR", help=ARTIFACTS_HELP)
    show.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    show.add_argument(
        "--front-plot",
        default=None,
        metavar="FILE.png",
        help="a run with two --objectives: draw its trials and Pareto front here",
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="score one architecture (table lookup or real training)",
        description="Score one architecture given in the space's string form, e.g. "
        "'|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "nor_conv_1x1~2|' for nb201.",
    )
    evaluate.add_argument("arch", help="the architecture in the space's string form")
    add_estimator_arguments(evaluate, default_estimator="benchmark")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of training")
    evaluate.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    add_train_arguments(evaluate, epochs=3, subset=1.0)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    resume = sub.add_parser(
        "resume",
        help="continue an interrupted run",
        description="Continue a stored run with its stored configuration: finished trials are "
        "kept, the trial in flight is run again, the strategy's state is rebuilt.",
    )
    resume.add_argument("run", help="run name")
    resume.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")
    resume.add_argument("--data-dir", default=None, help="folder holding the data")
    resume.add_argument(
        "--ray-address", default=None, help="continue on this Ray cluster instead of the stored one"
    )
    resume.add_argument("--artifacts", default=None, metavar="DIR", help=ARTIFACTS_HELP)
    resume.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    resume.add_argument(
        "--device", default=None, help="a one-shot run: torch device to continue on (cpu)"
    )
    add_final_parsers(sub)
    add_rank_parser(sub)
    add_oneshot_parser(sub, positive_int, fraction, run_name)
    add_latency_table_parser(sub, positive_int)
    add_compress_parser(sub, ARTIFACTS_HELP)
    add_report_parsers(sub, positive_int)
    return parser


SPACE_HELP = (
    f"one of: {', '.join(factory.SPACES)}, or a space of your own as FILE.py:NAME or MODULE:NAME"
)


def add_estimator_arguments(
    p: argparse.ArgumentParser, default_estimator: str | None
) -> argparse._ArgumentGroup:
    """``default_estimator`` None: ``benchmark`` when --table or --hardware asks for one,
    else ``train`` (resolved by `config.RunConfig.create`)."""
    what = p.add_argument_group("what to search")
    what.add_argument("--space", default="nb201", help=SPACE_HELP)
    default = default_estimator or "train, or benchmark with --table/--hardware"
    what.add_argument(
        "--estimator",
        default=default_estimator,
        help=f"train (real training) or benchmark (table lookup, seconds); default {default}",
    )
    what.add_argument(
        "--dataset",
        default=None,
        help=f"benchmark: {', '.join(factory.BENCHMARK_DATASETS)} (default cifar10); "
        f"train: {', '.join(factory.TRAIN_DATASETS)} (default fashion-mnist)",
    )
    add_table_arguments(what)
    what.add_argument(
        "--hardware",
        default=None,
        metavar="NAME[,NAME]",
        help="benchmark: add measured latency/energy metrics, e.g. latency_ms/pi5/litert/cifar100 "
        "(or all; names: latency_ms|energy_mj / pi5|pixel / litert|onnx|torchmobile / "
        "cifar100|ninapro|darcy)",
    )
    return what


def add_table_arguments(what: Any) -> None:
    """``--table`` and its column roles (search, evaluate and benchmark share them)."""
    what.add_argument(
        "--table",
        default=None,
        metavar="FILE.csv",
        help="with --estimator benchmark: your own tabular benchmark, one row per architecture "
        "(columns: the space's choices, or 'arch', plus metrics); docs/custom_spaces.md",
    )
    what.add_argument(
        "--table-objective",
        default="val_acc",
        metavar="COLUMN",
        help="--table column the search maximises (default val_acc)",
    )
    what.add_argument(
        "--table-report",
        default=None,
        metavar="COLUMN[,COLUMN]",
        help="--table report-only columns, never shown to the strategy (default test_acc when "
        "the table has it, else none; '' for none: a table with a single accuracy column)",
    )
    what.add_argument(
        "--table-cost",
        default=None,
        metavar="COLUMN",
        help="--table column of simulated training seconds (default none: no --budget-seconds)",
    )
    what.add_argument(
        "--table-missing",
        default="error",
        choices=("error", "fail"),
        help="a configuration the table lacks: error stops the run (default), fail makes it a "
        "failed trial and the search goes on",
    )


def add_search_arguments(p: argparse.ArgumentParser) -> None:
    what = add_estimator_arguments(p, default_estimator=None)
    what.add_argument(
        "--strategy",
        default=None,
        help=f"one of: {', '.join(factory.STRATEGIES)} (default with real training: "
        f"{describe_default_train_search()}; on a benchmark: {DEFAULT_STRATEGY})",
    )
    what.add_argument(
        "--budget",
        type=positive_int,
        default=None,
        help="number of evaluations (default 12 with real training, 100 on a benchmark)",
    )
    what.add_argument(
        "--budget-seconds",
        type=positive_float,
        default=None,
        help="stop once finished trials have cost this many seconds (real training time, or a "
        "benchmark's simulated time such as NB301's); with --budget, whichever comes first",
    )
    what.add_argument("--seed", type=int, default=0, help="seed of strategy and training")
    what.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option, repeatable, e.g. --option population=20 --option sample=5 "
        "(evolution), --option eta=3 (hyperband); the strategy's docstring lists them. A "
        "zero-cost proxy for strategies that take one (proxy-evolution): --option "
        "proxy=NAME[,NAME] (real training; proxy_size=full|search, proxy_batch=N, "
        "proxy_device=DEV) or --option proxy_table=FILE.csv --option proxy=COLUMN",
    )
    what.add_argument(
        "--population",
        type=positive_int,
        default=None,
        help="shortcut for --option population=N (evolution: 10, or half a budget under 20)",
    )
    what.add_argument(
        "--sample", type=positive_int, default=None, help="shortcut for --option sample=N"
    )
    what.add_argument("--objectives", default=None, help=OBJECTIVES_HELP)
    what.add_argument(
        "--constraint",
        dest="constraints",
        action="append",
        default=None,
        metavar="NAME<=VALUE",
        help="a hard limit known before training, repeatable: params, macs, latency_ms "
        "(predicted by --latency-table), or a cost metric a benchmark looks up (e.g. "
        "latency_ms/pi5/onnx/cifar100<=5); NAME>=VALUE is a lower bound, to keep a search "
        "near its budget (latency_ms>=3 --constraint latency_ms<=3.5); a limit no "
        "architecture meets is refused at once",
    )
    what.add_argument(
        "--scalarize",
        default=None,
        metavar="KIND",
        help="one reward from --objectives for any strategy: mnasnet:T=TARGET[,w=-0.07] "
        "(MnasNet's ACC*(COST/T)^w), mnasnet-hard:T=TARGET, weighted:W1,W2,...",
    )
    what.add_argument(
        "--latency-table",
        default=None,
        metavar="FILE",
        help="latency lookup table (nasforge latency-table) for --constraint latency_ms<=MS",
    )
    what.add_argument(
        "--max-params",
        type=positive_float,
        default=None,
        help="constraint: only propose networks with at most this many parameters",
    )
    run = p.add_argument_group("how to run trials")
    run.add_argument(
        "--executor",
        default="auto",
        help="inprocess, pool (worker processes) or ray; auto: inprocess for --estimator "
        "benchmark, pool for train, ray if --ray-address is given",
    )
    run.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="trials in flight at once (default 2 with real training on 2+ cores, else 1; on "
        "Ray every CPU of the cluster)",
    )
    run.add_argument("--ray-address", default=None, help="Ray cluster address host:port")
    run.add_argument(
        "--trial-timeout", type=positive_float, default=None, help="seconds per trial (pool, ray)"
    )
    run.add_argument(
        "--memory-limit-mb", type=positive_float, default=None, help="memory per trial (pool)"
    )
    run.add_argument(
        "--window",
        type=positive_int,
        default=None,
        help="asks that may be pending at once (default: --workers); fix it to get the same "
        "trials whatever the number of workers",
    )
    run.add_argument(
        "--as-finished",
        action="store_true",
        help="tell results to the strategy as they finish (throughput) instead of in trial "
        "order (reproducible for a given seed and --workers)",
    )
    where = p.add_argument_group("where")
    where.add_argument(
        "--store",
        default=None,
        help="SQLite file or postgresql:// URL to record the run in (default with real "
        f"training: {DEFAULT_STORE})",
    )
    where.add_argument(
        "--name",
        type=run_name,
        default=None,
        help="run name in the store: letters, digits, '.', '_', '-' (default: a timestamp)",
    )
    where.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    where.add_argument("--artifacts", default=None, metavar="DIR", help=ARTIFACTS_HELP)
    add_train_arguments(p, epochs=2, subset=0.1)
    after = p.add_argument_group("after a real-training search: final training and export")
    after.add_argument(
        "--search-only",
        action="store_true",
        help="stop after the search (retrain and export later with train-final and export)",
    )
    after.add_argument(
        "--final-top-k",
        type=positive_int,
        default=FinalPlan.top_k,
        help=f"best architectures to retrain ({FinalPlan.top_k})",
    )
    after.add_argument(
        "--final-seeds",
        type=positive_int,
        default=FinalPlan.seeds,
        help=f"seeds per architecture ({FinalPlan.seeds})",
    )
    after.add_argument(
        "--final-epochs",
        type=positive_int,
        default=None,
        help="epochs of final training (default: twice the search's)",
    )
    after.add_argument(
        "--final-subset",
        type=fraction,
        default=None,
        help="fraction of training data for final training (default: three times the "
        "search's, at most 1)",
    )


def add_train_arguments(p: argparse.ArgumentParser, epochs: int, subset: float) -> None:
    train = p.add_argument_group("real training (--estimator train)")
    train.add_argument(
        "--epochs", type=positive_int, default=epochs, help=f"epochs per candidate ({epochs})"
    )
    train.add_argument(
        "--subset", type=fraction, default=subset, help=f"fraction of training data ({subset:g})"
    )
    train.add_argument("--val-fraction", type=fraction, default=0.1, help="validation split")
    train.add_argument("--batch-size", type=positive_int, default=128)
    train.add_argument("--lr", type=float, default=0.1, help="initial SGD learning rate")
    train.add_argument(
        "--channels",
        type=positive_int,
        default=None,
        help="the space's width knob (nb201 C, default 16, searched at 8; darts/nasnet C; nb101 "
        "stem channels)",
    )
    train.add_argument(
        "--cells",
        type=positive_int,
        default=None,
        help="the space's depth knob (nb201 N, default 5, searched at 1; darts layers; nasnet N; "
        "nb101 cells per stack)",
    )
    train.add_argument(
        "--resolution",
        type=positive_int,
        default=None,
        help="train on images resized to this side (a low-fidelity knob; default: as stored)",
    )
    train.add_argument(
        "--augment",
        default="none",
        help="training augmentation: none, standard (crop:4,flip), or a list such as "
        "crop:4,flip,cutout:16; recorded with the run",
    )
    train.add_argument(
        "--early-stopping",
        default="none",
        metavar="RULE",
        help="stop trials whose learning curve will not beat the incumbent: none, median "
        "(median stopping rule), curve (learning-curve extrapolation)",
    )
    train.add_argument(
        "--skip-test",
        action="store_true",
        help="do not score the test set after each trial (at low fidelity this can halve a "
        "trial's time; train-final still reports test accuracy)",
    )
    train.add_argument(
        "--channels-last",
        action="store_true",
        help="train in the NHWC memory format (faster convolutions on most CPUs; recorded)",
    )


# commands ---------------------------------------------------------------------------------------


def search_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration of a parsed ``nasforge search``, every default resolved (so a
    stored run says what it did); see `config.RunConfig.from_args`."""
    return RunConfig.from_args(args)


def summarise_run(experiment: Any) -> dict[str, Any]:
    """What ``nasforge search`` prints: the best trial and, for a run with several
    ``--objectives``, its Pareto front, computed as ``nasforge show`` computes it from the
    store (a run on a benchmark table is not stored unless asked, and its front is the
    result the user came for)."""
    from nasforge.report.show import pareto_summary

    history = experiment.history
    best = history.best
    config = {**experiment.config, "objective": experiment.estimator.objective_name}
    return {
        "run": experiment.name,
        "store": None if experiment.store is None else experiment.store.location,
        "space": experiment.space.name,
        "strategy": experiment.strategy.name,
        "estimator": experiment.estimator.name,
        "objective": experiment.estimator.objective_name,
        "trials": len(history.trials),
        "failed": len(history.failed),
        "cost_seconds": history.total_cost,
        "best": None
        if best is None
        else {"trial": best.number, "arch": best.arch, **best.result.to_json()},
        **pareto_summary(config, [t for t in history.trials if t.ok]),
    }


def format_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def print_summary(summary: dict[str, Any]) -> None:
    best = summary["best"]
    print(
        f"{summary['strategy']} on {summary['space']} with {summary['estimator']}: "
        f"{summary['trials']} trials ({summary['failed']} failed)"
    )
    if best is None:
        print("no trial completed")
    else:
        print(f"best architecture (trial {best['trial']}): {best['arch']}")
        print(f"  objective {summary['objective']}: {best['objective']:.2f}")
        for key, value in {**best["metrics"], **best["report"]}.items():
            if key == summary["objective"]:  # a table without a report column
                print("  (no report-only column: the objective is what comparisons report)")
                continue
            label = f"{key} (report only)" if key in best["report"] else key
            print(f"  {label}: {format_number(value)}")
    if "pareto" in summary:
        from nasforge.report.show import describe_pareto

        print("\n".join(line[2:] for line in describe_pareto(summary["pareto"])))
    if summary["store"]:
        print(
            f"stored as run {summary['run']!r} in {summary['store']} "
            f"(nasforge show {summary['run']} --store {summary['store']})"
        )


def cmd_search(args: argparse.Namespace) -> None:
    cfg = search_config(args)
    store = args.store
    if store is None and cfg.search.training:  # also --search-only: retrain and export later
        store = DEFAULT_STORE
        Path(store).parent.mkdir(parents=True, exist_ok=True)
    experiment = build_experiment(cfg, args.data_dir, store, args.name, resume=False, progress=True)
    experiment.run()
    finish_and_emit(experiment, cfg, args.data_dir, args.json, args.artifacts)


def finish_and_emit(
    experiment: Any,
    cfg: RunConfig,
    data_dir: str | None,
    as_json: bool,
    artifacts: str | None = None,
) -> None:
    """Print the search's summary; then, if the run's plan says so, retrain and export its
    winner and say where the model files are."""
    summary = summarise_run(experiment)
    plan = cfg.final
    if plan is None:
        emit(summary, as_json)
        return
    if not as_json:
        print_summary(summary)
        print(f"\nfinal training and export of run {experiment.name!r} ...", flush=True)
    # the open store itself: a server URL's location is redacted and cannot be reopened
    done = finish(
        experiment.store,
        experiment.name,
        plan,
        data_dir=data_dir,
        progress=True,
        artifacts=artifacts,
    )
    if as_json:
        print(json.dumps({**summary, **done}))
        return
    from nasforge.final import format_table

    if done["final_reused"]:
        print(f"(final training already done: {done['final']['best']['weights']})")
    print(format_table(done["final"]))
    print_export(done["export"])


def cmd_evaluate(args: argparse.Namespace) -> None:
    from nasforge.core import Candidate

    cfg = RunConfig.for_evaluation(args)
    space = make_space(cfg)
    arch = space.from_string(args.arch)
    estimator = make_estimator(cfg, space, args.data_dir)
    result = estimator.evaluate(Candidate(arch))
    summary = {
        "arch": space.to_string(arch),
        "canonical": space.to_string(space.canonical(arch)),
        "estimator": estimator.name,
        "objective_name": estimator.objective_name,
        **result.to_json(),
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['arch']} ({estimator.name}, dataset {cfg.search.dataset})")
    print(f"  objective {estimator.objective_name}: {result.objective:.2f}")
    for key, value in {**result.metrics, **result.report}.items():
        label = f"{key} (report only)" if key in result.report else key
        print(f"  {label}: {format_number(value)}")


def cmd_resume(args: argparse.Namespace) -> None:
    from nasforge.report.show import open_existing

    store = open_existing(args.store)
    run = store.get_run(args.run)
    if "oneshot" in run.config:  # a supernet run continues from its last epoch's checkpoint
        store.close()
        resume_oneshot(run.config, args)
        return
    cfg = stored_config(run.config)
    if cfg is None:
        raise ConfigError(f"run {args.run!r} was not started from the CLI; resume it from Python")
    if args.ray_address:
        cfg = cfg.with_executor(executor="ray", ray_address=args.ray_address)
    experiment = build_experiment(cfg, args.data_dir, store, args.run, True, True)
    experiment.run()
    finish_and_emit(experiment, cfg, args.data_dir, args.json, args.artifacts)


def emit(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
    else:
        print_summary(summary)


def cmd_benchmark(args: argparse.Namespace) -> None:
    from nasforge.compare import (
        ComparisonSetup,
        compare,
        format_table,
        space_and_estimator,
        strategy_options,
    )

    if args.space == "nb201" and args.dataset not in factory.BENCHMARK_DATASETS:
        from nasforge.estimators.benchmarks.nb201 import resolve_dataset

        args.dataset = resolve_dataset(args.dataset)
    budget = args.budget if args.budget or args.budget_seconds else 100
    table = None
    if args.table:
        from nasforge.runconfig import table_keywords

        keywords = table_keywords(
            args.table,
            args.table_objective,
            args.table_report,
            args.table_cost,
            args.table_missing,
        )
        table = tuple(sorted(keywords.items()))
    setup = ComparisonSetup(
        args.space,
        args.dataset,
        budget,
        args.data_dir,
        budget_seconds=args.budget_seconds,
        table=table,
        objectives=args.objectives,
    )
    space, estimator = space_and_estimator(setup)  # cached: compare() reuses the parsed tables
    fidelity = estimator.capabilities.fidelity_range
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if strategies == ["all"]:  # every strategy this space and benchmark can run
        strategies = factory.strategies_for(space, estimator)
    if args.option:
        compared = ["random", *(s for s in strategies if s != "random")]
        setup = replace(setup, options=strategy_options(args.option, compared))
    for name in strategies:
        if name in factory.MULTI_FIDELITY and not fidelity:
            raise ConfigError(
                f"strategy {name!r} chooses a fidelity and the {estimator.name} benchmark offers "
                "none; compare it on NB301 (--space darts) or on real training "
                "(nasforge search --estimator train)"
            )
    results = compare(setup, strategies, args.seeds, workers=args.workers)
    if args.out:
        from nasforge.compare import write_outputs

        written = write_outputs(results, Path(args.out))
        sys.stderr.write(f"wrote {', '.join(str(p) for p in written)}\n")
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))


def cmd_show(args: argparse.Namespace) -> None:
    from nasforge.report.show import describe_run, list_runs

    if args.run is None:
        print(list_runs(args.store, as_json=args.json))
        return
    if args.front_plot:
        from nasforge.report.show import plot_front

        sys.stderr.write(f"wrote {plot_front(args.store, args.run, args.front_plot)}\n")
    print(
        describe_run(
            args.store, args.run, top=args.top, as_json=args.json, artifacts=args.artifacts
        )
    )


# final training and export --------------------------------------------------------------------


def add_final_parsers(sub: Any) -> None:
    """``train-final`` and ``export``: from a stored search to a model one can ship."""
    final = sub.add_parser(
        "train-final",
        help="retrain a run's best architectures at full fidelity over seeds",
        description="Retrain the stored run's best K distinct architectures (by search "
        "objective) from scratch at full fidelity with seeds 0..N-1, the run's dataset, network "
        "size and recipe; print test accuracy mean ± std, parameters, MACs and CPU latency. "
        "Results are kept in the store with the run; the weights of the best seed of the best "
        "architecture (by validation accuracy) go to the run's artifacts folder for "
        "'nasforge export'.",
    )
    final.add_argument("run", help="run name")
    final.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")
    plan = FinalPlan
    final.add_argument(
        "--top-k",
        type=positive_int,
        default=None,
        help=f"architectures to retrain (default: the run's final plan, else {plan.top_k})",
    )
    final.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help=f"seeds per architecture (default: the run's final plan, else {plan.seeds})",
    )
    final.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="epochs (default: the run's final plan, else twice the search's)",
    )
    final.add_argument(
        "--subset",
        type=fraction,
        default=None,
        help="fraction of training data (default: the run's final plan, else three times the "
        "search's, at most 1)",
    )
    final.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    final.add_argument("--artifacts", default=None, metavar="DIR", help=ARTIFACTS_HELP)
    final.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    export = sub.add_parser(
        "export",
        help="write a run's model (torch.export, ONNX, TorchScript), JSON and a torch-only loader",
        description="Export the model kept by 'nasforge train-final' (else the run's best "
        "architecture, trained once at the run's fidelity): model.pt2 (torch.export), "
        "model.onnx and model.ts, each reloaded and checked against PyTorch (ONNX with "
        "onnxruntime), arch.json, weights.pt and load_model.py, which needs only torch. A "
        "file written by a legacy exporter is announced with the reason.",
    )
    export.add_argument("run", help="run name")
    export.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")
    export.add_argument(
        "--out", default=None, help="folder (default: RUN/export/ in the run's artifacts folder)"
    )
    export.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    export.add_argument("--artifacts", default=None, metavar="DIR", help=ARTIFACTS_HELP)
    export.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_train_final(args: argparse.Namespace) -> None:
    from nasforge.final import format_table, train_final

    result = train_final(
        args.store,
        args.run,
        top_k=args.top_k,
        seeds=args.seeds,
        epochs=args.epochs,
        subset=args.subset,
        data_dir=args.data_dir,
        artifacts=args.artifacts,
    )
    print(json.dumps(result.to_json()) if args.json else format_table(result))


def cmd_export(args: argparse.Namespace) -> None:
    from nasforge.export import export_run

    written = export_run(
        args.store, args.run, args.out, data_dir=args.data_dir, artifacts=args.artifacts
    )
    if args.json:
        print(json.dumps(written))
        return
    print_export(written)


def print_export(written: dict[str, Any]) -> None:
    if written["source"] == "final":
        source = "the model kept by train-final"
    else:
        source = "the best architecture, trained once at the run's fidelity"
    print(f"exported {written['arch']} ({source}) to {written['out_dir']}/")
    for name, path in written["files"].items():
        print(f"  {name:<14} {path}")
    print(
        f"  checks: ONNX (onnxruntime) max abs diff {written['onnx_max_abs_diff']:.2e}, "
        f"TorchScript {written['torchscript_max_abs_diff']:.2e}"
    )


# ranking ----------------------------------------------------------------------------------------


def add_rank_parser(sub: Any) -> None:
    """``rank``: how well a proxy, a predictor or a low-fidelity training ranks architectures."""
    rank = sub.add_parser(
        "rank",
        help="how well a proxy, predictor or short training ranks architectures (rho, tau)",
        description="Score --sample distinct architectures (one per isomorphism class, seeded) "
        "with each scorer and compare with the benchmark's ground truth (NB201: 200-epoch test "
        "accuracy): Spearman rho, Kendall tau, top-10%% precision and recall with bootstrap 95%% "
        "CIs, seconds per architecture. A predictor is fitted on --train-size OTHER "
        "architectures' 12-epoch validation accuracy from the table (what a search sees).",
    )
    rank.add_argument("--space", default="nb201", help="a space with a benchmark table: nb201")
    rank.add_argument(
        "--dataset",
        default="cifar10",
        help="data the scorers see and default truth: cifar10, cifar100, imagenet16-120",
    )
    rank.add_argument("--sample", type=positive_int, required=True, help="architectures (>= 3)")
    rank.add_argument("--proxy", default=None, metavar="NAME[,NAME]", help="zero-cost proxies")
    rank.add_argument(
        "--predictor", default=None, metavar="NAME[,NAME]", help="predictors (with --train-size)"
    )
    rank.add_argument(
        "--train-size", type=positive_int, default=None, help="cells a predictor is fitted on"
    )
    rank.add_argument("--encoding", default=None, help="a predictor's encoding, e.g. onehot, path")
    rank.add_argument(
        "--estimator",
        default=None,
        metavar="NAME[,NAME]",
        help="train (real training at the fidelity below, as nasforge search) and/or benchmark "
        "(the table's 12-epoch validation accuracy, the yardstick)",
    )
    rank.add_argument(
        "--truth",
        default=None,
        metavar="DATASET[,DATASET]",
        help="ground-truth datasets, 200-epoch test accuracy (default: --dataset); nb201: "
        "cifar10,cifar100,ImageNet16-120",
    )
    rank.add_argument(
        "--supernet", default=None, metavar="RUN", help="a one-shot run's trained supernet"
    )
    rank.add_argument("--store", default=None, help="the store of --supernet RUN")
    rank.add_argument("--seed", type=int, default=0, help="sample, scorers, bootstrap")
    rank.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    rank.add_argument("--json", default=None, metavar="FILE", help="write results JSON here")
    rank.add_argument(
        "--out", default=None, metavar="DIR", help="rank.csv, rank.png and a resume cache here"
    )
    rank.add_argument("--data-dir", default=None, help="data folder (else NASFORGE_DATA)")
    rank.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: torch's)"
    )
    rank.add_argument(
        "--device", default="cpu", help="torch device of the zero-cost proxies (default cpu)"
    )
    add_train_arguments(rank, epochs=TrainRecipe.epochs, subset=TrainRecipe.subset)


def cmd_rank(args: argparse.Namespace) -> None:
    from dataclasses import fields

    from nasforge.rank import RankRequest, format_table, rank, stderr_progress, write_outputs

    def names(text: str | None) -> tuple[str, ...]:
        return tuple(t.strip() for t in (text or "").split(",") if t.strip())

    recipe = TrainRecipe(**{f.name: getattr(args, f.name) for f in fields(TrainRecipe)})
    request = RankRequest(
        sample=args.sample,
        space=args.space,
        dataset=args.dataset,
        seed=args.seed,
        truth=names(args.truth),
        proxies=names(args.proxy),
        predictors=names(args.predictor),
        train_size=args.train_size,
        encoding=args.encoding,
        estimators=names(args.estimator),
        train=recipe,
        bootstrap=args.bootstrap,
        data_dir=args.data_dir,
        threads=args.threads,
        device=args.device,
        supernet=args.supernet,
        store=args.store,
    )
    out = Path(args.out) if args.out else None
    results = rank(request, out=out, progress=stderr_progress)
    print(format_table(results))
    if out is not None:
        written = write_outputs(results, out)
        sys.stderr.write(f"wrote {', '.join(str(p) for p in written)}\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        sys.stderr.write(f"wrote {args.json}\n")


COMMANDS = {
    "search": cmd_search,
    "benchmark": cmd_benchmark,
    "show": cmd_show,
    "evaluate": cmd_evaluate,
    "resume": cmd_resume,
    "train-final": cmd_train_final,
    "export": cmd_export,
    "rank": cmd_rank,
    "oneshot": lambda args: cmd_oneshot(args, DEFAULT_STORE),
    "latency-table": cmd_latency_table,
    "compress": cmd_compress,
    "report": cmd_report,
    "dashboard": cmd_dashboard,
}


def _one_line_warnings(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """nasforge's own advice as one ``nasforge: warning:`` line; other warnings as Python
    prints them."""
    if issubclass(category, NasforgeWarning):
        sys.stderr.write(f"nasforge: warning: {message}\n")
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug may stand anywhere: a user adds it to the command that failed
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    warnings.showwarning = _one_line_warnings
    try:
        COMMANDS[args.command](args)
    except NasforgeError as err:
        if debug:
            traceback.print_exception(err)
        fail(str(err))
    except WorkersUnavailable as err:  # the run is stored as interrupted: say how to go on
        sys.stderr.write(
            f"nasforge: stopped: {err}; the run is kept as interrupted, continue it with "
            "'nasforge resume RUN --store FILE' once workers can start\n"
        )
        return 75  # EX_TEMPFAIL: try again later
    except BrokenPipeError:  # the reader went away (e.g. `nasforge show ... | head`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- silence the flush at exit
        return 0
    except KeyboardInterrupt:
        sys.stderr.write(
            "nasforge: interrupted; a stored run can be continued with "
            "'nasforge resume RUN --store FILE'\n"
        )
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
