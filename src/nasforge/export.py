"""Export a chosen network so that it outlives nasforge: files that need torch (or an ONNX
runtime) alone to run.

`export_model` writes into one folder:

* ``model.ts``: TorchScript (traced), loadable with ``torch.jit.load``;
* ``model.onnx``: ONNX (opset >= 17, dynamic batch), checked with onnxruntime against PyTorch
  on the example input and on a random batch: the max abs difference is reported, and an export
  that differs by more than ``tolerance`` is an error, never a silently wrong file;
* ``arch.json``: space, architecture string, build options, input shape, normalisation
  mean/std, class names, versions, and the checks' numbers;
* ``weights.pt``: the ``state_dict``, to rebuild the network with nasforge (``space.build``);
* ``load_model.py``: a loader that imports only torch (``load``, ``preprocess``, ``predict``).

`export_run` exports a stored run's model: the one kept by ``nasforge train-final`` when there
is one, else the run's best architecture trained once at the run's own fidelity.
"""

from __future__ import annotations

import copy
import json
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.config import RunConfig
from nasforge.errors import ConfigError, NasforgeError
from nasforge.outputs import FoundFinal, default_out_dir, find_final, server_note

#: The ONNX operator set written; 17 is the first with LayerNormalization and is read by every
#: onnxruntime since 1.13.
ONNX_OPSET = 17
#: The largest max abs difference between PyTorch and an exported file that passes the check.
TOLERANCE = 1e-4
FILES = ("model.ts", "model.onnx", "arch.json", "weights.pt", "load_model.py")


class ExportCheckError(NasforgeError):
    """An exported file does not reproduce the PyTorch network's outputs."""


def export_model(
    model: torch.nn.Module,
    arch_string: str,
    space_name: str,
    build_options: Mapping[str, Any],
    example_input: torch.Tensor,
    out_dir: str | Path,
    *,
    mean: Sequence[float] = (),
    std: Sequence[float] = (),
    class_names: Sequence[str] | None = None,
    dataset: str | None = None,
    extra: Mapping[str, Any] | None = None,
    opset: int = ONNX_OPSET,
    tolerance: float = TOLERANCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the five files of the module docstring into ``out_dir`` (created; our files in
    it are replaced) and return what was written with the checks' max abs differences.

    ``example_input`` is one normalised image (C×H×W) or a batch (N×C×H×W). ``mean``/``std``
    (per channel, on the 0-1 pixel scale) are what inputs must be normalised with; they go to
    ``arch.json`` for the loader. ``extra`` adds entries to ``arch.json`` (run, accuracy ...).
    The random check batch is drawn with ``seed``.
    """
    out = _prepare_folder(out_dir)
    if opset < 17:
        raise ConfigError(f"ONNX opset must be >= 17, got {opset}")
    net = copy.deepcopy(model).cpu().eval()
    example = _as_batch(example_input)
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn((example.shape[0] + 4, *example.shape[1:]), generator=generator)
    with torch.no_grad():
        expected = [net(example), net(batch)]
    _check_metadata(example, expected[0], mean, std, class_names)

    ts_path = out / "model.ts"
    _save_torchscript(net, example, ts_path)
    ts_diff = _check_torchscript(ts_path, [example, batch], expected, tolerance)

    onnx_path = out / "model.onnx"
    exporter = _save_onnx(net, example, onnx_path, opset)
    onnx_diff = _check_onnx(onnx_path, [example, batch], expected, tolerance)

    torch.save(net.state_dict(), out / "weights.pt")
    info = _arch_info(
        net, arch_string, space_name, build_options, example, mean, std, class_names, dataset
    )
    info["checks"] = {
        "torchscript_max_abs_diff": ts_diff,
        "onnx_max_abs_diff": onnx_diff,
        "tolerance": tolerance,
        "onnx_opset": opset,
        "onnx_exporter": exporter,
        "checked_batches": [list(example.shape), list(batch.shape)],
    }
    info.update(dict(extra or {}))
    (out / "arch.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "load_model.py").write_text(LOADER)
    return {
        "out_dir": str(out),
        "files": {name: str(out / name) for name in FILES},
        "torchscript_max_abs_diff": ts_diff,
        "onnx_max_abs_diff": onnx_diff,
        "onnx_opset": opset,
        "arch": arch_string,
        "space": space_name,
    }


def _prepare_folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export folder {out} is a file; give a folder (created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create export folder {out}: {err.strerror or err}") from None
    return out


def _as_batch(example: torch.Tensor) -> torch.Tensor:
    if not isinstance(example, torch.Tensor) or example.ndim not in (3, 4):
        shape = tuple(example.shape) if isinstance(example, torch.Tensor) else type(example)
        raise ConfigError(
            f"example_input must be a tensor C×H×W (one image) or N×C×H×W, got {shape}"
        )
    example = example.detach().to("cpu", torch.float32)
    return example.unsqueeze(0) if example.ndim == 3 else example


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.jit and the TorchScript-based ONNX exporter warn that they are deprecated; the
    files they write are checked below, so the warnings only add noise for the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _save_torchscript(net: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(net, example, check_trace=False)
        torch.jit.save(traced, str(path))


def _max_abs_diff(got: np.ndarray | torch.Tensor, want: torch.Tensor) -> float:
    got_t = torch.as_tensor(np.asarray(got)) if not isinstance(got, torch.Tensor) else got
    if tuple(got_t.shape) != tuple(want.shape):
        return float("inf")
    return float((got_t.to(torch.float64) - want.to(torch.float64)).abs().max())


def _check(what: str, diffs: list[float], tolerance: float) -> float:
    worst = max(diffs)
    if not worst <= tolerance:
        raise ExportCheckError(
            f"{what} differs from the PyTorch network by up to {worst:.3g} (tolerance "
            f"{tolerance:g}) on batches of shape checked; the export is not trustworthy"
        )
    return worst


def _check_torchscript(
    path: Path, inputs: list[torch.Tensor], expected: list[torch.Tensor], tolerance: float
) -> float:
    """Reload the saved file (not the in-memory trace) and compare, so what is checked is
    what a user loads."""
    with _quiet():
        loaded = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.no_grad():
        diffs = [_max_abs_diff(loaded(x), y) for x, y in zip(inputs, expected, strict=True)]
    return _check(f"TorchScript file {path}", diffs, tolerance)


def _save_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> str:
    """The TorchScript-based exporter (``dynamo=False``): it needs no ``torch.export``-able
    model, and a dynamic batch axis is one argument. Returns which exporter wrote the file."""
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return "torchscript"


def _check_onnx(
    path: Path, inputs: list[torch.Tensor], expected: list[torch.Tensor], tolerance: float
) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    diffs = [
        _max_abs_diff(session.run(None, {name: x.numpy()})[0], y)
        for x, y in zip(inputs, expected, strict=True)
    ]
    return _check(f"ONNX file {path} (onnxruntime)", diffs, tolerance)


def _check_metadata(
    example: torch.Tensor,
    logits: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str] | None,
) -> None:
    """Normalisation and class names must fit the network, before any file is written."""
    channels = example.shape[1]
    for label, values in (("mean", mean), ("std", std)):
        if len(values) not in (0, channels):
            raise ConfigError(
                f"{label} has {len(values)} values for {channels}-channel input; give one per "
                "channel or none"
            )
    outputs = int(logits.shape[-1])
    if class_names is not None and len(class_names) != outputs:
        raise ConfigError(f"{len(class_names)} class names for a network with {outputs} outputs")


def _arch_info(
    net: torch.nn.Module,
    arch_string: str,
    space_name: str,
    build_options: Mapping[str, Any],
    example: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str] | None,
    dataset: str | None,
) -> dict[str, Any]:
    import nasforge

    with torch.no_grad():
        outputs = int(net(example[:1]).shape[-1])
    return {
        "format": "nasforge-export",
        "format_version": 1,
        "space": space_name,
        "arch": arch_string,
        "build_options": dict(build_options),
        "dataset": dataset,
        "input_shape": list(example.shape[1:]),
        "input": "float32 N×C×H×W, pixels on the 0-1 scale, then (x - mean) / std per channel",
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "classes": outputs,
        "class_names": None if class_names is None else list(class_names),
        "files": {
            "model.ts": "TorchScript: torch.jit.load",
            "model.onnx": "ONNX, input 'images', output 'logits', dynamic batch",
            "weights.pt": "state_dict of space.build(arch, **build_options)",
            "load_model.py": "loader that needs only torch",
        },
        "nasforge_version": nasforge.__version__,
        "torch_version": torch.__version__,
    }


LOADER = '''"""Run the exported network with torch alone (nasforge is not needed).

    import load_model
    model = load_model.load()                  # the TorchScript network, CPU, eval mode
    logits = load_model.predict(images)        # images: N×C×H×W or C×H×W tensor
    classes = logits.argmax(1)

``images`` are pixels on the 0-1 scale (uint8 images are divided by 255); `preprocess`
normalises them with the training set's mean and std from ``arch.json``. From a shell:
``python load_model.py IMAGES.pt`` prints the predicted class of each image of a saved tensor.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def info(folder=HERE):
    """The contents of arch.json: architecture, input shape, mean/std, class names."""
    return json.loads((Path(folder) / "arch.json").read_text())


def load(folder=HERE):
    """The network (TorchScript) on the CPU, in eval mode."""
    return torch.jit.load(str(Path(folder) / "model.ts"), map_location="cpu").eval()


def preprocess(images, folder=HERE):
    """Pixels (0-1 scale, or uint8 0-255) -> the normalised float batch the network expects."""
    meta = info(folder)
    x = torch.as_tensor(images)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if list(x.shape[1:]) != list(meta["input_shape"]):
        raise ValueError(
            f"images have shape {tuple(x.shape)}; expected N x {tuple(meta['input_shape'])}"
        )
    if meta["mean"]:
        x = x - torch.tensor(meta["mean"]).view(1, -1, 1, 1)
    if meta["std"]:
        x = x / torch.tensor(meta["std"]).view(1, -1, 1, 1)
    return x


def predict(images, folder=HERE, model=None):
    """Logits (N×classes) of a batch of images (see `preprocess`)."""
    model = load(folder) if model is None else model
    with torch.inference_mode():
        return model(preprocess(images, folder))


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python load_model.py IMAGES.pt  (a tensor N×C×H×W or C×H×W)")
    logits = predict(torch.load(argv[1]))
    names = info().get("class_names")
    for i, label in enumerate(logits.argmax(1).tolist()):
        print(i, label if not names else f"{label} {names[label]}")


if __name__ == "__main__":
    main(sys.argv)
'''


# a stored run -----------------------------------------------------------------------------------


def export_run(
    store: Any,
    run_name: str,
    out_dir: str | Path | None = None,
    *,
    data_dir: str | None = None,
    progress: bool = True,
    artifacts: str | Path | None = None,
) -> dict[str, Any]:
    """Export a stored run's model (see the module docstring) to ``out_dir`` (default: the
    run's artifacts folder, `outputs.default_out_dir`). The returned dict is `export_model`'s
    plus ``source``: ``final`` (the model ``train-final`` kept) or ``search`` (the best
    architecture trained once here, at the run's fidelity)."""
    from nasforge import final

    with final.open_store(store) as db:
        run, cfg, trials = final.load_run(db, run_name)
        out = Path(out_dir) if out_dir is not None else default_out_dir(db, run_name, artifacts)
        found = find_final(db, run, artifacts)
        location = db.location
        note = server_note(db, run_name, artifacts) if out_dir is None and progress else None
    if note:
        sys.stderr.write(note + "\n")
    _prepare_folder(out)  # a bad folder is an error before any training
    if found is not None and found.weights is not None:
        model, arch, space_name, options, data, extra = _from_final(cfg, found)
        example = torch.randn((1, *data["shape"]), generator=torch.Generator().manual_seed(0))
    else:
        why = "none in the store" if found is None else "its weights file is missing"
        message = (
            f"no final training of run {run_name!r} ({why}): training its best "
            "architecture once at the run's own fidelity (run 'nasforge train-final' for a "
            "model trained at full fidelity over several seeds)\n"
        )
        if progress:
            sys.stderr.write(message)
        model, arch, space_name, options, data, extra, example = _from_search(
            cfg, trials, data_dir, progress, run_name
        )
    written = export_model(
        model,
        arch,
        space_name,
        options,
        example,
        out,
        mean=data.get("mean") or (),
        std=data.get("std") or (),
        class_names=data.get("class_names"),
        dataset=data.get("name"),
        extra={"run": run_name, "store": location, **extra},
    )
    return {"run": run_name, "source": extra["source"], **written}


def _from_final(
    cfg: RunConfig, found: FoundFinal
) -> tuple[torch.nn.Module, str, str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    from nasforge import runconfig

    saved = found.result
    best = saved["best"]
    space = runconfig.make_space(cfg)
    options = dict(saved["build_options"])
    model = space.build(space.from_string(best["arch"]), **options)
    model.load_state_dict(torch.load(found.weights, map_location="cpu", weights_only=True))
    row = next((a for a in saved["architectures"] if a["arch"] == best["arch"]), {})
    extra = {
        "source": "final",
        "final_training": {
            "results": found.source,
            "weights": str(found.weights),
            "seed": best["seed"],
            "val_acc": best["val_acc"],
            "epochs": saved["epochs"],
            "test_acc_mean": row.get("test_acc_mean"),
            "test_acc_std": row.get("test_acc_std"),
            "seeds": saved["seeds"],
        },
    }
    return model.eval(), best["arch"], space.name, options, saved["dataset"], extra


def _from_search(
    cfg: RunConfig, trials: list[Any], data_dir: str | None, progress: bool, run_name: str
) -> tuple[torch.nn.Module, str, str, dict[str, Any], dict[str, Any], dict[str, Any], torch.Tensor]:
    from nasforge import final, runconfig
    from nasforge.report.progress import Progress

    top = final.top_architectures(runconfig.make_space(cfg), trials, 1)[0]
    epochs = int(top["fidelity"]) if top["fidelity"] is not None else int(cfg.train.epochs)
    seed = int(cfg.search.seed)
    space, trainer = final.make_trainer(cfg, seed, epochs, float(cfg.train.subset), data_dir)
    bar = Progress(epochs, label=f"{run_name} export ", unit="epochs", enabled=progress)

    def hook(epoch: int, loss: float, *_: Any) -> None:
        bar.update(epoch, f"loss {loss:.3f}")

    model, result = final.train_once(trainer, space, top["arch"], hook)
    bar.close()
    data = final.dataset_info(trainer.dataset)
    extra = {
        "source": "search",
        "search_fidelity_training": {
            "trial": top["trial"],
            "seed": seed,
            "epochs": epochs,
            "subset": float(cfg.train.subset),
            "val_acc": result.objective,
            "test_acc": result.report.get("test_acc"),
        },
    }
    example = trainer.dataset.test_x[:1].clone()
    return model, top["arch"], space.name, trainer.build_options, data, extra, example
