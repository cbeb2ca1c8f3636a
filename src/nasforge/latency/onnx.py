"""Networks and single operations as ONNX models, and the ONNX Runtime sessions that time them.

The exporter is chosen as `nasforge.export_formats.save_onnx` chooses it: the current
``torch.export``-based exporter (``dynamo=True``, opset 18, with its graph optimiser, which folds
batch norm into the convolutions), and the legacy TorchScript-based one only when that fails,
with the reason kept. Unlike ``model.onnx`` of an export, shapes are static (a latency is
measured at one batch size and resolution, and a fixed shape is what a deployed model runs).

Exporting costs about 0.7 s a module even for one small layer, so `export_many` exports up to
a few dozen layers as one model with one input and one output each, then cuts each layer's
subgraph out (`onnx.utils.Extractor`): about 0.15 s a layer, and exactly the nodes and weights
that layer exports to on its own.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.export_formats import CURRENT_ONNX_OPSET, ONNX_CURRENT, ONNX_LEGACY, _reason

#: Session settings of every ONNX Runtime measurement (threads are set per measurement).
SESSION = {
    "provider": "CPUExecutionProvider",
    "execution_mode": "sequential",
    "inter_op_num_threads": 1,
    "graph_optimization_level": "all",
}


def onnxruntime_module() -> Any:
    """``onnxruntime``, or a one-line error saying how to get it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ConfigError(
            f"the onnxruntime runtime needs the onnxruntime package ({err}); install it with "
            "'pip install onnxruntime' or measure with the eager runtime"
        ) from None
    return onnxruntime


def export_onnx(
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
) -> tuple[Any, str]:
    """``module`` (in eval mode) as an ``onnx.ModelProto`` with static shapes, and which
    exporter wrote it (with the reason where it is the legacy one)."""
    import onnx

    args = tuple(inputs)
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                module,
                args,
                None,
                input_names=list(input_names),
                output_names=list(output_names),
                opset_version=CURRENT_ONNX_OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        return program.model_proto, ONNX_CURRENT
    except Exception as err:
        reason = f"the current ONNX exporter failed ({_reason(err)})"
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            buffer,
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=17,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue()), f"{ONNX_LEGACY}, because {reason}"


class _Parallel(nn.Module):
    """Several modules side by side: input i goes through module i to output i."""

    def __init__(self, modules: Sequence[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(part(x) for part, x in zip(self.parts, inputs, strict=True))


def export_many(
    modules: Sequence[nn.Module], inputs: Sequence[torch.Tensor]
) -> tuple[list[Any], str]:
    """One ONNX model per module (input ``x<i>``, output ``y<i>``), exported together and cut
    apart; the modules must be in eval mode. Also the exporter that wrote them."""
    from onnx.utils import Extractor

    ins = [f"x{i}" for i in range(len(modules))]
    outs = [f"y{i}" for i in range(len(modules))]
    whole, exporter = export_onnx(_Parallel(modules).eval(), inputs, ins, outs)
    extractor = Extractor(whole)
    models = []
    for x, y in zip(ins, outs, strict=True):
        models.append(extractor.extract_model([x], [y]))
    return models, exporter


def identity_model(shape: Sequence[int]) -> Any:
    """An ONNX model that returns its input: timing it gives what a ``session.run`` round trip
    costs with no work (feeding, output allocation and conversion)."""
    import onnx
    from onnx import TensorProto, helper

    dims = [int(s) for s in shape]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", CURRENT_ONNX_OPSET)])
    onnx.checker.check_model(model)
    return model


def session(model: Any, threads: int) -> Any:
    """An ONNX Runtime CPU session of ``model`` (a ModelProto) with ``threads`` intra-op
    threads, sequential execution and all graph optimisations (`SESSION`)."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = SESSION["inter_op_num_threads"]
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=[SESSION["provider"]])
