"""The machine a latency was measured on, described so that a reader can tell two apart.

A latency is a property of a network *and* a machine: a number without its CPU, core count and
software versions cannot be compared with another. `describe_machine` gives that description
(stored with every measurement and every latency table) and `machine_key` the part of it that
must match for a table measured on one machine to predict another's latencies: CPU model,
core counts, operating system and architecture. Software versions are described too, but a
version change alone is a warning (see `latency.table`), not a different machine.

Nothing here imports torch or onnxruntime unless their versions are asked for.
"""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo(path: Path = CPUINFO) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per logical processor (empty where there is no such file)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    blocks: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def cpu_model(cpuinfo: list[dict[str, str]] | None = None) -> str:
    """The CPU's marketing name: ``model name`` on x86, ``Hardware``/``Model`` or the CPU part
    on ARM Linux, else what `platform` knows, else the architecture."""
    blocks = _cpuinfo() if cpuinfo is None else cpuinfo
    for key in ("model name", "hardware", "model", "cpu model", "cpu"):
        for fields in blocks:
            if fields.get(key):
                return fields[key]
    parts = [blocks[0].get(k) for k in ("cpu implementer", "cpu part")] if blocks else []
    if all(parts) and parts:
        return f"ARM implementer {parts[0]} part {parts[1]}"
    return platform.processor() or platform.machine() or "unknown CPU"


def physical_cores(cpuinfo: list[dict[str, str]] | None = None) -> int | None:
    """Distinct (package, core) pairs of ``/proc/cpuinfo``; None where it does not say."""
    blocks = _cpuinfo() if cpuinfo is None else cpuinfo
    pairs = {
        (fields.get("physical id", "0"), fields["core id"])
        for fields in blocks
        if "core id" in fields
    }
    return len(pairs) or None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def describe_machine() -> dict[str, Any]:
    """CPU model, logical and physical cores, the cores this process may use, OS and
    architecture, Python, torch and onnxruntime versions, and the `machine_key` (cached: it
    does not change while a process runs)."""
    blocks = _cpuinfo()
    logical = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    description = {
        "cpu": cpu_model(blocks),
        "logical_cores": logical,
        "physical_cores": physical_cores(blocks),
        "usable_cores": usable,
        "os": platform.platform(),
        "system": platform.system(),
        "arch": platform.machine(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
    }
    description["key"] = machine_key(description)
    return description


def machine_key(description: dict[str, Any]) -> str:
    """What must match for a latency table to predict this machine: CPU model, physical and
    logical cores, OS family and architecture (not the host name: two identical machines share
    tables; not software versions: those are checked separately, with a warning)."""
    cores = f"{description.get('physical_cores') or '?'}c/{description.get('logical_cores')}t"
    return f"{description['cpu']} | {cores} | {description['system']} {description['arch']}"


def describe_briefly(description: dict[str, Any]) -> str:
    """One line for a report: CPU, cores, OS."""
    return (
        f"{description['cpu']}, {description.get('physical_cores') or '?'} physical / "
        f"{description.get('logical_cores')} logical cores ({description.get('usable_cores')} "
        f"usable), {description['system']} {description['arch']}"
    )


def describe_environment() -> dict[str, Any]:
    """The machine and software a run ran on, stored with the run so that a report can disclose
    them (the fair-comparison checklist asks for hardware and versions): `describe_machine`
    plus the nasforge and numpy versions."""
    return {**describe_machine(), "nasforge": _version("nasforge"), "numpy": _version("numpy")}
