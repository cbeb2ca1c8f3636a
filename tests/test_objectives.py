"""Named objectives: parsing, reading them from results, and the refusals."""

from __future__ import annotations

import pytest

from nasforge import factory
from nasforge.core import Result
from nasforge.errors import ConfigError
from nasforge.objectives import MissingObjective, Objective, Objectives, parse_objectives
from nasforge.spaces.nb201 import NB201Space


def test_parse_objectives() -> None:
    parsed = parse_objectives("val_acc:max, latency_ms/pi5/onnx/cifar100:min,params")
    assert parsed == (
        Objective("val_acc", "max"),
        Objective("latency_ms/pi5/onnx/cifar100", "min"),
        Objective("params", "max"),
    )
    with pytest.raises(ConfigError, match="direction 'up' is not accepted; use max or min"):
        parse_objectives("val_acc:up")
    with pytest.raises(ConfigError, match="named twice"):
        parse_objectives("params:min,params:max")
    with pytest.raises(ConfigError, match="names no objective"):
        parse_objectives(" , ")


def test_values_and_minimised_form() -> None:
    bound = Objectives(parse_objectives("val_acc:max,params:min"), primary="val_acc_12ep")
    result = Result(objective=80.0, metrics={"params": 1000.0}, report={"test_acc": 90.0})
    assert bound.values(result) == (80.0, 1000.0)
    assert bound.minimised(result) == (-80.0, 1000.0)
    assert Objectives(parse_objectives("objective,val_acc_12ep"), "val_acc_12ep").values(
        result
    ) == (80.0, 80.0)


def test_report_metrics_are_never_objectives() -> None:
    bound = Objectives(parse_objectives("test_acc:max"), primary="val_acc")
    result = Result(objective=80.0, metrics={"params": 1.0}, report={"test_acc": 90.0})
    with pytest.raises(MissingObjective, match=r"'test_acc' is not among .* val_acc, params"):
        bound.values(result)
    with pytest.raises(MissingObjective):
        bound.values(result.for_strategy())


def test_single_objective_strategies_refuse_several() -> None:
    space = NB201Space()
    with pytest.raises(ConfigError, match=r"'evolution' optimises one objective.*nsga2"):
        factory.make_strategy("evolution", space, 0, objectives="val_acc,params:min")
    with pytest.raises(ConfigError, match="to optimise params:min alone use one of nsga2"):
        factory.make_strategy("evolution", space, 0, objectives="params:min")
    factory.make_strategy("evolution", space, 0, objectives="objective:max")  # unchanged
    factory.make_strategy("random", space, 0, objectives="val_acc,params:min")
    nsga2 = factory.make_strategy("nsga2", space, 0, objectives="val_acc,params:min")
    assert nsga2.objectives.names == ("val_acc", "params")
