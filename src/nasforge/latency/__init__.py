"""Cost metrics of built networks and latency lookup tables (issue #15).

`measure` (`measure.py`) times a network on this machine through PyTorch eager or ONNX
Runtime and returns a `Latency` record; `cost_metrics` adds parameters, MACs, FLOPs and peak
activation memory. `LatencyTable` (`table.py`) measures every operation of a space once and
predicts a network's latency as their sum plus a fitted constant (ProxylessNAS, FBNet);
``nasforge latency-table`` (`command.py`) builds one. `describe_machine` (`machine.py`) says
what the numbers were measured on; `ops.py` enumerates a space's operations.
"""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "Latency": "nasforge.latency.measure",
        "LatencyTable": "nasforge.latency.table",
        "MobileOps": "nasforge.latency.ops",
        "RUNTIMES": "nasforge.latency.measure",
        "cost_metrics": "nasforge.latency.measure",
        "describe_machine": "nasforge.latency.machine",
        "measure": "nasforge.latency.measure",
        "peak_activation_bytes": "nasforge.latency.measure",
        "space_ops": "nasforge.latency.ops",
    },
)
