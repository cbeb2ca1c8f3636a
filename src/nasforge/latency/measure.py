"""Cost metrics of a built network: parameters, MACs and FLOPs, peak activation memory, and
latency measured on this machine through PyTorch eager and ONNX Runtime.

A latency here is a record (`Latency`), never a bare number: the runtime and its version, the
warm-up and repeat counts, the median with its spread (10th and 90th percentiles), the batch
size, the thread count and the machine (`machine.describe_machine`) travel with it, so two
numbers can be compared only when they can. Both runtimes share `nn.profile.time_calls`, the
loop behind every nasforge latency:

* ``eager``: ``module(x)`` under ``torch.inference_mode()`` with ``torch.set_num_threads``
  (restored afterwards);
* ``onnxruntime``: the module exported as `latency.onnx.export_onnx` does (static shapes),
  ``session.run`` on a CPU session with ``intra_op_num_threads = threads``, one inter-op
  thread and sequential execution; the time includes ``session.run``'s own round trip (feeding
  a NumPy array, returning the output as one), as a user of the session pays it.

The default of one thread keeps numbers independent of what else runs on the other cores; it
does not make them independent of another process sharing *this* core, so a measurement
records the load average before and after it (``load``) and the median CPU time of the
measuring thread (``cpu_median_ms``; with one thread all the work runs on it): wall time well
above CPU time means the thread waited for a core.
"""

from __future__ import annotations

import os
import statistics
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from nasforge.errors import ConfigError, UnknownNameError
from nasforge.latency.machine import describe_machine
from nasforge.latency.onnx import export_onnx, onnxruntime_module, session
from nasforge.nn.profile import (
    batch_shape,
    check_timing,
    count_flops,
    count_macs,
    count_params,
    cpu_model,
    percentile,
    time_calls,
    torch_threads,
)

RUNTIMES: tuple[str, ...] = ("eager", "onnxruntime")


def check_runtime(runtime: object) -> str:
    """The runtime's name, or a one-line error naming the accepted ones (and, for
    ``onnxruntime``, how to install it when it is missing)."""
    if runtime not in RUNTIMES:
        raise UnknownNameError("runtime", str(runtime), RUNTIMES)
    if runtime == "onnxruntime":
        onnxruntime_module()
    return str(runtime)


def runtime_version(runtime: str) -> str:
    """``torch 2.13.0`` / ``onnxruntime 1.32.0``: the software a latency belongs to."""
    if runtime == "onnxruntime":
        return f"onnxruntime {onnxruntime_module().__version__}"
    return f"torch {torch.__version__}"


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none): how busy the
    machine was while it was measured."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Latency:
    """One latency measurement, with everything needed to compare it with another."""

    runtime: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    warmup: int
    repeats: int
    threads: int
    batch: int
    input_shape: tuple[int, ...]
    version: str
    exporter: str | None = None
    cpu_median_ms: float | None = None
    load: dict[str, list[float] | None] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=lambda: dict(describe_machine()))

    @property
    def spread_ms(self) -> float:
        """p90 - p10: how much a single run may differ from the median."""
        return self.p90_ms - self.p10_ms

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["input_shape"] = list(self.input_shape)
        record["spread_ms"] = self.spread_ms
        return record


def summarise(
    times: Sequence[float],
    *,
    runtime: str,
    warmup: int,
    threads: int,
    shape: Sequence[int],
    exporter: str | None = None,
    load: dict[str, list[float] | None] | None = None,
    cpu: Sequence[float] | None = None,
) -> Latency:
    """A `Latency` from the timed calls' milliseconds (and their CPU milliseconds)."""
    return Latency(
        runtime=runtime,
        median_ms=statistics.median(times),
        p10_ms=percentile(times, 10.0),
        p90_ms=percentile(times, 90.0),
        min_ms=min(times),
        mean_ms=statistics.fmean(times),
        warmup=warmup,
        repeats=len(times),
        threads=threads,
        batch=int(shape[0]),
        input_shape=tuple(int(s) for s in shape),
        version=runtime_version(runtime),
        exporter=exporter,
        cpu_median_ms=statistics.median(cpu) if cpu else None,
        load=dict(load or {}),
    )


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for a block, its mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def time_eager(
    module: nn.Module,
    x: torch.Tensor,
    threads: int,
    warmup: int,
    repeats: int,
    cpu: list[float] | None = None,
) -> list[float]:
    """Milliseconds of ``repeats`` eager forward passes of ``module`` (already in eval mode)."""
    with torch_threads(threads), torch.inference_mode():
        return time_calls(lambda: module(x), warmup, repeats, cpu)


def time_session(
    sess: Any, x: Any, warmup: int, repeats: int, cpu: list[float] | None = None
) -> list[float]:
    """Milliseconds of ``repeats`` ``sess.run`` calls on the NumPy array ``x``."""
    feed = {sess.get_inputs()[0].name: x}
    outputs = [sess.get_outputs()[0].name]
    return time_calls(lambda: sess.run(outputs, feed), warmup, repeats, cpu)


def time_interleaved(
    calls: Sequence[Callable[[], Any]],
    touches: Sequence[Callable[[], Any]],
    warmup: int,
    repeats: int,
    rng: np.random.Generator,
    cpu: list[list[float]] | None = None,
) -> list[list[float]]:
    """Milliseconds of ``repeats`` calls of each of ``calls``, taken in rounds: every round
    calls each once, in a fresh random order, ``touches[i]`` (untimed) just before ``calls[i]``;
    with ``cpu`` (one list per call) also each call's CPU time on this thread.

    Timing one op in a tight loop keeps its weights in the core's cache, which a network, whose
    other layers run in between, does not; in rounds over a few dozen ops, the caches hold what
    they would inside a network. The touch reads the op's input, which inside a network the
    previous layer has just written."""
    for _ in range(warmup):
        for call in calls:
            call()
    times: list[list[float]] = [[] for _ in calls]
    order = np.arange(len(calls))
    for _ in range(repeats):
        rng.shuffle(order)
        for i in order:
            touches[i]()
            start, start_cpu = time.perf_counter(), time.thread_time()
            calls[i]()
            end, end_cpu = time.perf_counter(), time.thread_time()
            times[i].append((end - start) * 1000.0)
            if cpu is not None:
                cpu[i].append((end_cpu - start_cpu) * 1000.0)
    return times


def measure(
    model: nn.Module,
    input_shape: Sequence[int],
    runtime: str = "eager",
    *,
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> Latency:
    """Latency of one forward pass of ``model`` on the CPU through ``runtime``.

    ``input_shape`` is one image's ``(C, H, W)`` (batch 1) or a batch's ``(N, C, H, W)``.
    ``warmup`` untimed passes, then ``repeats`` timed ones; for ONNX Runtime the export and
    session creation come first and are not timed. The model is used in eval mode on the CPU
    (a copy if it lives elsewhere) and left in the mode it was in.
    """
    runtime = check_runtime(runtime)
    shape = batch_shape(input_shape, "measure")
    if threads is None:
        raise ConfigError("measure: threads must be an int >= 1, got None")
    check_timing("measure", threads, warmup, repeats)
    net = cpu_model(model)
    x = torch.randn(shape)
    before = load_average()
    cpu: list[float] = []
    with eval_mode(net):
        if runtime == "eager":
            times, exporter = time_eager(net, x, threads, warmup, repeats, cpu), None
        else:
            proto, exporter = export_onnx(net, (x,), ["x"], ["y"])
            times = time_session(session(proto, threads), x.numpy(), warmup, repeats, cpu)
    load = {"before": before, "after": load_average()}
    return summarise(
        times,
        runtime=runtime,
        warmup=warmup,
        threads=threads,
        shape=shape,
        exporter=exporter,
        load=load,
        cpu=cpu,
    )


class _LiveTensors(TorchDispatchMode):
    """Bytes of tensor storages alive at once: each op's outputs are added when created and
    dropped when their last tensor is freed (``weakref.finalize``: PyTorch keeps a tensor's
    Python object as long as the tensor lives, so it fires when the memory is released)."""

    def __init__(self, exclude: set[int]):
        super().__init__()
        self.exclude = exclude
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.live = 0
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer in self.exclude or storage.nbytes() == 0:
            return
        if pointer not in self.refs:
            self.refs[pointer], self.sizes[pointer] = 0, storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self.refs[pointer] += 1
        weakref.finalize(tensor, self._drop, pointer)

    def _drop(self, pointer: int) -> None:
        self.refs[pointer] -= 1
        if not self.refs[pointer]:
            del self.refs[pointer]
            self.live -= self.sizes.pop(pointer)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for value in tree_leaves(out):
            if isinstance(value, torch.Tensor):
                self.track(value)
        return out


def peak_activation_bytes(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Peak bytes of activations alive at once during one eager forward pass in inference mode.

    Counted: the input and every tensor an operation returns, from its creation until it is
    freed (a view or an in-place result shares its storage and counts once). Not counted:
    parameters and buffers (weights, not activations), memory a kernel uses internally without
    returning it (e.g. im2col or oneDNN scratch buffers), and the allocator's own overhead. In
    inference nothing is kept for a backward pass, so a residual block holds its input and its
    branch at once and a plain chain little more than one layer's input and output: the number
    a device's RAM must hold for activations. ONNX Runtime plans its own buffers and may
    reuse or fuse them differently.
    """
    shape = batch_shape(input_shape, "peak_activation_bytes")
    net = cpu_model(model)
    weights = {t.untyped_storage().data_ptr() for t in (*net.parameters(), *net.buffers())}
    with eval_mode(net), torch.inference_mode():
        x = torch.zeros(shape)
        tracker = _LiveTensors(weights)
        with tracker:
            tracker.track(x)
            out = net(x)
        peak = tracker.peak
        del out, x
    return int(peak)


def cost_metrics(
    model: nn.Module,
    input_shape: Sequence[int],
    runtimes: Sequence[str] = RUNTIMES,
    *,
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> dict[str, Any]:
    """Every cost of a built network as one JSON-able dict: trainable ``params``, ``macs``
    (`nn.profile.count_macs`) and ``flops`` (PyTorch's counter, 2 per MAC), peak activation
    memory, and a `Latency` record per runtime (``latency``), with the machine described."""
    for runtime in runtimes:
        check_runtime(runtime)
    shape = batch_shape(input_shape, "cost_metrics")
    return {
        "input_shape": list(shape),
        "params": count_params(model),
        "macs": count_macs(model, shape),
        "flops": count_flops(model, shape),
        "peak_activation_bytes": peak_activation_bytes(model, shape),
        "latency": {
            runtime: measure(
                model, shape, runtime, threads=threads, warmup=warmup, repeats=repeats
            ).to_json()
            for runtime in runtimes
        },
        "machine": dict(describe_machine()),
    }
