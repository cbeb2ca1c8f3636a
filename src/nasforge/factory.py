"""Names -> objects, for the CLI and for stored runs. Defaults are chosen here, at the top of the
import graph, never inside the core: spaces, strategies and estimators know nothing of this file.

Imports are deferred to the factory functions so that ``nasforge --help`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from nasforge.capabilities import capabilities_of
from nasforge.errors import ConfigError, UnknownNameError

#: strategy name -> (module, class). Model-based and RL strategies import their models lazily.
STRATEGY_CLASSES: dict[str, tuple[str, str]] = {
    "random": ("nasforge.strategies.random", "RandomSearch"),
    "grid": ("nasforge.strategies.grid", "GridSearch"),
    "evolution": ("nasforge.strategies.evolution", "RegularizedEvolution"),
    "proxy-evolution": ("nasforge.strategies.proxy_evolution", "ProxyEvolution"),
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
    "pnas": ("nasforge.strategies.pnas", "PNAS"),
    "nsga2": ("nasforge.strategies.nsga2", "NSGA2"),
    "pareto-evolution": ("nasforge.strategies.pareto_evolution", "ParetoEvolution"),
    "parego": ("nasforge.strategies.parego", "ParEGO"),
}
STRATEGIES = tuple(STRATEGY_CLASSES)
#: strategies that choose a fidelity, and so need an estimator that offers a range of them
MULTI_FIDELITY = ("sh", "hyperband", "asha", "bohb")
#: strategies that search several objectives at once (``--objectives``); random search ignores
#: objectives altogether, so it is every comparison's baseline, multi-objective ones included
MULTI_OBJECTIVE = ("nsga2", "pareto-evolution", "parego")
OBJECTIVE_FREE = ("random", "grid")
ESTIMATORS = ("benchmark", "train")
EXECUTORS = ("auto", "inprocess", "pool", "ray")
BENCHMARK_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
#: strategy options that describe the arch scorer (``scorer=``) instead of being passed on
PROXY_OPTIONS = ("proxy", "proxy_table", "proxy_batch", "proxy_size", "proxy_device")
#: ``proxy_size``: which network a zero-cost proxy scores
PROXY_SIZES = ("full", "search")
TRAIN_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "folder:PATH")


#: built-in space name -> (module, class)
SPACE_CLASSES: dict[str, tuple[str, str]] = {
    "nb201": ("nasforge.spaces.nb201", "NB201Space"),
    "darts": ("nasforge.spaces.darts", "DartsSpace"),
    "nb101": ("nasforge.spaces.nb101", "NB101Space"),
    "nasnet": ("nasforge.spaces.nasnet", "NASNetSpace"),
    "mobile": ("nasforge.spaces.mobile", "MobileSpace"),
    "chain": ("nasforge.spaces.chain", "ChainSpace"),
}
SPACES = tuple(SPACE_CLASSES)
#: image side of the built-in training datasets: spaces whose validity depends on resolution
#: (the chain space's "no fully connected layer on a large map") are made for it
IMAGE_SIZES = {"mnist": 28, "fashion-mnist": 28, "cifar10": 32, "cifar100": 32, "digits": 8}
#: space -> the tabular or surrogate benchmark that covers it, and the datasets it has
BENCHMARKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nb201": ("NAS-Bench-201 tables", BENCHMARK_DATASETS),
    "darts": ("NAS-Bench-301 surrogate", ("cifar10",)),
}


def make_space(name: str, image_size: int | None = None) -> Any:
    """A built-in space by name, or a user's space given as ``file.py:attr`` or
    ``package.module:attr`` (see ``nasforge.spaces.custom.load_space``)."""
    if ":" in name:
        from nasforge.spaces.custom import load_space

        return load_space(name)
    if name not in SPACE_CLASSES:
        raise UnknownNameError("search space", name, (*SPACES, "FILE.py:NAME", "MODULE:NAME"))
    module, cls = SPACE_CLASSES[name]
    space_class = getattr(importlib.import_module(module), cls)
    if image_size is not None and "input_size" in _keyword_arguments(space_class):
        return space_class(input_size=int(image_size))
    return space_class()


def search_size_of(space: str) -> dict[str, int]:
    """The proxy network a built-in space is searched with when no ``--channels``/``--cells``
    are given (its class's ``search_size``, as in DARTS's small search network); empty for
    spaces without one and for users' spaces, which then train at their own defaults."""
    if ":" in space or space not in SPACE_CLASSES:
        return {}
    module, cls = SPACE_CLASSES[space]
    return dict(getattr(getattr(importlib.import_module(module), cls), "search_size", {}))


def image_size_of(dataset: str | None) -> int | None:
    """The image side of a built-in dataset, or None when it is not known in advance."""
    return IMAGE_SIZES.get(dataset or "")


def strategy_class(name: str) -> type:
    if name not in STRATEGY_CLASSES:
        raise UnknownNameError("strategy", name, STRATEGIES)
    module, cls = STRATEGY_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def strategy_accepts(name: str, keyword: str) -> bool:
    """Whether strategy ``name``'s constructor takes ``keyword`` (e.g. ``scorer``)."""
    return keyword in _keyword_arguments(strategy_class(name))


def make_strategy(
    name: str,
    space: Any,
    seed: int,
    options: dict[str, Any] | None = None,
    estimator: Any = None,
    max_params: float | None = None,
    objectives: str | None = None,
    constraint: Any = None,
) -> Any:
    """A strategy by name. ``options`` are the strategy's own keyword arguments (population,
    eta ...); multi-fidelity strategies take their fidelity range from ``estimator``;
    ``objectives`` (``"val_acc:max,params:min"``) go to a multi-objective strategy, bound to
    the estimator's objective name."""
    cls = strategy_class(name)
    kwargs = dict(options or {})
    accepted = _keyword_arguments(cls)
    bound = bind_objectives(objectives, estimator)
    if bound is not None and "objectives" in accepted:
        kwargs["objectives"] = bound
    elif bound is not None and len(bound) > 1 and name not in OBJECTIVE_FREE:
        raise ConfigError(
            f"strategy {name!r} optimises one objective, and --objectives names "
            f"{len(bound)} ({bound.describe()}); strategies that search several: "
            f"{', '.join((*MULTI_OBJECTIVE, *OBJECTIVE_FREE))}"
        )
    elif bound is not None and name not in OBJECTIVE_FREE:
        only = bound.objectives[0]
        if not (bound.is_primary(only.name) and only.direction == "max"):
            raise ConfigError(
                f"strategy {name!r} maximises the estimator's objective "
                f"({bound.primary}); to optimise {only} alone use one of "
                f"{', '.join(MULTI_OBJECTIVE)}"
            )
    proxy = {key: kwargs.pop(key) for key in PROXY_OPTIONS if key in kwargs}
    if proxy:
        if "scorer" not in accepted:
            takes = [n for n in STRATEGIES if strategy_accepts(n, "scorer")]
            raise ConfigError(
                f"strategy {name!r} takes no proxy ({', '.join(sorted(proxy))}); "
                f"strategies that do: {', '.join(takes)}"
            )
        if "scorer" in kwargs:
            raise ConfigError("give either a scorer or proxy options, not both")
        kwargs["scorer"] = make_scorer(space, estimator, seed, **proxy)
    if max_params is not None:
        from nasforge.strategies.constraints import MaxParams

        # count the network the estimator trains (its size and data), not the space's default
        net = {} if estimator is None else dict(capabilities_of(estimator).build_options)
        kwargs["constraint"] = MaxParams(space, max_params, **net)
    if constraint is not None:
        from nasforge.strategies.constraints import AllOf

        given = kwargs.get("constraint")
        kwargs["constraint"] = constraint if given is None else AllOf([given, constraint])
    if name in MULTI_FIDELITY and "max_fidelity" not in kwargs:
        low_high = None if estimator is None else capabilities_of(estimator).fidelity_range
        if low_high is None:
            offered = "this estimator" if estimator is None else estimator.name
            raise ConfigError(
                f"strategy {name!r} chooses a fidelity, but {offered} offers none; "
                "use it with --estimator train (fidelity = epochs)"
            )
        kwargs.setdefault("min_fidelity", low_high[0])
        kwargs["max_fidelity"] = low_high[1]
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"strategy {name!r} has no option {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted - {'space', 'seed'}))}"
        )
    return cls(space, seed=seed, **kwargs)


def bind_objectives(objectives: str | None, estimator: Any) -> Any:
    """``--objectives`` text as an `Objectives` bound to the estimator's objective name
    (None when no objectives are given)."""
    if not objectives:
        return None
    from nasforge.objectives import Objectives, parse_objectives

    primary = getattr(estimator, "objective_name", None) or "objective"
    return Objectives(parse_objectives(objectives), primary)


def make_scorer(
    space: Any,
    estimator: Any,
    seed: int,
    proxy: str | list[str] | None = None,
    proxy_table: str | None = None,
    proxy_batch: int | None = None,
    proxy_size: str = "full",
    proxy_device: str = "cpu",
) -> Any:
    """The arch scorer that ``--option proxy=NAME[,NAME]`` describes (the first name is the
    score a strategy ranks by; the others are extra features where a strategy reads them).

    With ``proxy_table=FILE``: `ProxyTable` (precomputed scores, column ``NAME``), which is
    how a benchmark search gets proxy scores. With the real-training estimator: a
    `ZeroCostProxy` on that estimator's own dataset, seeded by the search's seed, scoring the
    network ``proxy_size`` names: ``full`` (default) the space's full-size network (NB201
    C=16 N=5, the benchmark's, on which the proxies' rank correlations are measured),
    ``search`` the smaller network the search trains."""
    if isinstance(proxy, str):
        names = [n.strip() for n in proxy.split(",") if n.strip()]
    else:
        names = [str(n).strip() for n in proxy or [] if str(n).strip()]
    if not names:
        raise ConfigError(
            "--option proxy=NAME[,NAME] names no proxy; e.g. --option proxy=naswot "
            "(the proxies: nasforge.estimators.proxies.PROXIES)"
        )
    if proxy_table is not None:
        if len(names) > 1:
            raise ConfigError(
                f"a proxy table scores by one column, got proxy={','.join(names)}: name one"
            )
        from nasforge.estimators.proxies import ProxyTable

        return ProxyTable(str(proxy_table), names[0], space=space)
    estimator = getattr(estimator, "inner", estimator)  # a --scalarize wrapper scores the same data
    if getattr(estimator, "name", None) != "train":
        what = "no estimator" if estimator is None else f"the {estimator.name} estimator"
        raise ConfigError(
            f"zero-cost proxies are computed on training images, and {what} has none: use "
            "--estimator train, or give precomputed scores with --option proxy_table=FILE.csv"
        )
    if proxy_size not in PROXY_SIZES:
        raise ConfigError(f"proxy_size must be one of {', '.join(PROXY_SIZES)}, got {proxy_size!r}")
    # the proxy takes channels, classes and image size from the dataset itself
    net = {
        key: value
        for key, value in capabilities_of(estimator).build_options.items()
        if key not in ("in_channels", "num_classes", "input_size")
    }
    if proxy_size == "full":  # drop the search's size knobs (C, N): the space's own default
        for keyword in getattr(space, "size_options", {}).values():
            net.pop(keyword, None)
    from nasforge.estimators.proxies import ZeroCostProxy

    return ZeroCostProxy(
        space,
        estimator.dataset,
        proxies=tuple(names),
        batch_size=proxy_batch,
        seed=seed,
        build_options=net,
        device=proxy_device,
    )


def strategies_for(space: Any, estimator: Any) -> list[str]:
    """Every strategy that can search ``space`` with ``estimator``: multi-fidelity ones only
    where the estimator offers a fidelity, PNAS only where cells grow (each strategy's own
    constructor decides, so this list cannot drift from what the strategies accept)."""
    names = []
    for name in STRATEGIES:
        try:
            make_strategy(name, space, 0, estimator=estimator)
        except ConfigError:
            continue
        names.append(name)
    return names


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
    table: dict[str, Any] | None = None,
) -> Any:
    """``benchmark``: the space's tabular or surrogate benchmark, or with ``table`` (keywords of
    ``TabularBenchmark.from_csv``: path, objective, report, cost) the user's own CSV table;
    ``train``: real training on ``dataset``."""
    if kind == "benchmark" and table:
        if hardware:
            raise ConfigError("--hardware is only available for the NB201 tables, not --table")
        from nasforge.estimators.tabular import TabularBenchmark

        return TabularBenchmark.from_csv(space=space, **table)
    if kind == "benchmark":
        return _benchmark_estimator(space, dataset, data_dir, hardware)
    if hardware:
        raise ConfigError("--hardware needs --estimator benchmark (the NB201 tables)")
    if kind == "train":
        from nasforge.data.datasets import load_dataset
        from nasforge.estimators.train import Train

        data = load_dataset(dataset, data_dir=data_dir)
        return Train(space, data, seed=seed, **(train_options or {}))
    raise UnknownNameError("estimator", kind, ESTIMATORS)


def _benchmark_estimator(
    space: Any, dataset: str, data_dir: str | None, hardware: str | None
) -> Any:
    name = getattr(space, "name", "?")
    if name not in BENCHMARKS:
        covered = ", ".join(f"{s} ({what})" for s, (what, _) in BENCHMARKS.items())
        raise ConfigError(
            f"no tabular or surrogate benchmark for space {name!r}; benchmarks exist for "
            f"{covered}; for another space give your own table (--table FILE.csv), or train "
            "for real (--estimator train)"
        )
    what, datasets = BENCHMARKS[name]
    if dataset not in datasets:
        raise ConfigError(
            f"the {what} have no dataset {dataset!r}; accepted: {', '.join(datasets)}"
        )
    if name == "nb201":
        from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

        names = None if not hardware else [h.strip() for h in hardware.split(",") if h.strip()]
        return NB201Benchmark(dataset, data_dir=data_dir, space=space, hardware=names)
    if hardware:
        raise ConfigError("--hardware is only available for the NB201 tables (--space nb201)")
    from nasforge.estimators.benchmarks.nb301 import NB301Benchmark

    return NB301Benchmark(data_dir=data_dir)


def make_executor(
    kind: str,
    estimator_kind: str,
    workers: int | None = 1,
    ray_address: str | None = None,
    trial_timeout: float | None = None,
    memory_limit_mb: float | None = None,
) -> Any:
    """``auto``: in-process for table lookups (a process boundary costs more than the work),
    a worker pool for real training (isolation: a crash, hang or memory blow-up fails one
    trial, not the search); Ray when a cluster address is given. ``workers`` None: 1, or on
    Ray every CPU of the cluster. An option the chosen executor would ignore is refused."""
    if kind == "auto":
        if ray_address:
            kind = "ray"
        else:
            kind = "inprocess" if estimator_kind == "benchmark" else "pool"
    if ray_address and kind != "ray":
        raise ConfigError(
            f"--ray-address needs the ray executor, not --executor {kind}: drop one of them"
        )
    if memory_limit_mb and kind == "ray":
        raise ConfigError(
            "--memory-limit-mb is enforced by the worker pool (--executor pool); on Ray give "
            "each node its memory with 'ray start --memory', or drop --memory-limit-mb"
        )
    if kind != "ray":
        workers = workers or 1
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

        return RayExecutor(address=ray_address, slots=workers, trial_timeout=trial_timeout)
    raise UnknownNameError("executor", kind, EXECUTORS)
