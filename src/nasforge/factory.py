"""Names -> objects, for the CLI and for stored runs. Defaults are chosen here, at the top of the
import graph, never inside the core: spaces, strategies and estimators know nothing of this file.

Imports are deferred to the factory functions so that ``nasforge --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import ConfigError, UnknownNameError

SPACES = ("nb201",)
STRATEGIES = ("random", "evolution")
ESTIMATORS = ("benchmark", "train")
EXECUTORS = ("auto", "inprocess", "pool", "ray")
BENCHMARK_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
TRAIN_DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits")


def make_space(name: str) -> Any:
    if name == "nb201":
        from nasforge.spaces.nb201 import NB201Space

        return NB201Space()
    raise UnknownNameError("search space", name, SPACES)


def make_strategy(name: str, space: Any, seed: int, population: int = 10, sample: int = 3) -> Any:
    if name == "random":
        from nasforge.strategies.random import RandomSearch

        return RandomSearch(space, seed=seed)
    if name == "evolution":
        from nasforge.strategies.evolution import RegularizedEvolution

        return RegularizedEvolution(space, seed=seed, population=population, sample=sample)
    raise UnknownNameError("strategy", name, STRATEGIES)


def make_estimator(
    kind: str,
    space: Any,
    dataset: str,
    data_dir: str | None = None,
    seed: int = 0,
    train_options: dict[str, Any] | None = None,
) -> Any:
    """``benchmark``: the space's tabular benchmark; ``train``: real training on ``dataset``."""
    if kind == "benchmark":
        if space.name != "nb201":
            raise ConfigError(
                f"no tabular benchmark for space {space.name!r}; use --estimator train"
            )
        from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

        return NB201Benchmark(dataset, data_dir=data_dir, space=space)
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
