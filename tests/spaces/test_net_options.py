"""Network options are checked the same way in every space (``spaces/net_options.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.factory import SPACES, make_space
from nasforge.spaces.custom import load_space
from nasforge.spaces.net_options import (
    bool_option,
    fraction_option,
    int_option,
    optional_int_option,
    positive_option,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_space.py"


def test_numbers_are_plain_python_values_and_bools_are_not_numbers() -> None:
    value = int_option("x", np.int64(3))
    assert value == 3 and type(value) is int
    assert type(fraction_option("x", np.float32(0.5))) is float
    assert optional_int_option("x", None) is None and optional_int_option("x", 0, low=0) == 0
    assert positive_option("x", 2) == 2.0 and bool_option("x", np.bool_(True)) is True
    for check, bad in (
        (int_option, True),  # True == 1, but a flag is not a size
        (int_option, 2.0),
        (int_option, 0),
        (optional_int_option, "8"),
        (fraction_option, 1.0),
        (fraction_option, False),
        (positive_option, float("inf")),
        (positive_option, 0),
        (bool_option, 1),
    ):
        with pytest.raises(ConfigError, match=r"^NB201 network C must be") as err:
            check("NB201 network C", bad)
        assert "\n" not in str(err.value) and repr(bad) in str(err.value)


@pytest.mark.parametrize("name", [*SPACES, "custom"])
@pytest.mark.parametrize("option", ["in_channels", "num_classes"])
@pytest.mark.parametrize("bad", [0, True, 2.5])
def test_every_space_refuses_bad_channels_and_classes(name: str, option: str, bad) -> None:
    space = load_space(f"{EXAMPLE}:space") if name == "custom" else make_space(name)
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(ConfigError, match=f"network {option} must be an int >= 1"):
        space.build(arch, **{option: bad})
