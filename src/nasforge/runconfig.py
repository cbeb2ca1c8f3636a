"""A run configuration (`config.RunConfig`) -> the experiment's parts.

The CLI stores a run's configuration (``config["cli"]`` in the store, `RunConfig.to_json`) and
``resume``, ``train-final`` and ``export`` rebuild the same space, estimator and strategy from
it; the rebuilding lives here, below the commands, so those modules do not import the CLI.
Every default was resolved when the `RunConfig` was built: nothing here fills one in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import factory
from nasforge.config import RunConfig
from nasforge.errors import ConfigError
from nasforge.limits import make_bounds
from nasforge.spaces.source import check_unchanged
from nasforge.strategies.constraints import AllOf, check_reachable

if TYPE_CHECKING:
    from nasforge.experiment import Budget


def build_experiment(
    cfg: RunConfig,
    data_dir: str | None,
    store: Any,
    name: str | None,
    resume: bool,
    progress: bool,
) -> Any:
    """The experiment a stored or command-line configuration describes. Cheap checks come
    first and nothing is written until every part was built: a bad Ray address leaves no store
    behind, a bad store URL leaves no worker or Ray instance running."""
    from nasforge.experiment import Experiment
    from nasforge.store import Store

    search, run = cfg.search, cfg.executor
    space = make_space(cfg)
    estimator = make_estimator(cfg, space, data_dir)
    bounds = make_bounds(
        search.constraints, space, estimator, search.estimator == "benchmark", search.latency_table
    )
    strategy = factory.make_strategy(
        search.strategy,
        space,
        search.seed,
        dict(search.options),
        estimator,
        search.max_params,
        None if search.scalarize else search.objectives,
        AllOf(bounds) if bounds else None,
    )
    check_objectives(cfg, space, estimator)
    check_reachable(space, bounds)
    executor = factory.make_executor(
        run.executor,
        search.estimator,
        run.workers,
        run.ray_address,
        run.trial_timeout,
        run.memory_limit_mb,
    )
    try:
        if store is not None and not isinstance(store, Store):
            store = Store(store)
        return Experiment(
            space,
            strategy,
            estimator,
            run_budget(cfg),
            executor=executor,
            deterministic=not run.as_finished,
            window=run.window,
            store=store,
            name=name,
            config={"cli": cfg.to_json()},
            resume=resume,
            progress=progress,
        )
    except BaseException:
        executor.shutdown()
        raise


def check_objectives(cfg: RunConfig, space: Any, estimator: Any) -> None:
    """A benchmark's result for one architecture must carry every ``--objectives`` name;
    checked on one lookup before the search (microseconds), so a misspelt metric is a
    one-line error, not a crash after the first trial. Real training is checked when its
    first result arrives (the experiment's strategy reads the objectives)."""
    bound = factory.bind_objectives(cfg.search.objectives, estimator)
    if bound is None or cfg.search.estimator != "benchmark" or cfg.search.scalarize:
        return  # a scalarized estimator reads its objectives with every result
    import numpy as np

    from nasforge.core import Candidate

    bound.check(estimator.evaluate(Candidate(space.sample(np.random.default_rng(0)))))


def make_space(cfg: RunConfig) -> Any:
    """The configuration's space, made for its dataset's image size (real training only)."""
    search = cfg.search
    check_unchanged(search.space, search.space_sha256)
    size = factory.image_size_of(search.dataset) if search.training else None
    return factory.make_space(search.space, size)


def network_options(cfg: RunConfig, space: Any) -> dict[str, Any]:
    """``--channels``/``--cells`` as the keyword names of the space's ``build`` (its
    ``size_options``); a knob the space does not have is an error, not silently ignored."""
    knobs = getattr(space, "size_options", {})
    net: dict[str, Any] = {}
    for knob in ("channels", "cells"):
        value = getattr(cfg.train, knob)
        if value is None:
            continue
        keyword = knobs.get(knob)
        if keyword is None:
            has = ", ".join(f"--{k}" for k, v in knobs.items() if v) or "none"
            raise ConfigError(
                f"space {space.name!r} has no --{knob} knob; its network size options: {has}"
            )
        net[keyword] = value
    return net


def make_estimator(cfg: RunConfig, space: Any, data_dir: str | None) -> Any:
    """The estimator of a configuration."""
    recipe, search = cfg.train, cfg.search
    train_options = {
        "epochs": recipe.epochs,
        "subset": recipe.subset,
        "val_fraction": recipe.val_fraction,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "net": network_options(cfg, space) if search.training else {},
        **training_knobs(cfg),
    }
    estimator = factory.make_estimator(
        search.estimator,
        space,
        search.dataset,
        data_dir,
        search.seed,
        train_options,
        search.hardware,
        table_options(cfg),
    )
    if not search.scalarize:
        return estimator
    from nasforge.scalarize import ScalarizedEstimator, Scalarizer

    bound = factory.bind_objectives(search.objectives, estimator)
    return ScalarizedEstimator(estimator, bound, Scalarizer.parse(search.scalarize))


#: ``Train`` keywords whose command-line flag has another name
_FLAG_OF_KNOB = {"score_test": "skip_test"}


def training_knobs(cfg: RunConfig) -> dict[str, Any]:
    """Resolution, augmentation, early stopping, test scoring and memory format as ``Train``
    keywords (only those that differ from plain training)."""
    recipe = cfg.train
    knobs: dict[str, Any] = {}
    if recipe.resolution:
        knobs["resolution"] = recipe.resolution
    if recipe.augment != "none":
        from nasforge.data.augment import Augmentation

        knobs["augment"] = Augmentation.parse(recipe.augment)
    if recipe.early_stopping != "none":
        from nasforge.estimators.early_stopping import make_stopper

        knobs["early_stopping"] = make_stopper(recipe.early_stopping)
    if recipe.skip_test:
        knobs["score_test"] = False
    if recipe.channels_last:
        knobs["channels_last"] = True
    if knobs and not cfg.search.training:
        flags = [f"--{_FLAG_OF_KNOB.get(k, k).replace('_', '-')}" for k in knobs]
        raise ConfigError(
            f"{', '.join(flags)} {'applies' if len(flags) == 1 else 'apply'} only to real "
            f"training, and this estimator is {cfg.search.estimator!r} (a table lookup): add "
            "--estimator train"
        )
    return knobs


def table_options(cfg: RunConfig) -> dict[str, Any] | None:
    """``--table`` and its column roles, as ``TabularBenchmark.from_csv`` keywords."""
    search = cfg.search
    if not search.table:
        return None
    if search.estimator != "benchmark":
        raise ConfigError("--table is a benchmark of your own: use it with --estimator benchmark")
    return table_keywords(
        search.table,
        search.table_objective,
        search.table_report,
        search.table_cost,
        search.table_missing,
    )


def table_keywords(
    path: str,
    objective: str | None,
    report: str | None,
    cost: str | None,
    missing: str = "error",
) -> dict[str, Any]:
    """The ``--table*`` options (of ``search`` and ``benchmark`` alike) as
    ``TabularBenchmark.from_csv`` keywords: ``report`` None takes the table's own ``test_acc``
    column if it has one, '' means none."""
    columns = None if report is None else tuple(c.strip() for c in report.split(",") if c.strip())
    return {
        "path": path,
        "objective": objective or "val_acc",
        "report": columns,
        "cost": cost or None,
        "missing": missing,
    }


def run_budget(cfg: RunConfig) -> Budget:
    """``--budget`` evaluations and/or ``--budget-seconds`` of cost."""
    from nasforge.experiment import Budget

    return Budget(evaluations=cfg.search.budget, seconds=cfg.search.budget_seconds)
