"""Names -> objects, for the CLI and for stored runs. Defaults are chosen here, at the top of the
import graph, never inside the core: spaces, strategies and estimators know nothing of this file.

Imports are deferred to the factory functions so that ``nasforge --help`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from nasforge.errors import ConfigError, UnknownNameError

SPACES = ("nb201",)

#: strategy name -> (module, class). Model-based and RL strategies import their models lazily.
STRATEGY_CLASSES: dict[str, tuple[str, str]] = {
    "random": ("nasforge.strategies.random", "RandomSearch"),
    "grid": ("nasforge.strategies.grid", "GridSearch"),
    "evolution": ("nasforge.strategies.evolution", "RegularizedEvolution"),
    "tournament": ("nasforge.strategies.tournament", "TournamentEvolution"),
    "genetic": ("nasforge.strategies.genetic", "GeneticAlgorithm"),
    "local": ("nasforge.strategies.local", "LocalSearch"),
    "reinforce": ("nasforge.strategies.reinforce", "Reinforce"),
    "ppo": ("nasforge.strategies.reinforce", "PPO"),
    "mcts": ("nasforge.strategies.mcts", "MCTS"),
    "bo": ("nasforge.strategies.bo", "BayesianOptimisation"),
    "bananas": ("nasforge.strategies.bananas", "Bananas"),
    "tpe": ("nasforge.strategies.tpe", "TPE"),
    "sh": ("nasforge.strategies.hyperband", "SuccessiveHalving"),
    "hyperband": ("nasforge.strategies.hyperband", "Hyperband"),
    "asha": ("nasforge.strategies.asha", "ASHA"),
    "bohb": ("nasforge.strategies.bohb", "BOHB"),
}
STRATEGIES = tuple(STRATEGY_CLASSES)
#: strategies that choose a fidelity, and so need an estimator that offers a range of them
MULTI_FIDELITY = ("sh", "hyperband", "asha", "bohb")
ESTIMATORS = ("benchmark", "train")
EXECUTORS = ("auto", "inprocess", "pool", "ray")
BENCHMARK_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
TRAIN_DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits")


def make_space(name: str) -> Any:
    if name == "nb201":
        from nasforge.spaces.nb201 import NB201Space

        return NB201Space()
    raise UnknownNameError("search space", name, SPACES)


def strategy_class(name: str) -> type:
    if name not in STRATEGY_CLASSES:
        raise UnknownNameError("strategy", name, STRATEGIES)
    module, cls = STRATEGY_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def make_strategy(
    name: str,
    space: Any,
    seed: int,
    options: dict[str, Any] | None = None,
    estimator: Any = None,
    max_params: float | None = None,
) -> Any:
    """A strategy by name. ``options`` are the strategy's own keyword arguments (population,
    eta ...); multi-fidelity strategies take their fidelity range from ``estimator``."""
    cls = strategy_class(name)
    kwargs = dict(options or {})
    if max_params is not None:
        from nasforge.strategies.constraints import MaxParams

        kwargs["constraint"] = MaxParams(space, max_params)
    if name in MULTI_FIDELITY and "max_fidelity" not in kwargs:
        low_high = getattr(estimator, "fidelity_range", None)
        if low_high is None:
            offered = getattr(estimator, "name", "this estimator")
            raise ConfigError(
                f"strategy {name!r} chooses a fidelity, but {offered} offers none; "
                "use it with --estimator train (fidelity = epochs)"
            )
        kwargs.setdefault("min_fidelity", low_high[0])
        kwargs["max_fidelity"] = low_high[1]
    accepted = _keyword_arguments(cls)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"strategy {name!r} has no option {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted - {'space', 'seed'}))}"
        )
    return cls(space, seed=seed, **kwargs)


def _keyword_arguments(cls: type) -> set[str]:
    """Keyword arguments of a strategy's constructor, including those of its base classes
    when it forwards ``**kwargs``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


def make_estimator(
    kind: str,
    space: Any,
    dataset: str,
    data_dir: str | None = None,
    seed: int = 0,
    train_options: dict[str, Any] | None = None,
    hardware: str | None = None,
) -> Any:
    """``benchmark``: the space's tabular benchmark; ``train``: real training on ``dataset``."""
    if kind == "benchmark":
        if space.name != "nb201":
            raise ConfigError(
                f"no tabular benchmark for space {space.name!r}; use --estimator train"
            )
        from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

        names = None if not hardware else [h.strip() for h in hardware.split(",") if h.strip()]
        return NB201Benchmark(dataset, data_dir=data_dir, space=space, hardware=names)
    if hardware:
        raise ConfigError("--hardware needs --estimator benchmark (the NB201 tables)")
    if kind == "train":
        from nasforge.data.datasets import load_dataset
        from nasforge.estimators.train import Train

        data = load_dataset(dataset, data_dir=data_dir)
        return Train(space, data, seed=seed, **(train_options or {}))
    raise UnknownNameError("estimator", kind, ESTIMATORS)


def make_executor(
    kind: str,
    estimator_kind: str,
    workers: int = 1,
    ray_address: str | None = None,
    trial_timeout: float | None = None,
    memory_limit_mb: float | None = None,
) -> Any:
    """``auto``: in-process for table lookups (a process boundary costs more than the work),
    a worker pool for real training (isolation: a crash, hang or memory blow-up fails one
    trial, not the search); Ray when a cluster address is given."""
    if kind == "auto":
        if ray_address:
            kind = "ray"
        else:
            kind = "inprocess" if estimator_kind == "benchmark" else "pool"
    if kind == "inprocess":
        if trial_timeout or memory_limit_mb:
            raise ConfigError(
                "--trial-timeout and --memory-limit-mb need worker processes: "
                "use --executor pool or ray"
            )
        from nasforge.executors.inprocess import InProcessExecutor

        return InProcessExecutor(slots=workers)
    if kind == "pool":
        from nasforge.executors.pool import ProcessPoolExecutor

        return ProcessPoolExecutor(
            workers=workers, trial_timeout=trial_timeout, memory_limit_mb=memory_limit_mb
        )
    if kind == "ray":
        from nasforge.executors.ray import RayExecutor

        return RayExecutor(
            address=ray_address, slots=workers if workers > 1 else None, trial_timeout=trial_timeout
        )
    raise UnknownNameError("executor", kind, EXECUTORS)
