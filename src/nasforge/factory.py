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
