"""Compress a trained network step by step and measure every step: what ``nasforge compress``
runs on a stored run's final model, and what a Python user runs on any ``nn.Module``.

The steps, in the order the lightweight-network survey applies them: **prune** (structured
channel pruning by L1 norm or by network slimming's batch-norm scales, or unstructured magnitude
pruning; to a channel ratio or to a share of the MACs), **fine-tune** (optionally distilled from
the unpruned model: Hinton soft targets), then **quantise** (int8 by post-training static
quantisation, quantisation-aware training, or an int8 ONNX model for ONNX Runtime). After the
original and after every step the same record is taken: test accuracy, parameters, MACs,
serialised size and latency measured on this CPU (1 thread, batch 1, the runtime the step's
model runs on), so the accuracy each saving costs is in one table.
"""

from __future__ import annotations

import copy
import math
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.compress import finetune
from nasforge.errors import ConfigError, FewStepsWarning

#: prune methods (`prune.PRUNE_METHODS`) and quantisation modes (`quantize.QUANTIZE_MODES`),
#: named here so the CLI can list them without importing torch (a test keeps them equal)
PRUNE_METHOD_NAMES = ("l1", "slimming", "magnitude")
QUANTIZE_MODE_NAMES = ("int8", "qat", "onnx-int8")

Say = Callable[[str], None]


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class CompressPlan:
    """What to do to a network; `check` validates all of it before any work starts."""

    prune: float | None = None  # share of channels (structured) or weights (magnitude) removed
    prune_macs: float | None = None  # or: keep this share of the MACs (structured methods)
    method: str = "l1"
    sparsity_epochs: int = 1  # network slimming: epochs of L1-on-BN training before pruning
    sparsity_strength: float = 1e-4
    finetune_epochs: int = 1
    lr: float = 0.01
    distill: bool = False
    temperature: float = 4.0
    alpha: float = 0.9
    quantize: str | None = None
    qat_epochs: int = 1
    calibration_images: int = 512
    batch_size: int = 64
    seed: int = 0
    threads: int | None = None
    latency_repeats: int = 30

    def check(self) -> CompressPlan:
        """This plan, or a one-line `ConfigError` naming the first bad value and what is
        accepted."""
        from nasforge.compress.prune import check_ratio

        if self.prune is not None and self.prune_macs is not None:
            raise ConfigError("give --prune (a share of channels) or --prune-macs, not both")
        if self.prune is not None:
            check_ratio(self.prune)
        if self.prune_macs is not None:
            check_ratio(self.prune_macs, "share of MACs to keep")
            if self.method == "magnitude":
                raise ConfigError(
                    "--prune-macs needs structured pruning (l1 or slimming): magnitude pruning "
                    "leaves zeros, which dense kernels still multiply"
                )
        if self.method not in PRUNE_METHOD_NAMES:
            raise ConfigError(
                f"pruning method {self.method!r} is not accepted; use one of "
                f"{', '.join(PRUNE_METHOD_NAMES)}"
            )
        if self.quantize is not None and self.quantize not in QUANTIZE_MODE_NAMES:
            raise ConfigError(
                f"quantisation {self.quantize!r} is not accepted; use one of "
                f"{', '.join(QUANTIZE_MODE_NAMES)}"
            )
        if self.prune is None and self.prune_macs is None and self.quantize is None:
            raise ConfigError("nothing to do: give --prune, --prune-macs and/or --quantize")
        for name in ("sparsity_epochs", "finetune_epochs", "qat_epochs", "seed"):
            _count(getattr(self, name), name.replace("_", " "))
        if _count(self.calibration_images, "calibration images") < 1:
            raise ConfigError("calibration images must be >= 1")
        if _count(self.latency_repeats, "latency repeats") < 1:
            raise ConfigError("latency repeats must be >= 1")
        if not self.lr > 0 or not self.temperature > 0 or not 0 <= self.alpha <= 1:
            raise ConfigError(
                f"need lr > 0, temperature > 0 and 0 <= alpha <= 1, got {self.lr!r}, "
                f"{self.temperature!r}, {self.alpha!r}"
            )
        if not self.sparsity_strength >= 0:
            raise ConfigError(f"sparsity strength must be >= 0, got {self.sparsity_strength!r}")
        return self


@dataclass
class StepRecord:
    """One row of the table: the model after a step, measured."""

    step: str
    test_acc: float
    params: int
    macs: int
    size_bytes: int
    latency_ms: float
    latency_p90_ms: float
    runtime: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Compressed:
    """The compressed model (a torch module; for ``onnx-int8`` also the ONNX file) and the
    record of every step, the original first."""

    model: nn.Module
    steps: list[StepRecord]
    onnx_path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [asdict(s) for s in self.steps],
            "onnx": None if self.onnx_path is None else str(self.onnx_path),
        }


@dataclass(frozen=True)
class Data:
    """The images a compression needs: training (fine-tuning, calibration) and test (scoring)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def _latency(model: nn.Module, shape: tuple[int, ...], runtime: str, plan: CompressPlan) -> Any:
    from nasforge.latency.measure import measure

    return measure(model, shape, runtime, threads=1, warmup=5, repeats=plan.latency_repeats)


def record(
    step: str, model: nn.Module, data: Data, plan: CompressPlan, macs_of: nn.Module | None = None,
    **details: Any,
) -> StepRecord:  # fmt: skip
    """Measure a torch model (eager): accuracy, params, MACs (of ``macs_of``, the float
    structure, for a quantised model whose int8 kernels the counter cannot see), size, latency.
    """
    from nasforge.compress.quantize import model_size_bytes
    from nasforge.nn.profile import count_macs, count_params

    structure = macs_of if macs_of is not None else model
    latency = _latency(model, data.shape, "eager", plan)
    return StepRecord(
        step=step,
        test_acc=finetune.accuracy(model, data.test_x, data.test_y),
        params=count_params(structure),
        macs=count_macs(structure, data.shape),
        size_bytes=model_size_bytes(model),
        latency_ms=latency.median_ms,
        latency_p90_ms=latency.p90_ms,
        runtime="eager",
        details=details,
    )


def _prune(model: nn.Module, data: Data, plan: CompressPlan, say: Say) -> dict[str, Any]:
    from nasforge.compress import prune

    shape = data.shape
    if plan.method == "magnitude":
        report = prune.magnitude_prune(model, plan.prune, shape)  # type: ignore[arg-type]
        return report.to_json()
    criterion = "l1"
    if plan.method == "slimming":
        criterion = "bn"
        say(f"network slimming: {plan.sparsity_epochs} epoch(s) of L1 on batch-norm scales")
        finetune.fit(
            model,
            data.train_x,
            data.train_y,
            epochs=plan.sparsity_epochs,
            lr=plan.lr,
            batch_size=plan.batch_size,
            seed=plan.seed,
            threads=plan.threads,
            extra=prune.slimming_penalty(plan.sparsity_strength),
            progress=_epoch_lines(say, "sparsity training"),
        )
    if plan.prune_macs is not None:
        report = prune.prune_to_macs(model, plan.prune_macs, shape, criterion=criterion)
    else:
        report = prune.channel_prune(model, plan.prune, shape, criterion=criterion)  # type: ignore[arg-type]
    return report.to_json()


def _epoch_lines(say: Say, what: str) -> finetune.EpochProgress:
    def progress(epoch: int, epochs: int, loss: float, seconds: float) -> None:
        say(f"{what} epoch {epoch}/{epochs}: loss {loss:.3f} ({seconds:.0f} s)")

    return progress


def _finetune(
    model: nn.Module, teacher: nn.Module | None, data: Data, plan: CompressPlan, say: Say
) -> None:
    """Fine-tune after pruning (distilled from ``teacher`` when given); a magnitude-pruned
    model's zeros are held at zero meanwhile (`prune.hold_zeros`)."""
    from nasforge.compress import prune

    if plan.finetune_epochs == 0:
        return
    held = prune.hold_zeros(model) if plan.method == "magnitude" else []
    common: dict[str, Any] = {
        "epochs": plan.finetune_epochs,
        "lr": plan.lr,
        "batch_size": plan.batch_size,
        "seed": plan.seed,
        "threads": plan.threads,
    }
    try:
        if teacher is not None:
            from nasforge.compress.distill import distill

            distill(
                teacher,
                model,
                data.train_x,
                data.train_y,
                temperature=plan.temperature,
                alpha=plan.alpha,
                progress=_epoch_lines(say, "distillation"),
                **common,
            )
        else:
            finetune.fit(
                model,
                data.train_x,
                data.train_y,
                progress=_epoch_lines(say, "fine-tuning"),
                **common,
            )
    finally:
        for handle in held:
            handle.remove()


def calibration_images(data: Data, plan: CompressPlan) -> torch.Tensor:
    generator = torch.Generator().manual_seed(plan.seed)
    count = min(plan.calibration_images, len(data.train_x))
    return data.train_x[torch.randperm(len(data.train_x), generator=generator)[:count]]


def _quantize(
    model: nn.Module, data: Data, plan: CompressPlan, out_dir: Path | None, say: Say
) -> tuple[nn.Module, StepRecord, Path | None]:
    from nasforge.compress import quantize

    calibration = calibration_images(data, plan)
    if plan.quantize == "int8":
        say(f"post-training static int8 quantisation, {len(calibration)} calibration images")
        q = quantize.quantize_static(model, calibration)
        return q, record("int8 (static)", q, data, plan, macs_of=model), None
    if plan.quantize == "qat":
        say(f"quantisation-aware training, {plan.qat_epochs} epoch(s)")
        prepared = quantize.prepare_qat(model, data.train_x[:1])
        finetune.fit(
            prepared,
            data.train_x,
            data.train_y,
            epochs=plan.qat_epochs,
            lr=plan.lr / 10,
            batch_size=plan.batch_size,
            seed=plan.seed,
            threads=plan.threads,
            progress=_epoch_lines(say, "QAT"),
        )
        q = quantize.convert_qat(prepared)
        return q, record("int8 (QAT)", q, data, plan, macs_of=model), None
    say(f"int8 ONNX model for ONNX Runtime, {len(calibration)} calibration images")
    folder = out_dir or Path(tempfile.mkdtemp(prefix="nasforge-compress-"))
    path = quantize.export_onnx_int8(model, data.train_x[:1], calibration, folder / "int8.onnx")
    return model, record_onnx(path, model, data, plan), path


def record_onnx(path: Path, float_model: nn.Module, data: Data, plan: CompressPlan) -> StepRecord:
    """An int8 ONNX file, measured with ONNX Runtime (1 thread, batch 1)."""
    from nasforge.compress import quantize
    from nasforge.nn.profile import count_macs, count_params

    latency = quantize.onnx_latency(path, data.shape, repeats=plan.latency_repeats)
    logits = quantize.onnx_predict(path, data.test_x)
    acc = 100.0 * float((logits.argmax(1) == data.test_y).float().mean())
    return StepRecord(
        step="int8 (ONNX Runtime)",
        test_acc=acc,
        params=count_params(float_model),
        macs=count_macs(float_model, data.shape),
        size_bytes=quantize.model_size_bytes(path),
        latency_ms=latency.median_ms,
        latency_p90_ms=latency.p90_ms,
        runtime="onnxruntime",
    )


def compress(
    model: nn.Module,
    data: Data,
    plan: CompressPlan,
    *,
    out_dir: str | Path | None = None,
    say: Say = lambda line: None,
) -> Compressed:
    """Apply ``plan`` to a copy of ``model`` (trained, any ``nn.Module`` of image
    classification), measuring the original and every step. ``out_dir`` receives the int8
    ONNX file of ``quantize="onnx-int8"`` (else a temporary folder)."""
    plan = plan.check()
    for advice in few_steps_advice(plan, len(data.train_x)):
        warnings.warn(advice, FewStepsWarning, stacklevel=2)
    original = copy.deepcopy(model).cpu().eval()
    work = copy.deepcopy(original)
    say("measuring the original")
    steps = [record("original", original, data, plan)]
    if plan.quantize == "onnx-int8":
        steps.append(record_onnx_float(original, data, plan))
    pruned = plan.prune is not None or plan.prune_macs is not None
    if pruned:
        what = f"{plan.prune_macs:g} of the MACs" if plan.prune_macs else f"ratio {plan.prune:g}"
        say(f"pruning ({plan.method}, {what})")
        details = _prune(work, data, plan, say)
        steps.append(record(f"pruned ({plan.method})", work, data, plan, **details))
        _finetune(work, original if plan.distill else None, data, plan, say)
        label = "distilled" if plan.distill else "fine-tuned"
        if plan.finetune_epochs:
            steps.append(record(f"{label} ({plan.finetune_epochs} epochs)", work, data, plan))
    onnx_path = None
    if plan.quantize is not None:
        folder = Path(out_dir) if out_dir is not None else None
        work, step, onnx_path = _quantize(work, data, plan, folder, say)
        steps.append(step)
    return Compressed(work, steps, onnx_path)


def few_steps_advice(plan: CompressPlan, images: int) -> list[str]:
    """One line per training stage of ``plan`` with fewer SGD steps than
    `MIN_USEFUL_STEPS` (the search's own floor): a pruned network fine-tuned for a handful of
    steps keeps most of its accuracy loss, and the table would blame the pruning."""
    from nasforge.estimators.train import MIN_USEFUL_STEPS

    pruned = plan.prune is not None or plan.prune_macs is not None
    stages = []
    if pruned and plan.method == "slimming":
        stages.append(("sparsity training", "--sparsity-epochs", plan.sparsity_epochs))
    if pruned:
        stages.append(("distillation" if plan.distill else "fine-tuning", "--finetune-epochs",
                       plan.finetune_epochs))  # fmt: skip
    if plan.quantize == "qat":
        stages.append(("quantisation-aware training", "--qat-epochs", plan.qat_epochs))
    batches = math.ceil(images / plan.batch_size)
    lines = []
    for what, flag, epochs in stages:
        steps = epochs * batches
        if 0 < steps < MIN_USEFUL_STEPS:
            lines.append(
                f"{what} runs only {steps} SGD step(s) ({images} training images, batch size "
                f"{plan.batch_size}, {epochs} epoch(s)); at least {MIN_USEFUL_STEPS} are "
                f"advised: raise {flag} or --subset, or lower --batch-size"
            )
    return lines


def record_onnx_float(model: nn.Module, data: Data, plan: CompressPlan) -> StepRecord:
    """The float model as an ONNX file under ONNX Runtime (accuracy, file size, latency):
    what the int8 ONNX model is compared with."""
    from nasforge.compress import quantize
    from nasforge.nn.profile import count_macs, count_params

    with tempfile.TemporaryDirectory(prefix="nasforge-float-onnx-") as folder:
        path = Path(folder) / "float.onnx"
        quantize.float_onnx(model, data.test_x[:2], path)
        logits = quantize.onnx_predict(path, data.test_x)
        latency = quantize.onnx_latency(path, data.shape, repeats=plan.latency_repeats)
        size = quantize.model_size_bytes(path)
    return StepRecord(
        step="original (ONNX Runtime)",
        test_acc=100.0 * float((logits.argmax(1) == data.test_y).float().mean()),
        params=count_params(model),
        macs=count_macs(model, data.shape),
        size_bytes=size,
        latency_ms=latency.median_ms,
        latency_p90_ms=latency.p90_ms,
        runtime="onnxruntime",
    )


def format_steps(steps: list[StepRecord]) -> str:
    """The steps as a Markdown table, each change against the original."""
    first = steps[0]
    lines = [
        "| step | test acc | Δ acc | params | MACs | size | latency ms (p90) | runtime |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        lines.append(
            f"| {s.step} | {s.test_acc:.2f} | {s.test_acc - first.test_acc:+.2f} | "
            f"{s.params:,} | {s.macs / 1e6:.2f} M | {s.size_bytes / 1024:.0f} KiB | "
            f"{s.latency_ms:.3f} ({s.latency_p90_ms:.3f}) | {s.runtime} |"
        )
    return "\n".join(lines)
