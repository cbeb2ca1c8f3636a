"""A training that diverges is a failed trial with its reason (never a NaN model that is stored,
retrained and exported), and a recipe with too few optimisation steps says what to change."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits
from torch.optim.optimizer import register_optimizer_step_post_hook

from nasforge.core import Candidate
from nasforge.data.datasets import load_dataset
from nasforge.errors import TrainingDiverged
from nasforge.estimators.train import MIN_USEFUL_STEPS, FewStepsWarning, Train
from nasforge.spaces.nb201 import NB201Space

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONV_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


def _count_optimiser_steps() -> tuple[list[int], object]:
    steps = [0]

    def hook(*_: object) -> None:
        steps[0] += 1

    return steps, register_optimizer_step_post_hook(hook)


def test_a_huge_learning_rate_stops_at_the_first_non_finite_loss() -> None:
    space = NB201Space()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewStepsWarning)
        train = Train(space, load_dataset("digits"), epochs=3, lr=1e4, net={"C": 8, "N": 1})
    steps, handle = _count_optimiser_steps()
    try:
        with pytest.raises(TrainingDiverged) as caught:
            train.evaluate(Candidate(space.from_string(CONV_CELL)))
    finally:
        handle.remove()
    message = str(caught.value)
    assert "loss nan" in message or "loss inf" in message
    assert "epoch 1" in message and "--lr 10000" in message and "lower --lr" in message
    # stopped at once: far fewer steps than the 3 planned epochs
    assert steps[0] < train.steps_per_trial / 3, (steps[0], train.steps_per_trial)
    assert f"step {steps[0] + 1} of" in message  # the failing step was not applied


def test_a_diverging_search_fails_its_trials_with_the_reason_and_goes_on(tmp_path: Path) -> None:
    store = tmp_path / "d.db"
    command = [sys.executable, "-m", "nasforge.cli", "search", "--space", "nb201", "--dataset"]
    command += ["digits", "--lr", "1e4", "--budget", "2", "--subset", "1", "--epochs", "1"]
    command += ["--workers", "1", "--store", str(store), "--name", "diverge"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2, done.stderr[-2000:]
    assert last.startswith("nasforge: error: ") and "no finished trial (2 failed" in last
    shown = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", "show", "diverge", "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = json.dumps(json.loads(shown.stdout))
    assert text.count("training diverged: loss nan at epoch 1") == 2, text[:2000]
    exported = [p for p in tmp_path.rglob("*") if p.suffix in (".onnx", ".pt2", ".ts", ".pt")]
    assert not exported  # nothing was retrained or exported


def test_small_data_at_low_fidelity_warns_with_what_to_change() -> None:
    space, digits = NB201Space(), load_dataset("digits")
    with pytest.warns(FewStepsWarning) as record:
        train = Train(space, digits, epochs=2, subset=0.1, net={"C": 8, "N": 1})
    message = str(record[0].message)
    # the number of training images, from scikit-learn's own count and the split it implies
    kept = round(len(digits.train_x) * 0.9)
    assert abs(len(train.train_idx) - round(kept * 0.1)) <= 1
    assert len(load_digits().target) == len(digits.train_x) + len(digits.test_x)
    assert f"{len(train.train_idx)} training images" in message
    assert "--subset (now 0.1)" in message and "--epochs (now 2)" in message
    steps, handle = _count_optimiser_steps()
    try:
        train.evaluate(Candidate(space.from_string(CONV_CELL)))
    finally:
        handle.remove()
    assert steps[0] == train.steps_per_trial < MIN_USEFUL_STEPS
    assert f"only {steps[0]} SGD step" in message


def test_enough_steps_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewStepsWarning)
        train = Train(NB201Space(), load_dataset("digits"), epochs=2, subset=1.0, batch_size=32)
    assert train.steps_per_trial >= MIN_USEFUL_STEPS


def test_the_cli_prints_the_advice_as_one_warning_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "nasforge.cli", "search", "--dataset", "digits"]
    command += ["--budget", "1", "--workers", "1", "--search-only"]
    command += ["--store", str(tmp_path / "w.db"), "--name", "few"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    advice = [ln for ln in done.stderr.splitlines() if ln.startswith("nasforge: warning: ")]
    assert len(advice) == 1, done.stderr[-2000:]
    assert "SGD step" in advice[0] and "--subset (now 0.1)" in advice[0]
    assert "FewStepsWarning" not in done.stderr  # no Python warning format


def test_a_model_with_non_finite_weights_is_never_exported(tmp_path: Path) -> None:
    from nasforge.errors import ConfigError
    from nasforge.export import export_model

    space = NB201Space()
    model = space.build(space.from_string(CONV_CELL), C=8, N=1, in_channels=1, num_classes=10)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    out = tmp_path / "export"
    with pytest.raises(ConfigError, match="non-finite values in 1 tensor"):
        export_model(model, CONV_CELL, "nb201", {"C": 8, "N": 1}, torch.zeros(1, 8, 8), out)
    assert not out.exists()  # nothing written
