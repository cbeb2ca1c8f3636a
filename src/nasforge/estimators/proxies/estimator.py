"""`ZeroCostProxy`: score architectures at initialisation, as an estimator and an arch scorer.

A zero-cost proxy ranks architectures without training them (the proxies and their papers are
in ``registry.py`` and the modules it names). ``ZeroCostProxy`` builds each candidate's network
once, after ``torch.manual_seed(seed)``, so a cell always gets the same weights; every proxy
that changes weights (synflow, zen) works on a fresh copy of that network, and each group of
proxies that shares a pass (``ProxySpec.group``) runs it once per cell on its own copy. The
minibatch is drawn once, seeded, from the training split (``batch.py``).

As an ``Estimator``, ``evaluate`` gives objective = the first proxy's score, metrics = every
requested proxy (plus ``params``), cost = wall seconds, and ``report`` the wall seconds of
each pass and the process's CPU seconds (``cpu_seconds``). As
an arch scorer, ``score``/``score_all`` return arrays, cached by the space's canonical string;
rank combinations (``az_nas``) are computed there, over the architectures given.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from nasforge.core import Arch, Candidate, Result
from nasforge.data.datasets import ImageDataset
from nasforge.errors import ConfigError, UnknownNameError
from nasforge.estimators.base import EstimatorBase, EstimatorCapabilities
from nasforge.estimators.proxies.activation import (
    activation_scores,
    jacob_cov_score,
    meco_score,
    zen_score,
)
from nasforge.estimators.proxies.baselines import baseline_scores
from nasforge.estimators.proxies.batch import ProxyBatch, draw_batch
from nasforge.estimators.proxies.combined import rank_combination
from nasforge.estimators.proxies.gradient import gradient_scores, synflow_score
from nasforge.estimators.proxies.registry import COMPONENTS, PROXIES
from nasforge.nn.profile import count_params

_DATASET_KEYS = ("in_channels", "num_classes")
#: the passes that read the minibatch
DATA_GROUPS = ("gradient", "jacobian", "activation", "meco")
#: batch-norm mode and dtype of each pass, for ``setup``
PASS_MODES = {
    "gradient": "train-mode batch norm (batch statistics), float32",
    "activation": "train-mode batch norm (batch statistics), float32, forward only",
    "meco": "train-mode batch norm (statistics of the one image), float32, forward only",
    "jacobian": "train-mode batch norm (batch statistics), float32",
    "zen": "train-mode batch norm, float32, Gaussian weights and inputs (fresh copy)",
    "synflow": "eval-mode batch norm (initial running statistics), float64, |weights| (copy)",
    "baseline": "eval mode, no data (count_macs runs one zero image)",
}


class ZeroCostProxy(EstimatorBase):
    """Zero-cost proxies of a space's networks on ``dataset`` (only its training split is used).

    ``proxies``: names from `PROXIES` (the first is the objective); ``batch_size``: images for
    every data-driven proxy (default: each proxy's own, `ProxySpec.batch_size`); ``seed``: the
    network initialisation and the minibatch; ``build_options``: extra ``space.build`` keywords
    (e.g. ``{"C": 16, "N": 5}``); ``device``: where networks and images go.
    """

    objective_name: str

    def __init__(
        self,
        space: Any,
        dataset: ImageDataset,
        proxies: Sequence[str] | str = ("naswot",),
        *,
        batch_size: int | None = None,
        seed: int = 0,
        build_options: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ):
        names = [proxies] if isinstance(proxies, str) else list(proxies)
        if not names:
            raise ConfigError(f"give at least one proxy; accepted: {', '.join(sorted(PROXIES))}")
        for name in names:
            if name not in PROXIES:
                raise UnknownNameError("zero-cost proxy", name, PROXIES)
        if len(set(names)) != len(names):
            raise ConfigError(f"proxies named twice in {names}; name each once")
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise ConfigError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
        options = dict(build_options or {})
        clash = [k for k in _DATASET_KEYS if k in options]
        if clash:
            raise ConfigError(
                f"build_options must not set {', '.join(clash)}: they come from the dataset; "
                "accepted: the space's other build options (e.g. C, N)"
            )
        self.space, self.proxies, self.seed = space, tuple(names), int(seed)
        self.device = torch.device(device)
        self.classes, self.shape = dataset.classes, tuple(dataset.shape)
        self.dataset_name = dataset.name
        self.batch_size = batch_size
        self.options = {"in_channels": dataset.channels, "num_classes": dataset.classes, **options}
        if "input_size" not in self.options and _accepts(space.build, "input_size"):
            self.options["input_size"] = dataset.size
        #: the proxies actually computed per cell (relative ones via their components)
        self.computed = _expand(self.proxies)
        self.groups = sorted({PROXIES[n].group for n in self.computed})
        self.sizes = {g: self._size(g) for g in self.groups}
        need = max([s for s in self.sizes.values() if s], default=0)
        data_groups = [g for g in self.groups if g in DATA_GROUPS]
        self.batch: ProxyBatch | None = None
        if data_groups:
            self.batch = draw_batch(dataset, need, self.seed).to(self.device)
        self.name = "proxy:" + ",".join(self.proxies)
        self.objective_name = self.proxies[0]
        self._cache: dict[str, dict[str, float]] = {}
        self.last_seconds: dict[str, float] = {}

    def _size(self, group: str) -> int | None:
        if group in ("baseline", "synflow"):
            return None if group == "baseline" else 1
        own = max(PROXIES[n].batch_size or 0 for n in self.computed if PROXIES[n].group == group)
        size = self.batch_size if self.batch_size is not None else own
        if group == "gradient" and size < 2:
            raise ConfigError(f"gradient proxies need batch_size >= 2 (two parts), got {size}")
        return size

    @property
    def capabilities(self) -> EstimatorCapabilities:
        return EstimatorCapabilities(
            has_cost=True,
            report_metric=self.objective_name,
            build_options=self.options,
            setup=self.describe(),
        )

    def describe(self) -> dict[str, Any]:
        """What fixes the numbers: proxies, passes, batch sizes, batch-norm mode, dtype, seed."""
        return {
            "estimator": "zero-cost-proxy",
            "proxies": list(self.proxies),
            "dataset": self.dataset_name,
            "seed": self.seed,
            "init": f"torch.manual_seed({self.seed}) before space.build, one network per cell",
            "build_options": dict(self.options),
            "device": str(self.device),
            "minibatch": None if self.batch is None else self.batch.rule,
            "passes": {
                g: {"images": self.sizes[g], "mode": PASS_MODES.get(g, "")} for g in self.groups
            },
            "higher_is_better": True,
        }

    # -- scoring ---------------------------------------------------------------------------

    def key(self, arch: Arch) -> str:
        return self.space.to_string(self.space.canonical(arch))

    def cell_scores(self, arch: Arch) -> dict[str, float]:
        """Every non-relative proxy needed, for one architecture (cached)."""
        key = self.key(arch)
        if key not in self._cache:  # the canonical form is built: twins get the same scores
            self._cache[key] = self._compute(self.space.canonical(arch))
        return self._cache[key]

    def _compute(self, arch: Arch) -> dict[str, float]:
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # seeded init, the caller's RNG untouched
            torch.manual_seed(self.seed)
            pristine = self.space.build(arch, **self.options).to(self.device)
        scores: dict[str, float] = {}
        seconds: dict[str, float] = {}
        for index, group in enumerate(self.groups):
            started = time.perf_counter()
            # every pass but the last works on a copy (synflow and zen change weights, train-mode
            # passes change batch-norm statistics); the last may use the network itself
            last = index == len(self.groups) - 1
            scores.update(self._group(group, pristine, copy_first=not last))
            seconds[group] = time.perf_counter() - started
        self.last_seconds = seconds
        return {**{n: scores[n] for n in self.computed}, "params": float(count_params(pristine))}

    def _group(
        self, group: str, pristine: torch.nn.Module, *, copy_first: bool = True
    ) -> dict[str, float]:
        size = self.sizes[group]
        if group == "baseline":
            return baseline_scores(pristine, self.shape)
        net = copy.deepcopy(pristine) if copy_first else pristine
        if group == "synflow":
            return {"synflow": synflow_score(net, self.shape)}
        if group == "zen":
            return {"zen": zen_score(net, self.shape, int(size), self.seed, self.classes)}
        assert self.batch is not None and size is not None
        x, y = self.batch.first(size)
        if group == "gradient":
            return gradient_scores(net, x, y, self.classes, grasp="grasp" in self.computed)
        if group == "jacobian":
            return {"jacob_cov": jacob_cov_score(net, x, self.classes)}
        if group == "meco":
            return {"meco": meco_score(net, x, self.classes)}
        return activation_scores(net, x, self.classes, count_params(pristine))

    def score_all(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        """Every requested proxy for ``archs``, shape (len(archs),) each, higher = better;
        rank combinations are computed over ``archs``."""
        rows = [self.cell_scores(a) for a in archs]
        computed = {n: np.array([r[n] for r in rows], dtype=float) for n in self.computed}
        out: dict[str, np.ndarray] = {}
        for name in self.proxies:
            if PROXIES[name].relative:
                out[name] = rank_combination(computed, COMPONENTS[name])
            else:
                out[name] = computed[name]
        return out

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.score_all(archs)[self.proxies[0]]

    def evaluate(self, candidate: Candidate) -> Result:
        relative = [n for n in self.proxies if PROXIES[n].relative]
        if relative:
            raise ConfigError(
                f"{', '.join(relative)} ranks a population of architectures, not one candidate; "
                "use score()/score_all() over a set, or a ProxyTable"
            )
        started, cpu = time.perf_counter(), time.process_time()
        cached = self.key(candidate.arch) in self._cache
        scores = self.cell_scores(candidate.arch)
        metrics = {n: scores[n] for n in self.proxies}
        metrics.setdefault("params", scores["params"])
        report = {} if cached else {f"seconds_{g}": s for g, s in self.last_seconds.items()}
        # CPU seconds of this process: with one torch thread, the cost on one core however busy
        # the machine is (wall time is ``cost``)
        report["cpu_seconds"] = time.process_time() - cpu
        return Result(
            objective=scores[self.proxies[0]],
            metrics=metrics,
            report=report,
            cost=time.perf_counter() - started,
        )


def _expand(names: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        for part in COMPONENTS.get(name, (name,)):
            if part not in out:
                out.append(part)
    return tuple(out)


def _accepts(function: Any, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
