"""``nasforge compress`` on a stored run: the steps it measures against numbers computed here
from the files it wrote, and bad input refused in one line with nothing overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nasforge import cli
from nasforge.compress.finetune import accuracy
from nasforge.data.datasets import load_dataset
from nasforge.nn.profile import count_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = "tiny"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NB201 run on the 8x8 digits with its final model kept (97 % test accuracy)."""
    path = tmp_path_factory.mktemp("run") / "runs.db"
    common = ["--store", str(path)]
    assert cli.main([
        "search", "--space", "nb201", "--dataset", "digits", "--strategy", "random",
        "--budget", "1", "--epochs", "1", "--subset", "1", "--channels", "16", "--cells", "1",
        "--executor", "inprocess", "--search-only", "--seed", "3", "--name", RUN, *common,
    ]) == 0  # fmt: skip
    assert (
        cli.main(["train-final", RUN, "--seeds", "1", "--epochs", "5", "--subset", "1", *common])
        == 0
    )
    return path


def test_the_names_the_plan_checks_are_the_modules_own() -> None:
    from nasforge.compress import pipeline, prune, quantize

    assert set(pipeline.PRUNE_METHOD_NAMES) == set(prune.PRUNE_METHODS)
    assert set(pipeline.QUANTIZE_MODE_NAMES) == set(quantize.QUANTIZE_MODES)


def test_training_stages_of_too_few_steps_are_named_with_their_flag() -> None:
    from nasforge.compress.pipeline import CompressPlan, few_steps_advice

    images = len(load_dataset("digits").train_x)
    batches = -(-images // 64)
    assert batches < 50  # one epoch of the digits is too few steps
    plan = CompressPlan(prune=0.5, method="slimming", quantize="qat")
    lines = few_steps_advice(plan, images)
    assert [line.split(" runs only")[0] for line in lines] == [
        "sparsity training", "fine-tuning", "quantisation-aware training"
    ]  # fmt: skip
    assert all(f"only {batches} SGD step(s) ({images} training images" in x for x in lines)
    assert "--sparsity-epochs" in lines[0] and "--qat-epochs" in lines[2]
    enough = -(-50 // batches)
    assert few_steps_advice(CompressPlan(prune=0.5, finetune_epochs=enough), images) == []
    assert few_steps_advice(CompressPlan(prune=0.5, finetune_epochs=enough - 1), images)
    assert few_steps_advice(CompressPlan(prune=0.5, finetune_epochs=0), images) == []
    assert few_steps_advice(CompressPlan(quantize="int8"), images) == []  # nothing trains
    distilled = few_steps_advice(CompressPlan(prune=0.5, distill=True), images)
    assert distilled[0].startswith("distillation runs only")


def _one_line_exit_2(
    args: list[str], capsys: pytest.CaptureFixture[str], progress: bool = False
) -> str:
    """The error line; with ``progress``, after the command's own progress lines and warnings
    (a budget found unreachable while pruning), else alone (refused before any work)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    if progress:
        advice = ("compress: ", "nasforge: warning: ")
        assert all(line.startswith(advice) for line in lines[:-1]), lines
    else:
        assert len(lines) == 1, lines
    assert lines[-1].startswith("nasforge: error: ")
    return lines[-1]


@pytest.mark.slow
def test_prune_then_int8_records_each_step_and_writes_checked_files(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "small"
    args = ["compress", RUN, "--store", str(store), "--prune", "0.5", "--quantize", "int8",
            "--finetune-epochs", "1", "--out", str(out), "--json"]  # fmt: skip
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    # one epoch of the digits' training images at batch 64 is under 50 steps: said once
    assert captured.err.count("nasforge: warning: fine-tuning runs only") == 1, captured.err
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == ["original", "pruned (l1)", "fine-tuned (1 epochs)", "int8 (static)"]
    original, pruned = steps["original"], steps["pruned (l1)"]
    # the pruned network really shrank, and fine-tuning won back accuracy pruning cost
    assert pruned["params"] < 0.6 * original["params"]
    assert pruned["macs"] < original["macs"]
    tuned = steps["fine-tuned (1 epochs)"]
    assert tuned["test_acc"] > pruned["test_acc"] and original["test_acc"] > 90
    # int8 weights: a byte per float32's four, plus per-channel scales and the file's overhead
    assert steps["int8 (static)"]["size_bytes"] < 0.6 * tuned["size_bytes"]
    state = torch.load(out / "model_int8_state.pt", weights_only=False)
    assert any(v.dtype == torch.qint8 for v in state.values() if isinstance(v, torch.Tensor))
    # the saved int8 TorchScript, scored here on the digits test set, is what the record says
    data = load_dataset("digits")
    int8 = torch.jit.load(str(out / "model_int8.ts")).eval()
    assert accuracy(int8, data.test_x, data.test_y) == pytest.approx(
        steps["int8 (static)"]["test_acc"], abs=1e-6
    )
    record = json.loads((out / "compress.json").read_text())
    assert record["run"] == RUN and record["plan"]["prune"] == 0.5
    assert sorted(record["files"]) == sorted(p.name for p in out.iterdir())


@pytest.mark.slow
def test_a_pruned_float_model_is_exported_and_matches_its_record(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pruned"
    args = ["compress", RUN, "--store", str(store), "--prune-macs", "0.5", "--method",
            "slimming", "--sparsity-epochs", "1", "--finetune-epochs", "0", "--out", str(out),
            "--json"]  # fmt: skip
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    pruned = summary["steps"][-1]
    assert pruned["step"] == "pruned (slimming)"
    assert pruned["macs"] <= 0.5 * summary["steps"][0]["macs"]
    model = torch.export.load(str(out / "model.pt2")).module()
    data = load_dataset("digits")
    assert count_params(model) == pruned["params"]
    with torch.no_grad():  # an ExportedProgram's module has no eval(): it is exported in eval
        hits = (model(data.test_x).argmax(1) == data.test_y).float().mean()
    assert 100 * float(hits) == pytest.approx(pruned["test_acc"], abs=1e-4)


def test_bad_input_is_one_line_and_overwrites_nothing(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept"
    out.mkdir()
    (out / "compress.json").write_text("earlier")
    base = ["compress", RUN, "--store", str(store), "--out", str(out)]
    for extra, expected in [
        (["--prune", "1.5"], "pruning ratio must be in (0, 1), got 1.5"),
        (["--prune", "0"], "pruning ratio must be in (0, 1), got 0"),
        (["--prune", "0.5", "--method", "random"], "pruning method 'random' is not accepted"),
        (["--quantize", "int4"], "quantisation 'int4' is not accepted; use one of int8, qat"),
        ([], "nothing to do: give --prune, --prune-macs and/or --quantize"),
        (["--prune", "0.5", "--prune-macs", "0.5"], "give --prune (a share of channels) or"),
    ]:
        err = _one_line_exit_2([*base, *extra], capsys)
        assert expected in err, err
    # a folder of someone else's files is never replaced
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    err = _one_line_exit_2(
        ["compress", RUN, "--store", str(store), "--out", str(other), "--prune", "0.5"], capsys
    )
    assert "holds files that are not an earlier 'nasforge compress' output" in err
    assert (other / "notes.txt").read_text() == "keep"
    # a MACs budget no network meets is found while pruning, before any training
    err = _one_line_exit_2([*base, "--prune-macs", "1e-9"], capsys, progress=True)
    assert "cannot prune to 1e-09 of the MACs" in err
    assert (out / "compress.json").read_text() == "earlier"
    assert sorted(p.name for p in out.iterdir()) == ["compress.json"]
    # a run that was never retrained has no final model: say what to run
    assert cli.main([
        "search", "--space", "mobile", "--dataset", "digits", "--strategy", "random",
        "--budget", "1", "--epochs", "1", "--executor", "inprocess", "--search-only",
        "--name", "bare", "--store", str(store),
    ]) == 0  # fmt: skip
    capsys.readouterr()
    err = _one_line_exit_2(["compress", "bare", "--store", str(store), "--prune", "0.5"], capsys)
    assert "has no final model to compress" in err and "nasforge train-final bare" in err
