"""How well each performance predictor ranks held-out NAS-Bench-201 cells, against the size of
its training set (#13: "Kendall τ of each predictor against training-set size").

    python benchmarks/predictor_train_size.py [--predictors ridge,rf,lgbm,gp,bananas,gnn]
        [--encoding onehot,path] [--sizes 20,50,100,200] [--repeats 10] [--test 1000]
        [--dataset cifar10] [--proxy-table FILE --proxy-columns a,b] [--workers 1]
        [--out benchmarks/out]

Protocol (after White et al., "How Powerful are Performance Predictors in Neural Architecture
Search?", NeurIPS 2021): the table's distinct cells (one per class of ``space.canonical``) are
shuffled with seed ``r`` for repeat ``r``; the first ``--test`` are held out and the training
sets are the next 20, 50, ... cells (nested, so a larger set extends a smaller one). Each
predictor (``make_predictor(name, space, encoding=..., seed=r)``) is fitted on the 12-epoch
validation accuracy, what a search sees, and its predicted mean on the held-out cells is
compared with their 12-epoch validation accuracy and with their 200-epoch test accuracy:
Kendall τ and Spearman ρ, mean ± std over repeats, plus the seconds of a fit. The graph
network reads the cell graph and runs once, under encoding ``graph``.

``--proxy-table FILE --proxy-columns a,b``: a ProxyTable CSV (``arch`` + one column per proxy,
from ``nasforge.estimators.proxies.write_proxy_table``) whose columns become extra predictor
features. Writes ``predictor_train_size[_TAG].{md,json,png}`` to ``--out``. Measures, does not
assert. Run it with one thread per worker (it sets that itself).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

PREDICTORS = "ridge,rf,lgbm,gp,bananas,gnn"
GRAPH_ONLY = ("gnn",)


@lru_cache(maxsize=2)
def _cells(dataset: str) -> tuple[Any, list[Any], np.ndarray, np.ndarray]:
    """The space, every distinct cell and its 12-epoch val / 200-epoch test accuracy."""
    from nasforge.estimators.benchmarks.nb201 import NB201Benchmark
    from nasforge.spaces.nb201 import NB201Space

    space = NB201Space()
    bench = NB201Benchmark(dataset)
    chosen: dict[str, Any] = {}
    for arch in space.enumerate():
        chosen.setdefault(space.canonical_key(arch), space.canonical(arch))
    archs = list(chosen.values())
    entries = [bench.lookup(a) for a in archs]
    val = np.array([e.val_acc_12ep for e in entries])
    test = np.array([e.test_acc_200ep for e in entries])
    return space, archs, val, test


class TableScorer:
    """An arch scorer over several columns of one ProxyTable CSV."""

    def __init__(self, path: str, columns: list[str]):
        from nasforge.estimators.proxies import ProxyTable

        self.tables = {c: ProxyTable(path, c) for c in columns}
        self.name = "table:" + ",".join(columns)

    def score_all(self, archs: list[Any]) -> dict[str, np.ndarray]:
        return {c: np.asarray(t.score(archs), dtype=float) for c, t in self.tables.items()}


def run_repeat(
    dataset: str,
    name: str,
    encoding: str,
    repeat: int,
    sizes: tuple[int, ...],
    n_test: int,
    proxy: tuple[str, tuple[str, ...]] | None,
) -> list[dict[str, Any]]:
    """One predictor and encoding, one shuffle: a fit and a score per training-set size."""
    import torch

    from nasforge.estimators.predictors import make_predictor

    torch.set_num_threads(1)
    space, archs, val, test = _cells(dataset)
    order = np.random.default_rng(repeat).permutation(len(archs))
    held, rest = order[:n_test], order[n_test:]
    held_archs = [archs[i] for i in held]
    scorer = None if proxy is None else TableScorer(proxy[0], list(proxy[1]))
    rows = []
    for size in sizes:
        train = rest[:size]
        model = make_predictor(
            name,
            space,
            encoding=None if encoding == "graph" else encoding,
            scorer=scorer,
            seed=repeat,
        )
        started = time.perf_counter()
        model.fit([archs[i] for i in train], val[train])
        fit_s = time.perf_counter() - started
        mean, std = model.predict(held_archs)
        rows.append(
            {
                "predictor": name,
                "encoding": encoding,
                "size": size,
                "repeat": repeat,
                "kendall_val": float(stats.kendalltau(mean, val[held]).statistic),
                "spearman_val": float(stats.spearmanr(mean, val[held]).statistic),
                "kendall_test": float(stats.kendalltau(mean, test[held]).statistic),
                "spearman_test": float(stats.spearmanr(mean, test[held]).statistic),
                "mean_std": float(std.mean()),
                "fit_s": fit_s,
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"repeats": len(rows)}
    for key in ("kendall_val", "spearman_val", "kendall_test", "spearman_test", "fit_s"):
        values = np.array([r[key] for r in rows])
        out[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        }
    out["mean_std"] = float(np.mean([r["mean_std"] for r in rows]))
    return out


def plot(table: dict[str, dict[int, dict[str, Any]]], sizes: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    for ax, key, title in zip(
        axes[0],
        ("kendall_val", "kendall_test"),
        ("vs 12-epoch val acc (the target)", "vs 200-epoch test acc"),
        strict=True,
    ):
        for label, by_size in table.items():
            means = [by_size[s][key]["mean"] for s in sizes]
            errs = [by_size[s][key]["std"] for s in sizes]
            ax.errorbar(sizes, means, yerr=errs, marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("training cells")
        ax.set_ylabel("Kendall tau on held-out cells")
        ax.set_title(f"NB201 predictors, {title}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictors", default=PREDICTORS)
    parser.add_argument("--encoding", default="onehot,path")
    parser.add_argument("--sizes", default="20,50,100,200")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--proxy-table", default=None)
    parser.add_argument("--proxy-columns", default=None)
    parser.add_argument("--tag", default=None, help="suffix of the output files")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    if bool(args.proxy_table) != bool(args.proxy_columns):
        parser.error("--proxy-table and --proxy-columns go together")
    names = args.predictors.split(",")
    encodings = args.encoding.split(",")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    proxy = None
    if args.proxy_table:
        proxy = (str(Path(args.proxy_table).resolve()), tuple(args.proxy_columns.split(",")))
    from nasforge.estimators.predictors.base import predictor_class

    for name in names:  # fail fast on a bad name
        predictor_class(name)
    combos = [(n, "graph") for n in names if n in GRAPH_ONLY]
    combos += [(n, e) for n in names if n not in GRAPH_ONLY for e in encodings]
    jobs = [
        (args.dataset, n, e, r, sizes, args.test, proxy)
        for n, e in combos
        for r in range(args.repeats)
    ]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(run_repeat, *zip(*jobs, strict=True)))
    else:
        results = [run_repeat(*job) for job in jobs]
    wall = time.perf_counter() - started
    rows = [row for result in results for row in result]
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for n, e in combos:
        label = f"{n} ({e})"
        table[label] = {
            s: summarise(
                [r for r in rows if (r["predictor"], r["encoding"], r["size"]) == (n, e, s)]
            )
            for s in sizes
        }
    features = "" if proxy is None else f" + proxy features {', '.join(proxy[1])}"
    lines = [
        f"NB201 {args.dataset}: predictors fitted on the 12-epoch val acc of N distinct cells"
        f"{features}, ranking {args.test} other distinct cells; mean ± std over "
        f"{args.repeats} repeats",
        "",
    ]
    for key, title in (
        ("kendall_val", "Kendall τ against the 12-epoch validation accuracy (the target)"),
        ("kendall_test", "Kendall τ against the 200-epoch test accuracy"),
        ("spearman_val", "Spearman ρ against the 12-epoch validation accuracy"),
    ):
        lines += [
            f"{title}:",
            "",
            "| predictor (encoding) | " + " | ".join(f"N={s}" for s in sizes) + " |",
            "|---|" + "---:|" * len(sizes),
        ]
        for label, by_size in table.items():
            cells = [f"{by_size[s][key]['mean']:.3f} ± {by_size[s][key]['std']:.3f}" for s in sizes]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    fits = ", ".join(
        f"{label} {by_size[sizes[-1]]['fit_s']['mean']:.2f}" for label, by_size in table.items()
    )
    lines += [f"seconds per fit at N={sizes[-1]}: {fits}", f"total wall time: {wall:.0f} s"]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "predictor_train_size" + (f"_{args.tag}" if args.tag else "")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    payload = {"config": vars(args), "wall_seconds": wall, "table": table, "runs": rows}
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    plot(table, list(sizes), out / f"{stem}.png")


if __name__ == "__main__":
    main()
