"""Every strategy runs unchanged on every space: the promise of the three-part split.

The estimator here is test scaffolding with a landscape every space has: the objective is the
share of the space's decisions that agree with a hidden target architecture (so model-based
strategies have something to learn), and lower fidelities see it damped (so multi-fidelity
schedulers have a fidelity to choose). What is checked is the contract, not search quality:
every proposal is a valid architecture whose string form round-trips, nothing is proposed twice
at the same fidelity, the budget is spent, and a parameter constraint is honoured. PNAS
searches only spaces whose cells grow (NASNet); elsewhere it must refuse clearly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasforge import factory
from nasforge.capabilities import EstimatorCapabilities
from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.experiment import Experiment
from nasforge.strategies.constraints import MaxParams

EXAMPLE_SPACE = str(Path(__file__).resolve().parents[1] / "examples" / "custom_space.py") + ":space"
SPACES = (*factory.SPACES, EXAMPLE_SPACE)
BUDGET = 14
MAX_FIDELITY = 9.0


def space_id(name: str) -> str:
    return "custom" if name == EXAMPLE_SPACE else name


class DecisionMatch:
    """Objective: fraction of decisions equal to a hidden target's, damped at low fidelity."""

    name = "decision-match"
    objective_name = "match"
    capabilities = EstimatorCapabilities(fidelity_range=(1.0, MAX_FIDELITY))

    def __init__(self, space, seed: int = 123):
        self.space = space  # the index encoding: one value per decision, padded where cells grow
        self.target = space.encode(space.sample(np.random.default_rng(seed)), "index")

    def evaluate(self, candidate: Candidate) -> Result:
        sequence = self.space.encode(candidate.arch, "index")
        fidelity = MAX_FIDELITY if candidate.fidelity is None else float(candidate.fidelity)
        score = float(np.mean(sequence == self.target)) * (fidelity / MAX_FIDELITY) ** 0.2
        return Result(
            objective=score,
            metrics={},
            report={"test_acc": score},
            cost=fidelity,
            fidelity=fidelity,
        )


_SPACES: dict[str, object] = {}


def make_space(name: str):
    if name not in _SPACES:
        _SPACES[name] = factory.make_space(name)
    return _SPACES[name]


@pytest.mark.parametrize("strategy", factory.STRATEGIES)
@pytest.mark.parametrize("space_name", SPACES, ids=space_id)
def test_strategy_runs_on_space(space_name, strategy):
    space = make_space(space_name)
    estimator = DecisionMatch(space)
    if strategy == "pnas" and not callable(getattr(space, "grow", None)):
        with pytest.raises(ConfigError, match="grow"):  # PNAS needs cells that grow
            factory.make_strategy(strategy, space, seed=1, estimator=estimator)
        return
    options = {}
    if strategy == "proxy-evolution":  # it needs a proxy: the parameter count of a small net
        from nasforge.strategies.scoring import ParamsScorer

        options["scorer"] = ParamsScorer(space, **small_network(space))
    search = factory.make_strategy(strategy, space, seed=1, options=options, estimator=estimator)
    history = Experiment(space, search, estimator, BUDGET, progress=False).run()

    assert len(history.trials) == BUDGET
    assert all(t.ok for t in history.trials), [t.error for t in history.failed]
    seen = set()
    for trial in history.trials:
        arch = trial.candidate.arch
        again = space.from_string(space.to_string(arch))
        assert space.canonical(again) == space.canonical(arch)
        key = (space.canonical(arch), trial.candidate.fidelity)
        assert key not in seen, f"{strategy} proposed {trial.arch} twice on {space_name}"
        seen.add(key)
    best = history.best.result.objective
    assert best >= max(t.result.objective for t in history.trials) - 1e-12


def small_network(space) -> dict[str, int]:
    """The smallest sensible network of each space, so counting parameters stays cheap."""
    knobs = getattr(space, "size_options", {})
    net = {}
    if knobs.get("channels"):
        net[knobs["channels"]] = 8
    if knobs.get("cells"):
        net[knobs["cells"]] = 1
    return net


@pytest.mark.parametrize("strategy", ["evolution", "bananas", "reinforce"])
@pytest.mark.parametrize("space_name", SPACES, ids=space_id)
def test_parameter_constraint_is_honoured_on_every_space(space_name, strategy):
    space = make_space(space_name)
    net = small_network(space)
    rng = np.random.default_rng(0)
    counts = sorted(space.param_count(space.sample(rng), **net) for _ in range(9))
    limit = counts[len(counts) // 2]  # the median: about half of the space is infeasible
    constraint = MaxParams(space, limit, **net)
    estimator = DecisionMatch(space)
    search = factory.make_strategy(
        strategy, space, seed=0, options={"constraint": constraint}, estimator=estimator
    )
    history = Experiment(space, search, estimator, 8, progress=False).run()
    assert len(history.trials) == 8
    assert all(space.param_count(t.candidate.arch, **net) <= limit for t in history.trials)
