"""NAS-Bench-301 as a surrogate estimator: a learned model of DARTS-space training on CIFAR-10.

Siems et al., "NAS-Bench-301 and the Case for Surrogate Benchmarks for Neural Architecture
Search" (2020) trained ~60k cells of the DARTS space (Liu et al., ICLR 2019) and fitted surrogates
to them. We use the version YAHPO Gym ships (Pfisterer et al., AutoML-Conf 2022), a single ONNX
network that predicts the *learning curve* as well: from ``NASFORGE_DATA/nb301``

* ``model.onnx``: inputs ``x_cat`` int32[n, 34] (the cell as ConfigSpace hyperparameters, each
  integer-coded by ``encoding.json``, ``"#na#"`` where a hyperparameter is inactive) and
  ``x_cont`` float32[n, 1] (the epoch, 1..98); output [n, 4] = validation accuracy (0-1),
  validation cross-entropy, runtime (s, cumulative) and runtime increase, in YAHPO's ``y_names``
  order (checked against the data: at epoch 98 accuracy lies in 0.90-0.935 and runtime in
  3,000-6,600 s over random cells).
* ``encoding.json``: category -> integer for each of the 34 hyperparameters.
* ``config_space.json``: the 34 hyperparameters (plus ``epoch``) and their conditions.

The columns of ``x_cat`` follow YAHPO's ``cat_names`` (``CAT_NAMES`` below), not the key order
of ``encoding.json``. NB301 has no ``none`` op: a cell using it is outside the benchmark.

Results: ``objective`` = validation accuracy in percent at ``candidate.fidelity`` epochs (98 by
default), ``metrics`` = ``val_loss`` and ``runtime``, ``report`` = ``val_acc_final`` (percent at
epoch 98; NB301 predicts no test accuracy, so this is the number to report), ``cost`` = predicted
training seconds. On one CPU thread a query costs about 0.2 ms alone and 0.1 ms per
architecture in a batch (``evaluate_many``; the model itself needs ~20 us, the rest is encoding).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from nasforge.core import Candidate, Result
from nasforge.data.paths import find_data
from nasforge.errors import ConfigError, DataFormatError, InvalidArchError
from nasforge.estimators.base import EstimatorBase, EstimatorCapabilities
from nasforge.spaces.darts import OPS as DARTS_OPS

PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
MODEL_FILE, ENCODING_FILE, CONFIG_SPACE_FILE = "model.onnx", "encoding.json", "config_space.json"
NA = "#na#"
#: The ops NB301 was trained on: DARTS' eight minus ``none``.
OPS: tuple[str, ...] = tuple(op for op in DARTS_OPS if op != "none")
CELL_TYPES = ("normal", "reduce")
NUM_NODES = 4
#: Edge ``_EDGE_START[k] + i`` connects input ``i`` to intermediate node ``k`` (14 edges per cell).
_EDGE_START = (0, 2, 5, 9)
#: The model's ``x_cat`` columns, in YAHPO Gym's ``cat_names`` order.
CAT_NAMES: tuple[str, ...] = (
    *(f"{PREFIX}edge_{cell}_{e}" for cell in CELL_TYPES for e in range(14)),
    *(f"{PREFIX}inputs_node_{cell}_{n}" for cell in CELL_TYPES for n in (3, 4, 5)),
)
#: The model's output columns (YAHPO's ``y_names``).
OUTPUTS = ("val_accuracy", "val_cross_entropy", "runtime", "runtime_increase")
MIN_EPOCH, MAX_EPOCH = 1, 98


def _cell_config(cell: str, pairs: object) -> dict[str, str]:
    """The active hyperparameters of one cell (``cell`` is ``normal`` or ``reduce``)."""
    try:
        pairs = [(op, inp) for op, inp in pairs]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InvalidArchError(
            f"NB301 {cell} cell must be 8 (op, input) pairs, got {pairs!r}"
        ) from None
    if len(pairs) != 2 * NUM_NODES:
        raise InvalidArchError(
            f"NB301 {cell} cell must be {2 * NUM_NODES} (op, input) pairs, got {len(pairs)}"
        )
    config: dict[str, str] = {}
    for k in range(NUM_NODES):
        (op_a, in_a), (op_b, in_b) = pairs[2 * k], pairs[2 * k + 1]
        for op, inp in ((op_a, in_a), (op_b, in_b)):
            if op == "none":
                raise InvalidArchError(
                    f"NB301 has no 'none' op ({cell} cell, node {k}); the surrogate covers the "
                    f"7 non-none DARTS ops: {', '.join(OPS)}"
                )
            if op not in OPS:
                raise InvalidArchError(
                    f"unknown op {op!r} in the {cell} cell, node {k}; NB301 accepts: "
                    f"{', '.join(OPS)}"
                )
            if (
                isinstance(inp, bool)
                or not isinstance(inp, numbers.Integral)
                or not (0 <= inp <= k + 1)
            ):
                raise InvalidArchError(
                    f"{cell} cell node {k} input {inp!r} is out of range; accepted: 0..{k + 1}"
                )
        if in_a == in_b:
            raise InvalidArchError(
                f"{cell} cell node {k} takes input {in_a} twice; its two inputs must differ"
            )
        low, high = sorted((int(in_a), int(in_b)))
        if k > 0:  # node 2 in NB301's numbering always reads both cell inputs: no choice there
            config[f"{PREFIX}inputs_node_{cell}_{k + 2}"] = f"{low}_{high}"
        for op, inp in ((op_a, in_a), (op_b, in_b)):
            config[f"{PREFIX}edge_{cell}_{_EDGE_START[k] + int(inp)}"] = op
    return config


def genotype_to_config(normal: object, reduce: object) -> dict[str, str]:
    """The ConfigSpace configuration of a DARTS genotype (only the active hyperparameters).

    Node ``k`` of a cell (``k`` = 0..3, NB301's node ``k + 2``) uses pairs ``2k`` and ``2k+1``;
    input ``i`` of node ``k`` is edge ``_EDGE_START[k] + i``, and for ``k >= 1`` the chosen pair
    of inputs is the hyperparameter ``inputs_node_<cell>_<k+2>`` = ``"low_high"``.
    """
    return {**_cell_config("normal", normal), **_cell_config("reduce", reduce)}


@lru_cache(maxsize=4)
def load_encoding(path: str) -> dict[str, dict[str, int]]:
    """``encoding.json`` checked: every model column present, with ``#na#`` and integer codes."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object of hyperparameter -> codes")
    missing = [name for name in CAT_NAMES if name not in data]
    if missing:
        raise DataFormatError(
            f"{path}: missing {len(missing)} hyperparameter(s), e.g. {missing[0]!r}; expected "
            f"the {len(CAT_NAMES)} NB301 hyperparameters of YAHPO Gym's nb301"
        )
    encoding: dict[str, dict[str, int]] = {}
    for name in CAT_NAMES:
        codes = data[name]
        ok = isinstance(codes, dict) and NA in codes
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in codes.values())
        if not ok:
            raise DataFormatError(
                f"{path}: {name}: expected an object of category -> integer code including "
                f"{NA!r}, got {codes!r}"
            )
        encoding[name] = dict(codes)
    return encoding


def load_config_space(path: str) -> dict[str, Any]:
    """``config_space.json`` (ConfigSpace's JSON), checked to describe the model's columns."""
    try:
        with open(path) as handle:
            data = json.load(handle)
        names = {hp["name"] for hp in data["hyperparameters"]}
        conditions = list(data["conditions"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataFormatError(
            f"{path}: not a ConfigSpace JSON file with 'hyperparameters' and 'conditions' ({err})"
        ) from err
    expected = {*CAT_NAMES, "epoch"}
    if names != expected:
        odd = sorted(names ^ expected)
        raise DataFormatError(
            f"{path}: hyperparameters differ from NB301's ({', '.join(odd[:3])} ...); expected "
            f"the {len(CAT_NAMES)} cell hyperparameters and 'epoch'"
        )
    return {"hyperparameters": data["hyperparameters"], "conditions": conditions}


def _check_epoch(fidelity: object) -> int:
    if fidelity is None:
        return MAX_EPOCH
    ok = isinstance(fidelity, numbers.Real) and not isinstance(fidelity, bool)
    ok = ok and math.isfinite(fidelity) and fidelity == int(fidelity)  # type: ignore[arg-type]
    if not ok or not MIN_EPOCH <= int(fidelity) <= MAX_EPOCH:  # type: ignore[arg-type]
        raise ConfigError(
            f"NB301 fidelity must be a whole number of epochs in {MIN_EPOCH}..{MAX_EPOCH}, "
            f"got {fidelity!r}"
        )
    return int(fidelity)  # type: ignore[arg-type]


class NB301Benchmark(EstimatorBase):
    """Surrogate NAS-Bench-301 estimator for DARTS cells (CIFAR-10), with learning curves.

    Architectures are read by duck typing: anything with ``.normal`` and ``.reduce``, each 8
    ``(op, input)`` pairs in DARTS genotype order (e.g. ``DartsArch``). The ONNX session is made
    lazily per process and dropped when the estimator is pickled to a worker.
    """

    name = "nb301"
    objective_name = "val_acc"
    #: cost = predicted runtime (simulated seconds); fidelity = the epoch the surrogate predicts
    capabilities = EstimatorCapabilities(
        has_cost=True,
        report_metric="val_acc_final",
        fidelity_range=(float(MIN_EPOCH), float(MAX_EPOCH)),
    )

    def __init__(self, data_dir: str | os.PathLike[str] | None = None):
        model = find_data(f"nb301/{MODEL_FILE}", data_dir, what="NAS-Bench-301 surrogate model")
        self.folder = model.parent
        for name in (ENCODING_FILE, CONFIG_SPACE_FILE):
            if not (self.folder / name).is_file():
                raise DataFormatError(
                    f"{self.folder}: {name} is missing; an NB301 folder holds {MODEL_FILE}, "
                    f"{ENCODING_FILE} and {CONFIG_SPACE_FILE} (YAHPO Gym's nb301 layout)"
                )
        self.model_path = model
        self.encoding = load_encoding(str(self.folder / ENCODING_FILE))
        self.config_space = load_config_space(str(self.folder / CONFIG_SPACE_FILE))
        self._session: Any = None
        self._session_pid: int | None = None
        self._ensure_session()  # fail now, not in the first trial, if the model is unreadable

    # --- pickling: the ONNX session stays in the process that made it ---------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"], state["_session_pid"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _ensure_session(self) -> Any:
        if self._session is None or self._session_pid != os.getpid():
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # many workers share the CPU; batching is faster
            options.inter_op_num_threads = 1
            try:
                session = ort.InferenceSession(
                    str(self.model_path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as err:  # onnxruntime raises its own exception types
                raise DataFormatError(
                    f"{self.model_path}: not a loadable ONNX model ({err})"
                ) from err
            inputs = {i.name: i.shape for i in session.get_inputs()}
            outputs = [o.shape for o in session.get_outputs()]
            if (
                set(inputs) != {"x_cat", "x_cont"}
                or inputs["x_cat"][-1] != len(CAT_NAMES)
                or inputs["x_cont"][-1] != 1
                or len(outputs) != 1
                or outputs[0][-1] != len(OUTPUTS)
            ):
                raise DataFormatError(
                    f"{self.model_path}: inputs {inputs}, outputs {outputs}; expected x_cat "
                    f"[n, {len(CAT_NAMES)}], x_cont [n, 1] and one output [n, {len(OUTPUTS)}]"
                )
            self._session, self._session_pid = session, os.getpid()
        return self._session

    # --- encoding -----------------------------------------------------------------------------

    def encode_config(self, config: Mapping[str, str]) -> np.ndarray:
        """int32[34] for the model: each column's code, ``#na#`` where ``config`` lacks it."""
        unknown = [name for name in config if name not in self.encoding]
        if unknown:
            raise InvalidArchError(
                f"unknown NB301 hyperparameter {unknown[0]!r}; accepted: the {len(CAT_NAMES)} "
                f"names '{PREFIX}edge_<normal|reduce>_<0..13>' and "
                f"'{PREFIX}inputs_node_<normal|reduce>_<3..5>'"
            )
        row = np.empty(len(CAT_NAMES), dtype=np.int32)
        for column, name in enumerate(CAT_NAMES):
            codes = self.encoding[name]
            value = config.get(name, NA)
            if value not in codes:
                hint = " (NB301 has no 'none' op)" if value == "none" else ""
                accepted = ", ".join(c for c in codes if c != NA)
                raise InvalidArchError(
                    f"{name} = {value!r} is not in the NB301 encoding{hint}; accepted: {accepted}"
                )
            row[column] = codes[value]
        return row

    def encode_arch(self, arch: object) -> np.ndarray:
        """The model's ``x_cat`` row for an architecture with ``.normal`` and ``.reduce``."""
        try:
            normal, reduce = arch.normal, arch.reduce  # type: ignore[attr-defined]
        except AttributeError:
            raise InvalidArchError(
                f"NB301 needs a DARTS architecture with .normal and .reduce genotypes, got "
                f"{type(arch).__name__}"
            ) from None
        return self.encode_config(genotype_to_config(normal, reduce))

    # --- queries ------------------------------------------------------------------------------

    def predict(self, x_cat: np.ndarray, epochs: Sequence[int] | np.ndarray) -> np.ndarray:
        """Raw model output [n, 4] (columns ``OUTPUTS``) for encoded rows at the given epochs."""
        session = self._ensure_session()
        x_cont = np.asarray(epochs, dtype=np.float32).reshape(-1, 1)
        x_cat = np.ascontiguousarray(x_cat, dtype=np.int32).reshape(len(x_cont), len(CAT_NAMES))
        return session.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]

    def evaluate(self, candidate: Candidate) -> Result:
        return self.evaluate_many([candidate])[0]

    def evaluate_many(self, candidates: Sequence[Candidate]) -> list[Result]:
        """All candidates in one model call (plus their 98-epoch values for the report)."""
        if not candidates:
            return []
        epochs = [_check_epoch(c.fidelity) for c in candidates]
        rows = np.stack([self.encode_arch(c.arch) for c in candidates])
        n = len(candidates)
        out = self.predict(np.concatenate([rows, rows]), [*epochs, *([MAX_EPOCH] * n)])
        results = []
        for i, epoch in enumerate(epochs):
            acc, loss, runtime, _ = (float(v) for v in out[i])
            runtime = max(runtime, 0.0)
            results.append(
                Result(
                    objective=100.0 * acc,
                    metrics={"val_loss": loss, "runtime": runtime},
                    report={"val_acc_final": 100.0 * float(out[n + i, 0])},
                    cost=runtime,
                    fidelity=float(epoch),
                )
            )
        return results
