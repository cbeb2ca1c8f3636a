"""Zero-cost proxies: rank architectures at initialisation, without training (see
``registry.py`` for every proxy and its paper, ``estimator.py`` for `ZeroCostProxy`)."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "PROXIES": "nasforge.estimators.proxies.registry",
        "ProxySpec": "nasforge.estimators.proxies.registry",
        "ZeroCostProxy": "nasforge.estimators.proxies.estimator",
        "ProxyTable": "nasforge.estimators.proxies.table",
        "write_proxy_table": "nasforge.estimators.proxies.table",
        "rank_combination": "nasforge.estimators.proxies.combined",
        "draw_batch": "nasforge.estimators.proxies.batch",
    },
)
