"""The run configuration: one frozen, versioned value, built once and stored with the run.

A run is described by four parts: what is searched and how (`SearchPart`), how a candidate is
trained (`TrainRecipe`), where trials run (`ExecutorPart`) and what happens after the search
(`FinalPlan`, None for a search-only or benchmark run). `RunConfig` joins them. It is built once,
from the command line (`RunConfig.from_args`) or from Python (`RunConfig.create`), which resolve
every default that depends on another choice (the estimator implied by ``--table``, the dataset
of an estimator kind, the budget, evolution's population for a short search, the workers, the
proxy network size); after that nothing fills in or overrides a value in place: a changed copy
is `dataclasses.replace`.

Stored as JSON (``config["cli"]`` of a run in the store) with its ``version``. Reading goes
through `from_stored`, which applies the migrations in `MIGRATIONS` in order; version 1 is the
flat dict that nasforge wrote before this module existed, and the migration from it is the one
place where keys that older runs lack get their values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from nasforge import factory
from nasforge.errors import ConfigError
from nasforge.spaces.source import fingerprint

#: The version `RunConfig.to_json` writes.
CONFIG_VERSION = 2

#: The strategy of a search whose ``--strategy`` is not given, on a benchmark (table lookups).
DEFAULT_STRATEGY = "evolution"
#: The strategy and its options of `nasforge search` with real training when no ``--strategy``
#: is given. The user's ``--option`` values are laid over these options; a user who names a
#: strategy gets none of them. MeCo (one image, the benchmark's C=16 N=5 network) ranks NB201
#: cells best of the single proxies measured (Spearman 0.89 over all 6,466 classes on
#: CIFAR-10) at ~0.1-0.2 s a cell on one core, and proxy-evolution with it beat every other
#: strategy on the NB201 table (README, "Cheaper estimation"; "Does searching pay?" for real
#: training).
DEFAULT_TRAIN_SEARCH: tuple[str, Mapping[str, Any]] = (
    "proxy-evolution",
    MappingProxyType({"proxy": "meco"}),
)
#: strategies whose population shrinks to half a short budget (under 20 evaluations)
POPULATION_STRATEGIES = ("evolution", "proxy-evolution")


def default_search(training: bool) -> tuple[str, dict[str, Any]]:
    """(strategy, options) of a search that names no strategy."""
    if training:
        name, options = DEFAULT_TRAIN_SEARCH
        return name, dict(options)
    return DEFAULT_STRATEGY, {}


def describe_default_train_search() -> str:
    """``DEFAULT_TRAIN_SEARCH`` as command-line flags, for ``--help`` and the docs."""
    name, options = DEFAULT_TRAIN_SEARCH
    flags = "".join(f" --option {k}={v}" for k, v in options.items())
    return f"--strategy {name}{flags}"


@dataclass(frozen=True)
class SearchPart:
    """What is searched, by which strategy, scored how, for how long."""

    space: str = "nb201"
    strategy: str = "evolution"
    estimator: str = "train"
    dataset: str = "fashion-mnist"
    budget: int | None = 12
    budget_seconds: float | None = None
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    max_params: float | None = None
    #: ``name:max|min`` comma-separated; None: the estimator's objective alone
    objectives: str | None = None
    #: ``NAME<=VALUE`` limits checked before proposing (`nasforge.limits`)
    constraints: tuple[str, ...] = ()
    #: one reward from the objectives for a single-objective strategy (`nasforge.scalarize`)
    scalarize: str | None = None
    #: a latency lookup table (``nasforge latency-table``) for ``latency_ms`` limits
    latency_table: str | None = None
    hardware: str | None = None
    table: str | None = None
    table_objective: str = "val_acc"
    #: comma-separated report-only columns; None: ``test_acc`` when the table has it, else none
    table_report: str | None = None
    table_cost: str | None = None
    #: a configuration the table lacks: "error" stops the run, "fail" is a failed trial
    table_missing: str = "error"
    #: SHA-256 of a ``FILE.py:NAME`` space's file when the run was created (`spaces.source`)
    space_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.estimator not in factory.ESTIMATORS:
            raise ConfigError(
                f"unknown estimator {self.estimator!r}; accepted: {', '.join(factory.ESTIMATORS)}"
            )
        if self.budget is None and self.budget_seconds is None:
            raise ConfigError("a search needs a budget: evaluations, seconds of cost, or both")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "constraints", tuple(self.constraints or ()))
        if self.scalarize and not self.objectives:
            raise ConfigError(
                "--scalarize combines the --objectives into one reward: give --objectives "
                "too, e.g. val_acc:max,latency_ms/pi5/onnx/cifar100:min"
            )

    @property
    def training(self) -> bool:
        return self.estimator == "train"

    def __reduce__(self) -> tuple[Any, ...]:
        # a read-only mapping does not pickle; rebuild from plain values (also for deepcopy)
        return (_search_part, (self.to_json(),))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "options": dict(self.options),
            "constraints": list(self.constraints),
        }


def _search_part(values: dict[str, Any]) -> SearchPart:
    return SearchPart(**values)


@dataclass(frozen=True)
class TrainRecipe:
    """How ``Train`` trains a candidate (ignored by a benchmark search, whose checks refuse the
    knobs that only real training has)."""

    epochs: int = 2
    subset: float = 0.1
    val_fraction: float = 0.1
    batch_size: int = 128
    lr: float = 0.1
    channels: int | None = None
    cells: int | None = None
    resolution: int | None = None
    augment: str = "none"
    early_stopping: str = "none"
    skip_test: bool = False
    channels_last: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExecutorPart:
    """Where trials run and in which order results reach the strategy."""

    executor: str = "auto"
    #: trials in flight at once; None only on Ray, where it means every CPU of the cluster
    workers: int | None = None
    ray_address: str | None = None
    trial_timeout: float | None = None
    memory_limit_mb: float | None = None
    as_finished: bool = False
    window: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FinalPlan:
    """What happens after the search. ``epochs``/``subset`` None: a higher fidelity than the
    search's, twice its epochs on three times its share of the data (at most all of it), so
    the final numbers are not read off the proxy the search ranked with."""

    top_k: int = 1
    seeds: int = 2
    epochs: int | None = None
    subset: float | None = None

    def __post_init__(self) -> None:
        for name in ("top_k", "seeds", "epochs"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"final {name} must be a whole number >= 1, got {value!r}")
        if self.subset is not None and not 0 < self.subset <= 1:
            raise ConfigError(f"final subset must be a fraction in (0, 1], got {self.subset!r}")

    def resolved(self, search_epochs: int, search_subset: float) -> tuple[int, float]:
        """(epochs, subset) of the final training for a search at this fidelity."""
        epochs = self.epochs if self.epochs is not None else 2 * int(search_epochs)
        subset = self.subset if self.subset is not None else min(1.0, 3.0 * search_subset)
        return epochs, float(subset)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """A run's whole configuration; see the module docstring."""

    search: SearchPart = field(default_factory=SearchPart)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    executor: ExecutorPart = field(default_factory=ExecutorPart)
    final: FinalPlan | None = None
    version: int = CONFIG_VERSION

    # building --------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        search: Mapping[str, Any] | None = None,
        train: Mapping[str, Any] | None = None,
        executor: Mapping[str, Any] | None = None,
        final: Mapping[str, Any] | bool | None = True,
    ) -> RunConfig:
        """A configuration from Python, with the command line's defaults resolved: keys left
        out or None get the value `nasforge search` would give them. ``final``: a plan's
        fields, True for the default plan (real training only), False/None for none."""
        s = {k: v for k, v in (search or {}).items() if v is not None}
        t = {k: v for k, v in (train or {}).items() if v is not None}
        e = {k: v for k, v in (executor or {}).items() if v is not None}
        implied = hardware_implied(s.get("objectives"), s.get("constraints"))
        if implied:  # a hardware metric named as an objective is looked up without --hardware
            given = [h.strip() for h in (s.get("hardware") or "").split(",") if h.strip()]
            s["hardware"] = ",".join(dict.fromkeys([*given, *implied]))
        estimator = s.get("estimator") or (
            "benchmark" if s.get("table") or s.get("hardware") else "train"
        )
        s["estimator"] = estimator
        if "space_sha256" not in s:
            s["space_sha256"] = fingerprint(s.get("space", SearchPart.space))
        training = estimator == "train"
        s.setdefault("dataset", default_dataset(estimator))
        if "budget" not in s and "budget_seconds" not in s:
            s["budget"] = 12 if training else 100
        s.setdefault("budget", None)
        options = dict(s.get("options") or {})
        if "strategy" not in s:
            s["strategy"], defaults = default_search(training)
            options = defaults | options
        short = s["budget"] is not None and s["budget"] < 20
        if s["strategy"] in POPULATION_STRATEGIES and "population" not in options and short:
            # evolution's population of 10 would leave a short search nearly all random samples
            population = max(2, s["budget"] // 2)
            options["population"] = population
            options.setdefault("sample", min(3, population))
        s["options"] = options
        on_ray = e.get("executor") == "ray" or (
            e.get("executor", "auto") == "auto" and e.get("ray_address")
        )
        if not on_ray:  # on Ray, no --workers means every CPU of the cluster
            e.setdefault("workers", min(2, os.cpu_count() or 1) if training else 1)
        if training and "channels" not in t and "cells" not in t:
            t.update(factory.search_size_of(s.get("space", "nb201")))
        plan = None
        if training and final:
            plan = FinalPlan() if final is True else FinalPlan(**dict(final))  # type: ignore[arg-type]
        return cls(SearchPart(**s), TrainRecipe(**t), ExecutorPart(**e), plan)

    @classmethod
    def from_args(cls, args: Any) -> RunConfig:
        """The configuration of a parsed ``nasforge search`` (or ``evaluate``) command line;
        attributes a command does not have keep their defaults."""
        options = parse_options(getattr(args, "option", None) or [])
        for key in ("population", "sample"):
            if getattr(args, key, None) is not None:
                options[key] = getattr(args, key)

        def picked(part: type) -> dict[str, Any]:
            return {f.name: getattr(args, f.name) for f in fields(part) if hasattr(args, f.name)}

        search = picked(SearchPart) | {"options": options}
        final: Mapping[str, Any] | bool = not getattr(args, "search_only", True) and {
            "top_k": args.final_top_k,
            "seeds": args.final_seeds,
            "epochs": args.final_epochs,
            "subset": args.final_subset,
        }
        return cls.create(search, picked(TrainRecipe), picked(ExecutorPart), final)

    @classmethod
    def for_evaluation(cls, args: Any) -> RunConfig:
        """``nasforge evaluate``: one architecture scored as given, so no search defaults (no
        proxy network size, budget or plan); only the dataset of the estimator kind."""
        search = {
            f.name: getattr(args, f.name)
            for f in fields(SearchPart)
            if getattr(args, f.name, None) is not None
        }
        search.setdefault("estimator", "benchmark")
        search.setdefault("dataset", default_dataset(search["estimator"]))
        train = {
            f.name: getattr(args, f.name)
            for f in fields(TrainRecipe)
            if getattr(args, f.name, None) is not None
        }
        return cls(SearchPart(**search), TrainRecipe(**train), ExecutorPart(), None)

    def with_search(self, **changes: Any) -> RunConfig:
        return replace(self, search=replace(self.search, **changes))

    def with_train(self, **changes: Any) -> RunConfig:
        return replace(self, train=replace(self.train, **changes))

    def with_executor(self, **changes: Any) -> RunConfig:
        return replace(self, executor=replace(self.executor, **changes))

    # storing ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "search": self.search.to_json(),
            "train": self.train.to_json(),
            "executor": self.executor.to_json(),
            "final": None if self.final is None else self.final.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        """A stored configuration of any known version (migrated to the current one)."""
        current = migrate(data)
        try:
            plan = current.get("final")
            return cls(
                SearchPart(**current["search"]),
                TrainRecipe(**current["train"]),
                ExecutorPart(**current["executor"]),
                None if not plan else FinalPlan(**plan),
            )
        except TypeError as err:  # an unknown or missing key in a hand-edited configuration
            raise ConfigError(
                f"stored run configuration is not one nasforge reads: {err}"
            ) from None


def hardware_implied(objectives: str | None, constraints: Any = ()) -> list[str]:
    """The NB201 hardware metrics (``latency_ms/pi5/onnx/cifar100`` ...) that ``objectives``
    or ``constraints`` (``NAME<=VALUE``, ``NAME>=VALUE``) name: naming one asks for it, as
    ``--hardware`` would."""
    import re

    from nasforge.estimators.benchmarks.hardware import METRIC_NAMES
    from nasforge.objectives import parse_objectives

    named = [o.name for o in parse_objectives(objectives)] if objectives else []
    named += [re.split("<=|>=", str(c))[0].strip() for c in constraints or ()]
    for name in named:  # spelt like a hardware metric but not one the table has
        if name.startswith(("latency_ms/", "energy_mj/")) and name not in METRIC_NAMES:
            raise ConfigError(
                f"{name!r} is not a measured hardware metric; the NB201 hardware table has: "
                f"{', '.join(METRIC_NAMES)}"
            )
    return [name for name in dict.fromkeys(named) if name in METRIC_NAMES]


def default_dataset(estimator: str) -> str:
    """The dataset of an estimator kind when none is named."""
    return "cifar10" if estimator == "benchmark" else "fashion-mnist"


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["population=20", "ucb=true"]`` -> ``{"population": 20, "ucb": True}`` (JSON values,
    else strings)."""
    import json

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r} is not KEY=VALUE, e.g. --option population=20")
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    return options


def stored_config(run_config: Mapping[str, Any]) -> RunConfig | None:
    """The `RunConfig` in a stored run's config JSON (its ``cli`` entry), None for a run made
    from Python without one."""
    data = run_config.get("cli")
    return None if data is None else RunConfig.from_json(data)


# migrations ------------------------------------------------------------------------------------


def _from_v1(old: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2. Version 1 is the flat dict ``cli.search_config`` wrote (up to commit
    af1f55a); keys that older runs lack take the value those runs were run with."""
    cfg = dict(old)
    cfg.setdefault("dataset", None)
    cfg.setdefault("budget_seconds", None)
    if cfg.get("budget") is None and cfg["budget_seconds"] is None:
        cfg["budget"] = 100  # how runs without a budget were read back
    estimator = cfg.get("estimator") or "train"

    def part(names: list[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
        return {n: cfg[n] if cfg.get(n) is not None else defaults.get(n) for n in names}

    search = part(
        [f.name for f in fields(SearchPart)],
        {
            "space": "nb201",
            "strategy": "evolution",
            "estimator": estimator,
            "dataset": default_dataset(estimator),
            "seed": 0,
            "options": {},
            "table_objective": "val_acc",
            "table_report": "test_acc",
            "table_missing": "error",
        },
    )
    search["budget"] = cfg.get("budget")
    train = part([f.name for f in fields(TrainRecipe)], asdict(TrainRecipe()))
    for knob in ("channels", "cells", "resolution"):
        train[knob] = cfg.get(knob)  # None is a value here: the space's own default size
    executor = part([f.name for f in fields(ExecutorPart)], asdict(ExecutorPart()))
    return {
        "version": 2,
        "search": search,
        "train": train,
        "executor": executor,
        "final": cfg.get("final") or None,
    }


#: ``version -> function to the next version``, applied in order by `migrate`.
MIGRATIONS: dict[int, Callable[[Mapping[str, Any]], dict[str, Any]]] = {1: _from_v1}


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored configuration brought to `CONFIG_VERSION` (one without ``version`` is 1)."""
    version = data.get("version", 1)
    current = dict(data)
    if not isinstance(version, int) or version > CONFIG_VERSION or version < 1:
        raise ConfigError(
            f"stored run configuration has version {version!r}; this nasforge reads versions "
            f"1 to {CONFIG_VERSION}: use the nasforge that wrote it"
        )
    while version < CONFIG_VERSION:
        current = MIGRATIONS[version](current)
        version = current["version"]
    return current
