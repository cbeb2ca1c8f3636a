"""Performance estimators: how good is a candidate. Each implements ``base.Estimator``."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "NB201Benchmark": "nasforge.estimators.benchmarks.nb201",
        "NB301Benchmark": "nasforge.estimators.benchmarks.nb301",
        "ProxyTable": "nasforge.estimators.proxies.table",
        "TabularBenchmark": "nasforge.estimators.tabular",
        "Train": "nasforge.estimators.train",
        "ZeroCostProxy": "nasforge.estimators.proxies.estimator",
    },
)
