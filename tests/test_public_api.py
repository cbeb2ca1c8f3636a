"""The Python API is discoverable: lazy packages list their exports, and the README names the
class behind every CLI name (checked against the CLI's own name table in ``factory``)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge import factory

README = Path(__file__).resolve().parents[1] / "README.md"
PACKAGES = ["nasforge", "nasforge.spaces", "nasforge.strategies", "nasforge.estimators"]
PACKAGES += ["nasforge.data", "nasforge.executors"]


def _cli_classes() -> dict[str, str]:
    """class name -> module for every strategy and space the CLI can name."""
    mapping = {cls: module for module, cls in factory.STRATEGY_CLASSES.values()}
    mapping.update({cls: module for module, cls in factory.SPACE_CLASSES.values()})
    return mapping


def test_dir_and_all_list_every_class_the_cli_names() -> None:
    listed = set(dir(importlib.import_module("nasforge.strategies")))
    listed |= set(dir(importlib.import_module("nasforge.spaces")))
    missing = sorted(set(_cli_classes()) - listed)
    assert not missing, f"not in dir(): {missing}"
    strategies = importlib.import_module("nasforge.strategies")
    assert set(factory.STRATEGY_CLASSES[n][1] for n in factory.STRATEGIES) <= set(
        strategies.__all__
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_listed_name_resolves_and_helpers_are_not_listed(package: str) -> None:
    module = importlib.import_module(package)
    assert "export_lazily" not in dir(module) and "lazy_exports" not in dir(module)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_star_import_in_a_fresh_interpreter_gives_the_classes() -> None:
    code = (
        "from nasforge.strategies import *\n"
        "from nasforge.spaces import *\n"
        "print(RandomSearch.__module__, TPE.__module__, NB201Space.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["nasforge.strategies.random", "nasforge.strategies.tpe", "nasforge.spaces.nb201"]


def test_readme_names_the_class_behind_each_cli_name() -> None:
    text = README.read_text()
    section = text[text.index("## From Python") :]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    table = " ".join(rows)
    for cli_name, (_, cls) in {**factory.STRATEGY_CLASSES, **factory.SPACE_CLASSES}.items():
        row = next((r for r in rows if re.search(rf"`{re.escape(cli_name)}`", r)), None)
        assert row is not None, f"README has no row for --strategy/--space {cli_name}"
        assert f"`{cls}`" in table, f"README does not name {cls} (for {cli_name})"
    assert "progress=False" in section
