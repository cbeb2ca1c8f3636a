"""Latency lookup tables: each operation of a space measured once at every shape it occurs in,
and a network's latency predicted as the sum of its operations.

The idea is ProxylessNAS's (Cai, Zhu and Han, "ProxylessNAS: Direct Neural Architecture Search
on Target Task and Hardware", ICLR 2019) and FBNet's (Wu et al., "FBNet: Hardware-Aware
Efficient ConvNet Design via Differentiable Neural Architecture Search", CVPR 2019): a
network's latency is close to the sum of its layers' latencies, each measured once on the
target device, so a search can know the latency of 10^16 networks from a few hundred
measurements, and a supernet can make its expected latency a differentiable sum of per-op
entries. Departures, each for a reason:

* how an op is timed depends on the runtime, chosen by measurement (``benchmarks/
  latency_table_error.py``, on a busy 2-core Xeon): eager ops are timed in rounds over a
  chunk of 32 ops in random order (`measure.time_interleaved`), each op's input read just
  before it, because in a tight loop of its own an op keeps its weights and PyTorch's dispatch
  path hot, which inside a network they are not (sums fell ~30 % short; in rounds, MAPE ~5 %
  instead of ~12 %). ONNX Runtime ops are timed in a loop of their own (one session running
  repeatedly, as a network's one session runs its nodes): in rounds, switching between 33
  sessions from Python cost ~0.05 ms a call that a network never pays (sums ~1.5x too high);
* an entry is the op's median minus the runtime's per-call overhead (the median of an
  identity timed the same way, on the network's input: a Python call; for ONNX Runtime a
  ``session.run`` round trip), which a network pays once, not once per layer;
* predict = scale * sum + constant, both per table, fitted by least squares on
  ``fit_networks`` whole random networks measured end to end: the constant is what the sum
  leaves out once per network (its one call, the flatten), the scale what it misses in
  proportion (ONNX Runtime's fusion across layers, activations leaving the cache between
  layers); FBNet's and ProxylessNAS's tables model neither (a departure; with fewer than
  five fitted networks only the constant is fitted, the mean residual);
* every entry, overhead and constant also exists in CPU time of the measuring thread
  (``time.thread_time``; with one intra-op thread, both runtimes compute on it), and
  ``predict(arch, clock="cpu")`` sums those: on a machine shared with other processes the wall
  time of a long run includes the time its thread waited for a core, which no table can
  predict, and CPU time shows what the table itself gets right;
* the table is keyed by the machine *and* the runtime, threads and batch size, stored with the
  software versions: `LatencyTable.load` refuses a table from another machine or runtime (a
  `ConfigError` naming both) unless ``accept_foreign=True``, which warns instead
  (`NasforgeWarning`), and warns when only torch's or onnxruntime's version differs.

The table file is JSON: what was measured and how (space and its settings, runtime, threads,
batch, warm-up, repeats, exporter, ONNX Runtime session settings), where (the machine
description and key, the load average before and after), the overhead, the scale and constant
and the networks they were fitted on, and one entry per op (``ms``, the raw ``median_ms``,
``p10_ms``, ``p90_ms``, ``cpu_ms``).
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.errors import ConfigError, DataFormatError, NasforgeWarning
from nasforge.latency.machine import describe_machine
from nasforge.latency.measure import (
    Latency,
    check_runtime,
    load_average,
    measure,
    runtime_version,
    summarise,
    time_interleaved,
    torch_threads,
)
from nasforge.latency.onnx import SESSION, export_many, identity_model, session
from nasforge.latency.ops import TABLE_SPACES, Op, SpaceOps, space_ops
from nasforge.nn.profile import check_timing, time_calls

FORMAT = "nasforge-latency-table"
VERSION = 1
#: ops exported to ONNX together (one export of a few dozen layers costs far less than many)
EXPORT_CHUNK = 32
#: runtimes whose ops are timed in rounds over a chunk (`measure.time_interleaved`), not each in
#: a loop of its own: see the module's docstring
INTERLEAVED = frozenset({"eager"})

#: the file's keys that are the table's own fields; every other key is its ``meta``
_FIXED = frozenset(
    {"format", "version", "space", "settings", "runtime", "threads", "batch", "machine_key"}
    | {"overhead_ms", "constant_ms", "cpu_constant_ms", "scale", "cpu_scale", "entries"}
)
#: fewest fitted networks for a scale as well as a constant (fewer: the constant alone)
MIN_NETWORKS_FOR_SCALE = 5
#: ``progress(done, total, what)``: called after each op and each fitted network
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Entry:
    """One op's measurement: ``ms`` (what predictions sum: the median less the call overhead,
    never below 0), the raw median and its 10th/90th percentiles, and ``cpu_ms``, the same as
    ``ms`` in CPU time of the measuring thread (what a machine shared with other processes
    cannot inflate)."""

    ms: float
    median_ms: float
    p10_ms: float
    p90_ms: float
    cpu_ms: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {
            "ms": self.ms,
            "median_ms": self.median_ms,
            "p10_ms": self.p10_ms,
            "p90_ms": self.p90_ms,
            "cpu_ms": self.cpu_ms,
        }


def _entry(latency: Latency, overhead: Latency) -> Entry:
    ms = max(0.0, latency.median_ms - overhead.median_ms)
    cpu = None
    if latency.cpu_median_ms is not None and overhead.cpu_median_ms is not None:
        cpu = max(0.0, latency.cpu_median_ms - overhead.cpu_median_ms)
    return Entry(ms, latency.median_ms, latency.p10_ms, latency.p90_ms, cpu)


#: what `LatencyTable.predict` can predict: wall-clock latency, or CPU time of the thread
CLOCKS = ("wall", "cpu")


class LatencyTable:
    """Per-op latencies of one space on one machine and runtime, and the predictor they make.

    Build one with `LatencyTable.build` (or ``nasforge latency-table``), keep it with `save`,
    read it back with `load`. `predict` gives a network's latency, `op_ms`/`layer_ms` one op's
    entry (what a supernet's expected latency sums), `breakdown` a network's ops and entries.
    """

    def __init__(
        self,
        ops: SpaceOps,
        runtime: str,
        entries: dict[str, Entry],
        *,
        threads: int,
        batch: int,
        overhead_ms: float,
        constant_ms: float = 0.0,
        cpu_constant_ms: float | None = None,
        scale: float = 1.0,
        cpu_scale: float = 1.0,
        meta: dict[str, Any] | None = None,
    ):
        self.ops, self.runtime, self.entries = ops, runtime, dict(entries)
        self.threads, self.batch = int(threads), int(batch)
        self.overhead_ms, self.constant_ms = float(overhead_ms), float(constant_ms)
        self.cpu_constant_ms = cpu_constant_ms
        self.scale, self.cpu_scale = float(scale), float(cpu_scale)
        self.meta: dict[str, Any] = dict(meta or {})

    def __repr__(self) -> str:
        return (
            f"LatencyTable({self.ops.space}, {self.runtime}, {len(self.entries)} entries, "
            f"threads={self.threads}, batch={self.batch})"
        )

    @property
    def machine(self) -> dict[str, Any]:
        return self.meta.get("machine", {})

    # --- prediction ------------------------------------------------------------------------

    def op_ms(self, op: Op, clock: str = "wall") -> float:
        """The entry of one op (``clock="cpu"``: its CPU time); a one-line error when the
        table lacks it."""
        entry = self.entries.get(op.key)
        if entry is None:
            raise ConfigError(
                f"the latency table has no entry {op.key!r} (it holds {len(self.entries)} ops "
                f"of the {self.ops.space} space at {self.ops.settings()}); build it for these "
                "settings"
            )
        if _clock(clock) == "wall":
            return entry.ms
        if entry.cpu_ms is None:
            raise ConfigError(f"the latency table has no CPU time for {op.key!r}")
        return entry.cpu_ms

    def layer_ms(self, layer: Any, resolution: int | None = None, clock: str = "wall") -> float:
        """The entry of one searched layer, e.g. a `spaces.mobile.plan_of` layer, at
        ``resolution`` (`MobileOps.layers` gives each layer's; None: the one resolution where
        that layer's channels and stride occur in the table's networks, an error where there
        are several): what a supernet's expected latency per stage op sums."""
        if resolution is None:
            resolution = self.ops.resolution_of(layer)  # type: ignore[attr-defined]
        op = self.ops.layer_op(layer, resolution)  # type: ignore[attr-defined]
        return self.op_ms(op, clock)

    def breakdown(self, arch: Any, clock: str = "wall") -> list[tuple[str, float]]:
        """``arch``'s ops in order with their entries."""
        return [(op.key, self.op_ms(op, clock)) for op in self.ops.ops(arch)]

    def covers(self, arch: Any) -> bool:
        """Whether the table prices ``arch`` (a mobile table prices the widths it was built
        for); `predict` refuses the others."""
        return bool(self.ops.covers(arch))

    def predict(self, arch: Any, clock: str = "wall", **settings: Any) -> float:
        """Predicted milliseconds of ``arch``'s network: the sum of its ops' entries times the
        fitted scale plus the fitted constant (``clock="cpu"``: CPU time, from the CPU entries,
        scale and constant).
        ``settings`` (``input_size=32``, ``num_classes=10`` ...) are checked against the
        table's, so a prediction never silently answers another question."""
        mine = self.ops.settings()
        for name, value in settings.items():
            if name not in mine:
                raise ConfigError(
                    f"latency table predict: unknown setting {name!r}; accepted: {', '.join(mine)}"
                )
            if value != mine[name] and [value] != mine[name]:
                raise ConfigError(
                    f"this latency table was built for {name}={mine[name]!r}, not {value!r}; "
                    "build one for those settings"
                )
        summed = sum(ms for _, ms in self.breakdown(arch, clock))
        return self.calibrate(summed, clock)

    def calibrate(self, summed_ms: float, clock: str = "wall") -> float:
        """A network's latency from the sum of its ops' entries: ``scale * sum + constant``."""
        if _clock(clock) == "wall":
            return self.scale * summed_ms + self.constant_ms
        return self.cpu_scale * summed_ms + (self.cpu_constant_ms or 0.0)

    # --- building --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ops: SpaceOps,
        runtime: str,
        *,
        threads: int = 1,
        batch: int = 1,
        warmup: int = 10,
        repeats: int = 50,
        only: Sequence[Op] | None = None,
        fit_networks: int = 20,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> LatencyTable:
        """Measure every op of ``ops.enumerate()`` (or only those of ``only``) once, then fit
        the constant on ``fit_networks`` random networks (seeded) measured end to end with
        the same settings (0: no fit, the constant stays 0)."""
        runtime = check_runtime(runtime)
        check_timing("latency table", threads, warmup, repeats)
        for name, value, low in (("batch", batch, 1), ("fit_networks", fit_networks, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"latency table {name} must be an int >= {low}, got {value!r}")
        todo = list(ops.enumerate() if only is None else dict.fromkeys(only))
        started, load_before = time.perf_counter(), load_average()
        total = len(todo) + fit_networks
        measured, overhead, exporter = _measure_ops(
            ops, todo, runtime, threads, batch, warmup, repeats, total, progress, seed
        )
        entries = {op.key: _entry(latency, overhead) for op, latency in measured}
        meta = {
            "machine": dict(describe_machine()),
            "runtime_version": runtime_version(runtime),
            "warmup": warmup,
            "repeats": repeats,
            "exporter": exporter,
            "session": dict(SESSION) if runtime == "onnxruntime" else None,
            "timing": "interleaved" if runtime in INTERLEAVED else "consecutive",
            "overhead": {k: v for k, v in overhead.to_json().items() if k != "machine"},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        table = cls(
            ops,
            runtime,
            entries,
            threads=threads,
            batch=batch,
            overhead_ms=overhead.median_ms,
            meta=meta,
        )
        table.meta["ops_seconds"] = round(time.perf_counter() - started, 2)
        if fit_networks:
            rng = np.random.default_rng(seed)
            archs = [ops.sample(rng) for _ in range(fit_networks)]

            def each(i: int, arch: Any) -> None:
                if progress is not None:
                    progress(len(todo) + i + 1, total, f"network {ops.to_string(arch)}")

            table.fit(archs, table.measure_networks(archs, warmup, repeats, each), seed=seed)
        table.meta["build_seconds"] = round(time.perf_counter() - started, 2)
        table.meta["load"] = {"before": load_before, "after": load_average()}
        return table

    def measure_networks(
        self,
        archs: Sequence[Any],
        warmup: int,
        repeats: int,
        each: Callable[[int, Any], None] | None = None,
    ) -> list[Latency]:
        """End-to-end latency of each network with the table's runtime, threads and batch."""
        shape = (self.batch, *self.ops.input_shape())
        found = []
        for i, arch in enumerate(archs):
            net = self.ops.network(arch)
            latency = measure(
                net, shape, self.runtime, threads=self.threads, warmup=warmup, repeats=repeats
            )
            found.append(latency)
            if each is not None:
                each(i, arch)
        return found

    def fit(self, archs: Sequence[Any], measured: Sequence[Latency], seed: int = 0) -> None:
        """Fit ``measured ≈ scale · (sum of entries) + constant`` by least squares on measured
        networks (the same for CPU time where the entries and measurements have it).

        Why a scale as well as the constant the ProxylessNAS/FBNet tables use: a whole network
        does not run at the speed of its ops timed alone. ONNX Runtime fuses across layer
        boundaries and a network's activations leave the cache between layers, so on this
        project's 2-core Xeon a whole ONNX graph ran 1.13x the sum of its ops; the scale took
        the table's MAPE on 50 networks from 12.6 % to 5.7 % (benchmarks/latency_table_error.py).
        With fewer than `MIN_NETWORKS_FOR_SCALE` networks, or a fit whose scale is not
        positive, only the constant is fitted (scale 1: the mean residual)."""
        if len(archs) != len(measured) or not archs:
            raise ConfigError("fitting a latency table needs one measurement per network, >= 1")
        sums = [sum(ms for _, ms in self.breakdown(arch)) for arch in archs]
        times = [m.median_ms for m in measured]
        self.scale, self.constant_ms = affine_fit(sums, times)
        cpu_sums: list[float | None] = [None] * len(archs)
        cpu_times = [m.cpu_median_ms for m in measured]
        if all(e.cpu_ms is not None for e in self.entries.values()) and None not in cpu_times:
            cpu_sums = [sum(ms for _, ms in self.breakdown(arch, "cpu")) for arch in archs]
            self.cpu_scale, self.cpu_constant_ms = affine_fit(cpu_sums, cpu_times)  # type: ignore[arg-type]
        self.meta["fit"] = {
            "seed": seed,
            "networks": [
                {
                    "arch": self.ops.to_string(a),
                    "sum_ms": s,
                    "measured_ms": t,
                    "p90_ms": m.p90_ms,
                    "cpu_sum_ms": c,
                    "cpu_ms": m.cpu_median_ms,
                }
                for a, s, t, m, c in zip(archs, sums, times, measured, cpu_sums, strict=True)
            ],
            "mape_percent": mape([self.calibrate(s) for s in sums], times),
        }

    # --- files -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "space": self.ops.space,
            "settings": self.ops.settings(),
            "runtime": self.runtime,
            "threads": self.threads,
            "batch": self.batch,
            "machine_key": self.machine.get("key"),
            "overhead_ms": self.overhead_ms,
            "constant_ms": self.constant_ms,
            "cpu_constant_ms": self.cpu_constant_ms,
            "scale": self.scale,
            "cpu_scale": self.cpu_scale,
            **{k: v for k, v in self.meta.items() if k not in _FIXED},
            "entries": {key: entry.to_json() for key, entry in self.entries.items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (a temporary file renamed into place: never half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as handle:
            json.dump(self.to_json(), handle, indent=1)
            handle.write("\n")
        os.replace(handle.name, path)
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "latency table") -> LatencyTable:
        """A table from `to_json`'s dict; a one-line error naming ``where`` when malformed."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataFormatError(f"{where} is not a nasforge latency table (no format {FORMAT!r})")
        if data.get("version") != VERSION:
            raise DataFormatError(
                f"{where} is latency table version {data.get('version')!r}; this nasforge "
                f"reads version {VERSION}"
            )
        stated, described = data.get("machine_key"), (data.get("machine") or {}).get("key")
        if stated is not None and described is not None and stated != described:
            raise DataFormatError(
                f"{where} names two machines: machine_key {stated!r} but machine.key "
                f"{described!r} (edited by hand?); the check reads machine.key, so make the two "
                "agree or rebuild the table with 'nasforge latency-table'"
            )
        try:
            if data["space"] not in TABLE_SPACES:
                raise KeyError("space")
            ops = space_ops(data["space"], **data["settings"])
            entries = {key: Entry(**value) for key, value in data["entries"].items()}
            return cls(
                ops,
                str(data["runtime"]),
                entries,
                threads=data["threads"],
                batch=data["batch"],
                overhead_ms=data["overhead_ms"],
                constant_ms=data["constant_ms"],
                cpu_constant_ms=data.get("cpu_constant_ms"),
                scale=data.get("scale", 1.0),
                cpu_scale=data.get("cpu_scale", 1.0),
                meta={k: v for k, v in data.items() if k not in _FIXED},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataFormatError(f"{where} is malformed ({type(err).__name__}: {err})") from None

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        runtime: str | None = None,
        threads: int | None = None,
        batch: int | None = None,
        accept_foreign: bool = False,
    ) -> LatencyTable:
        """Read a table to predict latencies with ``runtime`` (None: the table's own) on this
        machine.

        Refused with a `ConfigError` naming both sides: a table measured on another machine
        (`machine.machine_key`) or, where ``runtime`` is given, with another runtime, unless
        ``accept_foreign``, which warns instead; a table of other ``threads`` or ``batch``
        where those are given (their latencies answer another question). Another torch or
        onnxruntime version warns.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise ConfigError(f"cannot read latency table {path}: {err.strerror or err}") from None
        except json.JSONDecodeError as err:
            raise DataFormatError(f"latency table {path} is not JSON ({err})") from None
        table = cls.from_json(data, f"latency table {path}")
        table.check(
            runtime, threads=threads, batch=batch, accept_foreign=accept_foreign, where=str(path)
        )
        return table

    def check(
        self,
        runtime: str | None = None,
        *,
        machine: dict[str, Any] | None = None,
        threads: int | None = None,
        batch: int | None = None,
        accept_foreign: bool = False,
        where: str = "in memory",
    ) -> None:
        """Is this table fit to predict ``runtime`` on ``machine`` (default: this one)? See
        `load`."""
        here = machine or describe_machine()
        theirs = self.machine.get("key", "an undescribed machine")
        runtime = self.runtime if runtime is None else runtime
        problems = []
        if self.runtime != runtime:
            problems.append(f"runtime {self.runtime!r}, not {runtime!r}")
        if theirs != here["key"]:
            problems.append(f"machine {theirs!r}, not this machine {here['key']!r}")
        if problems:
            message = f"the latency table ({where}) was measured with {' and '.join(problems)}"
            if not accept_foreign:
                raise ConfigError(
                    f"{message}; measure one here with 'nasforge latency-table --runtime "
                    f"{runtime}', or accept it knowingly (accept_foreign=True)"
                )
            warning = f"{message}; its predictions may not hold here"
            warnings.warn(warning, NasforgeWarning, stacklevel=3)
        for name, asked, mine in (("threads", threads, self.threads), ("batch", batch, self.batch)):
            if asked is not None and asked != mine:
                raise ConfigError(
                    f"the latency table ({where}) was measured with {name} {mine}, not {asked}"
                )
        for package in ("torch", "onnxruntime"):
            recorded, current = self.machine.get(package), here.get(package)
            if recorded != current and (package == "torch" or runtime == package):
                warnings.warn(
                    f"the latency table ({where}) was measured with {package} {recorded}, "
                    f"this is {package} {current}; its entries may be off",
                    NasforgeWarning,
                    stacklevel=3,
                )


def _measure_ops(
    ops: SpaceOps,
    todo: list[Op],
    runtime: str,
    threads: int,
    batch: int,
    warmup: int,
    repeats: int,
    total: int,
    progress: Progress | None,
    seed: int = 0,
) -> tuple[list[tuple[Op, Latency]], Latency, str | None]:
    """Each op's latency, in ``todo``'s order, measured `EXPORT_CHUNK` ops at a time (ONNX
    Runtime's exported together); the per-call overhead, an identity on the network's input
    timed with every chunk; and which exporter wrote the ONNX models (None for eager)."""
    found: list[tuple[Op, Latency]] = []
    exporters: set[str] = set()
    rng = np.random.default_rng(seed)
    interleaved = runtime in INTERLEAVED
    shuffled = [todo[i] for i in rng.permutation(len(todo))] if interleaved else todo
    shape = (batch, *ops.input_shape())
    identity: list[float] = []
    identity_cpu: list[float] = []
    for start in range(0, len(shuffled), EXPORT_CHUNK):
        chunk = shuffled[start : start + EXPORT_CHUNK]
        modules = [ops.module(op).eval() for op in chunk]
        inputs = [torch.randn(batch, *op.input_shape) for op in chunk]
        modules.append(torch.nn.Identity())
        inputs.append(torch.randn(shape))
        if runtime == "onnxruntime":
            models, exporter = export_many(modules[:-1], inputs[:-1])
            exporters.add(exporter)
            models.append(identity_model(shape))
            sessions = [session(model, threads) for model in models]
            arrays = [x.numpy() for x in inputs]
            feeds = [{s.get_inputs()[0].name: a} for s, a in zip(sessions, arrays, strict=True)]
            names = [[s.get_outputs()[0].name] for s in sessions]
            calls = [
                functools.partial(s.run, n, f)
                for s, n, f in zip(sessions, names, feeds, strict=True)
            ]
            touches = [a.sum for a in arrays]
        else:
            calls = [functools.partial(m, x) for m, x in zip(modules, inputs, strict=True)]
            touches = [x.sum for x in inputs]
        cpu: list[list[float]] = [[] for _ in calls]
        with torch_threads(threads), torch.inference_mode():
            if interleaved:
                times = time_interleaved(calls, touches, warmup, repeats, rng, cpu)
            else:
                times = [time_calls(c, warmup, repeats, u) for c, u in zip(calls, cpu, strict=True)]
        identity += times.pop()
        identity_cpu += cpu.pop()
        for op, x, t, u in zip(chunk, inputs[:-1], times, cpu, strict=True):
            latency = summarise(
                t, runtime=runtime, warmup=warmup, threads=threads, shape=x.shape, cpu=u
            )
            found.append((op, latency))
        if progress is not None:
            progress(len(found), total, chunk[-1].key)
    rank = {op.key: i for i, op in enumerate(todo)}
    found.sort(key=lambda pair: rank[pair[0].key])
    overhead = summarise(
        identity, runtime=runtime, warmup=warmup, threads=threads, shape=shape, cpu=identity_cpu
    )
    return found, overhead, (" / ".join(sorted(exporters)) or None)


def _clock(clock: str) -> str:
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r}; accepted: {', '.join(CLOCKS)}")
    return clock


def affine_fit(sums: Sequence[float], times: Sequence[float]) -> tuple[float, float]:
    """(scale, constant) minimising sum (time - (scale * sum + constant))^2; (1, mean residual)
    when there are too few networks or the fitted scale is not positive."""
    x, y = np.asarray(sums, dtype=float), np.asarray(times, dtype=float)
    if len(x) >= MIN_NETWORKS_FOR_SCALE and float(np.ptp(x)) > 0:
        scale, constant = np.polyfit(x, y, 1)
        if scale > 0:
            return float(scale), float(constant)
    return 1.0, float(np.mean(y - x))


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error of ``predicted`` against ``measured`` (in %)."""
    pairs = list(zip(predicted, measured, strict=True))
    if not pairs or any(not m > 0 or not math.isfinite(p) for p, m in pairs):
        raise ConfigError("MAPE needs finite predictions and positive measurements")
    return 100.0 * statistics.fmean(abs(p - m) / m for p, m in pairs)
