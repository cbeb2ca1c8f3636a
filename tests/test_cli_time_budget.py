"""`nasforge search --budget-seconds` on NB301: multi-fidelity search under simulated time."""

from __future__ import annotations

import json

from conftest import require_data
from nasforge.cli import main


def test_hyperband_spends_a_simulated_time_budget_on_nb301(capsys):
    root = require_data("nb301/model.onnx").parent.parent
    budget = 100_000.0
    code = main(
        [
            "search",
            "--estimator",
            "benchmark",
            "--space",
            "darts",
            "--strategy",
            "hyperband",
            "--budget-seconds",
            str(budget),
            "--data-dir",
            str(root),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["estimator"] == "nb301" and summary["failed"] == 0
    # stops once finished trials have cost the budget: over it by less than one full trial
    assert budget <= summary["cost_seconds"] < budget + 10_000
    assert summary["trials"] > budget / 10_000  # low-fidelity trials: many more than full ones
    assert 1 <= summary["best"]["fidelity"] <= 98
