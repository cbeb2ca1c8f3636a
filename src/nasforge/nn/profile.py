"""How big and how fast a network is: parameters, multiply-accumulates and CPU latency.

These are the numbers a practitioner weighs against accuracy when choosing a model to ship.
``count_macs`` counts **multiply-accumulates (MACs)** of convolutions and fully connected
layers, the operations that dominate a CNN's cost; batch norm, activations, pooling, additions
and biases are not counted. It is named for what it counts, because tools disagree on "FLOPs":
NAS-Bench-201, DARTS and most NAS papers report these MACs as "MFLOPs", fvcore counts one
fused multiply-add as one "flop" (the same number), while PyTorch's
``torch.utils.flop_counter`` and most hardware literature count 2 FLOPs per MAC (twice this
number), and some profilers add batch norm and activations on top. ``count_flops`` is PyTorch's own
counter, for those who want that convention.

`time_calls` is the timing loop every latency in nasforge uses (here for eager PyTorch,
`nasforge.latency.measure` for ONNX Runtime too), so all of them mean the same thing.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError

#: The layers whose multiply-accumulates `count_macs` counts.
COUNTED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (only those that train, by default, as NAS papers report)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def batch_shape(input_shape: Sequence[int], what: str) -> tuple[int, ...]:
    """``(C, H, W)`` means one image: a batch of one is added. ``(N, C, H, W)`` is kept.
    ``what`` (the caller's name) starts the error message."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (2, 3, 4) or any(s <= 0 for s in shape):
        raise ConfigError(
            f"{what}: input_shape {tuple(input_shape)!r} is not accepted; give one image's "
            "(C, H, W) (or (N, C, H, W) for a batch), all sizes > 0"
        )
    return shape if len(shape) == 4 else (1, *shape)


def device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a model without any)."""
    first = next(model.parameters(), None)
    return torch.device("cpu") if first is None else first.device


def call_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one call: each output value of a conv sums ``C_in/groups * kernel`` products;
    each output of a linear layer sums ``in_features`` products."""
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    conv: Any = module
    return output.numel() * (conv.in_channels // conv.groups) * math.prod(conv.kernel_size)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates (MACs) of one forward pass on an input of ``input_shape``.

    ``input_shape`` is one image's ``(C, H, W)`` (counted for a batch of one) or a whole
    batch's ``(N, C, H, W)``. Counted with forward hooks on `COUNTED_LAYERS` during one pass
    in eval mode, so a layer called twice counts twice and layers that are never reached (dead
    branches) count nothing. Convolutions done with ``torch.nn.functional`` directly, not
    through a module, are not seen.
    """
    total = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal total
        total += call_macs(module, output)

    counted = [m for m in model.modules() if _counted(m)]
    forward_zeros(model, batch_shape(input_shape, "count_macs"), dict.fromkeys(counted, hook))
    return int(total)


def forward_zeros(
    model: nn.Module, shape: Sequence[int], hooks: dict[nn.Module, Callable[..., None]]
) -> None:
    """One eval-mode, no-grad forward pass of zeros of ``shape`` with a forward hook on each
    module of ``hooks``: how MACs are counted. The hooks are removed and the model's train /
    eval mode restored afterwards, whatever happens."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(tuple(shape), device=device_of(model)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def _counted(module: nn.Module) -> bool:
    return isinstance(module, COUNTED_LAYERS)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass as PyTorch's ``torch.utils.flop_counter`` counts them.

    Its convention: 2 FLOPs per multiply-accumulate of convolutions and matrix products
    (``2 * count_macs`` on networks of `COUNTED_LAYERS`), nothing for batch norm, activations,
    pooling or additions; unlike `count_macs` it also sees ``torch.nn.functional`` calls.
    One pass in eval mode; ``input_shape`` as in `count_macs`.
    """
    from torch.utils.flop_counter import FlopCounterMode

    shape = batch_shape(input_shape, "count_flops")
    was_training = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.inference_mode(), counter:
            model(torch.zeros(shape, device=device_of(model)))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def check_timing(what: str, threads: int | None, warmup: int, repeats: int) -> None:
    """One-line `ConfigError` for a bad thread count, warm-up or repeat count."""
    for label, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{what}: {label} must be an int >= {low}, got {value!r}")
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
    ):
        raise ConfigError(f"{what}: threads must be an int >= 1 or None, got {threads!r}")


def time_calls(
    call: Callable[[], Any], warmup: int, repeats: int, cpu: list[float] | None = None
) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``call``, after ``warmup`` untimed calls
    (which fill caches, let allocators and runtimes settle and page in weights).

    With a ``cpu`` list, each call's CPU time on the calling thread is appended to it too: on
    a machine shared with other processes, wall time includes the time the thread waited for a
    core and CPU time does not (with one intra-op thread all the work is on this thread)."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        call()
        end, end_cpu = time.perf_counter(), time.thread_time()
        times.append((end - start) * 1000.0)
        if cpu is not None:
            cpu.append((end_cpu - start_cpu) * 1000.0)
    return times


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    threads: int | None = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> dict[str, float]:
    """Wall-clock milliseconds of one forward pass on the CPU in inference mode.

    ``input_shape`` is one image's ``(C, H, W)`` (batch 1, the latency a deployed classifier
    sees) or ``(N, C, H, W)``. ``threads`` intra-op threads are used (1 by default, so numbers
    do not depend on how busy the other cores are; ``None`` keeps torch's setting), restored
    afterwards. ``warmup`` passes are not timed; of ``repeats`` timed passes the median and
    the 90th percentile are returned as ``{"median_ms": ..., "p90_ms": ...}``. The model is
    measured on a copy on the CPU, so it is left where it was, in the mode it was.
    """
    shape = batch_shape(input_shape, "measure_latency")
    check_timing("measure_latency", threads, warmup, repeats)
    was_training = model.training
    net = cpu_model(model)
    x = torch.randn(shape)
    try:
        net.eval()
        with torch_threads(threads), torch.inference_mode():
            times = time_calls(lambda: net(x), warmup, repeats)
    finally:
        model.train(was_training)
    return {"median_ms": statistics.median(times), "p90_ms": percentile(times, 90.0)}


def cpu_model(model: nn.Module) -> nn.Module:
    """``model`` itself when it is on the CPU, else a CPU copy (left where it was): latency
    here is CPU latency."""
    if device_of(model).type == "cpu":
        return model
    import copy

    return copy.deepcopy(model).cpu()


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), without numpy."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


_percentile = percentile  # the name earlier code and tests import


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """``threads`` intra-op threads for a block (None: leave torch's setting), the caller's
    setting restored after: training, latency measurement and proxies all pin threads so
    their numbers do not depend on the rest of the machine."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
