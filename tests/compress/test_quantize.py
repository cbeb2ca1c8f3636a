"""Quantisation (compress.quantize): FX int8 and QAT in PyTorch, int8 ONNX for ONNX Runtime,
fake quantisation at any bit-width, and the one-line errors for what cannot be quantised.

The trained network is a small CNN fitted for a few seconds on 1,000 Fashion-MNIST training
images; agreement and accuracy are measured on 500 test images, against the float network's
own predictions."""

from __future__ import annotations

import copy
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from conftest import require_data
from nasforge.compress import quantize as Q
from nasforge.compress.finetune import accuracy, fit, predict
from nasforge.data.datasets import load_dataset
from nasforge.errors import NasforgeError
from nasforge.nn.blocks import HSigmoid, HSwish
from nasforge.nn.ops import AvgPool3x3

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    # torch 2.13 deprecates torch.ao.quantization (the module docstring says why it is used)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*reduce_range will be deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions:UserWarning"),
]


def small_cnn() -> nn.Sequential:
    """About 106k weights, most in the first linear layer, so weights dominate the file size."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 49, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    folder = require_data("fashion-mnist/train-images-idx3-ubyte.gz").parent
    d = load_dataset("fashion-mnist", data_dir=folder.parent)
    return {
        "x": d.train_x[:1000],
        "y": d.train_y[:1000],
        "test_x": d.test_x[:500],
        "test_y": d.test_y[:500],
    }


@pytest.fixture(scope="module")
def trained(data: dict[str, torch.Tensor]) -> nn.Module:
    torch.manual_seed(0)
    net = small_cnn()
    fit(net, data["x"], data["y"], epochs=6, lr=0.05)
    return net.eval()


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean())


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    now = model.state_dict()
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in before)


def one_line_error(call, match: str) -> str:
    with pytest.raises(NasforgeError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


# --- PyTorch int8 -------------------------------------------------------------------------------


def test_int8_static_holds_int8_weights_a_quarter_the_size_and_agrees(trained, data) -> None:
    before = state(trained)
    q8 = Q.quantize_static(trained, data["x"][:300])

    assert same_state(trained, before) and isinstance(trained[0], nn.Conv2d)
    layers = [m for m in q8.modules() if isinstance(m, (torch.ao.nn.quantized.Conv2d,))]
    layers += [m for m in q8.modules() if isinstance(m, torch.ao.nn.quantized.Linear)]
    assert len(layers) == 4  # two convs (batch norm and ReLU folded in), two linear layers
    assert all(m.weight().dtype == torch.qint8 for m in layers)
    assert not any(type(m) in (nn.Conv2d, nn.Linear, nn.BatchNorm2d) for m in q8.modules())

    # Expected bytes, from the float layers: int8 weights (1 byte), float32 biases (batch norm
    # folded into the conv biases), and per output channel a float64 scale and an int64 zero
    # point; the float file holds 4 bytes per parameter and batch-norm statistic. torch.save
    # adds a few hundred bytes per tensor to each, under 2 % of the float size here.
    weights = sum(m.weight.numel() for m in trained.modules() if isinstance(m, Q.QUANTIZABLE))
    channels = sum(m.weight.shape[0] for m in trained.modules() if isinstance(m, Q.QUANTIZABLE))
    floats = sum(v.numel() for v in trained.state_dict().values() if v.is_floating_point())
    expected = (weights + 4 * channels + 16 * channels) / (4 * floats)
    ratio = Q.model_size_bytes(q8) / Q.model_size_bytes(trained)
    assert 0.24 < expected < 0.27 and abs(ratio - expected) < 0.03

    assert agreement(predict(q8, data["test_x"]), predict(trained, data["test_x"])) >= 0.95


def test_qat_prepare_train_convert_is_int8_and_as_accurate(trained, data) -> None:
    before = state(trained)
    prepared = Q.prepare_qat(trained, data["x"][:1])
    assert any(isinstance(m, torch.ao.quantization.FakeQuantizeBase) for m in prepared.modules())
    fit(prepared, data["x"], data["y"], epochs=1, lr=0.005)
    q8 = Q.convert_qat(prepared)

    assert same_state(trained, before)
    weights = [m.weight() for m in q8.modules() if isinstance(m, torch.ao.nn.quantized.Linear)]
    assert len(weights) == 2 and all(w.dtype == torch.qint8 for w in weights)
    float_acc = accuracy(trained, data["test_x"], data["test_y"])
    assert accuracy(q8, data["test_x"], data["test_y"]) >= float_acc - 3.0
    # the prepared network is not consumed by the conversion: it still trains
    assert any(isinstance(m, torch.ao.quantization.FakeQuantizeBase) for m in prepared.modules())


def test_nasforge_layers_are_swapped_for_int8_equivalents(data) -> None:
    from nasforge.spaces import NB201Space

    space = NB201Space()
    arch = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    )
    torch.manual_seed(0)
    net = space.build(arch, C=8, N=1, in_channels=1).eval()
    q8 = Q.quantize_static(net, data["x"][:200])
    assert any(isinstance(m, AvgPool3x3) for m in net.modules())  # the original keeps its own
    assert not any(isinstance(m, AvgPool3x3) for m in q8.modules())
    want, got = predict(net, data["test_x"][:200]), predict(q8, data["test_x"][:200])
    assert float((got - want).norm() / want.norm()) < 0.05

    x = torch.randn(2, 3, 9, 9)
    for ours in (AvgPool3x3(1), AvgPool3x3(2), HSwish(), HSigmoid()):
        torch.testing.assert_close(Q._equivalent(ours)(x), ours(x), rtol=0, atol=1e-6)


# --- what cannot be quantised -------------------------------------------------------------------


class WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.rnn = nn.LSTM(26, 8, batch_first=True)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.conv(x).mean(1))
        return self.head(out[:, -1])


class Scale(nn.Module):
    """A layer of the user's own with a parameter of its own: FX would leave it in float."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


class OwnConv(nn.Conv2d):
    """A subclass of an accepted layer: FX traces into its forward and leaves it in float."""


class ShapeBranch(nn.Module):
    """Python control flow on a shape, as in the chain space: FX cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if y.shape[-1] > 14:
            y = nn.functional.max_pool2d(y, 2)
        return self.head(y.mean((2, 3)))


@pytest.mark.parametrize(
    ("model", "named"),
    [
        (WithLSTM(), "'rnn' of type LSTM"),
        (nn.Sequential(nn.Linear(28, 28), nn.MultiheadAttention(28, 2)), "'1' of type Multihead"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), Scale(), nn.LSTM(2, 2)), "'1' of type Scale"),
        (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.GELU()), "'2' of type GELU"),
        (nn.Sequential(nn.Sequential(nn.ReLU(), OwnConv(1, 2, 3))), "'0.1' of type OwnConv"),
    ],
)
def test_a_layer_the_quantiser_cannot_handle_is_named(model, named, data) -> None:
    before = state(model)
    for mode in Q.QUANTIZE_MODES:
        message = one_line_error(lambda m=mode: Q.check_quantizable(model, m), named)
        assert "accepted: Conv1d, Conv2d" in message
    one_line_error(lambda: Q.quantize_static(model, data["x"][:10]), named)
    one_line_error(lambda: Q.prepare_qat(model, data["x"][:1]), named)
    assert same_state(model, before)


def test_accepted_layers_are_what_torch_quantises_to_int8() -> None:
    """Each accepted torch layer is a static int8 pattern of torch's own backend config, or a
    container or shape op that passes quantised tensors through."""
    import torch.ao.quantization.quantize_fx  # the backend config needs it loaded first
    from torch.ao.quantization.backend_config import get_native_backend_config

    int8 = {
        config.pattern
        for config in get_native_backend_config().configs
        if any(d.input_dtype == torch.quint8 and not d.is_dynamic for d in config.dtype_configs)
    }
    passing = {nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Flatten}
    assert set(Q.ACCEPTED_LAYERS) - passing <= int8
    assert nn.LSTM not in int8 and nn.MultiheadAttention not in int8

    own = nn.Sequential(nn.Conv2d(1, 4, 3), HSwish(), nn.Hardtanh(), nn.Conv2d(4, 4, 1))
    Q.check_quantizable(own)  # a parameter-free layer of the user's own is traced through
    q8 = Q.quantize_static(own, torch.randn(20, 1, 8, 8))
    convs = [m for m in q8.modules() if isinstance(m, torch.ao.nn.quantized.Conv2d)]
    assert len(convs) == 2


def test_untraceable_forward_points_to_onnx_int8_which_handles_it(data, tmp_path) -> None:
    torch.manual_seed(0)
    model = ShapeBranch().eval()
    message = one_line_error(lambda: Q.check_quantizable(model, "int8"), "cannot trace")
    assert "'onnx-int8'" in message and "test_quantize.py:" in message
    one_line_error(lambda: Q.quantize_static(model, data["x"][:10]), "onnx-int8")
    Q.check_quantizable(model, "onnx-int8")
    path = Q.export_onnx_int8(model, data["x"][:1], data["x"][:100], tmp_path / "b.onnx")
    got, want = Q.onnx_predict(path, data["test_x"][:100]), predict(model, data["test_x"][:100])
    assert float((got - want).norm() / want.norm()) < 0.1


def test_bad_mode_and_backend_are_one_line_errors(trained, data) -> None:
    one_line_error(lambda: Q.check_quantizable(trained, "int4"), "int8, onnx-int8, qat")
    one_line_error(lambda: Q.quantize_static(trained, data["x"][:10], backend="tpu"), "'tpu'")
    one_line_error(lambda: Q.quantize_static(trained, "images"), "calibration must be")
    one_line_error(lambda: Q.quantize_static(trained, data["x"][:10], batch_size=0), ">= 1")
    one_line_error(lambda: Q.convert_qat(trained), "prepare_qat")


# --- ONNX Runtime int8 --------------------------------------------------------------------------


def test_onnx_int8_file_is_qdq_smaller_runs_and_agrees(trained, data, tmp_path) -> None:
    before = state(trained)
    out = tmp_path / "out" / "int8.onnx"
    path = Q.export_onnx_int8(trained, data["x"][:1], data["x"][:300], out)
    assert path == out and os.listdir(out.parent) == ["int8.onnx"]  # no temporary file left
    plain = out.parent / "plain"
    plain.write_bytes(b"")
    assert out.stat().st_mode == plain.stat().st_mode  # permissions of any new file
    plain.unlink()
    assert same_state(trained, before)

    proto = onnx.load(str(path))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and ops & {"Gemm", "MatMul"}
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sum(int(np.prod(t.dims)) for t in int8_weights) >= 100_000  # every weight is int8

    float_file = tmp_path / "float.onnx"
    torch.onnx.export(trained, (data["x"][:1],), str(float_file), dynamo=False)
    assert Q.model_size_bytes(path) < 0.5 * Q.model_size_bytes(float_file)
    assert Q.model_size_bytes(path) == path.stat().st_size

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    batch = data["test_x"].numpy()
    logits = torch.from_numpy(sess.run(None, {name: batch})[0])  # the batch axis is dynamic
    assert agreement(logits, predict(trained, data["test_x"])) >= 0.95
    torch.testing.assert_close(Q.onnx_predict(path, data["test_x"], batch_size=128), logits)
    assert Q.onnx_accuracy(path, data["test_x"], data["test_y"]) == pytest.approx(
        100.0 * float((logits.argmax(1) == data["test_y"]).float().mean())
    )

    latency = Q.onnx_latency(path, (1, 28, 28), warmup=2, repeats=5)
    assert latency.runtime == "onnxruntime" and latency.repeats == 5 and latency.median_ms > 0
    assert latency.input_shape == (1, 1, 28, 28) and latency.threads == 1


def test_onnx_int8_failure_leaves_the_existing_file_untouched(trained, data, tmp_path) -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("no forward")

    target = tmp_path / "int8.onnx"
    target.write_bytes(b"an earlier model")
    calibration = data["x"][:50]
    cases = [
        (lambda: Q.export_onnx_int8(WithLSTM(), data["x"][:1], calibration, target), "LSTM"),
        (lambda: Q.export_onnx_int8(Broken(), data["x"][:1], calibration, target), "export"),
        (
            lambda: Q.export_onnx_int8(trained, data["x"][:1], torch.rand(5, 3, 28, 28), target),
            "calibration images are",
        ),
        (lambda: Q.export_onnx_int8(trained, data["x"][:1], calibration, tmp_path), "folder"),
        (
            lambda: Q.export_onnx_int8(trained, data["x"][:1], calibration, target / "x.onnx"),
            "cannot create folder",
        ),
    ]
    for call, match in cases:
        one_line_error(call, match)
        assert target.read_bytes() == b"an earlier model"
        assert os.listdir(tmp_path) == ["int8.onnx"]


def test_model_size_bytes(trained, tmp_path) -> None:
    path = tmp_path / "archive.pt"  # torch.save names its records after the file
    torch.save(trained.state_dict(), path)
    assert Q.model_size_bytes(trained) == path.stat().st_size
    assert Q.model_size_bytes(str(path)) == path.stat().st_size
    one_line_error(lambda: Q.model_size_bytes(tmp_path / "missing.onnx"), "does not exist")


# --- fake quantisation at any bit-width ----------------------------------------------------------


def test_quantizable_layers_in_order(trained) -> None:
    assert Q.quantizable_layers(trained) == ["0", "4", "9", "11"]
    assert Q.quantizable_layers(WithLSTM()) == ["conv", "head"]


def test_fake_quantize_8_bits_barely_changes_outputs_2_bits_much(trained, data) -> None:
    before = state(trained)
    x = data["test_x"]
    want = predict(trained, x)
    errors = {}
    for bits in (8, 2):
        fq = Q.fake_quantize(trained, (bits, bits), data["x"][:200])
        got = predict(fq, x)
        errors[bits] = float((got - want).abs().mean())
        if bits == 8:
            assert agreement(got, want) >= 0.98
    assert same_state(trained, before) and type(trained[0]) is nn.Conv2d
    assert errors[8] < 0.02 * float(want.abs().mean())
    assert errors[2] > 20 * errors[8]


@pytest.mark.parametrize(("w", "a"), [(2, 3), (3, 5), (5, 2)])
def test_fake_quantized_values_take_at_most_2_to_the_bits_levels(trained, data, w, a) -> None:
    fq = Q.fake_quantize(trained, (w, a), data["x"][:200])
    seen: dict[str, torch.Tensor] = {}
    layers = dict(fq.named_modules())
    for name in Q.quantizable_layers(trained):
        weight = layers[name].weight.detach().flatten(1)
        for row in weight:
            assert 2 <= len(torch.unique(row)) <= 2**w
        assert not torch.equal(weight, dict(trained.named_modules())[name].weight.flatten(1))
        # a hook registered after fake_quantize's sees the quantised input
        layers[name].register_forward_pre_hook(lambda m, args, n=name: seen.update({n: args[0]}))
    predict(fq, data["test_x"][:100])
    for name, inputs in seen.items():
        levels = len(torch.unique(inputs))
        assert 2 <= levels <= 2**a, (name, levels)
    # the input image (values from -0.8 to 2.0 after normalisation) keeps its range roughly
    first = seen["0"]
    assert float(first.min()) < -0.5 and float(first.max()) > 1.5


def test_fake_quantize_policy_per_layer(trained, data) -> None:
    fq = Q.fake_quantize(trained, {"4": (3, 8), "11": [4, 4]}, data["x"][:100])
    original, layers = dict(trained.named_modules()), dict(fq.named_modules())
    for name in ("0", "9"):  # left out of the policy: float, untouched
        assert torch.equal(layers[name].weight, original[name].weight)
        assert not hasattr(layers[name], "input_quantizer")
    assert max(len(torch.unique(r)) for r in layers["4"].weight.detach().flatten(1)) <= 8
    assert layers["4"].input_quantizer.bits == 8 and layers["11"].input_quantizer.bits == 4
    assert Q.quantizable_layers(fq) == Q.quantizable_layers(trained)


def test_fake_quantized_copy_fine_tunes(trained, data) -> None:
    """Straight-through gradients reach the float weights under the quantiser."""
    fq = Q.fake_quantize(trained, 4, data["x"][:100])
    layer = dict(fq.named_modules())["9"]
    start = layer.parametrizations.weight.original.detach().clone()
    high = float(layer.input_quantizer.high)
    result = fit(fq, data["x"][:256], data["y"][:256], epochs=1, lr=0.005)
    assert np.isfinite(result.loss)
    assert not torch.equal(layer.parametrizations.weight.original, start)
    assert float(layer.input_quantizer.high) != high  # the range follows training batches


@pytest.mark.parametrize(
    ("bits", "match"),
    [
        (1, "weight bits must be an int from 2 to 8, got 1"),
        (9, "from 2 to 8, got 9"),
        ("x", "must be \\(weight_bits, activation_bits\\)"),
        ((8,), "must be \\(weight_bits"),
        ((8, 1), "activation bits must be an int from 2 to 8, got 1"),
        ((2.5, 8), "got 2.5"),
        (True, "must be \\(weight_bits"),
        ({"features.3": (8, 8)}, "'features.3', which is not a convolution or linear"),
        ({"2": (8, 8)}, "'2'.*its layers: 0, 4, 9, 11"),
        ({"4": (8, 9)}, "activation bits of '4' must be"),
    ],
)
def test_bad_bits_are_one_line_errors(trained, bits, match) -> None:
    before = state(trained)
    one_line_error(lambda: Q.fake_quantize(trained, bits), match)
    assert same_state(trained, before)


def test_fake_quantize_input_model_not_modified_even_by_training(trained, data) -> None:
    before = state(trained)
    fq = Q.fake_quantize(trained, 6)
    fit(fq, data["x"][:64], data["y"][:64], epochs=1, lr=0.005)
    assert same_state(trained, before)
    assert not any(isinstance(m, Q.ActivationFakeQuant) for m in trained.modules())
    assert copy.deepcopy(fq)(data["x"][:2]).shape == (2, 10)  # the copy copies again
