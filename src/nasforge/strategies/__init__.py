"""Search strategies: which candidate next. Each implements ``strategies.base.Strategy``."""

from nasforge._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "RandomSearch": "nasforge.strategies.random",
        "RegularizedEvolution": "nasforge.strategies.evolution",
    },
)
