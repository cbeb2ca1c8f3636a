"""Export a chosen network so that it outlives nasforge: files that need torch (or an ONNX
runtime) alone to run.

`export_model` writes into one folder:

* ``model.pt2``: the ``torch.export`` ExportedProgram (dynamic batch), loadable with
  ``torch.export.load(path).module()``;
* ``model.onnx``: ONNX (dynamic batch), by the ``torch.export``-based exporter (opset 18);
* ``model.ts``: TorchScript (traced, with torch's trace check), loadable with ``torch.jit.load``
  by torch versions without ``torch.export``;
* ``arch.json``: space, architecture string, build options, input shape, normalisation
  mean/std, class names, versions, which exporter wrote each file (and why, where it is a
  legacy one), and the checks' numbers;
* ``weights.pt``: the ``state_dict``, to rebuild the network with nasforge (``space.build``);
* ``load_model.py``: a loader that imports only torch (``load``, ``preprocess``, ``predict``).

Each of the three model files is reloaded and checked against PyTorch (the ONNX file with
onnxruntime) on the example input and on a random batch of another size: the max abs
difference is reported, and one above ``tolerance`` is an error, never a silently wrong file.
How each format is written, and when a legacy exporter takes over, is `export_formats`'s job.

`export_run` exports a stored run's model: the one kept by ``nasforge train-final`` when there
is one, else the run's best architecture trained once at the run's own fidelity.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from nasforge import export_formats as formats
from nasforge.config import RunConfig
from nasforge.errors import ConfigError
from nasforge.export_formats import ExportCheckError
from nasforge.outputs import FoundFinal, default_out_dir, find_final, server_note

__all__ = ["FILES", "ONNX_OPSET", "TOLERANCE", "ExportCheckError", "export_model", "export_run"]

#: The ONNX operator set written by default: the lowest the ``torch.export``-based exporter
#: writes (onnxruntime reads it since 1.14). 17 (the first with LayerNormalization) is still
#: accepted, and written by the legacy exporter, with that reason recorded.
ONNX_OPSET = formats.CURRENT_ONNX_OPSET
#: The largest max abs difference between PyTorch and an exported file that passes the check.
TOLERANCE = 1e-4
FILES = (
    formats.PROGRAM_FILE,
    formats.ONNX_FILE,
    formats.TORCHSCRIPT_FILE,
    "arch.json",
    "weights.pt",
    "load_model.py",
)


def _check_finite(model: torch.nn.Module) -> None:
    """A model with NaN or infinite weights or buffers (a diverged training) is never exported:
    its files would "agree" with PyTorch only in producing NaN."""
    state = model.state_dict()
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ConfigError(
            f"the model has non-finite values in {len(bad)} tensor(s) ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}): its training diverged; retrain it with a "
            "lower --lr before exporting"
        )


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
    """Write the files of the module docstring into ``out_dir`` (created; our files in it are
    replaced) and return what was written with the checks' max abs differences.

    ``example_input`` is one normalised image (C×H×W) or a batch (N×C×H×W). ``mean``/``std``
    (per channel, on the 0-1 pixel scale) are what inputs must be normalised with; they go to
    ``arch.json`` for the loader. ``extra`` adds entries to ``arch.json`` (run, accuracy ...).
    The random check batch is drawn with ``seed``. A file written by a legacy exporter is
    announced on stderr with the reason, which ``arch.json`` keeps under ``exporters``.
    """
    if opset < 17:
        raise ConfigError(f"ONNX opset must be >= 17, got {opset}")
    _check_finite(model)
    out = _prepare_folder(out_dir)
    net = copy.deepcopy(model).cpu().eval()
    example = _as_batch(example_input)
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn((example.shape[0] + 4, *example.shape[1:]), generator=generator)
    with torch.no_grad():
        expected = [net(example), net(batch)]
    _check_metadata(example, expected[0], mean, std, class_names)
    for name in FILES:
        (out / name).unlink(missing_ok=True)  # a file of an earlier export is never left behind

    models = formats.write_models(net, [example, batch], expected, out, opset, tolerance)
    exporters, diffs = models.exporters(), models.diffs

    torch.save(net.state_dict(), out / "weights.pt")
    info = _arch_info(
        net, arch_string, space_name, build_options, example, mean, std, class_names, dataset
    )
    info["exporters"] = exporters
    info["checks"] = {
        "exported_program_max_abs_diff": diffs.get("exported_program"),
        "torchscript_max_abs_diff": diffs["torchscript"],
        "onnx_max_abs_diff": diffs["onnx"],
        "tolerance": tolerance,
        "onnx_opset": formats.onnx_opset(out / formats.ONNX_FILE),
        "onnx_exporter": exporters[formats.ONNX_FILE]["exporter"],
        "checked_batches": [list(example.shape), list(batch.shape)],
    }
    if formats.PROGRAM_FILE not in models.files:
        del info["files"][formats.PROGRAM_FILE]
    info.update(dict(extra or {}))
    (out / "arch.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "load_model.py").write_text(LOADER)
    present = [name for name in FILES if (out / name).is_file()]
    return {
        "out_dir": str(out),
        "files": {name: str(out / name) for name in present},
        "exported_program_max_abs_diff": diffs.get("exported_program"),
        "torchscript_max_abs_diff": diffs["torchscript"],
        "onnx_max_abs_diff": diffs["onnx"],
        "onnx_opset": info["checks"]["onnx_opset"],
        "exporters": {name: e["exporter"] for name, e in exporters.items()},
        "fallbacks": {name: e["fallback"] for name, e in exporters.items() if e["fallback"]},
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
            "model.pt2": "ExportedProgram: torch.export.load(path).module()",
            "model.onnx": "ONNX, input 'images', output 'logits', dynamic batch",
            "model.ts": "TorchScript (traced): torch.jit.load",
            "weights.pt": "state_dict of space.build(arch, **build_options)",
            "load_model.py": "loader that needs only torch",
        },
        "nasforge_version": nasforge.__version__,
        "torch_version": torch.__version__,
    }


LOADER = '''"""Run the exported network with torch alone (nasforge is not needed).

    import load_model
    model = load_model.load()                  # the network, CPU, ready for inference
    logits = load_model.predict(images)        # images: N×C×H×W or C×H×W tensor
    classes = logits.argmax(1)

``images`` are pixels on the 0-1 scale (uint8 images are divided by 255); `preprocess`
normalises them with the training set's mean and std from ``arch.json``. From a shell:
``python load_model.py IMAGES.pt`` prints the predicted class of each image of a saved tensor.

`load` returns the ``torch.export`` program (model.pt2) where this torch can read it, else
the TorchScript file (model.ts), which older torch versions read too.
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


def load(folder=HERE, fmt="auto"):
    """The network on the CPU, ready for inference. ``fmt``: "pt2" (torch.export), "ts"
    (TorchScript) or "auto" (pt2 where this torch reads it, else ts, saying why on stderr)."""
    folder = Path(folder)
    if fmt not in ("auto", "pt2", "ts"):
        raise ValueError(f"fmt must be 'auto', 'pt2' or 'ts', got {fmt!r}")
    if fmt != "ts":
        reader = getattr(getattr(torch, "export", None), "load", None)
        try:
            if reader is None:
                raise RuntimeError(f"torch {torch.__version__} has no torch.export.load")
            return reader(str(folder / "model.pt2")).module()  # exported in eval mode
        except Exception as err:
            if fmt == "pt2":
                raise
            print(f"load_model: using model.ts, model.pt2 not read: {err}", file=sys.stderr)
    return torch.jit.load(str(folder / "model.ts"), map_location="cpu").eval()


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
    # a tensor file holds no code to run: weights_only=True says so under every torch >= 1.13
    logits = predict(torch.load(argv[1], map_location="cpu", weights_only=True))
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
