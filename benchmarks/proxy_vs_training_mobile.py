"""Which zero-cost proxy ranks mobile-space networks under a latency budget as short training does?

    python benchmarks/proxy_vs_training_mobile.py [--store benchmarks/out/latency_budget.db]
        [--proxies meco,params,synflow,zen,zico,az_nas] [--runs REGEX]
        [--out benchmarks/out/proxy_vs_training_mobile.json]

`latency_budget_search.py` searches the mobile space with real training, and its default
strategy (`config.DEFAULT_TRAIN_SEARCH`: proxy-guided evolution, MeCo) lets a zero-cost proxy
pick which networks get trained. MeCo was chosen on NAS-Bench-201 cells; whether it ranks
MobileNetV2-like networks at 28x28 is a separate question. This script answers it from
trainings already paid for: every finished trial of the stored runs whose names match the regular
expression ``--runs`` (each a network trained with the search's recipe, its validation accuracy the
truth here), scored by each proxy exactly as the search scores it (`factory.make_scorer` on
the run's own data, seed 0), with Spearman rho and Kendall tau per proxy and a bootstrap 95 %
interval (networks resampled). The trials were picked by searches, not drawn at random, so the
sample leans to what those searches liked; the networks of every run are pooled.

Measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from scipy import stats

from nasforge import factory, final
from nasforge.errors import ConfigError
from nasforge.spaces import mobile
from nasforge.store import Store
from nasforge.strategies.scoring import scores_of

OUT = Path(__file__).resolve().parent / "out"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=str(OUT / "latency_budget.db"))
    p.add_argument(
        "--runs", default=r"^budget-fashion-mnist-.*-e2-s0\.05-", help="run names (a regex)"
    )
    p.add_argument("--proxies", default="meco,params,synflow,zen,zico,az_nas")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--out", type=Path, default=OUT / "proxy_vs_training_mobile.json")
    return p.parse_args()


def trained_networks(store_url: str, pattern: str) -> tuple[object, dict[str, float], list[str]]:
    """(a run's config, {arch string: best validation accuracy over runs}, run names)."""
    accs: dict[str, float] = {}
    names, cfg = [], None
    with Store(store_url) as store:
        for name in store.run_names():
            if not re.search(pattern, name):
                continue
            try:
                _, cfg_now, trials = final.load_run(store, name)
            except ConfigError:  # a run without a finished trial has nothing to add
                continue
            cfg = cfg or cfg_now
            names.append(name)
            for t in trials:
                if t.state == "complete" and t.result is not None:
                    key = mobile.to_string(mobile.from_string(str(t.arch)))
                    accs[key] = max(accs.get(key, -1.0), float(t.result.objective))
    if cfg is None:
        raise SystemExit(f"no finished run matching {pattern!r} in {store_url}")
    return cfg, accs, names


def correlation(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n: int) -> dict:
    rho = float(stats.spearmanr(x, y).statistic)
    tau = float(stats.kendalltau(x, y).statistic)
    boot = []
    for _ in range(n):
        idx = rng.integers(0, len(x), len(x))
        boot.append(stats.spearmanr(x[idx], y[idx]).statistic)
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return {"spearman": rho, "kendall": tau, "spearman_ci95": [float(low), float(high)]}


def main() -> None:
    args = _args()
    cfg, accs, names = trained_networks(args.store, args.runs)
    space, trainer = final.make_trainer(cfg, 0, 1, 0.05, None)
    archs = [mobile.from_string(a) for a in accs]
    truth = np.array(list(accs.values()))
    print(f"{len(archs)} trained networks from {len(names)} runs; validation accuracy "
          f"{truth.min():.1f}-{truth.max():.1f}")  # fmt: skip
    rows = {}
    rng = np.random.default_rng(0)
    for proxy in [p.strip() for p in args.proxies.split(",") if p.strip()]:
        scorer = factory.make_scorer(space, trainer, 0, proxy=proxy)
        scores = scores_of(scorer, archs)
        finite = np.isfinite(scores)
        rows[proxy] = {
            **correlation(scores[finite], truth[finite], rng, args.bootstrap),
            "scored": int(finite.sum()),
        }
        r = rows[proxy]
        print(f"| {proxy} | {r['spearman']:+.2f} [{r['spearman_ci95'][0]:+.2f}, "
              f"{r['spearman_ci95'][1]:+.2f}] | {r['kendall']:+.2f} | {r['scored']} |",
              flush=True)  # fmt: skip
    args.out.write_text(json.dumps({"runs": names, "networks": len(archs), "proxies": rows}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
