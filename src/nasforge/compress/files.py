"""What ``nasforge compress`` reads and writes: a stored run's final model with its data, and
the compressed model's files.

Read: the model ``nasforge train-final`` kept (the same one ``nasforge export`` ships), the
run's dataset and training split (fine-tuning and calibration use the run's training images,
never its test images, which only score). Written, into a folder staged by the command:

* a float model (pruned, fine-tuned, distilled): ``model.pt2``, ``model.onnx`` and
  ``model.ts`` through `export_formats.write_models`, each reloaded and checked against the
  model, as ``nasforge export`` does (a pruned network no longer matches its space's
  ``build``, so its structure travels in these files, not in an architecture string);
* an int8 torch model: ``model_int8.ts`` (TorchScript, traced; reloaded and checked) and its
  ``state_dict`` as ``model_int8_state.pt``;
* an int8 ONNX model: ``int8.onnx`` (already written by the pipeline);
* ``compress.json``: the run, architecture, plan, every step's measurements and the files.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nasforge.compress.pipeline import Compressed, CompressPlan, Data
from nasforge.errors import ConfigError, NasforgeWarning

INT8_TORCHSCRIPT = "model_int8.ts"
INT8_STATE = "model_int8_state.pt"
RECORD = "compress.json"
#: largest max abs difference between a reloaded file and the model it was written from
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Source:
    """A run's final model and the data to compress it with."""

    run: str
    arch: str
    model: torch.nn.Module
    data: Data
    default_out: Path  # the run's artifacts folder (its ``export/`` sits there too)
    where: str  # which training produced the model, for the summary line
    dataset: dict[str, Any]


def load_final(
    run_name: str,
    store: str,
    artifacts: str | None,
    data_dir: str | None,
    subset: float | None,
) -> Source:
    """The model ``train-final`` kept for ``run_name`` and the run's data; a run without one is
    a one-line error saying what to run first."""
    from nasforge import final
    from nasforge.export import _from_final
    from nasforge.outputs import find_final, run_folder

    with final.open_store(store) as db:
        run, cfg, _ = final.load_run(db, run_name)
        found = find_final(db, run, artifacts)
        folder = run_folder(db, run_name, artifacts)
    if found is None or found.weights is None:
        why = "none in the store" if found is None else "its weights file is missing"
        raise ConfigError(
            f"run {run_name!r} has no final model to compress ({why}); run 'nasforge "
            f"train-final {run_name} --store {store}' first"
        )
    model, arch, _, _, dataset, extra = _from_final(cfg, found)
    share = subset if subset is not None else float(found.result.get("subset") or 1.0)
    # the kept model's own seed: the same training split (its validation images stay unseen)
    seed = int(found.result["best"]["seed"])
    with warnings.catch_warnings():  # its advice on a search's trial length is not ours
        warnings.simplefilter("ignore", NasforgeWarning)
        _, trainer = final.make_trainer(cfg, seed, 1, share, data_dir)
    images = trainer.dataset
    train = trainer.train_idx
    data = Data(
        images.train_x.index_select(0, train),
        images.train_y.index_select(0, train),
        images.test_x,
        images.test_y,
    )
    training = extra.get("final_training", {})
    where = f"train-final seed {training.get('seed')}, {training.get('epochs')} epochs"
    return Source(run_name, arch, model, data, folder, where, dataset)


def check_writable(out: Path) -> None:
    """The output folder's parent must exist or be creatable and writable, and the folder
    itself, if it exists, must be a folder that is empty or an earlier compress output (it is
    replaced as a whole, so a folder of other files is refused): checked before any work."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; give a folder (it is replaced when done)")
    if out.is_dir() and any(out.iterdir()) and not (out / RECORD).is_file():
        raise ConfigError(
            f"output folder {out} holds files that are not an earlier 'nasforge compress' "
            f"output (no {RECORD}); give a new or empty folder (it is replaced when done)"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {out.parent}: {err.strerror or err}") from None
    if not os.access(out.parent, os.W_OK):
        raise ConfigError(f"cannot write in {out.parent}: permission denied")


def _is_quantized(model: torch.nn.Module) -> bool:
    return any(
        p.dtype in (torch.qint8, torch.quint8)
        for p in list(model.state_dict().values())
        if isinstance(p, torch.Tensor)
    ) or any("quantized" in type(m).__module__ for m in model.modules())


def _write_int8(model: torch.nn.Module, example: torch.Tensor, out: Path) -> dict[str, Path]:
    batch = example.repeat(4, 1, 1, 1)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
        expected = [model(example), model(batch)]
    path = out / INT8_TORCHSCRIPT
    traced.save(str(path))
    reloaded = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.no_grad():
        worst = max(
            float((reloaded(x) - y).abs().max())
            for x, y in zip((example, batch), expected, strict=True)
        )
    if not worst <= TOLERANCE:
        raise ConfigError(
            f"the saved int8 TorchScript {path} differs from the model by {worst:.3g}; not kept"
        )
    torch.save(model.state_dict(), out / INT8_STATE)
    return {INT8_TORCHSCRIPT: path, INT8_STATE: out / INT8_STATE}


def _write_float(model: torch.nn.Module, example: torch.Tensor, out: Path) -> dict[str, Path]:
    from nasforge import export_formats as formats

    batch = example.repeat(4, 1, 1, 1)
    with torch.no_grad():
        expected = [model(example), model(batch)]
    models = formats.write_models(
        model, [example, batch], expected, out, formats.CURRENT_ONNX_OPSET, TOLERANCE
    )
    return {name: out / name for name in models.files}


def write(result: Compressed, source: Source, plan: CompressPlan, out: Path) -> dict[str, Path]:
    """Write the compressed model's files and ``compress.json`` into ``out``; name -> path."""
    example = source.data.test_x[:1].clone()
    model = result.model.eval()
    written: dict[str, Path] = {}
    if _is_quantized(model):
        written.update(_write_int8(model, example, out))
    else:
        written.update(_write_float(model, example, out))
    if result.onnx_path is not None:
        written[result.onnx_path.name] = result.onnx_path
    record = {
        "run": source.run,
        "arch": source.arch,
        "dataset": source.dataset,
        "plan": asdict(plan),
        **result.to_json(),
        "files": sorted([*written, RECORD]),
    }
    (out / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    written[RECORD] = out / RECORD
    return written
