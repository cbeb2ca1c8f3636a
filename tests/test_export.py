"""Export: ExportedProgram, ONNX and TorchScript files that reproduce PyTorch for every built-in
space, written by the current exporters (the legacy ones only with the reason said), the
architecture as JSON, and a loader that runs with torch alone (checked in a Python where nasforge
cannot be imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import cli
from nasforge.errors import ConfigError
from nasforge.export import FILES, ExportCheckError, export_model, export_run
from nasforge.spaces.nb201 import NB201Space
from nasforge.store import Store

RUN = "tiny"
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
NET = {"C": 4, "N": 1, "in_channels": 2, "num_classes": 3}
MEAN, STD = (0.25, 0.5), (0.2, 0.4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def nb201_net(seed: int = 0) -> nn.Module:
    """A small NB201 network with non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = NB201Space().build(NB201Space().from_string(ARCH), **NET)
    with torch.no_grad():
        net.train()
        for _ in range(3):
            net(torch.randn(16, 2, 8, 8) * 2 + 1)
    return net.eval()


def file_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path))
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def run_loader(
    folder: Path, images: Path, logits: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``load_model.predict`` (then ``extra`` statements) in a fresh Python where
    ``import nasforge`` fails."""
    code = "; ".join(
        [
            "import sys",
            "sys.modules['nasforge'] = None",
            f"sys.path.insert(0, {str(folder)!r})",
            "import torch, load_model",
            f"out = load_model.predict(torch.load({str(images)!r}))",
            f"torch.save(out, {str(logits)!r})",
            *extra,
            "assert not any(m.startswith('nasforge') for m in sys.modules if sys.modules[m])",
        ]
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=folder
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, dict, Path]:
    out = tmp_path_factory.mktemp("export") / "model"
    net = nb201_net()
    example = torch.randn(2, 8, 8)
    written = export_model(
        net,
        ARCH,
        "nb201",
        NET,
        example,
        out,
        mean=MEAN,
        std=STD,
        class_names=["a", "b", "c"],
        dataset="toy",
        extra={"note": "test"},
    )
    return net, written, out


def test_writes_every_file_and_reports_small_differences(exported) -> None:
    _, written, out = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert written["files"] == {name: str(out / name) for name in FILES}
    assert 0.0 <= written["onnx_max_abs_diff"] < 1e-4
    assert 0.0 <= written["torchscript_max_abs_diff"] < 1e-4
    assert 0.0 <= written["exported_program_max_abs_diff"] < 1e-4
    # the opset the file itself declares, read with onnx, not nasforge's word for it
    assert written["onnx_opset"] == file_opset(out / "model.onnx") >= 18
    assert written["fallbacks"] == {}


def test_arch_json_says_how_to_rebuild_and_feed_the_network(exported) -> None:
    net, written, out = exported
    info = json.loads((out / "arch.json").read_text())
    assert info["space"] == "nb201" and info["arch"] == ARCH
    assert info["build_options"] == NET
    assert info["input_shape"] == [2, 8, 8]
    assert info["mean"] == list(MEAN) and info["std"] == list(STD)
    assert info["class_names"] == ["a", "b", "c"] and info["classes"] == 3
    assert info["nasforge_version"] and info["torch_version"] == torch.__version__
    assert info["checks"]["onnx_max_abs_diff"] == written["onnx_max_abs_diff"]
    assert info["exporters"] == {
        "model.pt2": {"exporter": "torch.export", "fallback": None},
        "model.onnx": {"exporter": "torch.onnx.export(dynamo=True)", "fallback": None},
        "model.ts": {"exporter": "torch.jit.trace(check_trace=True)", "fallback": None},
    }
    assert info["note"] == "test"
    # weights.pt rebuilds the same network with nasforge
    space = NB201Space()
    rebuilt = space.build(space.from_string(info["arch"]), **info["build_options"]).eval()
    rebuilt.load_state_dict(torch.load(out / "weights.pt"))
    x = torch.randn(4, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))


def test_onnx_runs_any_batch_size_in_onnxruntime(exported) -> None:
    import onnxruntime as ort

    net, _, out = exported
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (1, 7):
        x = torch.randn(batch, 2, 8, 8)
        got = session.run(None, {"images": x.numpy()})[0]
        with torch.no_grad():
            assert torch.allclose(torch.from_numpy(got), net(x), atol=1e-4)


def test_the_loader_needs_only_torch_and_reproduces_pytorch(exported, tmp_path: Path) -> None:
    net, _, out = exported
    raw = torch.rand(5, 2, 8, 8)  # pixels on the 0-1 scale, as a user has them
    torch.save(raw, tmp_path / "images.pt")
    torch.save(raw[0], tmp_path / "one.pt")
    # its command line too: the predicted class and its name for one C×H×W image
    main = f"load_model.main(['load_model.py', {str(tmp_path / 'one.pt')!r}])"
    # and the TorchScript file, as a torch without torch.export would load it
    ts = f"torch.save(load_model.predict(torch.load({str(tmp_path / 'images.pt')!r}), "
    ts += f"model=load_model.load(fmt='ts')), {str(tmp_path / 'ts.pt')!r})"
    done = run_loader(out, tmp_path / "images.pt", tmp_path / "logits.pt", main, ts)
    assert done.returncode == 0, done.stderr
    assert "using model.ts" not in done.stderr  # the ExportedProgram was the one loaded
    normalised = (raw - torch.tensor(MEAN).view(1, 2, 1, 1)) / torch.tensor(STD).view(1, 2, 1, 1)
    with torch.no_grad():
        expected = net(normalised)
    logits = torch.load(tmp_path / "logits.pt")
    assert torch.allclose(logits, expected, atol=1e-5)
    assert torch.allclose(torch.load(tmp_path / "ts.pt"), expected, atol=1e-5)
    label = int(expected[0].argmax())
    assert done.stdout.split() == ["0", str(label), "abc"[label]]


# every built-in space, at a real input shape -----------------------------------------------

#: a small network of each space, at the shape of the data it is searched on (CIFAR-10 colour
#: 32x32, Fashion-MNIST grey 28x28)
SPACES = {
    "nb201": (ARCH, {"C": 4, "N": 1, "in_channels": 3, "num_classes": 10}, (3, 32, 32)),
    "darts": (None, {"C": 4, "layers": 2, "in_channels": 3, "num_classes": 10}, (3, 32, 32)),
    "mobile": (
        "w0.5|mbconv1_k3_se0_noskip_n+0|mbconv3_k5_se0.25_skip_n-1|dwsep_k3_se0_noskip_n-1"
        "|conv_k3_se0_noskip_n-1|mbconv6_k7_se0.25_skip_n-1|mbconv3_k3_se0_noskip_n-1"
        "|mbconv1_k3_se0_noskip_n+0",
        {"in_channels": 3, "num_classes": 10, "input_size": 32},
        (3, 32, 32),
    ),
    "chain": (
        "conv3-16-s2|pool2|conv3-32-s1+skip0|fc64",
        {"in_channels": 1, "num_classes": 10},
        (1, 28, 28),
    ),
    "nb101": (
        None,
        {"stem_channels": 8, "stacks": 1, "cells_per_stack": 1, "num_classes": 10},
        (3, 32, 32),
    ),
    "nasnet": (None, {"C": 4, "N": 1, "in_channels": 1, "num_classes": 10}, (1, 28, 28)),
}


def space_net(name: str) -> tuple[str, nn.Module]:
    """The space's network for its listed (else a sampled) architecture, with batch-norm
    statistics from a few training-mode batches, in eval mode."""
    from nasforge.factory import make_space

    arch_string, options, shape = SPACES[name]
    space = make_space(name, shape[-1])
    arch = (
        space.sample(np.random.default_rng(0))
        if arch_string is None
        else space.from_string(arch_string)
    )
    torch.manual_seed(0)
    net = space.build(arch, **options)
    with torch.no_grad():
        net.train()
        for _ in range(2):
            net(torch.randn(8, *shape) * 1.5 + 0.5)
    return space.to_string(arch), net.eval()


@pytest.mark.parametrize(
    "name",
    [
        *(name for name in SPACES if name != "nasnet"),
        # the largest graph: 110 s measured on 2 cores shared with other work
        pytest.param("nasnet", marks=[pytest.mark.slow, pytest.mark.timeout(600)]),
    ],
)
def test_every_space_exports_with_the_current_exporters(name: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    arch, net = space_net(name)
    shape = SPACES[name][2]
    written = export_model(net, arch, name, SPACES[name][1], torch.randn(1, *shape), tmp_path)
    assert written["exporters"] == {
        "model.pt2": "torch.export",
        "model.onnx": "torch.onnx.export(dynamo=True)",
        "model.ts": "torch.jit.trace(check_trace=True)",
    }
    assert written["fallbacks"] == {} and file_opset(tmp_path / "model.onnx") >= 18
    # each file as its user runs it, on batch sizes the export never saw
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    script = torch.jit.load(str(tmp_path / "model.ts"))
    for batch in (3, 16):
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            want = net(x)
            assert torch.allclose(program(x), want, atol=1e-5, rtol=0)
            assert torch.allclose(script(x), want, atol=1e-5, rtol=0)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-4, rtol=0)


# fallbacks ------------------------------------------------------------------------------------


class NaNGuard(nn.Module):
    """Refuses an input with NaNs: a branch on a tensor's value, which torch.export cannot
    capture (a data-dependent guard) while a trace records the branch taken."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(torch.isnan(x).any()):
            raise ValueError("NaN in the input")
        return self.fc(self.conv(x).mean((2, 3)))


def test_a_network_torch_export_cannot_capture_falls_back_and_says_why(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    net = NaNGuard().eval()
    out = tmp_path / "guard"
    out.mkdir()
    (out / "model.pt2").write_text("an earlier export's file")
    written = export_model(net, "guard", "toy", {}, torch.randn(2, 6, 6), out)
    err = capfd.readouterr().err
    # the user is told, on lines of their own, what was not written and which exporter wrote
    # the ONNX file instead, and why
    lines = [line for line in err.splitlines() if line.startswith("nasforge: ")]
    assert any(
        line.startswith("nasforge: no model.pt2 written: torch.export failed (") for line in lines
    ), err
    assert any(
        line.startswith("nasforge: model.onnx written by torch.onnx.export(dynamo=False)")
        and "because torch.export failed (GuardOnDataDependentSymNode" in line
        for line in lines
    ), err
    # ... and arch.json keeps it
    info = json.loads((out / "arch.json").read_text())
    assert info["exporters"]["model.pt2"]["exporter"] is None
    assert info["exporters"]["model.onnx"]["exporter"].startswith("torch.onnx.export(dynamo=False)")
    assert "GuardOnDataDependentSymNode" in info["exporters"]["model.onnx"]["fallback"]
    assert info["checks"]["onnx_exporter"] == info["exporters"]["model.onnx"]["exporter"]
    assert "model.pt2" not in info["files"] and "model.pt2" not in written["files"]
    assert not (out / "model.pt2").exists()  # the earlier export's file is not left behind
    assert set(written["fallbacks"]) == {"model.pt2", "model.onnx"}
    # the legacy files still reproduce the network
    import onnxruntime as ort

    x = torch.randn(5, 2, 6, 6)
    with torch.no_grad():
        want = net(x)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    assert torch.allclose(got, want, atol=1e-5)
    # and the loader, finding no model.pt2, loads model.ts and says so
    torch.save(x, tmp_path / "images.pt")
    done = run_loader(out, tmp_path / "images.pt", tmp_path / "logits.pt")
    assert done.returncode == 0, done.stderr
    assert "load_model: using model.ts, model.pt2 not read" in done.stderr
    assert torch.allclose(torch.load(tmp_path / "logits.pt"), want, atol=1e-5)


def test_opset_17_is_written_by_the_legacy_exporter_with_the_reason(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    written = export_model(
        nb201_net(), ARCH, "nb201", NET, torch.randn(2, 8, 8), tmp_path, opset=17
    )
    err = capfd.readouterr().err
    assert "nasforge: model.onnx written by torch.onnx.export(dynamo=False)" in err
    assert "because ONNX opset 17 was asked for" in err
    assert file_opset(tmp_path / "model.onnx") == 17 == written["onnx_opset"]
    assert set(written["fallbacks"]) == {"model.onnx"}
    assert written["exporters"]["model.pt2"] == "torch.export"


class Counter(nn.Module):
    """Its output depends on how often it was called: a trace bakes one value in."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(x.flatten(1)) + float(self.calls)


def test_an_export_that_differs_from_pytorch_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ExportCheckError, match=r"differs from the PyTorch network by up to"):
        export_model(Counter(), "counter", "toy", {}, torch.randn(1, 2, 2), tmp_path / "out")


def test_a_file_as_export_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        export_model(nb201_net(), ARCH, "nb201", NET, torch.randn(2, 8, 8), tmp_path / "file")


def test_mismatched_normalisation_and_class_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mean has 3 values for 2-channel input"):
        export_model(
            nb201_net(), ARCH, "nb201", NET, torch.randn(2, 8, 8), tmp_path, mean=(0, 0, 0)
        )
    with pytest.raises(ConfigError, match="2 class names for a network with 3 outputs"):
        export_model(
            nb201_net(), ARCH, "nb201", NET, torch.randn(2, 8, 8), tmp_path, class_names="ab"
        )


# a stored run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run") / "runs.db"
    code = cli.main(
        [
            "search",
            "--estimator", "train",
            "--search-only",
            "--dataset", "digits",
            "--strategy", "random",
            "--budget", "2",
            "--epochs", "1",
            "--subset", "1",
            "--channels", "4",
            "--cells", "1",
            "--executor", "inprocess",
            "--store", str(path),
            "--name", RUN,
            "--json",
        ]
    )  # fmt: skip
    assert code == 0
    return path


@pytest.mark.slow
def test_export_of_a_run_without_final_training(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shipped"
    assert cli.main(["export", RUN, "--store", str(store), "--out", str(out)]) == 0
    printed, err = capsys.readouterr()
    assert "training its best architecture once at the run's own fidelity" in err
    assert str(out) in printed and "ONNX (onnxruntime) max abs diff" in printed
    info = json.loads((out / "arch.json").read_text())
    assert info["source"] == "search" and info["run"] == RUN
    assert info["checks"]["onnx_max_abs_diff"] < 1e-4
    # the best trial, retrained with its own seed and fidelity, is the searched network
    with Store(store, create=False) as db:
        trials = db.trials(db.get_run(RUN))
    best = max(trials, key=lambda t: t.result.objective)  # type: ignore[union-attr]
    assert info["arch"] == best.arch
    assert info["search_fidelity_training"]["val_acc"] == pytest.approx(best.result.objective)  # type: ignore[union-attr]
    # the torch-only loader gives the logits of the network rebuilt from weights.pt, on real
    # digits given as 0-1 pixels
    from nasforge.data.datasets import load_dataset

    data = load_dataset("digits")
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    torch.save(data.test_x[:8] * std + mean, tmp_path / "images.pt")
    done = run_loader(out, tmp_path / "images.pt", tmp_path / "logits.pt")
    assert done.returncode == 0, done.stderr
    space = NB201Space()
    net = space.build(space.from_string(info["arch"]), **info["build_options"]).eval()
    net.load_state_dict(torch.load(out / "weights.pt"))
    with torch.no_grad():
        expected = net(data.test_x[:8])
    assert torch.allclose(torch.load(tmp_path / "logits.pt"), expected, atol=1e-4)


@pytest.mark.slow
def test_export_json_and_default_folder(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", RUN, "--store", str(store), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    # the run's artifacts folder, beside the store and named after it
    assert Path(written["out_dir"]) == store.parent / "runs.artifacts" / RUN / "export"
    assert all(Path(p).is_file() for p in written["files"].values())


@pytest.mark.slow
def test_export_errors_are_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    for args, expected in [
        (["export", "nope", "--store", str(store)], "no run named 'nope'"),
        (["export", RUN, "--store", str(store), "--out", str(tmp_path / "file")], "is a file"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("nasforge: error: ") and expected in err and err.count("\n") == 1


def test_export_of_a_run_without_finished_trials_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "r.db") as db:
        run = db.create_run("empty", {"cli": {"space": "nb201", "estimator": "train"}})
        db.start_trial(run, 0, ARCH, None)
    with pytest.raises(ConfigError, match=r"no finished trial \(0 failed, 1 unfinished\)"):
        export_run(tmp_path / "r.db", "empty", tmp_path / "out", progress=False)
