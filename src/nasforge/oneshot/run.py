"""A one-shot run, stored like every other run: create or resume it, train its supernet with
a checkpoint after every epoch, derive its architecture, check the supernet against the table.

The run's configuration is ``{"cli": RunConfig, "oneshot": OneShotRecipe}``: the `RunConfig`
part (space, dataset, seed, the stand-alone network's size) is what `nasforge train-final` and
`export` read, so they treat a one-shot run's result exactly as a search's. The trials are the
architectures the run scored with the supernet (the derived one for gradient methods, every
candidate of the search for SPOS/FairNAS/RSWS/ENAS); the ``oneshot`` record in the store keeps
the α trajectory per epoch, the derived cell, and the NB201 weight-sharing check (Kendall τ and
Spearman ρ between supernet accuracy and the table over ``check_sample`` cells).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.config import RunConfig
from nasforge.core import Candidate, Result
from nasforge.data.datasets import load_dataset, resized, split_train_val
from nasforge.errors import ConfigError
from nasforge.latency.machine import describe_environment
from nasforge.oneshot.estimator import SupernetEstimator, path_accuracy
from nasforge.oneshot.methods import (
    OneShotMethod,
    check_options,
    coerce_option,
    make_method,
    method_class,
)
from nasforge.oneshot.mixed import Path as SupernetPath
from nasforge.oneshot.mobile_supernet import MobileSupernet
from nasforge.oneshot.supernet import SUPERNETS, Supernet, check_size, make_supernet
from nasforge.oneshot.train import OneShotRecipe, SupernetTrainer
from nasforge.store import Store

CHECKPOINT = "oneshot.pt"
#: the tables' datasets a one-shot run on NB201 is checked against
NB201_TRUTHS = ("cifar10", "cifar100", "imagenet16-120")


@dataclass(frozen=True)
class OneShotRun:
    """What a one-shot run needs: its configuration parts, where its data is, where it runs."""

    cfg: RunConfig
    recipe: OneShotRecipe
    data_dir: str | None = None
    device: str = "cpu"

    def stored(self) -> dict[str, Any]:
        """The run's stored configuration; the top-level keys are the ones `nasforge show`
        reads of every run."""
        return {
            "strategy": f"oneshot:{self.recipe.method}",
            "space": self.cfg.search.space,
            "estimator": "supernet",
            "objective": "val_acc",
            "seed": self.cfg.search.seed,
            "cli": self.cfg.to_json(),
            "oneshot": self.recipe.to_json(),
            "environment": describe_environment(),
        }


def oneshot_config(
    method: str,
    space: str,
    dataset: str,
    seed: int,
    *,
    channels: int | None,
    cells: int | None,
    resolution: int | None,
    subset: float,
    options: dict[str, Any],
    recipe: dict[str, Any],
) -> tuple[RunConfig, OneShotRecipe]:
    """Both configuration parts, validated before anything is written or loaded."""
    cls = method_class(method)
    if space not in SUPERNETS:
        raise ConfigError(
            f"space {space!r} has no supernet; one-shot methods accept: {', '.join(SUPERNETS)} "
            "(a user space declares no edges of ops to share weights over)"
        )
    cls.check_space(space, SUPERNETS[space])
    accepted = check_options(cls, options)
    limit = coerce_option("stop_param_free", options.get("stop_param_free", 0), 0)
    if limit and "param_free" not in SUPERNETS[space].features:
        raise ConfigError(
            f"stop_param_free counts parameter-free ops, and the {space!r} space has none"
        )
    check_size(space, channels, cells, recipe.get("width"))
    if space == "mobile" and recipe.get("width") is None:  # the record names the width it ran
        recipe = {**recipe, "width": MobileSupernet.default_width}
    budget = int(float(options.get("search_budget", accepted.get("search_budget", 1))))
    cfg = RunConfig.create(
        search={
            "space": space,
            "strategy": f"oneshot:{method}",
            "estimator": "train",
            "dataset": dataset,
            "budget": max(1, budget),
            "seed": seed,
            "options": dict(options),
        },
        train={"channels": channels, "cells": cells, "resolution": resolution, "subset": subset},
        executor={"executor": "inprocess", "workers": 1},
        final=False,
    )
    return cfg, OneShotRecipe(method=method, options=dict(options), **recipe)


def _fingerprint(stored: dict[str, Any]) -> str:
    """A hash of what a checkpoint was trained with. Unset values (None, empty) are left out,
    so a later nasforge that adds a setting with an empty default (a new search option) still
    resumes the checkpoints of an older one."""
    compact = json.dumps(_without_unset(stored), sort_keys=True)
    return hashlib.sha256(compact.encode()).hexdigest()[:16]


def _without_unset(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _without_unset(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {}, ())}
    if isinstance(value, list | tuple):
        return [_without_unset(v) for v in value]
    return value


class OneShotDriver:
    """Builds the data, supernet and method of a run and carries it from its last checkpoint
    to its end."""

    def __init__(
        self,
        run: OneShotRun,
        store: Store,
        name: str,
        folder: Path,
        progress: Callable[[str], None] | None = None,
    ):
        self.run, self.store, self.name, self.folder = run, store, name, folder
        self.progress = progress
        self.checkpoint = folder / CHECKPOINT
        self.key = _fingerprint(run.stored())

    # -- set-up ----------------------------------------------------------------------------------

    def check_checkpoint(self, resuming: bool) -> dict[str, Any] | None:
        """The checkpoint to continue from; one written by another configuration, or one left
        where a new run would write, is refused before anything is touched."""
        if not self.checkpoint.exists():
            return None
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        if state.get("key") != self.key:
            raise ConfigError(
                f"checkpoint {self.checkpoint} belongs to another configuration (key "
                f"{state.get('key')}, this run {self.key}); remove it or use another --name"
            )
        if not resuming:
            raise ConfigError(
                f"checkpoint {self.checkpoint} is already there for a run named {self.name!r}; "
                "resume that run with 'nasforge resume', or use another --name"
            )
        return state

    def build(self) -> None:
        cfg, recipe = self.run.cfg, self.run.recipe
        seed, device = cfg.search.seed, torch.device(self.run.device)
        data = load_dataset(cfg.search.dataset, self.run.data_dir)
        if cfg.train.resolution:
            data = resized(data, cfg.train.resolution)
        train_idx, val_idx = split_train_val(len(data.train_x), 0.5, seed, cfg.train.subset)
        val_idx = val_idx[: len(train_idx)]  # two equal halves, as DARTS splits
        self.split = {
            "train": len(train_idx),
            "val": len(val_idx),
            "val_fraction": 0.5,
            "subset": cfg.train.subset,
            "seed": seed,
        }
        tx, ty = data.train_x[train_idx], data.train_y[train_idx]
        vx, vy = data.train_x[val_idx], data.train_y[val_idx]
        torch.manual_seed(seed)  # the supernet's initial weights
        self.supernet: Supernet = make_supernet(
            cfg.search.space,
            channels=cfg.train.channels,
            cells=cfg.train.cells,
            width=recipe.width,
            in_channels=data.channels,
            num_classes=data.classes,
            input_size=data.size,
            partial=method_class(recipe.method).partial,
        ).to(device)
        self.method: OneShotMethod = make_method(
            recipe.method, self.supernet, recipe.options, recipe.epochs, seed
        )
        for p in self.method.arch_parameters():
            p.data = p.data.to(device)
        self.trainer = SupernetTrainer(
            self.method, recipe, (tx, ty, vx, vy), seed, device, self.progress
        )
        ex, ey = self.trainer.eval_data()
        self.estimator = SupernetEstimator(
            self.supernet, ex.to(device), ey.to(device), recipe.eval_batch
        )
        self.dataset = data

    # -- the run ---------------------------------------------------------------------------------

    def execute(self, resuming: bool) -> dict[str, Any]:
        state = self.check_checkpoint(resuming)
        if not resuming and self.store.find_run(self.name) is not None:
            raise ConfigError(
                f"run {self.name!r} already exists in {self.store.location}; choose another "
                "--name or resume it"
            )
        self.build()  # data and network first: a bad dataset or size writes nothing
        if resuming:
            stored = self.store.get_run(self.name)
            self.store.claim_run(stored)
        else:
            stored = self.store.create_run(self.name, self.run.stored())
        self.stored = stored
        try:
            record = self.store.oneshot(stored) or {}
            history: list[dict[str, Any]] = []  # without a checkpoint, training starts over
            start = 0
            if state is not None:
                self.trainer.load_state_dict(state["trainer"])
                history, start = state["history"], state["epoch"]
            started = time.perf_counter()
            seconds = float(record.get("train_seconds", 0.0)) if state is not None else 0.0
            stop = state.get("stopped", False) if state is not None else False
            for epoch in range(start, self.run.recipe.epochs):
                if stop:
                    break
                entry = self.trainer.train_epoch(epoch)
                history.append(entry)
                stop = self._should_stop(entry)
                seconds += entry["seconds"]
                self._save_checkpoint(epoch + 1, history, stop)
                self._save_record(history, seconds, stopped=stop)
                if self.progress is not None:
                    self.progress(self._epoch_line(entry))
            result = self._finish(history, seconds)
            result["wall_seconds_this_session"] = time.perf_counter() - started
        except BaseException:
            self.store.set_status(stored, "interrupted")
            raise
        self.store.set_status(stored, "finished")
        return result

    def _should_stop(self, entry: dict[str, Any]) -> bool:
        """DARTS+-style early stopping (Liang et al. 2019) on the derived cell's count of
        parameter-free ops, when ``stop_param_free`` asks for it."""
        limit = int(self.method.options["stop_param_free"])
        return bool(limit) and entry.get("param_free", 0) >= limit

    def _epoch_line(self, entry: dict[str, Any]) -> str:
        line = (
            f"epoch {entry['epoch']}/{self.run.recipe.epochs}: train loss {entry['train_loss']:.3f}"
            f" acc {entry['train_acc']:.1f}, val acc {entry['val_acc']:.1f} "
            f"({entry['seconds']:.0f} s, {entry['step_seconds']:.2f} s/step)"
        )
        if "derived" in entry:
            line += f" derived {entry['derived']}"
        return line

    def _save_checkpoint(self, epoch: int, history: list[dict[str, Any]], stopped: bool) -> None:
        """Written to a temporary file and renamed, so a kill mid-write keeps the last one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {
            "key": self.key,
            "epoch": epoch,
            "history": history,
            "stopped": stopped,
            "trainer": self.trainer.state_dict(),
        }
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)

    def _base_record(self, history: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
        recipe = self.run.recipe
        return {
            "method": recipe.method,
            "options": self.method.options,
            "doc": (type(self.method).__doc__ or "").split("\n\n")[0].replace("\n", " "),
            "space": self.run.cfg.search.space,
            "supernet": {
                "class": type(self.supernet).__name__,
                **self.supernet.net_options,
                "ops": list(self.supernet.ops),
                "edges": self.supernet.num_edges,
            },
            "split": self.split,
            "recipe": recipe.to_json(),
            "device": self.run.device,
            "threads": torch.get_num_threads(),
            "history": history,
            "train_seconds": seconds,
        }

    def _save_record(self, history: list[dict[str, Any]], seconds: float, **extra: Any) -> None:
        record = {**(self.store.oneshot(self.stored) or {}), **self._base_record(history, seconds)}
        self.store.save_oneshot(self.stored, {**record, **extra})

    # -- after training --------------------------------------------------------------------------

    def _finish(self, history: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
        self.supernet.eval()
        space = self.supernet.space
        derive_started = time.perf_counter()
        candidates = self._candidates()
        results = self._score_trials(candidates)
        best = max(range(len(results)), key=lambda i: results[i].objective)
        arch = candidates[best]
        record = self.store.oneshot(self.stored) or {}
        record.update(self._base_record(history, seconds))
        record["derived"] = space.to_string(arch)
        record["derived_val_acc"] = results[best].objective
        record["derive_seconds"] = time.perf_counter() - derive_started
        if self.run.cfg.search.space == "nb201":
            record["derived_nb201"] = nb201_truths(arch)
            if self.run.recipe.check_sample and "check" not in record:
                record["check"] = self._check()
        self.store.save_oneshot(self.stored, record)
        return record

    def _candidates(self) -> list[Any]:
        """What the method returns: its derived cell, or the candidates of its search."""
        method = self.method
        derived = method.derive()
        if derived is not None:
            if method.options["derive"] == "perturbation":
                derived = perturbation_derive(method, *self.estimator_data())
            return [derived]
        if hasattr(method, "sample_archs"):  # ENAS: the controller's samples
            return list(dict.fromkeys(method.sample_archs(int(method.options["derive_samples"]))))
        return self._search()

    def estimator_data(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.estimator.x, self.estimator.y, self.estimator.batch

    def _search(self) -> list[Any]:
        """SPOS/FairNAS/RSWS: a strategy of the suite searches with the supernet estimator."""
        from nasforge import factory

        options = self.method.options
        space = self.supernet.space
        strategy = factory.make_strategy(
            str(options["search"]), space, self.run.cfg.search.seed, {}, self.estimator
        )
        archs: list[Any] = []
        done = self._finished_trials()
        for number in range(int(options["search_budget"])):
            candidate = strategy.ask()
            result = self._scored(number, candidate.arch, done)
            strategy.tell(candidate, result.for_strategy())
            archs.append(candidate.arch)
        return archs

    def _finished_trials(self) -> dict[int, Any]:
        return {t.number: t for t in self.store.trials(self.stored) if t.state == "complete"}

    def _scored(self, number: int, arch: Any, done: dict[int, Any]) -> Result:
        """Trial ``number``'s stored result when it scored this very arch (a resumed run
        repeats nothing), else a new trial."""
        old = done.get(number)
        same = old is not None and old.arch == self.supernet.space.to_string(arch)
        if same and old.result is not None:
            return old.result
        return self._trial(number, arch)

    def _trial(self, number: int, arch: Any) -> Result:
        text = self.supernet.space.to_string(arch)
        self.store.start_trial(self.stored, number, text, None)
        result = self.estimator.evaluate(Candidate(arch))
        self.store.finish_trial(self.stored, number, result, worker="supernet", seconds=result.cost)
        return result

    def _score_trials(self, candidates: list[Any]) -> list[Result]:
        """Each candidate's stored result, scored (and stored) where it has none yet."""
        done = self._finished_trials()
        return [self._scored(number, arch, done) for number, arch in enumerate(candidates)]

    def _check(self) -> dict[str, Any]:
        """Kendall τ and Spearman ρ of supernet accuracy against NB201's 200-epoch test
        accuracy over ``check_sample`` distinct cells (the weight-sharing check)."""
        from nasforge.rank import sample_distinct
        from nasforge.ranking import rank_metrics

        space = self.supernet.space
        n = self.run.recipe.check_sample
        archs = sample_distinct(space, n, self.run.cfg.search.seed)
        started = time.perf_counter()
        scores = []
        for i, arch in enumerate(archs):
            scores.append(self.estimator.evaluate(Candidate(arch)).objective)
            if self.progress is not None and (i + 1) % 50 == 0:
                self.progress(f"weight-sharing check: {i + 1}/{n} cells scored")
        seconds = time.perf_counter() - started
        looked = [nb201_truths(a) for a in archs]
        truths = {d: [row[d] for row in looked] for d in NB201_TRUTHS}
        metrics = {d: rank_metrics(scores, t, seed=0).to_json() for d, t in truths.items()}
        return {
            "cells": n,
            "images": len(self.estimator.x),
            "seconds_per_cell": seconds / n,
            "metrics": metrics,
            "scores": [round(s, 3) for s in scores],
            "archs": [space.to_string(a) for a in archs],
            # the table's side of the comparison, so a report can draw it without the tables
            "truths": {d: [round(float(v), 3) for v in t] for d, t in truths.items()},
        }


def load_supernet(store_url: str, name: str, data_dir: str | None = None) -> SupernetEstimator:
    """The trained supernet of a stored one-shot run (its last checkpoint) as an estimator, on
    that run's own validation images: what `nasforge rank --supernet RUN` measures."""
    from nasforge.config import stored_config
    from nasforge.outputs import run_folder
    from nasforge.report.show import open_existing

    with open_existing(store_url) as store:
        stored = store.get_run(name)
        if "oneshot" not in stored.config:
            raise ConfigError(f"run {name!r} in {store.location} is not a one-shot run")
        cfg = stored_config(stored.config)
        run = OneShotRun(cfg, OneShotRecipe(**stored.config["oneshot"]), data_dir)  # type: ignore[arg-type]
        driver = OneShotDriver(run, store, name, run_folder(store, name))
        state = driver.check_checkpoint(resuming=True)
        if state is None:
            raise ConfigError(f"run {name!r} has no supernet checkpoint at {driver.checkpoint}")
        driver.build()
        driver.trainer.load_state_dict(state["trainer"])
    driver.supernet.eval()
    return driver.estimator


def perturbation_derive(method: OneShotMethod, x: torch.Tensor, y: torch.Tensor, batch: int) -> Any:
    """Perturbation-based selection (Wang et al., "Rethinking Architecture Selection in
    Differentiable NAS", ICLR 2021): edge by edge (a seeded random order), the op whose removal
    from the mixture lowers the supernet's validation accuracy most is kept, and the edge is
    then fixed to it. Departures: no fine-tuning of the supernet between edges; in the DARTS
    space each node's two inputs are still the two strongest by α."""
    net = method.net
    weights = method.mixing_weights().detach().clone()
    edge = method.edge_weights()
    edge = None if edge is None else edge.detach()
    chosen = weights.argmax(dim=1).tolist()
    order = np.random.default_rng(method.seed).permutation(net.num_edges)
    for e in order:
        if float(weights[e].sum()) == 0:
            continue
        drops = []
        for k in range(weights.shape[1]):
            if net.ops[k] == "none" or float(weights[e, k]) == 0:
                drops.append(-np.inf)
                continue
            trial = weights.clone()
            trial[e, k] = 0.0
            trial[e] = trial[e] / trial[e].sum().clamp_min(1e-12)
            acc = path_accuracy(net, SupernetPath(weights=trial, edge=edge), x, y, batch)
            drops.append(-acc)  # the larger the drop, the smaller the accuracy without it
        k = int(np.argmax(drops))
        chosen[e] = k
        weights[e] = 0.0
        weights[e, k] = 1.0
    if getattr(net.space, "name", "") == "nb201":
        return net.arch_of(chosen)
    return net.derive(weights, edge)


def nb201_truths(arch: Any) -> dict[str, float]:
    """The cell's 200-epoch test accuracy in the NB201 table on its three datasets (report
    only: nothing is chosen by it)."""
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    out = {}
    for dataset in NB201_TRUTHS:
        bench = _BENCHES.get(dataset) or _BENCHES.setdefault(dataset, NB201Benchmark(dataset))
        out[dataset] = float(bench.evaluate(Candidate(arch)).report["test_acc"])
    return out


_BENCHES: dict[str, Any] = {}
