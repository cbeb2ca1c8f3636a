"""``nasforge rank``: how well a performance estimator ranks architectures.

A search is only as good as the ranking its estimator gives, so this measures that ranking
directly: ``sample`` distinct architectures (one per isomorphism class, seeded) are scored by
each scorer and compared with a benchmark's ground truth (NAS-Bench-201: the 200-epoch test
accuracy of one or more datasets) by `nasforge.ranking.rank_metrics`.

A scorer is anything that scores a list of architectures (`Scorer`: ``name``, ``setup()``,
``score(archs) -> array``, higher = better): a zero-cost proxy, a predictor fitted on
``train_size`` OTHER architectures' search objective from the table (the 12-epoch validation
accuracy a search would have seen), a low-fidelity real training (``--estimator train``, the
same recipe and defaults as ``nasforge search``), or the table's own 12-epoch validation
accuracy (``--estimator benchmark``, the yardstick). A supernet-backed scorer plugs in the same way.

Under ``--out`` each cacheable scorer's per-architecture scores are appended to
``cache.jsonl`` as they finish, keyed by the scorer's setup, so an interrupted rank resumes
without recomputing them. The command's parsing lives in `nasforge.cli`; everything else here.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nasforge.config import RunConfig, TrainRecipe
from nasforge.errors import ConfigError, NasforgeError, UnknownNameError
from nasforge.ranking import RankMetrics, rank_metrics

__all__ = [
    "RankRequest",
    "Scorer",
    "format_table",
    "rank",
    "sample_distinct",
    "write_outputs",
]

#: spaces with a ground-truth table, and the truth datasets each offers
TRUTH_SPACES = {"nb201": ("cifar10", "cifar100", "imagenet16-120")}
ESTIMATOR_SCORERS = ("train", "benchmark")
CACHE_FILE = "cache.jsonl"


class Scorer(Protocol):
    """Anything that scores architectures: higher = better, one number each."""

    name: str
    #: whether scores may be cached per architecture (False: they depend on the whole call)
    cacheable: bool
    #: how many architectures one ``score`` call gets (1: slow, with progress and ETA)
    chunk: int | None

    def setup(self) -> dict[str, Any]: ...

    def score(self, archs: Sequence[Any]) -> np.ndarray: ...


@dataclass(frozen=True)
class RankRequest:
    """What ``nasforge rank`` was asked (defaults as on the command line)."""

    sample: int
    space: str = "nb201"
    dataset: str = "cifar10"
    seed: int = 0
    truth: tuple[str, ...] = ()
    proxies: tuple[str, ...] = ()
    predictors: tuple[str, ...] = ()
    train_size: int | None = None
    encoding: str | None = None
    estimators: tuple[str, ...] = ()
    train: TrainRecipe = field(default_factory=TrainRecipe)
    top: float = 0.1
    bootstrap: int = 1000
    data_dir: str | None = None
    #: torch threads while scoring (None: torch's default)
    threads: int | None = None
    #: where zero-cost proxies run (a torch device string); training runs on the CPU
    device: str = "cpu"
    #: a one-shot run whose trained supernet scores the sample (with ``store``)
    supernet: str | None = None
    store: str | None = None


# checks -----------------------------------------------------------------------------------------


def check_request(req: RankRequest) -> tuple[str, ...]:
    """The cheap checks, before any data is read; returns the truth datasets."""
    if req.sample < 3:
        raise ConfigError(f"--sample must be at least 3 for a rank correlation, got {req.sample}")
    if not (req.proxies or req.predictors or req.estimators or req.supernet):
        raise ConfigError(
            "nothing to rank: give --proxy NAME, --predictor NAME --train-size K, "
            "--estimator train|benchmark, or --supernet RUN --store FILE"
        )
    if (req.supernet is None) != (req.store is None):
        raise ConfigError("--supernet RUN and --store FILE go together (a one-shot run's store)")
    if req.predictors and req.train_size is None:
        raise ConfigError("--predictor needs --train-size K (architectures it is fitted on)")
    if req.train_size is not None and not req.predictors:
        raise ConfigError("--train-size is the predictors' training set: use it with --predictor")
    if req.encoding is not None and not req.predictors:
        raise ConfigError("--encoding is a predictor's input: use it with --predictor")
    if req.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be >= 0 (0: no intervals), got {req.bootstrap}")
    if req.train_size is not None and req.train_size < 2:
        raise ConfigError(f"--train-size must be at least 2, got {req.train_size}")
    _check_names("estimator", req.estimators, ESTIMATOR_SCORERS)
    if req.space not in TRUTH_SPACES:
        raise ConfigError(
            f"space {req.space!r} has no benchmark table to rank against; spaces with one: "
            f"{', '.join(TRUTH_SPACES)}"
        )
    from nasforge.estimators.benchmarks.nb201 import resolve_dataset

    resolve_dataset(req.dataset)
    truth = tuple(resolve_dataset(t) for t in (req.truth or (req.dataset,)))
    if len(set(truth)) != len(truth):
        raise ConfigError(f"--truth names a dataset twice: {', '.join(truth)}")
    if req.device != "cpu" and not req.proxies:
        raise ConfigError(
            f"--device {req.device} applies to zero-cost proxies (--proxy); training and "
            "predictors run on the CPU"
        )
    if req.train.early_stopping != "none":
        raise ConfigError(
            "--early-stopping needs a search's incumbent to stop against; rank trains every "
            "architecture fully: drop it"
        )
    check_size(req, len(distinct_classes(_space(req))))
    if req.proxies:
        _check_names("proxy", req.proxies, _proxies().PROXIES)
    if req.predictors:
        _check_names("predictor", req.predictors, _predictors().PREDICTORS)
    return truth


def check_size(req: RankRequest, classes: int) -> None:
    """The sample and the predictors' training set are distinct architectures of the space."""
    train_size = req.train_size or 0
    if req.sample + train_size > classes:
        what = f"--sample {req.sample}" + (f" + --train-size {train_size}" if train_size else "")
        raise ConfigError(
            f"{what} exceeds the {classes} distinct architectures of space {req.space!r}"
        )


def _space(req: RankRequest) -> Any:
    from nasforge import factory

    return factory.make_space(req.space, factory.image_size_of(req.dataset))


def _check_names(kind: str, names: Sequence[str], registry: Any) -> None:
    for name in names:
        if name not in registry:
            raise UnknownNameError(kind, name, registry)
    if len(set(names)) != len(names):
        raise ConfigError(f"--{kind} names one twice: {', '.join(names)}")


def _proxies() -> Any:
    return _optional("nasforge.estimators.proxies", "zero-cost proxies (--proxy)")


def _predictors() -> Any:
    return _optional("nasforge.estimators.predictors", "performance predictors (--predictor)")


def _optional(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise ConfigError(f"{what} are not part of this nasforge ({module} is missing)") from None


# the sample -------------------------------------------------------------------------------------


_CLASSES: dict[str, list[str]] = {}


def distinct_classes(space: Any) -> list[str]:
    """One string per isomorphism class of an enumerable space (its canonical form), sorted;
    listed once per process and space class (a built-in space's classes never change)."""
    key = f"{type(space).__module__}.{type(space).__qualname__}"
    if key not in _CLASSES:
        _CLASSES[key] = sorted({space.to_string(space.canonical(a)) for a in space.enumerate()})
    return _CLASSES[key]


def sample_distinct(space: Any, count: int, seed: int, classes: list[str] | None = None) -> list:
    """``count`` architectures from distinct classes, each in canonical form, seeded: a prefix
    of one seeded permutation of the classes, so a longer draw (sample + a predictor's training
    set) begins with the same sample and every training-set size is judged on the same cells."""
    classes = distinct_classes(space) if classes is None else classes
    if count > len(classes):
        raise ConfigError(
            f"cannot draw {count} distinct architectures: the space has {len(classes)}"
        )
    order = np.random.default_rng(seed).permutation(len(classes))
    return [space.from_string(classes[i]) for i in order[:count]]


# scorers ----------------------------------------------------------------------------------------


@dataclass
class TableScorer:
    """The benchmark's own 12-epoch validation accuracy (what a table search optimises)."""

    bench: Any
    name: str = "benchmark:val_acc_12ep"
    cacheable: bool = False
    chunk: int | None = None

    def setup(self) -> dict[str, Any]:
        return {"scorer": self.name, "table": str(self.bench.folder), "dataset": self.bench.dataset}

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        return np.array([self.bench.lookup(a).val_acc_12ep for a in archs], dtype=float)


@dataclass
class ProxyScorer:
    """One zero-cost proxy (one `ZeroCostProxy` per name, so its cost is its own)."""

    proxy: Any
    proxy_name: str
    name: str = ""
    cacheable: bool = True
    chunk: int | None = 50

    def __post_init__(self) -> None:
        self.name = self.name or f"proxy:{self.proxy_name}"

    def setup(self) -> dict[str, Any]:
        setup = getattr(getattr(self.proxy, "capabilities", None), "setup", None)
        return {"scorer": self.name, "proxy": self.proxy_name, **dict(setup or {})}

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.proxy.score_all(list(archs))[self.proxy_name], dtype=float)


@dataclass
class PredictorScorer:
    """A predictor fitted on other architectures' search objective; its mean as the score."""

    predictor: Any
    predictor_name: str
    train_archs: list
    train_y: np.ndarray
    space: Any
    encoding: str | None = None
    name: str = ""
    cacheable: bool = False
    chunk: int | None = None

    def __post_init__(self) -> None:
        self.name = self.name or f"predictor:{self.predictor_name}"

    def setup(self) -> dict[str, Any]:
        return {
            "scorer": self.name,
            "predictor": self.predictor_name,
            "encoding": self.encoding,
            "train_size": len(self.train_archs),
            "target": "val_acc_12ep (the table's search objective)",
            "train_archs": [self.space.to_string(a) for a in self.train_archs],
        }

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        self.predictor.fit(self.train_archs, self.train_y)
        mean, _ = self.predictor.predict(list(archs))
        return np.asarray(mean, dtype=float)


@dataclass
class TrainScorer:
    """Real training at the given fidelity; the validation accuracy is the score."""

    estimator: Any
    name: str = "train:val_acc"
    cacheable: bool = True
    chunk: int | None = 1

    def setup(self) -> dict[str, Any]:
        return {"scorer": self.name, **self.estimator.describe()}

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        from nasforge.core import Candidate

        return np.array([self.estimator.evaluate(Candidate(a)).objective for a in archs])


def train_config(req: RankRequest) -> RunConfig:
    """The configuration ``nasforge search --estimator train`` would resolve for this recipe
    (the space's search network size when neither --channels nor --cells is given); the test
    set is never scored: the truth comes from the table."""
    recipe = {k: v for k, v in req.train.to_json().items() if v is not None}
    recipe["skip_test"] = True
    search = {
        "space": req.space,
        "estimator": "train",
        "dataset": req.dataset,
        "seed": req.seed,
        "budget": req.sample,
    }
    return RunConfig.create(search, recipe, final=False)


def make_scorers(req: RankRequest, space: Any, bench: Any, train_archs: list) -> list[Any]:
    """The scorers the request names, in the order: table, training, proxies, predictors."""
    scorers: list[Any] = []
    data = None
    if "benchmark" in req.estimators:
        scorers.append(TableScorer(bench))
    if "train" in req.estimators:
        from nasforge.runconfig import make_estimator

        estimator = make_estimator(train_config(req), space, req.data_dir)
        data = estimator.dataset
        scorers.append(TrainScorer(estimator))
    if req.proxies:
        if data is None:
            from nasforge.data.datasets import load_dataset

            data = load_dataset(req.dataset, data_dir=req.data_dir)
        proxies = _proxies()
        for name in req.proxies:
            proxy = proxies.ZeroCostProxy(
                space, data, proxies=(name,), seed=req.seed, device=req.device
            )
            scorers.append(ProxyScorer(proxy, name))
    if req.supernet:
        from nasforge.oneshot.run import load_supernet

        estimator = load_supernet(req.store, req.supernet, req.data_dir)  # type: ignore[arg-type]
        scorers.append(TrainScorer(estimator, name=f"supernet:{req.supernet}"))
    if req.predictors:
        predictors = _predictors()
        train_y = np.array([bench.lookup(a).val_acc_12ep for a in train_archs], dtype=float)
        for name in req.predictors:
            model = predictors.make_predictor(name, space, encoding=req.encoding, seed=req.seed)
            scorers.append(PredictorScorer(model, name, train_archs, train_y, space, req.encoding))
    return scorers


# running ----------------------------------------------------------------------------------------


def _fingerprint(setup: dict[str, Any]) -> str:
    text = json.dumps(setup, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ScoreCache:
    """Per-architecture scores of cacheable scorers, one JSON line each, appended and flushed
    as they come (a kill loses at most the architecture in flight)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[tuple[str, str], tuple[float, float]] = {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                    key = (row["key"], row["arch"])
                    self.entries[key] = (float(row["score"]), float(row["seconds"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill

    def get(self, key: str, arch: str) -> tuple[float, float] | None:
        return self.entries.get((key, arch))

    def put(self, key: str, scorer: str, arch: str, score: float, seconds: float) -> None:
        self.entries[(key, arch)] = (score, seconds)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"key": key, "scorer": scorer, "arch": arch, "score": score, "seconds": seconds}
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_scorer(
    scorer: Any,
    archs: list,
    space: Any,
    cache: ScoreCache,
    progress: Callable[[str], None] | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, seconds per architecture, how many came from the cache)."""
    strings = [space.to_string(a) for a in archs]
    scores = np.full(len(archs), np.nan)
    seconds = np.full(len(archs), np.nan)
    key = _fingerprint(scorer.setup()) if scorer.cacheable else ""
    todo = []
    for i, text in enumerate(strings):
        hit = cache.get(key, text) if scorer.cacheable else None
        if hit is None:
            todo.append(i)
        else:
            scores[i], seconds[i] = hit
    reused = len(archs) - len(todo)
    size = scorer.chunk or max(1, len(todo))
    started = time.perf_counter()
    for start in range(0, len(todo), size):
        part = todo[start : start + size]
        t0 = time.perf_counter()
        try:
            values = np.asarray(scorer.score([archs[i] for i in part]), dtype=float)
        except NasforgeError as err:
            if err.fatal_to_search or len(part) != 1:
                raise
            # one architecture's failure (a diverged training): it is dropped and counted,
            # as a search would fail that trial and go on; not cached, so a rerun retries it
            if progress is not None:
                progress(f"rank: {scorer.name}: {strings[part[0]]} failed: {err}")
            seconds[part[0]] = time.perf_counter() - t0
            continue
        if values.shape != (len(part),):
            raise ConfigError(
                f"scorer {scorer.name} returned {values.shape} scores for {len(part)} "
                "architectures; a scorer gives one number per architecture"
            )
        each = (time.perf_counter() - t0) / len(part)
        for i, value in zip(part, values, strict=True):
            scores[i], seconds[i] = value, each
            if scorer.cacheable and math.isfinite(value):
                cache.put(key, scorer.name, strings[i], float(value), each)
        finished = min(len(todo), start + size)
        if progress is not None and (scorer.chunk == 1 or len(todo) > size):
            elapsed = time.perf_counter() - started
            eta = elapsed / finished * (len(todo) - finished)
            progress(
                f"rank: {scorer.name} [{finished + reused}/{len(archs)}] "
                f"{each:.2f} s/arch, elapsed {duration(elapsed)}, ETA {duration(eta)}"
            )
    return scores, seconds, reused


def _versions() -> dict[str, str]:
    import scipy
    import torch

    from nasforge import __version__

    return {
        "nasforge": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def rank(
    req: RankRequest,
    *,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score the sample with every scorer and measure the ranking against each truth; the
    result is JSON-able (setup, sample, per-architecture scores and truths, metrics)."""
    truth_names = check_request(req)
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark

    space = _space(req)
    classes = distinct_classes(space)
    check_size(req, len(classes))
    drawn = sample_distinct(space, req.sample + (req.train_size or 0), req.seed, classes)
    sample, train_archs = drawn[: req.sample], drawn[req.sample :]
    bench = NB201Benchmark(req.dataset, data_dir=req.data_dir, space=space)
    truths: dict[str, np.ndarray] = {}
    for name in truth_names:
        table = bench if name == bench.dataset else NB201Benchmark(name, req.data_dir, space)
        truths[name] = np.array([table.lookup(a).test_acc_200ep for a in sample], dtype=float)
    if req.threads is not None:
        import torch

        torch.set_num_threads(req.threads)
    scorers = make_scorers(req, space, bench, train_archs)
    cache = ScoreCache(None if out is None else Path(out) / CACHE_FILE)
    columns: dict[str, dict[str, Any]] = {}
    metrics: list[dict[str, Any]] = []
    for scorer in scorers:
        scores, seconds, reused = run_scorer(scorer, sample, space, cache, progress)
        ok = np.isfinite(scores)
        columns[scorer.name] = {
            "scores": [float(s) if math.isfinite(s) else None for s in scores],
            "seconds": [float(s) for s in seconds],
            "setup": scorer.setup(),
            "reused": reused,
        }
        for truth_name, truth in truths.items():
            entry: dict[str, Any] = {
                "scorer": scorer.name,
                "truth": truth_name,
                "seconds_per_arch": float(np.mean(seconds)),
                "dropped": int((~ok).sum()),
            }
            if ok.sum() >= 3:
                m: RankMetrics = rank_metrics(
                    scores[ok], truth[ok], top=req.top, bootstrap=req.bootstrap, seed=req.seed
                )
                entry.update(m.to_json())
            else:
                entry.update({"n": int(ok.sum()), "error": "fewer than 3 finite scores"})
            metrics.append(entry)
    return {
        "setup": {
            "space": req.space,
            "dataset": req.dataset,
            "sample": req.sample,
            "seed": req.seed,
            "sampling": "distinct isomorphism classes (canonical form): a prefix of "
            "numpy.random.default_rng(seed).permutation of the sorted class strings; the "
            "predictors' training cells follow the sample in it",
            "train_size": req.train_size,
            "truth": {
                name: f"NAS-Bench-201 200-epoch test accuracy ({name})" for name in truth_names
            },
            "top": req.top,
            "bootstrap": req.bootstrap,
            "threads": req.threads,
            "device": req.device,
            "scorers": {name: column["setup"] for name, column in columns.items()},
        },
        "sample": [space.to_string(a) for a in sample],
        "truths": {name: [float(v) for v in values] for name, values in truths.items()},
        "scores": {
            name: {k: column[k] for k in ("scores", "seconds", "reused")}
            for name, column in columns.items()
        },
        "metrics": metrics,
        "versions": _versions(),
    }


# output -----------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(entry: dict[str, Any], key: str) -> str:
    low, high = entry.get(f"{key}_ci") or (None, None)
    return f"{_fmt(entry.get(key))} [{_fmt(low)}, {_fmt(high)}]"


def format_table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per scorer and truth."""
    setup = results["setup"]
    top = f"top-{setup['top']:.0%}"
    lines = [
        f"## Ranking {setup['sample']} {setup['space']} architectures (seed {setup['seed']}) "
        "against the 200-epoch test accuracy",
        "",
        f"| scorer | truth | Spearman rho [95% CI] | Kendall tau [95% CI] | {top} precision "
        f"| {top} recall | s/arch | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in results["metrics"]:
        n = str(e["n"]) + (f" ({e['dropped']} failed)" if e.get("dropped") else "")
        if "error" in e:
            lines.append(f"| {e['scorer']} | {e['truth']} | {e['error']} | | | | | {n} |")
            continue
        lines.append(
            f"| {e['scorer']} | {e['truth']} | {_ci(e, 'spearman')} | {_ci(e, 'kendall')} | "
            f"{_ci(e, 'precision')} | {_ci(e, 'recall')} | {e['seconds_per_arch']:.3g} | {n} |"
        )
    lines.append("")
    lines.append(
        f"CIs: {setup['bootstrap']} bootstrap resamples of the architectures (seed "
        f"{setup['seed']}); Kendall tau-b; top sets keep ties at the boundary."
    )
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], out: Path) -> list[Path]:
    """``rank.csv`` (one row per architecture: scores, seconds, truths) and ``rank.png``
    (score against truth, one panel per scorer and truth)."""
    import csv

    out.mkdir(parents=True, exist_ok=True)
    scorers = list(results["scores"])
    truths = list(results["truths"])
    path_csv = out / "rank.csv"
    with path_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["arch", *scorers, *(f"{s} seconds" for s in scorers), *(f"truth {t}" for t in truths)]
        )
        for i, arch in enumerate(results["sample"]):
            writer.writerow(
                [
                    arch,
                    *(
                        ""
                        if results["scores"][s]["scores"][i] is None
                        else repr(results["scores"][s]["scores"][i])
                        for s in scorers
                    ),
                    *(repr(results["scores"][s]["seconds"][i]) for s in scorers),
                    *(repr(results["truths"][t][i]) for t in truths),
                ]
            )
    path_png = out / "rank.png"
    _plot(results, scorers, truths, path_png)
    return [path_csv, path_png]


def _plot(results: dict[str, Any], scorers: list[str], truths: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_pair = {(e["scorer"], e["truth"]): e for e in results["metrics"]}
    fig, axes = plt.subplots(
        len(truths), len(scorers), figsize=(4.2 * len(scorers), 3.8 * len(truths)), squeeze=False
    )
    for row, truth in enumerate(truths):
        for col, scorer in enumerate(scorers):
            ax = axes[row][col]
            x = np.array([np.nan if v is None else v for v in results["scores"][scorer]["scores"]])
            y = np.asarray(results["truths"][truth])
            ax.scatter(x, y, s=12, alpha=0.7)
            e = by_pair[(scorer, truth)]
            ax.set_title(
                f"{scorer}\nrho {_fmt(e.get('spearman'))}, tau {_fmt(e.get('kendall'))}, "
                f"n={e['n']}",
                fontsize=9,
            )
            ax.set_xlabel(f"{scorer} score")
            ax.set_ylabel(f"{truth} 200-epoch test acc (%)")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def stderr_progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
