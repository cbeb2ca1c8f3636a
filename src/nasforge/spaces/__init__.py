"""Search spaces: what can be searched. Each implements ``spaces.base.SearchSpace``."""

from nasforge._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__, {"NB201Space": "nasforge.spaces.nb201", "NB201Arch": "nasforge.spaces.nb201"}
)
