"""Quantisation of a trained network: int8 for PyTorch and for ONNX Runtime, and fake
quantisation at any bit-width per layer for the accuracy of a mixed-precision (HAQ) policy.

The modes (`QUANTIZE_MODES`):

* ``int8``: post-training static quantisation in PyTorch through FX graph mode
  (``torch.ao.quantization.quantize_fx``: ``prepare_fx``, calibration passes, ``convert_fx``)
  with the ``x86`` qconfig mapping: int8 weights per output channel, uint8 activations per
  tensor, batch norm folded into the convolution before it, ReLU fused. It is the CPU path that
  works in torch 2.13: ``torch.ao.quantization.quantize_pt2e`` (the PT2E flow) has moved to the
  separate ``torchao`` package, which nasforge does not depend on, and eager mode would need
  ``QuantStub``/``DeQuantStub`` and hand-written fusion in every network of every space. Torch
  2.13 still runs it but warns: a ``DeprecationWarning`` ("torch.ao.quantization is deprecated
  ... migrate to torchao pt2e") at each prepare and convert, and a ``UserWarning`` that quantised
  tensor creation (``torch.quantize_per_tensor`` ...) is deprecated; a torch that removes it
  will need torchao's ``prepare_pt2e``/``convert_pt2e`` here.
* ``qat``: quantisation-aware training: ``prepare_qat_fx`` puts fake quantisation in the
  graph (batch norm folded, its statistics still updating), `finetune.fit` trains that, and
  ``convert_fx`` gives the same int8 modules as ``int8``.
* ``onnx-int8``: the float network exported to ONNX as ``nasforge export`` writes its
  ``model.onnx`` (``torch.export``-based exporter, dynamic batch), ONNX Runtime's pre-processing
  (shape inference, graph optimisation), then ``onnxruntime.quantization.quantize_static``: QDQ
  format, int8 weights per output channel, uint8 activations with min/max ranges from
  calibration images. Any network that exports quantises; operators ONNX Runtime cannot
  quantise stay in float between a DequantizeLinear and a QuantizeLinear.

FX needs a forward that ``torch.fx`` can trace symbolically: Python control flow on a tensor's
shape or values cannot be traced, so a network like the chain space's (its skip connections
compare shapes) is int8-quantised only through ``onnx-int8`` (``torch.export`` records concrete
shapes), and `check_quantizable` says so. Before FX sees a network, nasforge's own
``AvgPool3x3``, ``HSwish`` and ``HSigmoid`` are swapped for the ``nn.AvgPool2d``
(``count_include_pad=False``), ``nn.Hardswish`` and ``nn.Hardsigmoid`` that compute the same
numbers and have int8 kernels (``AvgPool3x3`` builds its kernel from the input, which FX cannot
quantise), and functional convolutions (``F.conv2d`` with a weight made in ``forward``) stay in
float.

`fake_quantize` simulates a per-layer policy of weight and activation bit-widths (2 to 8) in
float, the accuracy a HAQ search rewards; `model_size_bytes` and `onnx_latency` give the
size and latency that go with accuracy in a before/after table (the eager latency of an int8
model is `nasforge.latency.measure.measure` with the ``eager`` runtime).
"""

from __future__ import annotations

import copy
import io
import os
import sys
import tempfile
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from nasforge.errors import ConfigError, UnknownNameError
from nasforge.export_formats import _reason, export_program, save_onnx
from nasforge.latency.measure import Latency, load_average, summarise, time_session
from nasforge.latency.onnx import CURRENT_ONNX_OPSET, onnxruntime_module, session
from nasforge.nn.blocks import HSigmoid, HSwish
from nasforge.nn.ops import AvgPool3x3
from nasforge.nn.profile import batch_shape, check_timing

QUANTIZE_MODES: tuple[str, ...] = ("int8", "qat", "onnx-int8")
#: The qconfig mappings FX offers for CPUs; the int8 model runs on the engine of the same name
#: (``torch.backends.quantized.engine``, ``x86`` by default on x86 CPUs).
BACKENDS: tuple[str, ...] = ("x86", "fbgemm", "qnnpack", "onednn")
#: Layers FX int8 quantisation converts to int8 kernels (each is a static int8 pattern of
#: torch's native backend config) or passes quantised tensors through (containers, Flatten,
#: Identity, Dropout). A module of the user's own (a subclass of a container included) is
#: accepted when it holds no parameter itself: its forward is traced into what it calls.
ACCEPTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.Dropout,
    nn.Identity,
    nn.Flatten,
    nn.Sequential,
    nn.ModuleList,
    nn.ModuleDict,
)
#: The layers a bit-width policy decides (`quantizable_layers`, `fake_quantize`).
QUANTIZABLE: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
MIN_BITS, MAX_BITS = 2, 8


# --- checks ------------------------------------------------------------------------------------


def check_mode(mode: object) -> str:
    """``mode`` when it is one of `QUANTIZE_MODES`, else a one-line error naming them."""
    if mode not in QUANTIZE_MODES:
        raise UnknownNameError("quantisation mode", str(mode), QUANTIZE_MODES)
    return str(mode)


def _handled(module: nn.Module) -> bool:
    """An accepted torch layer (its exact type: FX traces into a subclass's forward, where a
    functional convolution stays float), or a parameter-free module of the user's own."""
    if type(module) in ACCEPTED_LAYERS:
        return True
    if type(module).__module__.split(".")[0] == "torch":
        return False  # a torch layer FX leaves in float (LSTM, MultiheadAttention, GELU ...)
    return next(module.parameters(recurse=False), None) is None


def check_quantizable(model: nn.Module, mode: str = "int8") -> None:
    """Nothing when ``model`` can be quantised in ``mode``, else a one-line `ConfigError`
    naming the first layer that cannot (its name and type) and what is accepted, before any
    work is done or any file written. For ``int8``/``qat`` the forward is also traced as FX
    will trace it, so a network FX cannot trace is named here rather than deep inside torch."""
    mode = check_mode(mode)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"quantisation needs a torch.nn.Module, got {type(model).__name__}")
    for name, module in model.named_modules():
        if not _handled(module):
            accepted = ", ".join(t.__name__ for t in ACCEPTED_LAYERS)
            raise ConfigError(
                f"cannot quantise layer {name or '(the model)'!r} of type "
                f"{type(module).__name__}; accepted: {accepted}, and modules of your own that "
                "hold no parameter themselves"
            )
    if mode in ("int8", "qat"):
        _check_traceable(model)


def _check_traceable(model: nn.Module) -> None:
    from torch.ao.quantization.fx.tracer import QuantizationTracer

    try:
        QuantizationTracer([], []).trace(model)
    except Exception as err:
        raise ConfigError(
            f"{type(model).__name__} cannot be int8-quantised in PyTorch: torch.fx cannot trace "
            f"its forward ({_reason(err)}{_where(err)}); use mode 'onnx-int8', whose exporter "
            "records concrete shapes"
        ) from err


def _where(err: BaseException) -> str:
    """`` at file:line`` of the innermost frame outside torch (the user's forward)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/torch/" not in f.filename]
    return f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _check_backend(backend: object) -> str:
    available = [b for b in BACKENDS if b in torch.backends.quantized.supported_engines]
    if backend not in available:
        raise UnknownNameError("quantisation backend", str(backend), available)
    return str(backend)


def _check_images(images: object, what: str) -> torch.Tensor:
    """A float N×C×H×W batch (one C×H×W image becomes a batch of one) on the CPU."""
    if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4) or images.numel() == 0:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"{what} must be a non-empty tensor N×C×H×W (or C×H×W), got {got}")
    images = images.detach().to("cpu", torch.float32)
    return images.unsqueeze(0) if images.ndim == 3 else images


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"calibration batch size must be an int >= 1, got {batch_size!r}")
    return batch_size


def _batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]


# --- PyTorch int8 (FX graph mode) --------------------------------------------------------------


def _equivalent(module: nn.Module) -> nn.Module | None:
    """The torch layer with int8 kernels that computes what nasforge's ``module`` computes."""
    if isinstance(module, AvgPool3x3):
        return nn.AvgPool2d(3, module.stride, padding=1, count_include_pad=False)
    if isinstance(module, HSwish):
        return nn.Hardswish()
    if isinstance(module, HSigmoid):
        return nn.Hardsigmoid()
    return None


def _swap_equivalents(module: nn.Module) -> None:
    for name, child in module.named_children():
        replacement = _equivalent(child)
        if replacement is None:
            _swap_equivalents(child)
        else:
            setattr(module, name, replacement)


def _quantization_copy(model: nn.Module) -> nn.Module:
    """A deep copy, with nasforge's layers swapped for int8-friendly equivalents: the caller's
    model is never changed."""
    net = copy.deepcopy(model)
    _swap_equivalents(net)
    return net


def _qconfig_mapping(backend: str, qat: bool) -> Any:
    import torch.ao.quantization as tq

    mapping = (
        tq.get_default_qat_qconfig_mapping(backend)
        if qat
        else tq.get_default_qconfig_mapping(backend)
    )
    for function in (F.conv1d, F.conv2d, F.conv3d, F.linear):
        mapping.set_object_type(function, None)  # a weight built in forward cannot be observed
    return mapping


def _fx_step(what: str, model: nn.Module, call: Any) -> nn.Module:
    """``call()``, with a failure inside torch's quantiser turned into a one-line error."""
    try:
        return call()
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"int8 {what} of {type(model).__name__} failed in torch.ao.quantization "
            f"({_reason(err)}); mode 'onnx-int8' may quantise this network"
        ) from err


def quantize_static(
    model: nn.Module, calibration: torch.Tensor, backend: str = "x86", batch_size: int = 100
) -> nn.Module:
    """Post-training static int8 quantisation (FX graph mode, see the module docstring): a
    copy of ``model`` is prepared, run in eval mode on ``calibration`` images (a few hundred
    training images: activation ranges are their min/max) and converted. Returns the int8
    model (CPU; int8 kernels are CPU kernels); ``model`` is not modified."""
    check_quantizable(model, "int8")
    backend = _check_backend(backend)
    images = _check_images(calibration, "calibration")
    batch_size = _check_batch_size(batch_size)
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    net = _quantization_copy(model).cpu().eval()
    mapping = _qconfig_mapping(backend, qat=False)
    prepared = _fx_step("preparation", model, lambda: prepare_fx(net, mapping, (images[:1],)))
    with torch.no_grad():
        for batch in _batches(images, batch_size):
            prepared(batch)
    return _fx_step("conversion", model, lambda: convert_fx(prepared))


def prepare_qat(model: nn.Module, example: torch.Tensor, backend: str = "x86") -> nn.Module:
    """A copy of ``model`` (on its device, in training mode) with fake quantisation of weights
    and activations, ready for `finetune.fit`; `convert_qat` makes it int8 afterwards.
    ``example`` is one image or a batch of the input shape. ``model`` is not modified."""
    check_quantizable(model, "qat")
    backend = _check_backend(backend)
    example = _check_images(example, "example")
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    device = next(model.parameters(), torch.empty(0)).device
    net = _quantization_copy(model).train()
    mapping = _qconfig_mapping(backend, qat=True)
    return _fx_step(
        "QAT preparation", model, lambda: prepare_qat_fx(net, mapping, (example.to(device),))
    )


def convert_qat(prepared: nn.Module) -> nn.Module:
    """The int8 model (CPU, eval mode) of a network from `prepare_qat` after training; the
    prepared network itself is left as it was (it can train further)."""
    from torch.ao.quantization import FakeQuantizeBase
    from torch.ao.quantization.quantize_fx import convert_fx

    if not any(isinstance(m, FakeQuantizeBase) for m in prepared.modules()):
        raise ConfigError(
            f"convert_qat needs a network returned by prepare_qat, got {type(prepared).__name__} "
            "without fake quantisation"
        )
    net = copy.deepcopy(prepared).cpu().eval()
    return _fx_step("QAT conversion", prepared, lambda: convert_fx(net))


# --- ONNX Runtime int8 -------------------------------------------------------------------------


class _Calibration:
    """ONNX Runtime's ``CalibrationDataReader`` protocol: ``get_next`` returns one input feed
    per call, then None."""

    def __init__(self, images: torch.Tensor, batch_size: int, input_name: str):
        self.feeds = iter([{input_name: b.numpy()} for b in _batches(images, batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def _target(path: str | os.PathLike[str]) -> Path:
    """The output path, its folder created; an existing folder or a parent that is a file is
    a one-line error."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"ONNX output {target} is a folder; give a file path such as model.onnx")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create folder {target.parent}: {err.strerror or err}") from None
    return target


def float_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """``model`` as float ONNX, by the exporter ``nasforge export`` uses for ``model.onnx``."""
    net = copy.deepcopy(model).cpu().eval()
    batch = example if len(example) > 1 else example.repeat(2, 1, 1, 1)  # batch 1 specialises
    program, failure = export_program(net, batch)
    try:
        written = save_onnx(net, program, failure, batch, path, CURRENT_ONNX_OPSET)
    except Exception as err:
        raise ConfigError(f"cannot export {type(model).__name__} to ONNX ({_reason(err)})") from err
    if written.fallback:  # said as `nasforge export` says it
        print(
            f"nasforge: the float ONNX model to quantise was written by {written.exporter}, "
            f"because {written.fallback}",
            file=sys.stderr,
        )


def _quantize_onnx(source: Path, out: Path, images: torch.Tensor, batch_size: int) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = source.with_name("prepared.onnx")
    try:  # recommended by ONNX Runtime; optional, so a model it cannot process goes on without
        quant_pre_process(str(source), str(prepared))
    except Exception:
        prepared = source
    ort_quantize_static(
        str(prepared),
        str(out),
        _Calibration(images, batch_size, "images"),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def export_onnx_int8(
    model: nn.Module,
    example: torch.Tensor,
    calibration: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 100,
) -> Path:
    """Write ``model`` as an int8 ONNX model (QDQ) to ``path`` and return the path.

    ``example`` (one image or a batch) is what the float model is exported with (the batch axis
    stays dynamic); ``calibration`` images set the activation ranges. The file is written under
    a temporary name in the same folder, checked to load and run in ONNX Runtime, and only then
    renamed to ``path``, so a failure at any step leaves an existing file there untouched."""
    check_quantizable(model, "onnx-int8")
    onnxruntime_module()
    example = _check_images(example, "example")
    images = _check_images(calibration, "calibration")
    batch_size = _check_batch_size(batch_size)
    if images.shape[1:] != example.shape[1:]:
        raise ConfigError(
            f"calibration images are {tuple(images.shape[1:])} but the example is "
            f"{tuple(example.shape[1:])}; give both the network's input shape"
        )
    target = _target(path)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        partial.open("xb").close()  # writable? (created as any new file, with the umask)
    except OSError as err:
        raise ConfigError(f"cannot write {target}: {err.strerror or err}") from None
    try:
        with tempfile.TemporaryDirectory() as work:
            source = Path(work, "float.onnx")
            float_onnx(model, example, source)
            try:
                _quantize_onnx(source, partial, images, batch_size)
                onnx_predict(partial, example)
            except Exception as err:
                raise ConfigError(
                    f"ONNX Runtime int8 quantisation of {type(model).__name__} failed "
                    f"({_reason(err)})"
                ) from err
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def onnx_predict(
    path: str | os.PathLike[str], images: torch.Tensor, batch_size: int = 500, threads: int = 1
) -> torch.Tensor:
    """Logits of the ONNX model at ``path`` (one input, one output) for ``images``."""
    import onnx

    images = _check_images(images, "images")
    sess = session(onnx.load(str(path)), threads)
    name = sess.get_inputs()[0].name
    out = [sess.run(None, {name: b.numpy()})[0] for b in _batches(images, batch_size)]
    return torch.from_numpy(np.concatenate(out))


def onnx_accuracy(
    path: str | os.PathLike[str], images: torch.Tensor, labels: torch.Tensor
) -> float:
    """Top-1 accuracy in percent of the ONNX model at ``path``, like `finetune.accuracy`."""
    logits = onnx_predict(path, images)
    return 100.0 * float((logits.argmax(1) == labels.cpu()).float().mean())


def onnx_latency(
    path: str | os.PathLike[str],
    input_shape: Sequence[int],
    *,
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> Latency:
    """Latency of an ONNX file as `nasforge.latency.measure.measure` times the ``onnxruntime``
    runtime (same session settings and timing loop), for a model that is already ONNX, such as
    the int8 file of `export_onnx_int8`, which torch cannot export again."""
    import onnx

    shape = batch_shape(input_shape, "onnx_latency")
    check_timing("onnx_latency", threads, warmup, repeats)
    sess = session(onnx.load(str(path)), threads)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    before = load_average()
    cpu: list[float] = []
    times = time_session(sess, x, warmup, repeats, cpu)
    return summarise(
        times,
        runtime="onnxruntime",
        warmup=warmup,
        threads=threads,
        shape=shape,
        exporter=f"onnx file {Path(path).name}",
        load={"before": before, "after": load_average()},
        cpu=cpu,
    )


def model_size_bytes(model_or_path: nn.Module | str | os.PathLike[str]) -> int:
    """Bytes a model takes as a file: ``torch.save`` of its ``state_dict`` for a module (an int8
    model's packed weights included), the file's size for a path."""
    if isinstance(model_or_path, nn.Module):
        buffer = io.BytesIO()
        torch.save(model_or_path.state_dict(), buffer)
        return buffer.getbuffer().nbytes
    path = Path(model_or_path)
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist; give a module or a file path")
    return path.stat().st_size


# --- fake quantisation at any bit-width (HAQ) ---------------------------------------------------


def quantizable_layers(model: nn.Module) -> list[str]:
    """Names of the convolutions and linear layers, in ``named_modules`` order: the layers a
    mixed-precision policy gives bit-widths to (HAQ's decisions)."""
    return [name for name, module in model.named_modules() if isinstance(module, QUANTIZABLE)]


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight`` rounded to ``bits``-bit symmetric levels per output channel (its first axis):
    ``s * round(w / s)`` with ``s = max|w| / (2^(bits-1) - 1)``, so ``2^bits - 1`` levels, zero
    among them (2 bits: ternary), and no weight clipped."""
    levels = 2 ** (bits - 1) - 1
    shape = (-1,) + (1,) * (weight.ndim - 1)
    scale = weight.detach().abs().flatten(1).amax(1).clamp_min(1e-12).div(levels).view(shape)
    return torch.round(weight / scale).clamp(-levels, levels) * scale


def quantize_activation(x: torch.Tensor, low: float, high: float, bits: int) -> torch.Tensor:
    """``x`` on ``2^bits`` affine levels spanning ``[low, high]`` widened to hold 0 (so zero
    padding stays exact), values outside clipped. The gradient is the straight-through one
    inside the range and zero where clipped, as in quantisation-aware training."""
    low, high = min(low, 0.0), max(high, 0.0)
    top = 2**bits - 1
    scale = max((high - low) / top, 1e-12)
    zero = round(-low / scale)
    quantised = (torch.round(x / scale) + zero).clamp(0, top).sub(zero).mul(scale)
    inside = (x >= -zero * scale) & (x <= (top - zero) * scale)
    passed = torch.where(inside, x, x.detach())
    return passed + (quantised - passed).detach()


class WeightFakeQuant(nn.Module):
    """A parametrization of a layer's weight: its `quantize_weight` value in the forward pass,
    the float weight underneath for training (straight-through gradient)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (quantize_weight(weight, self.bits) - weight).detach()

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class ActivationFakeQuant(nn.Module):
    """Fake quantisation of a layer's input at ``bits`` over a range it observes: exact min/max
    while ``observing`` (calibration), a moving average of batch min/max in training (as
    torch's ``MovingAverageMinMaxObserver``), frozen in eval mode once set. A layer evaluated
    before any range was observed takes its first batch's."""

    def __init__(self, bits: int, averaging: float = 0.01):
        super().__init__()
        self.bits, self.averaging, self.observing = bits, averaging, False
        self.register_buffer("low", torch.tensor(0.0))
        self.register_buffer("high", torch.tensor(0.0))
        self.register_buffer("observed", torch.tensor(False))

    def _observe(self, x: torch.Tensor, average: bool) -> None:
        low, high = x.detach().min().float(), x.detach().max().float()
        if not bool(self.observed):
            self.low.copy_(low)
            self.high.copy_(high)
            self.observed.fill_(True)
        elif average:
            self.low.lerp_(low, self.averaging)
            self.high.lerp_(high, self.averaging)
        else:
            self.low.copy_(torch.minimum(self.low, low))
            self.high.copy_(torch.maximum(self.high, high))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self._observe(x, average=False)
            return x
        if self.training or not bool(self.observed):
            self._observe(x, average=True)
        return quantize_activation(x, float(self.low), float(self.high), self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def _quantize_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (module.input_quantizer(args[0]), *args[1:])


def _bits_pair(value: object, where: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ConfigError(
            f"bits{where} must be (weight_bits, activation_bits), one int for both, or a dict "
            f"{{layer: (w, a)}}, got {value!r}"
        )
    for label, bits in zip(("weight", "activation"), pair, strict=True):
        if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
            raise ConfigError(
                f"{label} bits{where} must be an int from {MIN_BITS} to {MAX_BITS}, got {bits!r}"
            )
    return int(pair[0]), int(pair[1])


def bit_policy(
    model: nn.Module, bits: int | tuple[int, int] | Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """``{layer: (weight_bits, activation_bits)}`` for ``bits``: one pair (or one int) for
    every `quantizable_layers` layer, or a dict naming some of them (the others stay float)."""
    layers = quantizable_layers(model)
    if not isinstance(bits, Mapping):
        pair = _bits_pair(bits, "")
        return dict.fromkeys(layers, pair)
    known = set(layers)
    for name in bits:
        if name not in known:
            shown = ", ".join(layers[:8]) + (
                f", ... ({len(layers)} in all)" if len(layers) > 8 else ""
            )
            raise ConfigError(
                f"bits names layer {name!r}, which is not a convolution or linear layer of "
                f"{type(model).__name__}; its layers: {shown or 'none'}"
            )
    return {name: _bits_pair(bits[name], f" of {name!r}") for name in layers if name in bits}


def fake_quantize(
    model: nn.Module,
    bits: int | tuple[int, int] | Mapping[str, tuple[int, int]],
    calibration: torch.Tensor | None = None,
    *,
    batch_size: int = 100,
) -> nn.Module:
    """A copy of ``model`` that computes in float what a mixed-precision integer network would:
    each layer of the policy (`bit_policy`) quantises its weight to ``w`` bits (symmetric, per
    output channel, `quantize_weight`) and its input to ``a`` bits (affine, per tensor,
    `ActivationFakeQuant`). ``calibration`` images set the input ranges (min/max over them);
    without them ranges come from training batches or the first batch evaluated. The copy
    trains too (straight-through gradients), for a short fine-tuning with `finetune.fit`.

    This is the quantiser of HAQ (Wang, Liu, Lin, Lin and Han, "HAQ: Hardware-Aware Automated
    Quantization with Mixed Precision", CVPR 2019): linear quantisation with a bit-width per
    layer for weights and activations. Departures: HAQ clips weights to ``[-c, c]`` with ``c``
    chosen to minimise the KL divergence to the float weights, per layer; here ``c`` is the
    largest weight of each output channel (per-channel scales, as int8 backends use, make
    clipping less needed), and activations use min/max ranges that may hold negative values
    (the network's input, a batch norm output), where HAQ assumes non-negative ones after ReLU.
    """
    policy = bit_policy(model, bits)
    images = None if calibration is None else _check_images(calibration, "calibration")
    batch_size = _check_batch_size(batch_size)
    net = copy.deepcopy(model)
    layers = dict(net.named_modules())
    for name, (weight_bits, input_bits) in policy.items():
        layer = layers[name]
        parametrize.register_parametrization(layer, "weight", WeightFakeQuant(weight_bits))
        layer.input_quantizer = ActivationFakeQuant(input_bits).to(layer.weight.device)
        layer.register_forward_pre_hook(_quantize_input)
    if images is not None:
        _calibrate(net, images, batch_size)
    return net


def _calibrate(net: nn.Module, images: torch.Tensor, batch_size: int) -> None:
    """Exact min/max input ranges over ``images`` (weights already quantised, inputs not yet,
    so each range is that of the float activations of the quantised-weight network)."""
    quantizers = [m for m in net.modules() if isinstance(m, ActivationFakeQuant)]
    device = next(net.parameters(), torch.empty(0)).device
    was_training = net.training
    net.eval()
    for quantizer in quantizers:
        quantizer.observing = True
    try:
        with torch.no_grad():
            for batch in _batches(images, batch_size):
                net(batch.to(device))
    finally:
        for quantizer in quantizers:
            quantizer.observing = False
        net.train(was_training)
