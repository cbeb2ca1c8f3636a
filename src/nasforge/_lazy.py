"""Lazy re-exports, so ``nf.spaces.NB201Space`` works without importing torch for ``--help``
and without package ``__init__`` files importing their plug-ins (no import cycles)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) on first use."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        return module if exports[name].endswith(f".{name}") else getattr(module, name)

    return __getattr__


def export_lazily(namespace: dict[str, Any], exports: dict[str, str]) -> None:
    """Install lazy ``exports`` in a package's ``namespace`` (its ``globals()``): the module
    ``__getattr__``, plus ``__all__`` and ``__dir__`` so that ``dir()``, tab completion and
    ``from package import *`` list the exported names although none is imported yet."""
    package = namespace["__name__"]
    names = sorted(exports)
    own = [
        n for n in namespace if not n.startswith("_") and n not in ("export_lazily", "annotations")
    ]

    def __dir__() -> list[str]:
        return sorted({*own, *names})

    namespace["__getattr__"] = lazy_exports(package, exports)
    namespace["__dir__"] = __dir__
    namespace["__all__"] = names
