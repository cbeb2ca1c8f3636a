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
