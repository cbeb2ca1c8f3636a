"""A stored or command-line configuration -> the experiment's parts.

The CLI writes a run's configuration (``config["cli"]`` in the store) and ``resume``,
``train-final`` and ``export`` rebuild the same space, estimator and strategy from it; the
rebuilding lives here, below the commands, so those modules do not import the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import factory
from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from nasforge.experiment import Budget


def search_config_keys() -> list[str]:
    return [
        "space",
        "strategy",
        "estimator",
        "dataset",
        "budget",
        "budget_seconds",
        "seed",
        "options",
        "max_params",
        "epochs",
        "subset",
        "val_fraction",
        "batch_size",
        "lr",
        "channels",
        "cells",
        "executor",
        "workers",
        "ray_address",
        "trial_timeout",
        "memory_limit_mb",
        "as_finished",
        "window",
        "hardware",
        "table",
        "table_objective",
        "table_report",
        "table_cost",
        "resolution",
        "augment",
        "early_stopping",
        "skip_test",
        "channels_last",
    ]


def build_experiment(
    cfg: dict[str, Any],
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

    space = make_space(cfg)
    estimator = make_estimator(cfg, space, data_dir)
    strategy = factory.make_strategy(
        cfg["strategy"], space, cfg["seed"], cfg["options"], estimator, cfg["max_params"]
    )
    executor = factory.make_executor(
        cfg["executor"],
        cfg["estimator"],
        cfg["workers"],
        cfg["ray_address"],
        cfg["trial_timeout"],
        cfg["memory_limit_mb"],
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
            deterministic=not cfg["as_finished"],
            window=cfg.get("window"),
            store=store,
            name=name,
            config={"cli": cfg},
            resume=resume,
            progress=progress,
        )
    except BaseException:
        executor.shutdown()
        raise


def make_space(cfg: dict[str, Any]) -> Any:
    """The configuration's space, made for its dataset's image size (fills in the default
    dataset of the estimator kind first)."""
    if cfg["estimator"] not in factory.ESTIMATORS:
        raise ConfigError(
            f"unknown estimator {cfg['estimator']!r}; accepted: {', '.join(factory.ESTIMATORS)}"
        )
    if cfg["dataset"] is None:
        cfg["dataset"] = "cifar10" if cfg["estimator"] == "benchmark" else "fashion-mnist"
    size = factory.image_size_of(cfg["dataset"]) if cfg["estimator"] == "train" else None
    return factory.make_space(cfg["space"], size)


def network_options(cfg: dict[str, Any], space: Any) -> dict[str, Any]:
    """``--channels``/``--cells`` as the keyword names of the space's ``build`` (its
    ``size_options``); a knob the space does not have is an error, not silently ignored."""
    knobs = getattr(space, "size_options", {})
    net: dict[str, Any] = {}
    for knob in ("channels", "cells"):
        if cfg.get(knob) is None:
            continue
        keyword = knobs.get(knob)
        if keyword is None:
            has = ", ".join(f"--{k}" for k, v in knobs.items() if v) or "none"
            raise ConfigError(
                f"space {space.name!r} has no --{knob} knob; its network size options: {has}"
            )
        net[keyword] = cfg[knob]
    return net


def make_estimator(cfg: dict[str, Any], space: Any, data_dir: str | None) -> Any:
    """The estimator of a configuration (``make_space`` has filled in its dataset)."""
    train_options = {
        "epochs": cfg["epochs"],
        "subset": cfg["subset"],
        "val_fraction": cfg["val_fraction"],
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"],
        "net": network_options(cfg, space) if cfg["estimator"] == "train" else {},
        **training_knobs(cfg),
    }
    return factory.make_estimator(
        cfg["estimator"],
        space,
        cfg["dataset"],
        data_dir,
        cfg["seed"],
        train_options,
        cfg.get("hardware"),
        table_options(cfg),
    )


#: ``Train`` keywords whose command-line flag has another name
_FLAG_OF_KNOB = {"score_test": "skip_test"}


def training_knobs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Resolution, augmentation, early stopping, test scoring and memory format as ``Train``
    keywords (absent from runs stored before they existed, which then train as they did)."""
    knobs: dict[str, Any] = {}
    if cfg.get("resolution"):
        knobs["resolution"] = cfg["resolution"]
    if cfg.get("augment") and cfg["augment"] != "none":
        from nasforge.data.augment import Augmentation

        knobs["augment"] = Augmentation.parse(cfg["augment"])
    if cfg.get("early_stopping") and cfg["early_stopping"] != "none":
        from nasforge.estimators.early_stopping import make_stopper

        knobs["early_stopping"] = make_stopper(cfg["early_stopping"])
    if cfg.get("skip_test"):
        knobs["score_test"] = False
    if cfg.get("channels_last"):
        knobs["channels_last"] = True
    if knobs and cfg["estimator"] != "train":
        raise ConfigError(
            f"{', '.join('--' + _FLAG_OF_KNOB.get(k, k).replace('_', '-') for k in knobs)} "
            "apply to real training: use them with --estimator train"
        )
    return knobs


def table_options(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """``--table`` and its column roles, as ``TabularBenchmark.from_csv`` keywords."""
    if not cfg.get("table"):
        return None
    if cfg["estimator"] != "benchmark":
        raise ConfigError("--table is a benchmark of your own: use it with --estimator benchmark")
    report = [c.strip() for c in (cfg.get("table_report") or "").split(",") if c.strip()]
    return {
        "path": cfg["table"],
        "objective": cfg.get("table_objective") or "val_acc",
        "report": tuple(report),
        "cost": cfg.get("table_cost"),
    }


def run_budget(cfg: dict[str, Any]) -> Budget:
    """``--budget`` evaluations and/or ``--budget-seconds`` of cost; 100 evaluations when
    neither is given (stored runs from before ``budget_seconds`` existed keep their count)."""
    from nasforge.experiment import Budget

    seconds = cfg.get("budget_seconds")
    evaluations = cfg.get("budget") or (None if seconds else 100)
    return Budget(evaluations=evaluations, seconds=seconds)
