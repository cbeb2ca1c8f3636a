"""Cost metrics and latency lookup tables: the ops a table enumerates against the networks' own
plans, predictions against sums computed here from the file, the file's round trip, refusal of
another machine's or runtime's table, sane measurement records, and the command's errors.
No timing is asserted, only that records are well formed."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.cli import main
from nasforge.errors import ConfigError, NasforgeError, NasforgeWarning
from nasforge.latency import command
from nasforge.latency.machine import cpu_model, describe_machine, physical_cores
from nasforge.latency.measure import RUNTIMES, cost_metrics, measure, peak_activation_bytes
from nasforge.latency.onnx import export_many, session
from nasforge.latency.ops import TABLE_SPACES, MobileOps
from nasforge.latency.table import LatencyTable
from nasforge.nn.profile import count_macs, count_params
from nasforge.spaces import mobile

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: tiny settings: every test network runs in milliseconds
SIZE = 8
FAST = {"warmup": 1, "repeats": 2}


def _arch(width: float, seed: int) -> mobile.MobileArch:
    arch = mobile.MobileSpace().sample(np.random.default_rng(seed))
    return mobile.MobileArch(arch.stages, width)


def _shape(layer: mobile._Layer, side: int) -> tuple:
    """What distinguishes one layer's latency: its choices, channels, stride, input side and
    residual."""
    return (layer.block, layer.kernel, layer.se, layer.c_in, layer.c_out, layer.stride, side,
            layer.residual)  # fmt: skip


def _layer_shapes_by_plan(arch: mobile.MobileArch, input_size: int) -> set[tuple]:
    """A second computation of a network's layer shapes: `plan_of`'s layers with their input
    side worked out here (stride-2 convs padded by k // 2 halve a side, rounding up)."""
    plan = mobile.plan_of(arch, input_size)
    side = -(-input_size // plan.stem_stride)
    found = set()
    for stage in plan.stages:
        for layer in stage:
            found.add(_shape(layer, side))
            side = -(-side // layer.stride)
    return found


def _enumerated_layers(ops: MobileOps) -> set[tuple]:
    found = set()
    for op in ops.enumerate():
        if isinstance(op.spec, mobile._Layer):
            found.add(_shape(op.spec, op.input_shape[1]))
    return found


# --- what a table enumerates ----------------------------------------------------------------


@pytest.mark.parametrize(("width", "input_size"), [(1.0, 32), (0.5, 224)])
def test_the_enumeration_is_exactly_the_layer_shapes_random_networks_have(
    width: float, input_size: int
) -> None:
    ops = MobileOps((width,), input_size)
    enumerated = _enumerated_layers(ops)
    seen: set[tuple] = set()
    for seed in range(3000):
        seen |= _layer_shapes_by_plan(_arch(width, seed), input_size)
    assert seen == enumerated
    # 7 stages x 30 (block, kernel, SE) x 3 (first layer; later layer with, without residual)
    assert len(enumerated) == 630
    keys = [op.key for op in ops.enumerate()]
    assert len(keys) == len(set(keys)) == 633  # plus stem, head, classifier


def test_several_widths_enumerate_the_union_of_each_width() -> None:
    union: set[str] = set()
    for width in mobile.WIDTHS:
        union |= {op.key for op in MobileOps((width,), 32).enumerate()}
    both = {op.key for op in MobileOps(mobile.WIDTHS, 32).enumerate()}
    assert both == union


def _input_shapes(net: nn.Module, parts: list[nn.Module]) -> list[tuple[int, ...]]:
    """The input shape each of ``parts`` sees in one forward pass of ``net``."""
    shapes: list[tuple[int, ...]] = []

    def record(module: nn.Module, args: tuple) -> None:
        shapes.append(tuple(args[0].shape))

    hooks = [part.register_forward_pre_hook(record) for part in parts]
    net(torch.zeros(1, 3, SIZE, SIZE))
    for hook in hooks:
        hook.remove()
    return shapes


def test_a_networks_ops_are_its_modules_in_order_at_their_input_shapes() -> None:
    ops = MobileOps((0.5, 1.25), SIZE, num_classes=7)
    for seed in range(3):
        arch = _arch((0.5, 1.25)[seed % 2], seed)
        net = ops.network(arch).eval()
        parts = [net.stem, *(layer for stage in net.stages for layer in stage), net.head]
        shapes = _input_shapes(net, parts)
        found = ops.ops(arch)
        assert len(found) == len(parts) + 1  # the classifier (pool, dropout, linear) last
        for op, part, shape in zip(found, parts, shapes, strict=False):
            assert (1, *op.input_shape) == tuple(shape), op.key
            built = ops.module(op)
            assert type(built) is type(part) and count_params(built) == count_params(part)
        assert count_params(ops.module(found[-1])) == count_params(net.classifier)


def test_only_the_mobile_space_has_a_table_and_names_agree_with_the_command() -> None:
    assert tuple(TABLE_SPACES) == command.TABLE_SPACE_NAMES
    assert command.RUNTIME_NAMES == RUNTIMES
    assert command.MOBILE_WIDTHS == mobile.WIDTHS
    from nasforge.latency.ops import space_ops

    with pytest.raises(ConfigError, match=r"'nb201' has no latency table yet.*accepted: mobile"):
        space_ops("nb201")
    with pytest.raises(ConfigError, match=r"width 1\.25.*covers width 0\.5"):
        MobileOps((0.5,), SIZE).ops(_arch(1.25, 0))


# --- a small table ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[LatencyTable, list, Path]:
    """An eager table of only the ops of four networks, its constant fitted on two of them."""
    ops = MobileOps((0.5,), SIZE)
    archs = [_arch(0.5, seed) for seed in range(4)]
    only = [op for arch in archs for op in ops.ops(arch)]
    table = LatencyTable.build(ops, "eager", only=only, fit_networks=0, **FAST)
    table.fit(archs[:2], table.measure_networks(archs[:2], **FAST))
    path = table.save(tmp_path_factory.mktemp("table") / "eager.json")
    return table, archs, path


def test_a_prediction_is_the_sum_of_the_files_entries_plus_the_fitted_constant(
    small_table: tuple[LatencyTable, list, Path],
) -> None:
    table, archs, path = small_table
    data = json.loads(path.read_text())
    entries = {key: value["ms"] for key, value in data["entries"].items()}
    # the constant: least squares over the fitted networks = their mean residual
    fitted = data["fit"]["networks"]
    sums = [sum(entries[op.key] for op in table.ops.ops(_from(f["arch"]))) for f in fitted]
    residuals = [f["measured_ms"] - s for f, s in zip(fitted, sums, strict=True)]
    assert data["constant_ms"] == pytest.approx(sum(residuals) / len(residuals))
    cpu_entries = {key: value["cpu_ms"] for key, value in data["entries"].items()}
    cpu_sums = [sum(cpu_entries[op.key] for op in table.ops.ops(_from(f["arch"]))) for f in fitted]
    cpu_residuals = [f["cpu_ms"] - s for f, s in zip(fitted, cpu_sums, strict=True)]
    assert data["cpu_constant_ms"] == pytest.approx(sum(cpu_residuals) / len(cpu_residuals))
    for arch in archs:
        expected = sum(entries[op.key] for op in table.ops.ops(arch)) + data["constant_ms"]
        assert table.predict(arch) == pytest.approx(expected)
        cpu = sum(cpu_entries[op.key] for op in table.ops.ops(arch)) + data["cpu_constant_ms"]
        assert table.predict(arch, clock="cpu") == pytest.approx(cpu)
        assert table.predict(arch, input_size=SIZE, num_classes=10) == table.predict(arch)
    for key, value in data["entries"].items():
        overhead = data["overhead_ms"]
        assert value["ms"] == pytest.approx(max(0.0, value["median_ms"] - overhead)), key
        assert 0 < value["p10_ms"] <= value["median_ms"] <= value["p90_ms"]
        assert value["cpu_ms"] >= 0
    with pytest.raises(ConfigError, match="built for input_size=8, not 32"):
        table.predict(archs[0], input_size=32)
    with pytest.raises(ConfigError, match="unknown clock 'gpu'; accepted: wall, cpu"):
        table.predict(archs[0], clock="gpu")


def test_with_five_or_more_networks_a_scale_is_fitted_as_well_as_the_constant() -> None:
    """The scale and constant against scipy's own least-squares line through the fitted
    networks the file records, and predictions against that line applied to the file's
    entries."""
    from scipy import stats

    ops = MobileOps((0.5,), SIZE)
    archs = [_arch(0.5, 100 + seed) for seed in range(6)]
    only = [op for arch in archs for op in ops.ops(arch)]
    table = LatencyTable.build(ops, "eager", only=only, fit_networks=0, **FAST)
    table.fit(archs, table.measure_networks(archs, **FAST))
    data = table.to_json()
    fitted = data["fit"]["networks"]
    line = stats.linregress([f["sum_ms"] for f in fitted], [f["measured_ms"] for f in fitted])
    if line.slope > 0:
        assert data["scale"] == pytest.approx(line.slope)
        assert data["constant_ms"] == pytest.approx(line.intercept, abs=1e-9)
    else:  # a degenerate line falls back to the mean residual
        assert data["scale"] == 1.0
    entries = {key: value["ms"] for key, value in data["entries"].items()}
    for arch in archs:
        summed = sum(entries[op.key] for op in ops.ops(arch))
        assert table.predict(arch) == pytest.approx(data["scale"] * summed + data["constant_ms"])
    # a file without a scale (written before it existed) predicts with scale 1
    older = {k: v for k, v in data.items() if k not in ("scale", "cpu_scale")}
    plain = LatencyTable.from_json(older)
    assert plain.scale == 1.0
    assert plain.predict(archs[0]) == pytest.approx(
        sum(entries[op.key] for op in ops.ops(archs[0])) + data["constant_ms"]
    )


def _from(text: str) -> mobile.MobileArch:
    return mobile.from_string(text)


def test_layer_ms_is_the_entry_of_a_plan_layer(
    small_table: tuple[LatencyTable, list, Path],
) -> None:
    table, archs, _ = small_table
    ops = table.ops
    assert isinstance(ops, MobileOps)
    plan = mobile.plan_of(archs[0], SIZE)
    layers = [layer for stage in plan.stages for layer in stage]
    assert [layer for layer, _ in ops.layers(archs[0])] == layers
    for (layer, side), op in zip(ops.layers(archs[0]), ops.ops(archs[0])[1:-2], strict=True):
        assert table.layer_ms(layer, side) == table.entries[op.key].ms
    # without a resolution: found where the layer's channels and stride occur once ...
    unique = ops.layers(archs[0])[0][0]  # stage 1's first layer: stem -> 8 channels
    assert table.layer_ms(unique) == table.entries[ops.ops(archs[0])[1].key].ms
    # ... and named where they do not (at width 0.5 stages 2 and 3 both have 16 channels)
    with pytest.raises(ConfigError, match="16->16 channels at stride 1 runs at resolution 4, 8"):
        table.layer_ms(mobile._Layer("mbconv6", 16, 16, 3, 1, 0.0, True))
    with pytest.raises(ConfigError, match=r"no entry 'conv_k7_se0\.25_c8-8_s1_r8_skip'"):
        table.layer_ms(mobile._Layer("conv", 8, 8, 7, 1, 0.25, True), 8)


def test_a_table_file_round_trips(small_table: tuple[LatencyTable, list, Path]) -> None:
    table, archs, path = small_table
    loaded = LatencyTable.load(path, runtime="eager", threads=1, batch=1)
    assert loaded.to_json() == table.to_json()
    assert [loaded.predict(a) for a in archs] == [table.predict(a) for a in archs]
    assert loaded.machine["key"] == describe_machine()["key"]


def _edited(path: Path, tmp_path: Path, change: dict) -> Path:
    """The table at ``path`` with ``change`` made; a new ``machine.key`` is copied to the
    top-level ``machine_key`` as well, as in a table really built on that machine."""
    data = json.loads(path.read_text())
    for key, value in change.items():
        if key.startswith("machine."):
            data["machine"][key.split(".", 1)[1]] = value
            if key == "machine.key":
                data["machine_key"] = value
        else:
            data[key] = value
    out = tmp_path / "edited.json"
    out.write_text(json.dumps(data))
    return out


def test_a_table_of_another_machine_or_runtime_is_refused_naming_both(
    small_table: tuple[LatencyTable, list, Path], tmp_path: Path
) -> None:
    _, _, path = small_table
    here = describe_machine()["key"]
    other = _edited(path, tmp_path, {"machine.key": "Raspberry Pi 5 | 4c/4t | Linux aarch64"})
    with pytest.raises(ConfigError) as refused:
        LatencyTable.load(other, runtime="eager")
    assert "Raspberry Pi 5 | 4c/4t | Linux aarch64" in str(refused.value)
    assert here in str(refused.value)
    with pytest.raises(ConfigError, match="Raspberry Pi 5"):
        LatencyTable.load(other)  # no runtime asked: the table's own, the machine still checked
    assert LatencyTable.load(path).runtime == "eager"
    with pytest.raises(ConfigError) as refused:
        LatencyTable.load(path, runtime="onnxruntime")
    assert "'eager'" in str(refused.value) and "'onnxruntime'" in str(refused.value)
    with pytest.warns(NasforgeWarning, match="Raspberry Pi 5.*" + re.escape(here)):
        LatencyTable.load(other, runtime="eager", accept_foreign=True)
    with pytest.raises(ConfigError, match="threads 1, not 4"):
        LatencyTable.load(path, runtime="eager", threads=4)
    older = _edited(path, tmp_path, {"machine.torch": "2.6.0"})
    with pytest.warns(NasforgeWarning, match="torch 2.6.0, this is torch"):
        LatencyTable.load(older, runtime="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LatencyTable.load(path, runtime="eager")  # its own machine: no warning


def test_a_table_naming_two_machines_is_refused(
    small_table: tuple[LatencyTable, list, Path], tmp_path: Path
) -> None:
    """Editing only the top-level copy of the key must not pass for another machine's table,
    nor editing only ``machine.key`` go unnoticed."""
    _, _, path = small_table
    here = json.loads(path.read_text())["machine"]["key"]
    for field in ("machine_key", "machine.key"):
        edited = _edited(path, tmp_path, {field: "Apple M2 Pro | 12c/12t | Darwin arm64"})
        data = json.loads(edited.read_text())
        if field == "machine.key":  # undo the helper's copy: the two keys now disagree
            data["machine_key"] = here
            edited.write_text(json.dumps(data))
        with pytest.raises(NasforgeError) as refused:
            LatencyTable.load(edited, runtime="eager")
        assert "names two machines" in str(refused.value)
        assert "Apple M2 Pro | 12c/12t | Darwin arm64" in str(refused.value)
        assert here in str(refused.value) and "\n" not in str(refused.value)


def test_broken_table_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(NasforgeError, match=r"bad\.json is not JSON"):
        LatencyTable.load(tmp_path / "bad.json", runtime="eager")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(NasforgeError, match="not a nasforge latency table"):
        LatencyTable.load(tmp_path / "other.json", runtime="eager")
    with pytest.raises(ConfigError, match="cannot read latency table"):
        LatencyTable.load(tmp_path / "missing.json", runtime="eager")


def test_an_onnxruntime_table_of_a_few_ops_and_its_exported_layers() -> None:
    ops = MobileOps((0.5,), SIZE)
    only = ops.ops(_arch(0.5, 1))[:4]
    table = LatencyTable.build(ops, "onnxruntime", only=only, fit_networks=0, **FAST)
    assert set(table.entries) == {op.key for op in only}
    assert "onnx" in table.meta["exporter"] and table.meta["session"]["execution_mode"]
    assert table.meta["runtime_version"].startswith("onnxruntime ")
    # the layers cut out of one export compute what each module computes
    modules = [ops.module(op).eval() for op in only]
    inputs = [torch.randn(2, *op.input_shape) for op in only]
    models, _ = export_many(modules, inputs)
    for module, x, model in zip(modules, inputs, models, strict=True):
        sess = session(model, threads=1)
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            assert np.allclose(got, module(x).numpy(), atol=1e-4)


# --- measurements ------------------------------------------------------------------------------


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 4))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 3, 8, 8)])
def test_measurements_are_sane_records(runtime: str, shape: tuple[int, ...]) -> None:
    net = _tiny().train()
    latency = measure(net, shape, runtime, threads=1, warmup=1, repeats=3)
    assert latency.runtime == runtime and latency.repeats == 3 and latency.warmup == 1
    assert latency.median_ms > 0 and latency.spread_ms >= 0
    assert latency.cpu_median_ms is not None and latency.cpu_median_ms >= 0
    assert latency.p10_ms <= latency.median_ms <= latency.p90_ms
    assert latency.threads == 1 and latency.batch == (shape[0] if len(shape) == 4 else 1)
    assert latency.machine["key"] and latency.machine["cpu"] and latency.machine["logical_cores"]
    assert (latency.exporter is None) == (runtime == "eager")
    record = latency.to_json()
    assert json.loads(json.dumps(record))["input_shape"][-3:] == [3, 8, 8]
    assert net.training  # the caller's mode is restored


def test_bad_runtimes_and_settings_are_named() -> None:
    with pytest.raises(NasforgeError, match="unknown runtime 'tvm'; accepted: eager, onnxruntime"):
        measure(_tiny(), (3, 8, 8), "tvm")
    with pytest.raises(ConfigError, match="repeats must be an int >= 1"):
        measure(_tiny(), (3, 8, 8), repeats=0)


def test_peak_activation_memory_counts_live_outputs_not_weights() -> None:
    # input 3x8x8 floats (768 B); the conv's output and the ReLU's (2048 B each) are alive
    # together while the ReLU runs; afterwards only smaller tensors
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    assert peak_activation_bytes(net, (3, 8, 8)) == 768 + 2048 + 2048
    assert peak_activation_bytes(net, (2, 3, 8, 8)) == 2 * (768 + 2048 + 2048)


def test_cost_metrics_of_a_mobile_network() -> None:
    net = mobile.build(_arch(0.5, 0), input_size=SIZE)
    costs = cost_metrics(net, (3, SIZE, SIZE), threads=1, **FAST)
    assert costs["params"] == count_params(net)
    assert costs["macs"] == count_macs(net, (3, SIZE, SIZE))
    assert costs["flops"] == 2 * costs["macs"]  # PyTorch's counter: 2 FLOPs a MAC
    assert costs["peak_activation_bytes"] > 4 * 3 * SIZE * SIZE
    assert set(costs["latency"]) == set(RUNTIMES)
    assert all(r["median_ms"] > 0 for r in costs["latency"].values())
    assert costs["machine"]["key"] == describe_machine()["key"]


def test_the_machine_is_read_from_cpuinfo() -> None:
    blocks = [
        {"model name": "Some CPU", "physical id": "0", "core id": str(i % 4)} for i in range(8)
    ]
    assert cpu_model(blocks) == "Some CPU" and physical_cores(blocks) == 4
    arm = [{"cpu implementer": "0x41", "cpu part": "0xd0b"}]
    assert cpu_model(arm) == "ARM implementer 0x41 part 0xd0b" and physical_cores(arm) is None


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--space", "nb201"], ["'nb201'", "no latency table yet", "mobile"]),
        (["--space", "fancy"], ["unknown space 'fancy'", "mobile"]),
        (["--runtime", "tvm"], ["unknown runtime 'tvm'", "eager, onnxruntime"]),
        (["--threads", "0"], ["--threads", "must be > 0"]),
        (["--repeats", "x"], ["--repeats", "'x' is not a whole number"]),
        (["--warmup", "-1"], ["--warmup", "must be >= 0"]),
        (["--width", "0.6"], ["--width '0.6'", "0.5, 0.75, 1.0, 1.25", "all"]),
        (["--out", "{tmp}"], ["is a folder"]),
        (["--out", "{tmp}/file/table.json"], ["cannot write --out"]),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    args: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    given = {"--runtime": "eager", "--out": str(tmp_path / "t.json")}
    given.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = [x.replace("{tmp}", str(tmp_path)) for kv in given.items() for x in kv]
    with pytest.raises(SystemExit) as exit_:
        main(["latency-table", *argv])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasforge: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "t.json").exists()


def test_the_command_writes_a_table_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every op of the space takes too long for a unit test: enumerate a few
    few = MobileOps.enumerate
    monkeypatch.setattr(MobileOps, "enumerate", lambda self: few(self)[:: 633 // 6])
    monkeypatch.setattr(command, "PROGRESS_EVERY", 0.0)
    out = tmp_path / "sub" / "table.json"
    argv = ["latency-table", "--runtime", "eager", "--out", str(out), "--input-size", "8"]
    argv += ["--width", "0.5", "--repeats", "2", "--warmup", "0", "--fit-networks", "0"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ETA" in captured.err and "[7/7]" in captured.err
    assert f"wrote {out}: 7 ops" in captured.out
    table = LatencyTable.load(out, runtime="eager")
    assert len(table.entries) == 7 and table.meta["warmup"] == 0
    assert table.ops.settings()["widths"] == [0.5] and math.isfinite(table.constant_ms)


def test_a_table_measured_on_a_busy_machine_or_with_a_large_constant_warns() -> None:
    from types import SimpleNamespace

    from nasforge.errors import NasforgeWarning
    from nasforge.latency.command import warn_if_unreliable

    fit = {"networks": [{"sum_ms": 8.0}, {"sum_ms": 10.0}, {"sum_ms": 12.0}]}

    def table(scale: float, constant_ms: float, load: dict) -> SimpleNamespace:
        return SimpleNamespace(
            meta={"load": load, "fit": fit},
            machine={"usable_cores": 2},
            scale=scale,
            constant_ms=constant_ms,
            calibrate=lambda summed: scale * summed + constant_ms,
        )

    quiet = {"before": [0.5, 0.4, 0.3], "after": [0.9, 0.5, 0.3]}
    calm = table(1.05, 0.4, quiet)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unreliable(calm)  # nothing to say
    with pytest.warns(NasforgeWarning, match="busy .*load average up to 4.2 on 2 cores"):
        warn_if_unreliable(table(1.05, 0.4, {"after": [4.2]}))
    # the typical (median) summed network is 10 ms: 1 x 10 + 13.8 is 138 % above it
    with pytest.warns(NasforgeWarning, match=r"scale 1.00 and constant \+13.80 ms move .* \+138 %"):
        warn_if_unreliable(table(1.0, 13.8, quiet))
    with pytest.warns(NasforgeWarning, match=r"scale 0.60 and constant \+0.00 ms move .* -40 %"):
        warn_if_unreliable(table(0.6, 0.0, quiet))
