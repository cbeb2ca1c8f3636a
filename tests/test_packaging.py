"""nasforge installs beside other code: the package declares a range of torch versions (it
does not pin one), while the Makefile and CI install the exact CPU build they test first."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _torch_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "torch"]
    assert len(found) == 1, project["dependencies"]
    return found[0]


def test_torch_is_a_range_with_a_lower_bound_not_a_pin() -> None:
    spec = _torch_requirement().specifier
    operators = {s.operator for s in spec}
    assert "==" not in operators and "===" not in operators, str(spec)
    assert operators & {">=", ">", "~="}, f"no lower bound in {spec}"
    # an older or newer torch that a user may have is accepted or refused by the range itself
    assert not spec.contains("1.13.1") and spec.contains("2.6.0")


def test_the_installed_torch_satisfies_the_range_so_pip_keeps_it() -> None:
    assert _torch_requirement().specifier.contains(version("torch").split("+")[0])


def test_makefile_and_ci_install_the_exact_tested_build_before_the_project() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pin = makefile.index("pip install --quiet torch==2.13.0")
    assert pin < makefile.index("pip install --quiet -e")
    assert "make setup" in (ROOT / ".ci" / "run").read_text()
    assert _torch_requirement().specifier.contains("2.13.0")
