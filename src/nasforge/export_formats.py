"""The exporters behind `nasforge.export`: one function per file format, each using the current
exporter where it succeeds and saying which exporter wrote the file, and why, when it is not the
current one.

* ``model.pt2``: ``torch.export`` (an ``ExportedProgram``, dynamic batch), ``torch.export.save``;
* ``model.onnx``: the ``torch.export``-based ONNX exporter (``torch.onnx.export(dynamo=True)``,
  opset >= 18) from that program; the TorchScript-based exporter (``dynamo=False``) only when
  ``torch.export`` failed, the new exporter failed, or an opset below 18 was asked for;
* ``model.ts``: TorchScript by tracing, with ``check_trace`` on a second batch size. Kept because
  TorchScript is what users of earlier exports load and what a torch without ``torch.export``
  can read; tracing, not scripting, since none but the mobile space's networks can be scripted.

`write_models` writes the three in that order. Nothing here silences a warning: what torch
says about its exporters reaches the user, and a fallback is said on stderr as soon as its file
is written. Every file is reloaded from disk and run against the PyTorch network's outputs
(`check_file`), so a file that exists was checked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.errors import NasforgeError

PROGRAM_FILE = "model.pt2"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.ts"
#: The lowest operator set the ``torch.export``-based ONNX exporter writes (asked for 17, it
#: writes 18 anyway after a failed down-conversion); onnxruntime reads 18 since 1.14.
CURRENT_ONNX_OPSET = 18
TORCH_EXPORT = "torch.export"
ONNX_CURRENT = "torch.onnx.export(dynamo=True)"
ONNX_LEGACY = "torch.onnx.export(dynamo=False), the legacy TorchScript-based exporter"
JIT_TRACE = "torch.jit.trace(check_trace=True)"


class ExportCheckError(NasforgeError):
    """An exported file does not reproduce the PyTorch network's outputs."""


@dataclass(frozen=True)
class Written:
    """One file written: which exporter wrote it and, where that is not the current exporter,
    why (``fallback``), so that a user never has to guess from a warning."""

    file: str
    exporter: str
    fallback: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"exporter": self.exporter, "fallback": self.fallback}

    def notice(self) -> str | None:
        """The line a user sees when a file came from a fallback (None when it did not)."""
        if self.fallback is None:
            return None
        return f"nasforge: {self.file} written by {self.exporter}, because {self.fallback}"


def _reason(err: BaseException) -> str:
    """An exception as one line: its type and the first non-empty line of its message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else 'no message'}"


def _batch_shapes() -> tuple[dict[int, Any]]:
    """The input's first axis is the batch and may be any size."""
    return ({0: torch.export.Dim("batch")},)


def export_program(
    net: torch.nn.Module, batch: torch.Tensor
) -> tuple[torch.export.ExportedProgram | None, str | None]:
    """``torch.export`` of ``net`` with a dynamic batch axis, or ``(None, why it failed)``.

    ``batch`` should hold more than one example: ``torch.export`` specialises an axis of size 1.
    Any exception is a reason, not a crash: the other formats are still written (by the legacy
    exporters) and the reason goes to the user and to ``arch.json``."""
    try:
        with torch.no_grad():
            program = torch.export.export(net, (batch,), dynamic_shapes=_batch_shapes())
    except Exception as err:
        return None, f"torch.export failed ({_reason(err)})"
    return program, None


def save_program(program: torch.export.ExportedProgram, path: Path) -> Written:
    torch.export.save(program, str(path))
    return Written(path.name, TORCH_EXPORT)


def save_onnx(
    net: torch.nn.Module,
    program: torch.export.ExportedProgram | None,
    program_failure: str | None,
    example: torch.Tensor,
    path: Path,
    opset: int,
) -> Written:
    """``model.onnx`` (input ``images``, output ``logits``, dynamic batch), by the current
    exporter from ``program`` where there is one and ``opset`` allows it, else the legacy one."""
    if program is None:
        reason = program_failure or "torch.export failed"
    elif opset < CURRENT_ONNX_OPSET:
        reason = (
            f"ONNX opset {opset} was asked for and the current exporter writes opset "
            f"{CURRENT_ONNX_OPSET} or later"
        )
    else:
        try:
            with torch.no_grad():
                torch.onnx.export(
                    program,
                    (example,),
                    str(path),
                    input_names=["images"],
                    output_names=["logits"],
                    opset_version=opset,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
        except Exception as err:
            path.unlink(missing_ok=True)
            reason = f"the current ONNX exporter failed ({_reason(err)})"
        else:
            return Written(path.name, ONNX_CURRENT)
    with torch.no_grad():
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
    return Written(path.name, ONNX_LEGACY, reason)


def onnx_opset(path: Path) -> int:
    """The default-domain operator set a saved ONNX file declares (what a runtime must read)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def save_torchscript(
    net: torch.nn.Module, example: torch.Tensor, other: torch.Tensor, path: Path
) -> Written:
    """Trace on ``example`` and let torch's own trace check rerun it on ``other`` (another batch
    size): a trace whose graph changes between calls is refused here, before any number is
    compared."""
    try:
        with torch.no_grad():
            traced = torch.jit.trace(net, example, check_trace=True, check_inputs=[(other,)])
    except torch.jit.TracingCheckError as err:
        raise ExportCheckError(
            f"the TorchScript trace of the network failed torch's trace check ({_reason(err)}); "
            "its outputs depend on more than its input"
        ) from None
    torch.jit.save(traced, str(path))
    return Written(path.name, JIT_TRACE)


@dataclass
class Models:
    """What `write_models` wrote: a record per file, the checks' max abs differences (by
    format: ``exported_program``, ``onnx``, ``torchscript``) and why no program was written."""

    written: list[Written] = field(default_factory=list)
    diffs: dict[str, float] = field(default_factory=dict)
    program_failure: str | None = None

    @property
    def files(self) -> list[str]:
        return [w.file for w in self.written]

    def exporters(self) -> dict[str, dict[str, Any]]:
        """File -> exporter and fallback reason, as ``arch.json`` keeps them; a program that
        could not be written is listed with no exporter and the reason."""
        found = {w.file: w.to_json() for w in self.written}
        if self.program_failure is not None:
            found[PROGRAM_FILE] = {"exporter": None, "fallback": self.program_failure}
        return found


def write_models(
    net: torch.nn.Module,
    inputs: list[torch.Tensor],
    expected: list[torch.Tensor],
    out: Path,
    opset: int,
    tolerance: float,
) -> Models:
    """Write and check ``model.pt2``, ``model.onnx`` and ``model.ts`` in ``out``. ``inputs``
    are the example batch and a larger one, ``expected`` the network's outputs on them. Each
    fallback is said on stderr as soon as its file is written, before a later check can fail."""
    example, batch = inputs
    models = Models()

    def wrote(record: Written, key: str) -> None:
        models.written.append(record)
        if record.notice() is not None:
            sys.stderr.write(f"{record.notice()}\n")
        models.diffs[key] = check_file(out / record.file, inputs, expected, tolerance)

    program, models.program_failure = export_program(net, batch)
    if program is None:
        sys.stderr.write(f"nasforge: no {PROGRAM_FILE} written: {models.program_failure}\n")
    else:
        wrote(save_program(program, out / PROGRAM_FILE), "exported_program")
    onnx = save_onnx(net, program, models.program_failure, example, out / ONNX_FILE, opset)
    wrote(onnx, "onnx")
    wrote(save_torchscript(net, example, batch, out / TORCHSCRIPT_FILE), "torchscript")
    return models


# checks -------------------------------------------------------------------------------------


def _max_abs_diff(got: np.ndarray | torch.Tensor, want: torch.Tensor) -> float:
    got_t = torch.as_tensor(np.asarray(got)) if not isinstance(got, torch.Tensor) else got
    if tuple(got_t.shape) != tuple(want.shape):
        return float("inf")
    return float((got_t.detach().to(torch.float64) - want.to(torch.float64)).abs().max())


def _runner(path: Path) -> tuple[str, Callable[[torch.Tensor], Any]]:
    """What a user does to run the file: its description and a function of one batch."""
    if path.suffix == ".pt2":
        module = torch.export.load(str(path)).module()
        return f"ExportedProgram file {path}", module
    if path.suffix == ".ts":
        loaded = torch.jit.load(str(path), map_location="cpu").eval()
        return f"TorchScript file {path}", loaded
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return f"ONNX file {path} (onnxruntime)", lambda x: session.run(None, {name: x.numpy()})[0]


def check_file(
    path: Path, inputs: list[torch.Tensor], expected: list[torch.Tensor], tolerance: float
) -> float:
    """Reload the saved file (not the in-memory export) and compare its outputs with PyTorch's
    on every batch, so what is checked is what a user loads; the worst max abs difference, or
    `ExportCheckError` above ``tolerance``."""
    what, run = _runner(path)
    with torch.no_grad():
        diffs = [_max_abs_diff(run(x), y) for x, y in zip(inputs, expected, strict=True)]
    worst = max(diffs)
    if not worst <= tolerance:
        shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
        raise ExportCheckError(
            f"{what} differs from the PyTorch network by up to {worst:.3g} (tolerance "
            f"{tolerance:g}) on batches of shape {shapes}; the export is not trustworthy"
        )
    return worst
