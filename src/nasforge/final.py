"""Final training: retrain a search's best architectures at full fidelity, over several seeds.

A search ranks architectures by a cheap proxy (few epochs, part of the data); what a
practitioner ships must be judged at full fidelity, with the spread over seeds shown, because
differences between good cells are often within seed noise. `train_final` reads a stored run's
configuration, takes its ``top_k`` distinct architectures by search objective, trains each from
scratch with seeds ``0 .. seeds-1`` the way the search's ``Train`` estimator trains (the run's
dataset, network size and recipe; the whole training set at full resolution, the run's epochs
unless overridden), and reports test accuracy as mean ± std with parameters, MACs and CPU
latency.

Selection stays on validation data: the *best* architecture is the one with the highest mean
validation accuracy over the seeds, and its best seed by validation accuracy is the model kept
for export. Test accuracy is measured for the report only.

The results are kept in the store with the run (``Store.save_final``); the weights go to the
run's artifacts folder (`outputs.weights_path`).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nasforge.config import FinalPlan, RunConfig, stored_config
from nasforge.core import Candidate
from nasforge.errors import ConfigError
from nasforge.history import rank_architectures
from nasforge.nn.profile import count_macs, count_params, measure_latency
from nasforge.outputs import server_note, weights_path
from nasforge.report.progress import Progress
from nasforge.store import Store, StoredRun, StoredTrial

#: The estimator kind (``RunConfig.search.estimator``) that final training uses.
TRAINABLE = "train"


@dataclass(frozen=True)
class SeedRun:
    """One full-fidelity training of one architecture."""

    seed: int
    val_acc: float
    test_acc: float
    train_seconds: float
    epochs: int


@dataclass
class FinalArch:
    """An architecture's final-training record: per-seed runs and their summary."""

    rank: int  # 1 = best by search objective
    arch: str
    search: dict[str, Any]  # trial, objective, fidelity it was ranked with
    runs: list[SeedRun] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    latency_ms: float = math.nan
    latency_p90_ms: float = math.nan

    @property
    def val_accs(self) -> list[float]:
        return [r.val_acc for r in self.runs]

    @property
    def test_accs(self) -> list[float]:
        return [r.test_acc for r in self.runs]

    def to_json(self) -> dict[str, Any]:
        val_mean, val_std = mean_std(self.val_accs)
        test_mean, test_std = mean_std(self.test_accs)
        return {
            "rank": self.rank,
            "arch": self.arch,
            "search": self.search,
            "runs": [asdict(r) for r in self.runs],
            "val_acc_mean": val_mean,
            "val_acc_std": val_std,
            "test_acc_mean": test_mean,
            "test_acc_std": test_std,
            "params": self.params,
            "macs": self.macs,
            "latency_ms": self.latency_ms,
            "latency_p90_ms": self.latency_p90_ms,
            "train_seconds": sum(r.train_seconds for r in self.runs),
        }


@dataclass
class FinalResult:
    """What `train_final` returns and writes as JSON (``to_json``)."""

    run: str
    store: str
    space: str
    dataset: dict[str, Any]  # name, shape, classes, mean, std, class_names
    build_options: dict[str, Any]
    epochs: int
    subset: float
    seeds: list[int]
    architectures: list[FinalArch]
    best: dict[str, Any]  # arch, seed, val_acc, weights (path of the state_dict)
    seconds: float
    path: str | None = None  # a JSON file the results were read from (runs before v3 stores)
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "store": self.store,
            "space": self.space,
            "dataset": self.dataset,
            "build_options": self.build_options,
            "epochs": self.epochs,
            "subset": self.subset,
            "seeds": self.seeds,
            "selection": "best architecture by mean validation accuracy over the seeds, its "
            "best seed by validation accuracy; test accuracy is report-only",
            "architectures": [a.to_json() for a in self.architectures],
            "best": self.best,
            "seconds": self.seconds,
            "path": self.path,
        }


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1; 0 for a single value)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


# the run ----------------------------------------------------------------------------------------


@contextmanager
def open_store(store: Store | str | Path) -> Iterator[Store]:
    """An existing store (final training never creates an empty one), closed afterwards if it
    was opened here from a path or URL."""
    if isinstance(store, Store):
        yield store
        return
    opened = Store(store, create=False)
    try:
        yield opened
    finally:
        opened.close()


def stored_run_config(run: StoredRun, store: Store) -> RunConfig:
    """The run's configuration, turned into one that trains (a search on a benchmark table of
    a trainable dataset retrains on that dataset's images)."""
    from nasforge import factory

    cfg = stored_config(run.config)
    if cfg is None:
        raise ConfigError(
            f"run {run.name!r} in {store.location} was not started from the CLI, so its "
            "training recipe is unknown; retrain it from Python with nasforge.final.train_once"
        )
    search = cfg.search
    if search.estimator != TRAINABLE:
        if search.table or search.dataset not in factory.TRAIN_DATASETS:
            raise ConfigError(
                f"run {run.name!r} searched the {search.dataset!r} benchmark table, which "
                f"has no images to retrain on; train-final accepts runs of --estimator train, or "
                f"benchmark runs on {', '.join(factory.TRAIN_DATASETS)}"
            )
        cfg = cfg.with_search(estimator=TRAINABLE, hardware=None)
    return cfg


def top_architectures(space: Any, trials: list[StoredTrial], k: int) -> list[dict[str, Any]]:
    """The ``k`` best distinct architectures of finished trials, best first.

    Isomorphic cells (same ``space.canonical``) count as one. Each architecture is scored by
    its best objective at the highest fidelity it was evaluated at, so a cell promoted by a
    multi-fidelity strategy is judged by its longest training, not by an early lucky one.
    """
    finished = [t for t in trials if t.state == "complete" and t.result is not None]
    ranked = rank_architectures(
        finished,
        # isomorphic cells, or a user space's declared twins, are one architecture
        key=lambda t: space.canonical(space.from_string(t.arch)),
        fidelity=lambda t: t.fidelity,
        objective=lambda t: t.result.objective,  # type: ignore[union-attr]
        number=lambda t: t.number,
    )
    return [
        {
            "trial": t.number,
            "arch": t.arch,
            "objective": t.result.objective,  # type: ignore[union-attr]
            "fidelity": t.fidelity,
        }
        for t in ranked[:k]
    ]


def load_run(store: Store, run_name: str) -> tuple[StoredRun, RunConfig, list[StoredTrial]]:
    """A stored run, its trainable configuration and its trials; a run without a finished
    trial is an error (there is nothing to retrain)."""
    run = store.get_run(run_name)
    cfg = stored_run_config(run, store)
    trials = store.trials(run)
    if not any(t.state == "complete" and t.result is not None for t in trials):
        failed = sum(t.state == "failed" for t in trials)
        running = sum(t.state == "running" for t in trials)
        raise ConfigError(
            f"run {run_name!r} in {store.location} has no finished trial ({failed} failed, "
            f"{running} unfinished): nothing to retrain; run or resume the search first"
        )
    return run, cfg, trials


# training ---------------------------------------------------------------------------------------


def make_trainer(
    cfg: RunConfig,
    seed: int,
    epochs: int,
    subset: float,
    data_dir: str | None,
) -> tuple[Any, Any]:
    """(space, ``Train`` estimator) built from a run's configuration the way the CLI builds
    them, at ``seed``, ``epochs`` and ``subset``; early stopping is switched off (final
    training runs every epoch) and the test set is scored even if the search skipped it."""
    from nasforge import runconfig
    from nasforge.estimators.train import Train

    cfg = cfg.with_search(seed=seed).with_train(epochs=epochs, subset=subset)
    space = runconfig.make_space(cfg)
    estimator = runconfig.make_estimator(cfg, space, data_dir)
    estimator = getattr(estimator, "inner", estimator)  # a --scalarize wrapper: train its Train
    if not isinstance(estimator, Train):
        raise ConfigError(
            f"final training needs the train estimator; the run's configuration makes "
            f"{getattr(estimator, 'name', type(estimator).__name__)!r}"
        )
    if getattr(estimator, "early_stopping", None) is not None:
        estimator.early_stopping = None  # type: ignore[attr-defined]
    estimator.score_test = True  # a search may have skipped it; final training reports it
    return space, estimator


def train_once(
    trainer: Any, space: Any, arch_string: str, hook: Callable[..., None] | None = None
) -> tuple[torch.nn.Module, Any]:
    """Train one architecture with ``trainer`` (a ``Train``); (trained model in eval mode,
    its ``Result``)."""
    previous_hook = trainer.on_epoch
    trainer.on_epoch = hook  # returns None: never stops training
    try:
        return trainer.train(Candidate(space.from_string(arch_string)))
    finally:
        trainer.on_epoch = previous_hook


def dataset_info(dataset: Any) -> dict[str, Any]:
    names = getattr(dataset, "class_names", None)
    return {
        "name": dataset.name,
        "shape": list(dataset.shape),
        "classes": dataset.classes,
        "mean": list(getattr(dataset, "mean", ()) or ()),
        "std": list(getattr(dataset, "std", ()) or ()),
        "class_names": None if names is None else list(names),
    }


def _check_count(label: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{label} must be a whole number >= 1, got {value!r}")


def _seed_run(seed: int, result: Any, epochs: int) -> SeedRun:
    return SeedRun(
        seed=seed,
        val_acc=float(result.objective),
        test_acc=float(result.report["test_acc"]),
        train_seconds=float(result.metrics.get("train_seconds", result.cost)),
        epochs=int(result.metrics.get("epochs", epochs)),
    )


def _profile(
    record: FinalArch, model: torch.nn.Module, shape: tuple[int, ...], repeats: int
) -> None:
    """Size and speed do not depend on the seed: measured once per architecture."""
    record.params = count_params(model)
    record.macs = count_macs(model, shape)
    latency = measure_latency(model, shape, threads=1, repeats=repeats)
    record.latency_ms, record.latency_p90_ms = latency["median_ms"], latency["p90_ms"]


def train_final(
    store: Store | str | Path,
    run_name: str,
    top_k: int | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    subset: float | None = None,
    *,
    data_dir: str | None = None,
    latency_repeats: int = 30,
    progress: bool = True,
    save: bool = True,
    artifacts: str | Path | None = None,
) -> FinalResult:
    """Retrain the run's ``top_k`` best distinct architectures with seeds ``0 .. seeds-1`` for
    ``epochs`` on ``subset`` of the training set; see the module docstring. What is not given
    comes from the run's own final plan (`config.FinalPlan`, the one `nasforge search` carries
    out), or for a search-only run the default plan: one definition of the default recipe.
    With ``save`` the results are kept in the store
    with the run and the best model's weights written to its artifacts folder
    (`outputs.weights_path`; ``artifacts`` overrides the folder), which ``best["weights"]``
    names."""
    for label, count in (("top_k", top_k), ("seeds", seeds), ("epochs", epochs)):
        if count is not None:
            _check_count(label, count)
    if subset is not None and not (isinstance(subset, int | float) and 0 < subset <= 1):
        raise ConfigError(f"subset must be a fraction in (0, 1], got {subset!r}")
    with open_store(store) as db:
        _, cfg, trials = load_run(db, run_name)
        location, weights = db.location, weights_path(db, run_name, artifacts).absolute()
        note = server_note(db, run_name, artifacts) if save and progress else None
    if note:
        sys.stderr.write(note + "\n")
    plan = cfg.final or FinalPlan()
    top_k = plan.top_k if top_k is None else top_k
    seeds = plan.seeds if seeds is None else seeds
    planned_epochs, planned_subset = plan.resolved(cfg.train.epochs, cfg.train.subset)
    epochs = planned_epochs if epochs is None else epochs
    subset = planned_subset if subset is None else subset
    # a lower input resolution is a search fidelity: final training uses the full size
    cfg = cfg.with_train(resolution=None)
    from nasforge import runconfig

    chosen = top_architectures(runconfig.make_space(cfg), trials, top_k)
    records = [FinalArch(rank=i + 1, arch=c["arch"], search=c) for i, c in enumerate(chosen)]
    bar = Progress(
        len(records) * seeds * epochs, label=f"{run_name} final ", unit="epochs", enabled=progress
    )
    done = 0
    kept: dict[int, tuple[float, int, dict[str, torch.Tensor]]] = {}  # rank -> val, seed, weights
    started = time.perf_counter()
    data_info: dict[str, Any] = {}
    build_options: dict[str, Any] = {}
    space_name = ""
    for seed in range(seeds):
        space, trainer = make_trainer(cfg, seed, epochs, float(subset), data_dir)
        data_info, build_options = dataset_info(trainer.dataset), trainer.build_options
        space_name = space.name
        for record in records:
            label = f"#{record.rank} seed {seed}"

            def hook(epoch: int, loss: float, *_: Any, label: str = label) -> None:
                nonlocal done
                done += 1
                bar.update(done, f"{label} epoch {epoch}/{epochs} loss {loss:.3f}")

            model, result = train_once(trainer, space, record.arch, hook)
            run = _seed_run(seed, result, epochs)
            done += epochs - run.epochs  # a diverged network stops early: keep the count right
            record.runs.append(run)
            bar.update(done, f"{label}: val {run.val_acc:.2f} test {run.test_acc:.2f}", force=True)
            if record.rank not in kept or run.val_acc > kept[record.rank][0]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                kept[record.rank] = (run.val_acc, seed, state)
            if seed == 0:
                _profile(record, model, tuple(trainer.dataset.shape), latency_repeats)
        del trainer  # one dataset in memory at a time
    bar.close()
    best = max(records, key=lambda r: (mean_std(r.val_accs)[0], -r.rank))
    val, seed, state = kept[best.rank]
    result = FinalResult(
        run=run_name,
        store=location,
        space=space_name,
        dataset=data_info,
        build_options=build_options,
        epochs=epochs,
        subset=float(subset),
        seeds=list(range(seeds)),
        architectures=records,
        best={"arch": best.arch, "rank": best.rank, "seed": seed, "val_acc": val, "weights": None},
        seconds=time.perf_counter() - started,
        best_state=state,
    )
    if save:
        try:
            weights.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, weights)
        except OSError as err:
            raise ConfigError(f"cannot write the final weights to {weights}: {err}") from None
        result.best["weights"] = str(weights)
        with open_store(store) as db:
            db.save_final(db.get_run(run_name), result.to_json())
    return result


def format_table(result: FinalResult | dict[str, Any]) -> str:
    """The final-training table: arch | test acc mean ± std | params | MMACs | latency."""
    data = result.to_json() if isinstance(result, FinalResult) else result
    rows = [
        (
            f"{a['rank']}",
            a["arch"],
            f"{a['test_acc_mean']:.2f} ± {a['test_acc_std']:.2f}",
            f"{a['val_acc_mean']:.2f} ± {a['val_acc_std']:.2f}",
            f"{a['params']:,}",
            f"{a['macs'] / 1e6:.2f}",
            f"{a['latency_ms']:.2f}",
        )
        for a in data["architectures"]
    ]
    head = ("#", "arch", "test acc", "val acc", "params", "MMACs", "latency ms")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(head, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    seeds = len(data["seeds"])
    best = data["best"]
    lines.append(
        f"{data['run']}: {seeds} seed(s), {data['epochs']} epoch(s), {data['dataset']['name']} "
        f"test set (mean ± std over seeds); latency: CPU, batch 1, 1 thread, median"
    )
    lines.append(
        "MMACs: millions of multiply-accumulates of convolutions and linear layers, one image "
        "(what NAS papers call MFLOPs; 1 MAC = 2 FLOPs; batch norm and activations not counted)"
    )
    lines.append(
        f"best by mean validation accuracy: #{best['rank']} (seed {best['seed']} kept"
        + (f": {best['weights']})" if best.get("weights") else ")")
    )
    if data.get("path"):
        lines.append(f"results: {data['path']}")
    elif data["best"].get("weights"):
        lines.append(f"results: kept with run {data['run']!r} in {data['store']}")
    return "\n".join(lines)
